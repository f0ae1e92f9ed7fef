package emukit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// ServerOptions says where to listen. Each address may be "" (off); host ":0" style picks a free port. With all
// three empty, HTTP listens on "127.0.0.1:0".
type ServerOptions struct {
	HTTP  string // plain HTTP API listener
	HTTPS string // TLS API listener (needs TLS)
	Admin string // admin listener (faults and log); keep it on loopback
	TLS   *TLS
}

// Server is a running emulator: the API on plain HTTP and/or HTTPS, and the admin endpoint.
type Server struct {
	URL      string // "http://127.0.0.1:port", "" when off
	TLSURL   string // "https://127.0.0.1:port", "" when off
	AdminURL string // "http://127.0.0.1:port", "" when off
	TLS      *TLS

	lg      *zap.Logger
	servers []*http.Server
	done    []chan struct{}
}

// Serve starts listeners for h (wrap it with Kit.Wrap first) and, if o.Admin is set, for the kit's admin handler.
// It returns once every listener accepts connections.
func Serve(lg *zap.Logger, h http.Handler, k *Kit, o ServerOptions) (*Server, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.HTTP == "" && o.HTTPS == "" && o.Admin == "" {
		o.HTTP = "127.0.0.1:0"
	}
	s := &Server{lg: lg, TLS: o.TLS}
	start := func(addr string, handler http.Handler, tlsConf *TLS) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(lg.Named("http"))}
		scheme := "http"
		if tlsConf != nil {
			scheme = "https"
			srv.TLSConfig = tlsConf.Config.Clone()
			// HTTP/2 would make Hijack impossible, and the providers we emulate speak HTTP/1.1 anyway.
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var err error
			if tlsConf != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				lg.Error("serve", zap.String("addr", addr), zap.Error(err))
			}
		}()
		s.servers = append(s.servers, srv)
		s.done = append(s.done, done)
		return scheme + "://" + hostPort(ln.Addr()), nil
	}
	var err error
	if o.HTTP != "" {
		if s.URL, err = start(o.HTTP, h, nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	if o.HTTPS != "" {
		if o.TLS == nil {
			s.Close()
			return nil, errors.New("https listener needs TLS")
		}
		if s.TLSURL, err = start(o.HTTPS, h, o.TLS); err != nil {
			s.Close()
			return nil, err
		}
	}
	if o.Admin != "" && k != nil {
		if s.AdminURL, err = start(o.Admin, k.AdminHandler(), nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// hostPort turns a listener address into something a client can dial: an unspecified IP becomes 127.0.0.1,
// which the generated certificate covers.
func hostPort(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// Close stops every listener and open connection, then waits for the serve loops.
func (s *Server) Close() error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range s.done {
		<-d
	}
	s.servers, s.done = nil, nil
	return errors.Join(errs...)
}

// Shutdown stops gracefully: in-flight requests (long polls included) get until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AdminHandler serves the admin API:
//
//	POST   /faults  body: a plan in YAML or JSON; replaces the plan (?append=1 adds its rules instead)
//	GET    /faults  the live rules with matched/fired counters
//	DELETE /faults  drop every rule
//	GET    /log     the request log as JSON (oldest first); DELETE /log empties it
//	POST   /inject/{file,folder,rename}  items with hostile names, when the emulator has an Injector
//	GET    /trash   the sha256 of every trashed file's stored content (Kit.SetTrash)
func (k *Kit) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /trash", func(w http.ResponseWriter, r *http.Request) {
		sums, err := k.Trash()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if sums == nil {
			sums = []string{}
		}
		writeJSON(w, sums)
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p, err := ParsePlan(data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("append") != "" {
			err = k.AddRules(p.Rules...)
		} else {
			err = k.SetPlan(p)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, k.Faults())
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, k.Faults()) })
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		k.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /log", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, k.Log()) })
	mux.HandleFunc("DELETE /log", func(w http.ResponseWriter, r *http.Request) {
		k.ResetLog()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /inject/{kind}", k.injectHandler)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
