package verizon

import (
	"bytes"
	"io"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

const testRoot = "/VZMOBILE/t"

// newClient builds a client of r with its own token pair (two clients sharing one refresh token would
// invalidate each other by rotation), fast retries, and the root created.
func newClient(t testing.TB, r *emulator.Running, mod func(*Config)) *Client {
	t.Helper()
	at, rt := r.Emu.Mint()
	base, err := httpx.New(httpx.Options{CAFile: r.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	tok := &oauth2.Token{AccessToken: at, RefreshToken: rt}
	cfg := Config{Endpoint: r.URL, Root: testRoot, HTTP: base.HTTP(), BaseDelay: 5 * time.Millisecond,
		IdleTimeout: 2 * time.Second,
		Auth:        httpx.NewOAuth(oauthConfig(r.URL, "", "", ""), base.HTTP(), tok, nil, nil)}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.InitRoot(t.Context()); err != nil {
		t.Fatalf("InitRoot: %v", err)
	}
	return c
}

func startEmu(t testing.TB, o emulator.Options) *emulator.Running {
	t.Helper()
	return emulator.Start(t, o)
}

func mustPut(t testing.TB, c *Client, p string, data []byte) remote.Entry {
	t.Helper()
	e, err := c.Put(t.Context(), remote.Path(p), bytes.NewReader(data), int64(len(data)), time.Time{}, remote.Precondition{})
	if err != nil {
		t.Fatalf("Put %s: %v", p, err)
	}
	return e
}

func mustMkdir(t testing.TB, c *Client, p string) {
	t.Helper()
	if _, err := c.Mkdir(t.Context(), remote.Path(p)); err != nil {
		t.Fatalf("Mkdir %s: %v", p, err)
	}
}

func readAll(t testing.TB, c *Client, p string) ([]byte, error) {
	t.Helper()
	rc, _, err := c.Open(t.Context(), remote.Path(p))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// ops counts the request log entries of op.
func ops(r *emulator.Running, op string) int {
	n := 0
	for _, e := range r.Log() {
		if e.Op == op {
			n++
		}
	}
	return n
}

func testTime() time.Time { return time.Date(2025, 3, 1, 10, 15, 30, 0, time.UTC) }
