package emukit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// errCut is returned to a handler whose response was cut on purpose, so it stops writing.
var errCut = errors.New("emukit: response cut by fault plan")

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fault plan: %w", err)
	}
	return data, nil
}

// apply runs one built-in action.
func (k *Kit) apply(sw *statusWriter, r *http.Request, a Action, next http.Handler) {
	switch a.Do {
	case DoStatus:
		h := sw.Header()
		for name, v := range a.Headers {
			h.Set(name, v)
		}
		if a.RetryAfter > 0 || a.RetryAfterDate {
			if a.RetryAfterDate {
				h.Set("Retry-After", k.clk.Now().Add(time.Duration(a.RetryAfter)*time.Second).UTC().Format(http.TimeFormat))
			} else {
				h.Set("Retry-After", strconv.Itoa(a.RetryAfter))
			}
		}
		if a.Body != "" {
			ct := a.ContentType
			if ct == "" {
				ct = "text/plain; charset=utf-8"
			}
			h.Set("Content-Type", ct)
		}
		h.Set("Content-Length", strconv.Itoa(len(a.Body)))
		code := a.Status
		if code == 0 {
			code = http.StatusServiceUnavailable
		}
		sw.WriteHeader(code)
		_, _ = sw.Write([]byte(a.Body))
	case DoDelayHeaders:
		if !k.wait(r, a.Delay) {
			return
		}
		next.ServeHTTP(sw, r)
	case DoSlowBody:
		next.ServeHTTP(&slowWriter{statusWriter: sw, k: k, r: r, rate: a.Rate}, r)
	case DoStallAfter:
		next.ServeHTTP(&stallWriter{statusWriter: sw, k: k, r: r, left: a.Bytes, delay: a.Delay}, r)
	case DoCorruptByte:
		next.ServeHTTP(&corruptWriter{statusWriter: sw, at: a.Offset}, r)
	case DoResetAfter, DoTruncateAt:
		cw := &cutWriter{sw: sw, header: http.Header{}, limit: a.Bytes, reset: a.Do == DoResetAfter}
		next.ServeHTTP(cw, r)
		cw.finish()
	case DoApplyThenReset:
		// The effect happens; the answer is lost. This is how a client meets "did my upload happen?".
		next.ServeHTTP(&discardWriter{header: http.Header{}}, r)
		cw := &cutWriter{sw: sw, reset: true}
		cw.abort()
	case DoGarbage:
		page := "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>We'll be right back</h1>" +
			"<p>The service is undergoing maintenance.</p></body></html>\n"
		sw.Header().Set("Content-Type", "text/html; charset=utf-8")
		sw.Header().Set("Content-Length", strconv.Itoa(len(page)))
		sw.WriteHeader(http.StatusOK)
		_, _ = sw.Write([]byte(page))
	default:
		http.Error(sw, "emukit: unknown fault action "+a.Do, http.StatusInternalServerError)
	}
}

// wait sleeps d by the kit's clock; false if the client went away or the kit closed first.
func (k *Kit) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-k.clk.After(d):
		return true
	case <-r.Context().Done():
		return false
	case <-k.stop:
		return false
	}
}

// slowWriter throttles the body to rate bytes per second, in tenth-of-a-second slices so the client sees a
// steady trickle rather than bursts.
type slowWriter struct {
	*statusWriter
	k    *Kit
	r    *http.Request
	rate int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	rate := s.rate
	if rate <= 0 {
		rate = 1024
	}
	slice := max(rate/10, 1)
	written := 0
	for len(p) > 0 {
		n := min(slice, len(p))
		m, err := s.statusWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		_ = http.NewResponseController(s.statusWriter).Flush()
		p = p[n:]
		if !s.k.wait(s.r, time.Duration(n)*time.Second/time.Duration(rate)) {
			return written, errCut
		}
	}
	return written, nil
}

func (s *slowWriter) Unwrap() http.ResponseWriter { return s.statusWriter }

// stallWriter passes left bytes, then stops sending: the client sees a live connection that makes no progress.
type stallWriter struct {
	*statusWriter
	k     *Kit
	r     *http.Request
	left  int64
	delay time.Duration
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= s.left {
		s.left -= int64(len(p))
		return s.statusWriter.Write(p)
	}
	n, err := s.statusWriter.Write(p[:s.left])
	s.left = 0
	if err != nil {
		return n, err
	}
	_ = http.NewResponseController(s.statusWriter).Flush()
	// Hang until the client gives up, the server closes, or the optional delay ends the stall with a cut body.
	var timeout <-chan time.Time
	if s.delay > 0 {
		timeout = s.k.clk.After(s.delay)
	}
	select {
	case <-s.r.Context().Done():
	case <-s.k.stop:
	case <-timeout:
	}
	return n, errCut
}

func (s *stallWriter) Unwrap() http.ResponseWriter { return s.statusWriter }

// corruptWriter flips the body byte at offset at: a body whose digest disagrees with the listing.
type corruptWriter struct {
	*statusWriter
	at  int64
	off int64
}

func (c *corruptWriter) Write(p []byte) (int, error) {
	if c.at >= c.off && c.at < c.off+int64(len(p)) {
		q := bytes.Clone(p)
		q[c.at-c.off] ^= 0xff
		p = q
	}
	c.off += int64(len(p))
	return c.statusWriter.Write(p)
}

func (c *corruptWriter) Unwrap() http.ResponseWriter { return c.statusWriter }

type discardWriter struct {
	header http.Header
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// cutWriter sends the status line, the headers and limit bytes of the body itself on the hijacked connection,
// then either resets it (SO_LINGER 0: the peer gets a RST, not a clean EOF) or closes it cleanly with the body
// shorter than its Content-Length. When the handler sets no Content-Length the body is buffered to learn it.
type cutWriter struct {
	sw     *statusWriter
	header http.Header
	limit  int64
	reset  bool

	status int
	buf    bytes.Buffer
	conn   net.Conn
	bw     *bufio.Writer
	sent   int64
	done   bool
}

func (c *cutWriter) Header() http.Header { return c.header }

func (c *cutWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.done {
		return 0, errCut
	}
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.conn == nil {
		if c.header.Get("Content-Length") == "" {
			return c.buf.Write(p)
		}
		if err := c.start(); err != nil {
			return 0, err
		}
	}
	return c.send(p)
}

// finish runs after the handler returned: flush a buffered body, or cut a body that was shorter than the limit.
func (c *cutWriter) finish() {
	if c.done {
		return
	}
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.conn == nil {
		if c.header.Get("Content-Length") == "" {
			c.header.Set("Content-Length", strconv.Itoa(c.buf.Len()))
		}
		if err := c.start(); err != nil {
			return
		}
		if c.buf.Len() > 0 {
			if _, err := c.send(c.buf.Bytes()); err != nil {
				return
			}
		}
	}
	c.cut()
}

func (c *cutWriter) start() error {
	conn, bw, err := http.NewResponseController(c.sw).Hijack()
	if err != nil {
		c.done = true
		return fmt.Errorf("hijack: %w", err)
	}
	c.conn, c.bw = conn, bw.Writer
	c.sw.status = c.status
	c.header.Set("Connection", "close")
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\n", c.status, http.StatusText(c.status))
	_ = c.header.Write(c.bw)
	_, _ = c.bw.WriteString("\r\n")
	return nil
}

func (c *cutWriter) send(p []byte) (int, error) {
	room := c.limit - c.sent
	if int64(len(p)) < room {
		n, err := c.bw.Write(p)
		c.sent += int64(n)
		c.sw.n += int64(n)
		return n, err
	}
	n, _ := c.bw.Write(p[:room])
	c.sent += int64(n)
	c.sw.n += int64(n)
	c.cut()
	return n, errCut
}

func (c *cutWriter) cut() {
	if c.done {
		return
	}
	c.done = true
	if c.conn == nil {
		return
	}
	_ = c.bw.Flush()
	c.sw.end()
	if c.reset {
		resetConn(c.conn)
		return
	}
	_ = c.conn.Close()
}

// abort resets the connection without writing anything.
func (c *cutWriter) abort() {
	conn, _, err := http.NewResponseController(c.sw).Hijack()
	if err != nil {
		return
	}
	c.done = true
	c.sw.end()
	resetConn(conn)
}

// resetConn closes with SO_LINGER 0, which makes the kernel send a RST: the peer's read fails with
// "connection reset by peer" instead of seeing a clean EOF. On TLS the RST goes out on the TCP socket below.
func resetConn(conn net.Conn) {
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
		_ = tc.Close()
		return
	}
	_ = conn.Close()
}
