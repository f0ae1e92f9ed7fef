package pcloud

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// TestLoginEndToEnd drives the whole flow against the emulator's authorize page: the "browser" is an HTTP
// client that follows the redirect to Login's loopback listener.
func TestLoginEndToEnd(t *testing.T) {
	t.Parallel()
	run := emulator.Start(t, emulator.Options{})
	dir := t.TempDir()
	var out bytes.Buffer
	browser := func(u string) error {
		go func() { // a browser runs beside the terminal; Login waits for its redirect
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Login(ctx, nil, LoginOptions{Endpoint: run.URL, ClientID: "tandem-test", ClientSecret: "s3cret",
		StateDir: dir, OpenBrowser: browser, Out: &out})
	if err != nil {
		t.Fatalf("Login: %v\n%s", err, out.String())
	}
	var tf tokenFile
	path := tokenstore.File(dir, "pcloud", "")
	if err := tokenstore.Load(path, &tf); err != nil {
		t.Fatal(err)
	}
	if tf.AccessToken == "" || tf.Endpoint != run.URL || tf.LocationID != 1 || tf.UserID == 0 {
		t.Errorf("token file %+v", tf)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode())
	}
	if strings.Contains(out.String(), tf.AccessToken) {
		t.Error("Login printed the token")
	}
	// The stored login opens a working remote.
	r, err := Open(ctx, nil, "/", remote.OpenOptions{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat(ctx, remote.Root); err != nil {
		t.Fatalf("Stat with the stored token: %v", err)
	}
	if _, _, err := r.(*Client).Quota(ctx); err != nil {
		t.Fatalf("Quota: %v", err)
	}
}

func TestLoginRejectsForeignState(t *testing.T) {
	t.Parallel()
	run := emulator.Start(t, emulator.Options{})
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	browser := func(u string) error {
		au, _ := url.Parse(u)
		redirect := au.Query().Get("redirect_uri")
		go func() {
			// A forged redirect first (wrong state): refused, Login keeps waiting for the real one.
			resp, err := http.Get(redirect + "?code=forged&state=wrong")
			if err == nil {
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("forged redirect answered %d", resp.StatusCode)
				}
				resp.Body.Close()
			}
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	if err := Login(ctx, nil, LoginOptions{Endpoint: run.URL, ClientID: "x", StateDir: t.TempDir(),
		OpenBrowser: browser, Out: &out}); err != nil {
		t.Fatalf("Login after a forged redirect: %v", err)
	}
}

func TestAPIBaseRefusesForeignHosts(t *testing.T) {
	if _, _, _, err := apiBase(nil, url.Values{"hostname": {"evil.example.com"}}); err == nil {
		t.Error("a non-pCloud hostname was accepted for the token exchange")
	}
	if b, _, _, err := apiBase(nil, url.Values{"hostname": {"eapi.pcloud.com"}, "locationid": {"2"}}); err != nil || b != EUEndpoint {
		t.Errorf("EU redirect: %q %v", b, err)
	}
	if b, _, _, _ := apiBase(nil, url.Values{"locationid": {"2"}}); b != EUEndpoint {
		t.Errorf("locationid 2 without hostname: %q", b)
	}
}
