package emukit

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// TLSOnlyOptions says where an HTTPS-only emulator listens.
type TLSOnlyOptions struct {
	Addr  string // API listener, e.g. "127.0.0.1:0"; TLS, with plain HTTP on the same port sniffed
	Admin string // admin listener (plain HTTP, loopback); "" = off
	TLS   *TLS
}

// ServeTLSOnly serves h on one port that speaks TLS, for providers whose servers refuse plain HTTP with an answer
// of their own (vBoxx: `400 insecure_transport` as JSON). Go's TLS server answers a plain request with a text line
// the client cannot decode, so each connection's first byte is peeked: a TLS handshake (0x16) gets TLS, anything
// else is served as plain HTTP by the same handler, which sees r.TLS == nil and answers as the provider does.
// Server.TLSURL is the API's URL; Server.URL stays empty.
func ServeTLSOnly(lg *zap.Logger, h http.Handler, k *Kit, o TLSOnlyOptions) (*Server, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.TLS == nil {
		return nil, errors.New("tls-only listener needs TLS")
	}
	s := &Server{lg: lg, TLS: o.TLS}
	raw, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", o.Addr, err)
	}
	ln := newSniffListener(raw, o.TLS.Config.Clone())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(lg.Named("http")),
		// HTTP/2 would make Hijack impossible; the emulated providers speak HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("serve", zap.String("addr", o.Addr), zap.Error(err))
		}
	}()
	s.servers = append(s.servers, srv)
	s.done = append(s.done, done)
	s.TLSURL = "https://" + hostPort(raw.Addr())
	if o.Admin != "" && k != nil {
		a, err := Serve(lg, nil, k, ServerOptions{Admin: o.Admin})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.AdminURL = a.AdminURL
		s.servers = append(s.servers, a.servers...)
		s.done = append(s.done, a.done...)
	}
	return s, nil
}

// sniffListener classifies connections off the accept loop, so one slow client cannot hold up the others.
type sniffListener struct {
	net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	errc  chan error
	stop  chan struct{}
	once  sync.Once
}

func newSniffListener(ln net.Listener, cfg *tls.Config) *sniffListener {
	l := &sniffListener{Listener: ln, cfg: cfg, conns: make(chan net.Conn), errc: make(chan error, 1),
		stop: make(chan struct{})}
	go l.loop()
	return l
}

func (l *sniffListener) loop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errc <- err:
			case <-l.stop:
			}
			return
		}
		go l.classify(c)
	}
}

func (l *sniffListener) classify(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := peekFirstByte(c)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		_ = c.Close()
		return
	}
	var out net.Conn = c
	if b.first == 0x16 { // TLS record type "handshake"
		out = tls.Server(b.conn, l.cfg)
	} else {
		out = b.conn
	}
	select {
	case l.conns <- out:
	case <-l.stop:
		_ = out.Close()
	}
}

func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.stop:
		return nil, net.ErrClosed
	}
}

func (l *sniffListener) Close() error {
	l.once.Do(func() { close(l.stop) })
	return l.Listener.Close()
}
