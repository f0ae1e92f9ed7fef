package vboxx

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
	"github.com/tandemsync/tandem/remote/vboxx/emulator"
)

func put(t testing.TB, c *Client, p string, data []byte) (remote.Entry, error) {
	t.Helper()
	return c.Put(t.Context(), remote.Path(p), bytes.NewReader(data), int64(len(data)), time.Time{}, remote.Precondition{})
}

// TestPlainHTTPRefused: an http:// endpoint is refused before anything is sent, by Open and by Login, with a
// message that says what to do.
func TestPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	plain := "http" + strings.TrimPrefix(e.emu.URL, "https")
	e.emu.ResetLog()
	_, err := Open(t.Context(), quiet(t), "/", remote.OpenOptions{Endpoint: plain, StateDir: e.state})
	if err == nil || !strings.Contains(err.Error(), "only accepts https") || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("Open over http: %v", err)
	}
	err = Login(t.Context(), quiet(t), LoginOptions{Endpoint: plain, Username: "anna", Password: "pw"})
	if err == nil || !strings.Contains(err.Error(), "only accepts https") {
		t.Fatalf("Login over http: %v", err)
	}
	if n := len(e.emu.Log()); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// TestUntrustedCertificate: without the CA file the TLS handshake fails with a hint; verification is never off.
func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, err := Open(t.Context(), quiet(t), "/", remote.OpenOptions{Endpoint: e.emu.URL, StateDir: e.state})
	if err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("open without the CA: %v", err)
	}
}

// TestLockAndPolicyAreUnavailable: locked files and policy refusals are ErrUnavailable (skipped, retried later,
// never a conflict); name_conflict is ErrConflict; a name vBoxx refuses is ErrInvalidName.
func TestLockAndPolicyAreUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{ExcludedExtensions: []string{"exe", ".TMP"}, MaxFileSize: 1000})
	c := e.open("")
	ctx := t.Context()
	if _, err := put(t, c, "setup.exe", []byte("x")); !errors.Is(err, remote.ErrUnavailable) || errors.Is(err, remote.ErrConflict) {
		t.Errorf("excluded extension: %v", err)
	}
	if _, err := put(t, c, "big.bin", make([]byte, 2000)); !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("over max_file_size: %v", err)
	}
	e.emu.Emu.SetPolicy(nil, 0, 10)
	if _, err := put(t, c, "quota.bin", make([]byte, 20)); !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("over quota: %v", err)
	}
	e.emu.Emu.SetPolicy(nil, 0, 0)
	en, err := put(t, c, "doc.txt", []byte("v1"))
	mustDo(t, err)
	_, err = c.Mkdir(ctx, "d")
	mustDo(t, err)
	mustDo(t, e.emu.Emu.LockAsOther("/doc.txt"))
	if _, err := put(t, c, "doc.txt", []byte("v2")); !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("upload over a locked file: %v", err)
	}
	if _, err := c.Move(ctx, "doc.txt", "d/doc.txt", remote.Precondition{}); !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("move of a locked file: %v", err)
	}
	if err := c.Delete(ctx, "doc.txt", remote.Precondition{Rev: en.Rev}); !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("delete of a locked file: %v", err)
	}
	var ae *APIError
	if err := c.Delete(ctx, "doc.txt", remote.Precondition{}); !errors.As(err, &ae) || ae.Code != "resource_locked" ||
		!strings.Contains(err.Error(), "locked by another user") {
		t.Errorf("error text: %v", err)
	}
	mustDo(t, e.emu.Emu.LockAsOther("/d"))
	if _, err := put(t, c, "d/in.txt", []byte("x")); !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("upload into a locked folder: %v", err)
	}
	mustDo(t, e.emu.Emu.UnlockAsOther("/doc.txt"))
	if _, err := put(t, c, "doc.txt", []byte("v2")); err != nil {
		t.Errorf("after unlock: %v", err)
	}
	if _, err := c.Put(ctx, "doc.txt", bytes.NewReader([]byte("x")), 1, time.Time{}, remote.Precondition{Absent: true}); !errors.Is(err, remote.ErrConflict) {
		t.Errorf("name taken: %v", err)
	}
	if _, err := c.Mkdir(ctx, "a:b"); !errors.Is(err, remote.ErrInvalidName) {
		t.Errorf("invalid vBoxx name: %v", err)
	}
}

// TestTokenRefreshOncePerExpiry: eight workers refused with the same expired token cause one refresh; the new
// tokens are in the token file; a revoked refresh token is ErrUnauthorized without a refresh storm.
func TestTokenRefreshOncePerExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.open("")
	_, err := put(t, c, "a.txt", []byte("a"))
	mustDo(t, err)
	path := tokenstore.File(e.state, "vboxx", "")
	before, _ := os.ReadFile(path)
	for round := range 2 {
		e.emu.ExpireAccessTokens()
		e.emu.ResetLog()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := c.Stat(t.Context(), "a.txt")
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			mustDo(t, err)
		}
		if n := e.emu.Count("oauth/token"); n != 1 {
			t.Fatalf("round %d: %d refreshes, want 1", round, n)
		}
	}
	after, _ := os.ReadFile(path)
	if bytes.Equal(before, after) {
		t.Fatal("the refreshed tokens were not saved")
	}
	var tf tokenFile
	mustDo(t, tokenstore.Load(path, &tf))
	if tf.GUID == "" || tf.Endpoint != e.emu.URL {
		t.Fatalf("token file lost guid or endpoint: %+v", tf.Endpoint)
	}
	for _, secret := range []string{tf.AccessToken, tf.RefreshToken} {
		for _, l := range e.emu.Log() {
			if strings.Contains(l.Query, secret) || strings.Contains(l.Path, secret) {
				t.Fatal("a token reached a URL")
			}
		}
	}
	e.emu.Emu.RevokeRefreshTokens()
	e.emu.ExpireAccessTokens()
	e.emu.ResetLog()
	_, err = c.Stat(t.Context(), "a.txt")
	if !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("revoked refresh token: %v", err)
	}
	if strings.Contains(err.Error(), tf.RefreshToken) || strings.Contains(err.Error(), tf.AccessToken) {
		t.Fatal("a token in an error")
	}
	if n := e.emu.Count("oauth/token"); n != 1 {
		t.Fatalf("%d refresh attempts after revocation, want 1", n)
	}
}

// TestRegisteredAppRefresh: a login with a registered app's id and secret keeps the secret with the tokens, the
// refresh grant sends it (the server refuses the app's id without it, invalid_client), and so does a revocation.
func TestRegisteredAppRefresh(t *testing.T) {
	t.Parallel()
	emu := emulator.Start(t, emulator.Options{ClientID: "my-app", ClientSecret: "my-app-secret"})
	e := &env{t: t, emu: emu, state: t.TempDir()}
	mustDo(t, Login(t.Context(), quiet(t), LoginOptions{Endpoint: emu.URL, Username: emu.User,
		Password: remote.Secret(emu.Password), CAFile: emu.CAFile, StateDir: e.state, ClientID: "my-app",
		ClientSecret: "my-app-secret"}))
	c := e.open("")
	_, err := put(t, c, "a.txt", []byte("a"))
	mustDo(t, err)
	emu.ExpireAccessTokens()
	emu.ResetLog()
	if _, err := c.Stat(t.Context(), "a.txt"); err != nil {
		t.Fatalf("a refresh of the registered app's login: %v", err)
	}
	if n := emu.Count("oauth/token"); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	// A new process (the token file only) refreshes with the secret too.
	emu.ExpireAccessTokens()
	if _, err := e.open("").Stat(t.Context(), "a.txt"); err != nil {
		t.Fatalf("a refresh from the stored login: %v", err)
	}
	var tf tokenFile
	mustDo(t, tokenstore.Load(tokenstore.File(e.state, "vboxx", ""), &tf))
	if tf.ClientID != "my-app" || tf.ClientSecret != "my-app-secret" {
		t.Fatalf("the stored login lost the app: %q", tf.ClientID)
	}
}

// TestTwoStepLogin: missing_totp becomes *ErrTwoStep with the mode; the right code logs in.
func TestTwoStepLogin(t *testing.T) {
	t.Parallel()
	emu := emulator.Start(t, emulator.Options{TwoStep: "sms", TOTPCode: "424242"})
	o := LoginOptions{Endpoint: emu.URL, Username: emu.User, Password: remote.Secret(emu.Password), CAFile: emu.CAFile,
		StateDir: t.TempDir()}
	var ts *ErrTwoStep
	if err := Login(t.Context(), quiet(t), o); !errors.As(err, &ts) || ts.Mode != "sms" {
		t.Fatalf("first grant: %v", err)
	}
	o.AuthCode = "424242"
	mustDo(t, Login(t.Context(), quiet(t), o))
	o.Password = "wrong"
	if err := Login(t.Context(), quiet(t), o); !errors.Is(err, remote.ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad password: %v", err)
	}
}

// TestFaultsSurvived: every emukit fault kind, once, on listings, downloads and uploads. Retriable faults are
// retried; a cut download is an error, never short data; a lost upload answer is adopted, not duplicated.
func TestFaultsSurvived(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	cases := []struct {
		name    string
		match   string
		action  emukit.Action
		readErr bool // the download body must fail
	}{
		{"503 retry-after", "folder|root", emukit.Action{Do: emukit.DoStatus, Status: 503, RetryAfter: 1,
			Body:        `{"error":"temporarily_unavailable","error_description":"Service is temporarily unavailable."}`,
			ContentType: "application/json"}, false},
		{"429 date", "folder|root", emukit.Action{Do: emukit.DoStatus, Status: 429, RetryAfter: 1, RetryAfterDate: true,
			Body: `{"error":"temporarily_unavailable","error_description":"Too many requests."}`}, false},
		{"500", "file/download", emukit.Action{Do: emukit.DoStatus, Status: 500, Body: `{"error":"unknown"}`}, false},
		{"502 html", "folder|root", emukit.Action{Do: emukit.DoStatus, Status: 502, Body: "<html>bad gateway</html>"}, false},
		{"garbage", "folder|root", emukit.Action{Do: emukit.DoGarbage}, false},
		{"delay headers", "file/download", emukit.Action{Do: emukit.DoDelayHeaders, Delay: 50 * time.Millisecond}, false},
		{"slow body", "file/download", emukit.Action{Do: emukit.DoSlowBody, Rate: 1 << 20}, false},
		{"reset listing", "folder|root", emukit.Action{Do: emukit.DoResetAfter, Bytes: 10}, false},
		{"reset download", "file/download", emukit.Action{Do: emukit.DoResetAfter, Bytes: 1000}, true},
		{"truncate download", "file/download", emukit.Action{Do: emukit.DoTruncateAt, Bytes: 5000}, true},
		{"stall download", "file/download", emukit.Action{Do: emukit.DoStallAfter, Bytes: 4000, Delay: 100 * time.Millisecond}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, emulator.Options{})
			_, err := e.emu.Emu.MkdirAll("/d")
			mustDo(t, err)
			_, err = e.emu.Emu.WriteFile("/d/f.bin", data)
			mustDo(t, err)
			c := e.client("", func(cfg *Config) { cfg.BaseDelay = time.Millisecond })
			mustDo(t, e.emu.SetFaults(emukit.Rule{Match: tc.match, Times: 1, Action: tc.action}))
			rc, en, err := c.Open(t.Context(), "d/f.bin")
			mustDo(t, err)
			got, rerr := io.ReadAll(rc)
			rc.Close()
			switch {
			case tc.readErr && rerr == nil:
				t.Fatalf("a cut download read %d bytes without an error", len(got))
			case !tc.readErr && (rerr != nil || !bytes.Equal(got, data) || en.Size != int64(len(data))):
				t.Fatalf("download: %v, %d bytes", rerr, len(got))
			}
			if e.emu.Kit().Faults()[0].Fired != 1 {
				t.Fatalf("the fault did not fire: %+v", e.emu.Kit().Faults())
			}
			if tc.readErr { // the retry (the engine's next pass) gets the real content
				rc, _, err := c.Open(t.Context(), "d/f.bin")
				mustDo(t, err)
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("second download: %v", err)
				}
			}
		})
	}
	t.Run("ack loss", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, emulator.Options{})
		c := e.client("", func(cfg *Config) { cfg.BaseDelay = time.Millisecond })
		for _, op := range []string{"root/upload", "root/create_folder", "file/delete", "file/rename"} {
			mustDo(t, e.emu.SetFaults(emukit.Rule{Match: "^" + op + "$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}))
			switch op {
			case "root/upload":
				if _, err := put(t, c, "u.txt", []byte("once")); err != nil {
					t.Fatalf("upload with a lost answer: %v", err)
				}
			case "root/create_folder":
				if _, err := c.Mkdir(t.Context(), "m"); err != nil {
					t.Fatalf("mkdir with a lost answer: %v", err)
				}
			case "file/rename":
				if _, err := c.Move(t.Context(), "u.txt", "v.txt", remote.Precondition{}); err != nil {
					t.Fatalf("rename with a lost answer: %v", err)
				}
			case "file/delete":
				_, err := put(t, c, "x.txt", []byte("x"))
				mustDo(t, err)
				if err := c.Delete(t.Context(), "x.txt", remote.Precondition{}); err != nil && !errors.Is(err, remote.ErrNotFound) {
					t.Fatalf("delete with a lost answer: %v", err)
				}
			}
			if f := e.emu.Kit().Faults(); f[0].Fired != 1 {
				t.Fatalf("%s: fault did not fire", op)
			}
		}
		if got := strings.Join(e.emu.Emu.Paths(), " "); got != "/m/ /v.txt" {
			t.Fatalf("tree after ack losses: %s", got)
		}
	})
	t.Run("corrupt byte", func(t *testing.T) {
		// vBoxx offers no digest, so a flipped byte with the right length cannot be told from good data by any
		// client (TLS rules it out in transit; this models a server that stores or serves wrong bytes). The
		// engine's byte comparison and the next revision are the only defences; recorded here so it is a known
		// limit, not a surprise.
		t.Parallel()
		e := newEnv(t, emulator.Options{})
		_, err := e.emu.Emu.WriteFile("/f.bin", data)
		mustDo(t, err)
		c := e.client("", nil)
		mustDo(t, e.emu.SetFaults(emukit.Rule{Match: "file/download", Times: 1, Action: emukit.Action{Do: emukit.DoCorruptByte, Offset: 10}}))
		rc, _, err := c.Open(t.Context(), "f.bin")
		mustDo(t, err)
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || len(got) != len(data) {
			t.Fatalf("corrupt: %v %d", err, len(got))
		}
	})
	t.Run("expire token and clock hooks", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, emulator.Options{})
		c := e.client("", nil)
		cur, err := c.Head(t.Context())
		mustDo(t, err)
		mustDo(t, e.emu.SetFaults(
			emukit.Rule{Match: "modified_since", Times: 1, Action: emukit.Action{Do: "expireToken"}},
			emukit.Rule{Match: "root", Times: 1, Action: emukit.Action{Do: "clockOffset", Args: map[string]string{"offset": "-2h"}}},
		))
		_, err = e.emu.Emu.WriteFile("/n.txt", []byte("n"))
		mustDo(t, err)
		b, err := c.Changes(t.Context(), cur)
		mustDo(t, err)
		if got := changeList(b); len(got) != 1 || got[0] != "put n.txt" {
			t.Fatalf("changes %q", got)
		}
	})
}
