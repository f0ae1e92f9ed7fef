package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
)

func get(url string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", url, nil)
	}
}

func ok(*http.Response) error { return nil }

func fast(o Options) *Client {
	o.BaseDelay, o.MaxDelay = time.Millisecond, 5*time.Millisecond
	c, err := New(o)
	if err != nil {
		panic(err)
	}
	return c
}

func TestRetriesServerErrorsWithRetryAfter(t *testing.T) {
	var n atomic.Int32
	var times []time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if n.Add(1) < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "fine")
	}))
	defer srv.Close()
	c := fast(Options{})
	if err := c.Do(context.Background(), "op", true, get(srv.URL), ok); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 {
		t.Fatalf("attempts = %d", n.Load())
	}
	if d := times[1].Sub(times[0]); d < 900*time.Millisecond {
		t.Fatalf("retried after %v despite Retry-After: 1", d)
	}
}

func TestRetryAfterForms(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := RetryAfter("7", now); d != 7*time.Second {
		t.Fatal(d)
	}
	if d := RetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Fatal(d)
	}
	if d := RetryAfter("soon", now); d != 0 {
		t.Fatal(d)
	}
}

func TestRetryAfterClamped(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "86400")
			w.WriteHeader(429)
			return
		}
	}))
	defer srv.Close()
	c := fast(Options{MaxRetryAfter: 20 * time.Millisecond})
	start := time.Now()
	if err := c.Do(context.Background(), "op", true, get(srv.URL), ok); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Retry-After not clamped")
	}
}

func TestGivesUpAndClassifies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			w.WriteHeader(404)
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	c := fast(Options{MaxAttempts: 3})
	err := c.Do(context.Background(), "op", true, get(srv.URL+"/boom"), ok)
	if !errors.Is(err, remote.ErrUnavailable) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("500s: %v", err)
	}
	if err := c.Do(context.Background(), "op", true, get(srv.URL+"/gone"), ok); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("404: %v", err)
	}
}

func TestTransportErrorsHideTheQueryAndRetryOnlyIdempotent(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer srv.Close()
	c := fast(Options{MaxAttempts: 3})
	err := c.Do(context.Background(), "op", false, get(srv.URL+"/x?access_token=SECRET123"), ok)
	if err == nil || strings.Contains(err.Error(), "SECRET123") {
		t.Fatalf("error leaks the token or is nil: %v", err)
	}
	if n.Load() != 1 {
		t.Fatalf("a non-idempotent request was retried %d times", n.Load())
	}
	n.Store(0)
	_ = c.Do(context.Background(), "op", true, get(srv.URL), ok)
	if n.Load() != 3 {
		t.Fatalf("idempotent attempts = %d", n.Load())
	}
}

func TestRedirectToHTTPRefused(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL, http.StatusFound)
	}))
	defer tlsSrv.Close()
	hc := tlsSrv.Client()
	hc.CheckRedirect = checkRedirect
	c := fast(Options{HTTP: hc, MaxAttempts: 1})
	if err := c.Do(context.Background(), "op", true, get(tlsSrv.URL), ok); err == nil || !strings.Contains(err.Error(), "refused redirect") {
		t.Fatalf("downgrade redirect: %v", err)
	}
}

func TestOneRefreshSharedByWorkers(t *testing.T) {
	var refreshes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer new" {
			w.WriteHeader(401)
		}
	}))
	defer srv.Close()
	var saved []string
	o := NewOAuth(&oauth2.Config{}, nil, &oauth2.Token{AccessToken: "old", RefreshToken: "r1"},
		func(t *oauth2.Token) error { saved = append(saved, t.RefreshToken); return nil }, nil)
	o.refresh = func(ctx context.Context, rt string) (*oauth2.Token, error) {
		refreshes.Add(1)
		time.Sleep(20 * time.Millisecond) // hold the flight open so the other workers pile up behind it
		return &oauth2.Token{AccessToken: "new", RefreshToken: "r2"}, nil
	}
	c := fast(Options{Auth: o})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Do(context.Background(), "op", true, get(srv.URL), ok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if refreshes.Load() != 1 {
		t.Fatalf("refreshes = %d, want 1", refreshes.Load())
	}
	if len(saved) != 1 || saved[0] != "r2" || o.Token().RefreshToken != "r2" {
		t.Fatalf("rotated refresh token not persisted before use: %v", saved)
	}
}

func TestInvalidGrantNeedsLogin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }))
	defer srv.Close()
	o := NewOAuth(&oauth2.Config{}, nil, &oauth2.Token{AccessToken: "old", RefreshToken: "r1"}, nil, nil)
	o.refresh = func(ctx context.Context, rt string) (*oauth2.Token, error) {
		return nil, &oauth2.RetrieveError{ErrorCode: "invalid_grant"}
	}
	c := fast(Options{Auth: o})
	if err := c.Do(context.Background(), "op", true, get(srv.URL), ok); !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("invalid_grant: %v", err)
	}
}

func TestMalformedJSONIsTemporary(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			io.WriteString(w, "<html>overloaded</html>")
			return
		}
		io.WriteString(w, `{"result":0}`)
	}))
	defer srv.Close()
	c := fast(Options{})
	var v struct{ Result int }
	err := c.Do(context.Background(), "op", true, get(srv.URL), func(r *http.Response) error { return c.DecodeJSON(r, &v) })
	if err != nil || n.Load() != 2 {
		t.Fatalf("err %v attempts %d", err, n.Load())
	}
}

// A Retry-After holds back every request of that operation, not just the one that got it (RELIABILITY F6).
func TestRetryAfterHoldsTheEndpoint(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	got429 := make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			close(got429)
		}
	}))
	defer srv.Close()
	c := fast(Options{})
	errs := make(chan error, 2)
	go func() { errs <- c.Do(context.Background(), "op", true, get(srv.URL), ok) }()
	<-got429
	time.Sleep(50 * time.Millisecond) // let the first worker record the Retry-After
	go func() { errs <- c.Do(context.Background(), "op", true, get(srv.URL), ok) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("%d requests", len(at))
	}
	for _, x := range at[1:] {
		if d := x.Sub(at[0]); d < 900*time.Millisecond {
			t.Fatalf("a request of the same operation went out %v after a 429 with Retry-After: 1", d)
		}
	}
}

// TestRedirectAcrossOriginsCarriesNoCredentials (SEC-06): a redirect to another origin (here the same IP on
// another port, which Go's own rule treats as the same host) is refused for a request that carries a credential
// header or a body (a 307/308 re-sends it), and followed for one that carries neither; a redirect to a file: URL
// is refused; a redirect within the origin keeps the credentials.
func TestRedirectAcrossOriginsCarriesNoCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []string // what the other origin received: Authorization header and body
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Cookie")+" "+string(b))
		mu.Unlock()
		io.WriteString(w, "other")
	}))
	defer other.Close()
	var sameAuth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			sameAuth = r.Header.Get("Authorization")
		case "/to-same":
			http.Redirect(w, r, "/same", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/post-to-other":
			http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		}
	}))
	defer srv.Close()
	hc := srv.Client()
	hc.CheckRedirect = checkRedirect
	c := fast(Options{HTTP: hc, MaxAttempts: 1, Auth: Bearer{Token: "SECRET-AT"}})
	ctx := context.Background()
	cookie := func(b func(ctx context.Context) (*http.Request, error)) func(ctx context.Context) (*http.Request, error) {
		return func(ctx context.Context) (*http.Request, error) {
			req, err := b(ctx)
			if err == nil {
				req.Header.Set("Cookie", "session=SECRET-COOKIE")
			}
			return req, err
		}
	}
	if err := c.Do(ctx, "op", true, get(srv.URL+"/to-same"), ok); err != nil || sameAuth != "Bearer SECRET-AT" {
		t.Fatalf("same-origin redirect: %v, Authorization %q", err, sameAuth)
	}
	if err := c.Do(ctx, "op", true, cookie(get(srv.URL+"/to-other")), ok); err == nil || !strings.Contains(err.Error(), "refused redirect") {
		t.Errorf("a cross-origin redirect of a request with credentials: %v", err)
	}
	anon := fast(Options{HTTP: hc, MaxAttempts: 1})
	if err := anon.Do(ctx, "op", true, get(srv.URL+"/to-other"), ok); err != nil || len(seen) != 1 {
		t.Errorf("a cross-origin redirect of a request without credentials was not followed: %v", err)
	}
	post := func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "POST", srv.URL+"/post-to-other", strings.NewReader("refresh_token=SECRET-RT"))
	}
	if err := c.Do(ctx, "op", false, post, ok); err == nil || !strings.Contains(err.Error(), "refused redirect") {
		t.Errorf("a 307 that re-sends a body to another origin: %v", err)
	}
	if err := c.Do(ctx, "op", true, get(srv.URL+"/to-file"), ok); err == nil {
		t.Errorf("a redirect to file: was followed")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, "SECRET") {
			t.Errorf("the other origin received a credential: %q", s)
		}
	}
}
