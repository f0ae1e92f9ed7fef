package verizon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoginAnswersTheBrowserWhenItFails: the browser that delivers the redirect gets the whole page even when the
// login then fails at once (here the code exchange is refused: a wrong client secret). The listener used to be
// closed as Login returned, cutting the answer off mid-write (a browser saw EOF; the e2e TLS test failed so now
// and then). The browser here is another goroutine, as a real one is another process; the login runs many times,
// as the cut depends on which of the two gets there first.
func TestLoginAnswersTheBrowserWhenItFails(t *testing.T) {
	t.Parallel()
	r, redirect := loginEmu(t)
	for i := range 40 {
		answered := make(chan error, 1)
		browser := func(u string) error {
			go func() {
				resp, err := r.HTTPClient().Get(u) // follows the redirect to the loopback callback
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "</html>")) {
						err = &unexpectedPage{resp.StatusCode, string(b)}
					}
				}
				answered <- err
			}()
			return nil
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := Login(ctx, nil, LoginOptions{Endpoint: r.URL, CAFile: r.CAFile, StateDir: t.TempDir(),
			ClientID: "my-app", ClientSecret: "wrong", RedirectURL: redirect, OpenBrowser: browser})
		cancel()
		if err == nil {
			t.Fatal("Login with a wrong client secret succeeded")
		}
		if berr := <-answered; berr != nil {
			t.Fatalf("login %d failed (%v); the browser's answer: %v", i, err, berr)
		}
	}
}

type unexpectedPage struct {
	code int
	body string
}

func (u *unexpectedPage) Error() string {
	return "unexpected page: " + http.StatusText(u.code) + ": " + u.body
}
