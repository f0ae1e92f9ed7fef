// Package httpx is the HTTP plumbing the provider clients share: retries with exponential backoff and jitter,
// Retry-After honoured (and clamped), one forced token refresh on an auth failure, bodies read through a size
// limit, TLS trust from an explicit CA file, and errors that never carry a URL query (tokens travel there on
// some APIs).
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

// Authorizer puts credentials on a request and can renew them once they are refused.
type Authorizer interface {
	// Apply sets the request's credentials (normally the Authorization header).
	Apply(ctx context.Context, req *http.Request) error
	// Refresh renews the credentials after the server refused them. used is what Apply put on the refused
	// request, so that concurrent workers refused with the same token cause one refresh, not one each.
	// An error wrapping remote.ErrUnauthorized means a new login is needed.
	Refresh(ctx context.Context, used *http.Request) error
}

// Options configure a Client. The zero value retries 5 times, from 250 ms up to 30 s between attempts.
type Options struct {
	HTTP          *http.Client // default: a client with TLS from CAFile, no total timeout (large transfers)
	CAFile        string       // extra trusted CA certificates, PEM; verification is never turned off
	Auth          Authorizer
	MaxAttempts   int
	BaseDelay     time.Duration
	MaxDelay      time.Duration
	MaxRetryAfter time.Duration // a longer Retry-After is clamped to this and logged; default 5 min
	MaxBody       int64         // JSON answers larger than this are refused; default 64 MiB
	Clock         clockwork.Clock
	Rand          func() float64 // jitter source; default math/rand/v2
	Logger        *zap.Logger
	// Name prefixes the failpoints of this client's requests (the failpoints build only):
	// <Name>.http.<op's first word>.answered fires once the server answered, before the answer is read.
	Name string
	// ErrorBody, when set, reads an HTTP error answer's body first (the first 4 KiB): a provider that sends its
	// own error document with a 4xx/5xx status (pCloud's {result, error}) is judged by it. A nil return falls
	// back to the status rules below.
	ErrorBody func(status int, body []byte) error
}

// Client sends requests with the retry and auth rules. Safe for concurrent use.
type Client struct {
	o  Options
	lg *zap.Logger

	// gateMu guards notBefore: per operation, the instant before which no request is sent because the server
	// answered one with Retry-After (RELIABILITY F6: the wish holds for the endpoint, not just that request).
	gateMu    sync.Mutex
	notBefore map[string]time.Time
}

// gate waits until op may be sent again.
func (c *Client) gate(ctx context.Context, op string) error {
	c.gateMu.Lock()
	until := c.notBefore[op]
	c.gateMu.Unlock()
	if d := until.Sub(c.o.Clock.Now()); d > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		case <-c.o.Clock.After(d):
		}
	}
	return nil
}

// holdOff records a server's Retry-After for every request of op.
func (c *Client) holdOff(op string, d time.Duration) {
	until := c.o.Clock.Now().Add(d)
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	if c.notBefore == nil {
		c.notBefore = map[string]time.Time{}
	}
	if until.After(c.notBefore[op]) {
		c.notBefore[op] = until
	}
}

// New fills in defaults and builds the HTTP client.
func New(o Options) (*Client, error) {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.BaseDelay == 0 {
		o.BaseDelay = 250 * time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 30 * time.Second
	}
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = 5 * time.Minute
	}
	if o.MaxBody == 0 {
		o.MaxBody = 64 << 20
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		tr.ResponseHeaderTimeout = 2 * time.Minute // a stalled server, not a slow body (that is the caller's watchdog)
		if o.CAFile != "" {
			cfg, err := TLSConfig(o.CAFile)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = cfg
		}
		o.HTTP = &http.Client{Transport: explainTLS{tr}, CheckRedirect: checkRedirect}
	}
	return &Client{o: o, lg: o.Logger}, nil
}

// HTTP is the underlying client (for oauth2's token exchange, which must use the same trust).
func (c *Client) HTTP() *http.Client { return c.o.HTTP }

// TLSConfig trusts the system roots plus the certificates in caFile.
func TLSConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// ErrRedirectRefused is a server redirect tandem will not follow; it is final, never retried.
var ErrRedirectRefused = errors.New("refused redirect")

// credentialHeaders are the request headers that carry a credential and never go to another origin.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Cookie2"}

// checkRedirect refuses HTTPS -> HTTP downgrades and any non-HTTP scheme, and keeps credentials on the origin
// (scheme, host and port) of the first request: a redirect to another origin is refused when the request
// carried a credential header or a body (a 307/308 re-sends it, and it can hold a grant or file content), and
// followed otherwise (a content download without credentials). Go's own rule strips Authorization and Cookie
// only when the host name changes, so another port of the same host, or a subdomain, would still get them.
// No provider documents a redirect; refusing one stops the operation with a clear error, where following it
// without the token would end in a misleading "login required".
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("%w: too many redirects", ErrRedirectRefused)
	}
	first := via[0]
	if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
		return fmt.Errorf("%w to a %s: URL", ErrRedirectRefused, remote.Escape(req.URL.Scheme))
	}
	if first.URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w from https to %s", ErrRedirectRefused, req.URL.Scheme)
	}
	if sameOrigin(first.URL, req.URL) {
		return nil
	}
	carries := req.Body != nil && req.Body != http.NoBody
	for _, h := range credentialHeaders {
		carries = carries || first.Header.Get(h) != ""
		req.Header.Del(h)
	}
	if carries {
		return fmt.Errorf("%w to another host (%s): the request carries credentials or data", ErrRedirectRefused,
			remote.Escape(req.URL.Host))
	}
	return nil
}

// sameOrigin compares scheme, host and port (a missing port is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "https" {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// Temporary marks an error worth retrying (a provider's "try again later" answer); after is the server's wish
// for the delay (0: backoff).
type Temporary struct {
	Err   error
	After time.Duration
}

func (t *Temporary) Error() string { return t.Err.Error() }
func (t *Temporary) Unwrap() error { return t.Err }

// Retry wraps err as temporary.
func Retry(err error, after time.Duration) error { return &Temporary{Err: err, After: after} }

// authFailed marks a refused credential: Do refreshes once and replays.
type authFailed struct{ err error }

func (a *authFailed) Error() string { return a.err.Error() }
func (a *authFailed) Unwrap() error { return a.err }

// AuthFailed wraps a provider's "token refused" answer (pCloud's 2000 with HTTP 200, for instance).
func AuthFailed(err error) error { return &authFailed{err: err} }

// StatusError is a non-2xx answer.
type StatusError struct {
	Op     string
	Status int
	Body   string // the first bytes, for the message
	kind   error
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func (e *StatusError) Unwrap() error { return e.kind }

// Do runs one logical request. build makes a fresh *http.Request per attempt (bodies cannot be replayed);
// handle reads the response and returns nil, a final error, or an error wrapped by Retry / AuthFailed. Network
// errors and 5xx/429 answers are retried only when idempotent is true (an upload whose answer was lost must be
// checked by the caller, not blindly repeated); 401 gets one refresh and a replay.
func (c *Client) Do(ctx context.Context, op string, idempotent bool,
	build func(ctx context.Context) (*http.Request, error), handle func(*http.Response) error) error {
	return c.do(ctx, op, idempotent, build, handle, false)
}

// Stream is Do for a download: it returns the first successful response with its body open (the caller reads
// and closes it), after the same retry and refresh rules.
func (c *Client) Stream(ctx context.Context, op string, build func(ctx context.Context) (*http.Request, error)) (*http.Response, error) {
	var out *http.Response
	err := c.do(ctx, op, true, build, func(resp *http.Response) error { out = resp; return nil }, true)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) do(ctx context.Context, op string, idempotent bool,
	build func(ctx context.Context) (*http.Request, error), handle func(*http.Response) error, keep bool) error {
	refreshed := false
	var last error
	for attempt := 1; ; attempt++ {
		if err := c.gate(ctx, op); err != nil {
			return err
		}
		req, err := build(ctx)
		if err != nil {
			return err
		}
		if c.o.Auth != nil {
			if err := c.o.Auth.Apply(ctx, req); err != nil {
				return err
			}
		}
		resp, err := c.o.HTTP.Do(req)
		if err == nil {
			// The server has answered (a write is done); a kill here loses the answer.
			err = failpoint.Hit(c.point(op))
			if err == nil {
				err = c.classify(op, resp)
			}
			if err == nil {
				err = handle(resp)
			}
			if err == nil && keep {
				return nil
			}
			drain(resp)
		} else {
			err = netError(op, err)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var af *authFailed
		if errors.As(err, &af) {
			if refreshed || c.o.Auth == nil {
				return fmt.Errorf("%w: %w", remote.ErrUnauthorized, err)
			}
			refreshed = true
			if rerr := c.o.Auth.Refresh(ctx, req); rerr != nil {
				return rerr
			}
			attempt-- // a replay after a refresh is not a failed attempt
			continue
		}
		var tmp *Temporary
		retriable := errors.As(err, &tmp)
		if !retriable && idempotent && errors.Is(err, errTransport) {
			retriable = true
		}
		if !retriable || attempt >= c.o.MaxAttempts {
			if retriable {
				return fmt.Errorf("%s: gave up after %d attempts: %w", op, attempt, err)
			}
			return err
		}
		last = err
		wait := c.backoff(attempt)
		if tmp != nil && tmp.After > 0 {
			wait = tmp.After
			if wait > c.o.MaxRetryAfter {
				c.lg.Warn("server asked to wait longer than allowed; clamped", zap.String("op", op),
					zap.Duration("asked", tmp.After), zap.Duration("waiting", c.o.MaxRetryAfter))
				wait = c.o.MaxRetryAfter
			}
			c.holdOff(op, wait)
		}
		c.lg.Debug("retrying", zap.String("op", op), zap.Int("attempt", attempt), zap.Duration("wait", wait),
			zap.Error(last))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), last)
		case <-c.o.Clock.After(wait):
		}
	}
}

// backoff is exponential with full jitter in [d/2, d].
// point names the failpoint after op's answer: the provider, then op's first word (ops name the method and
// often the path after it).
func (c *Client) point(op string) string {
	op = strings.TrimPrefix(op, c.o.Name+" ")
	if i := strings.IndexByte(op, ' '); i >= 0 {
		op = op[:i]
	}
	return c.o.Name + ".http." + op + ".answered"
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.o.BaseDelay << (attempt - 1)
	if d > c.o.MaxDelay || d <= 0 {
		d = c.o.MaxDelay
	}
	return d/2 + time.Duration(c.o.Rand()*float64(d/2))
}

var errTransport = errors.New("transport error")

// netError strips the URL (and so any query token) from a transport error and marks it retriable.
func netError(op string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRedirectRefused) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if te := tlsExplained(err); te != nil {
		return fmt.Errorf("%s: %w", op, te)
	}
	return fmt.Errorf("%s: %w: %w", op, errTransport, err)
}

// TLSError is a certificate the client refused, with what to check. It is final: a retry meets the same
// certificate.
type TLSError struct {
	Hint string
	Err  error
}

func (e *TLSError) Error() string { return e.Hint + ": " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

// tlsExplained says which certificate check failed, or nil when err is no certificate failure.
func tlsExplained(err error) *TLSError {
	var te *TLSError
	if errors.As(err, &te) {
		return te
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostErr):
		return &TLSError{Hint: "the server's TLS certificate is not for this host (check the endpoint)", Err: err}
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return &TLSError{Hint: "the server's TLS certificate has expired or is not yet valid (check this computer's clock)", Err: err}
	case errors.As(err, &certErr) || errors.As(err, &unknownAuth):
		return &TLSError{Hint: "TLS certificate not trusted (give the CA with --ca-file)", Err: err}
	}
	return nil
}

// explainTLS makes a refused certificate say which check failed and what to do, for every user of the
// client's transport: the token exchanges of the logins (golang.org/x/oauth2) never pass through netError.
type explainTLS struct{ rt *http.Transport }

func (t explainTLS) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		if te := tlsExplained(err); te != nil {
			return nil, te
		}
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (t explainTLS) CloseIdleConnections() { t.rt.CloseIdleConnections() }

// IsTransport reports whether err was a network failure (reset, refused, timeout, cut body).
func IsTransport(err error) bool {
	if errors.Is(err, errTransport) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// classify turns HTTP status codes into the retry/auth rules; 2xx and 3xx pass to the handler.
func (c *Client) classify(op string, resp *http.Response) error {
	if resp.StatusCode < 400 {
		return nil
	}
	limit := int64(512)
	if c.o.ErrorBody != nil {
		limit = 4 << 10
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	if c.o.ErrorBody != nil {
		if err := c.o.ErrorBody(resp.StatusCode, snippet); err != nil {
			return err
		}
		if len(snippet) > 512 {
			snippet = snippet[:512]
		}
	}
	se := &StatusError{Op: op, Status: resp.StatusCode, Body: remote.Escape(strings.TrimSpace(string(snippet)))}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		se.kind = remote.ErrUnauthorized
		return AuthFailed(se)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		se.kind = remote.ErrUnavailable
		return Retry(se, RetryAfter(resp.Header.Get("Retry-After"), c.o.Clock.Now()))
	case resp.StatusCode == http.StatusNotFound:
		se.kind = remote.ErrNotFound
	case resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusPreconditionFailed:
		se.kind = remote.ErrConflict
	case resp.StatusCode == http.StatusForbidden:
		se.kind = remote.ErrUnavailable
	}
	return se
}

// RetryAfter parses both forms of RFC 9110's Retry-After: delta-seconds and an HTTP-date. 0 when absent or bad.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// DecodeJSON reads a JSON body through the size limit. A body that is not JSON (an HTML error page with 200)
// is a temporary error: proxies and overloaded front ends produce them.
func (c *Client) DecodeJSON(resp *http.Response, v any) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxBody+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %w", errTransport, err)
	}
	if int64(len(body)) > c.o.MaxBody {
		return fmt.Errorf("answer larger than %d bytes refused", c.o.MaxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		snippet := body
		if len(snippet) > 80 {
			snippet = snippet[:80]
		}
		return Retry(fmt.Errorf("malformed answer (%v): %s", err, remote.Escape(string(snippet))), 0)
	}
	return nil
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
