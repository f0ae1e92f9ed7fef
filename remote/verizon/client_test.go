package verizon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

func TestExpiredTokenOneRefreshForManyWorkers(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	for i := range 8 {
		mustPut(t, c, fmt.Sprintf("f%d.txt", i), []byte("x"))
	}
	r.ExpireAccessTokens()
	r.ResetLog()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			if _, err := c.Stat(t.Context(), remote.Path(fmt.Sprintf("f%d.txt", i%8))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a worker failed across the token expiry: %v", err)
	}
	if n := ops(r, "oauth2/token"); n != 1 {
		t.Errorf("%d refreshes for one expiry, want exactly 1", n)
	}
}

// A refresh through Open's token file rewrites the file with the rotated pair before the pair is used.
func TestRotatedRefreshTokenIsPersisted(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	dir := t.TempDir()
	path, _ := TokenFile(dir, "")
	if err := tokenstore.Save(path, tokenFile{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, Endpoint: r.URL}); err != nil {
		t.Fatal(err)
	}
	rem, err := Open(t.Context(), zaptest.NewLogger(t), testRoot, remote.OpenOptions{StateDir: dir, CAFile: r.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer rem.Close()
	if err := rem.(remote.RootChecker).InitRoot(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.ExpireAccessTokens()
	if _, err := rem.Stat(t.Context(), remote.Root); err != nil {
		t.Fatalf("Stat across a refresh: %v", err)
	}
	var saved tokenFile
	if err := tokenstore.Load(path, &saved); err != nil {
		t.Fatal(err)
	}
	if saved.RefreshToken == r.RefreshToken || saved.AccessToken == r.AccessToken || saved.Endpoint != r.URL {
		t.Fatalf("token file not rotated: refresh changed %v, access changed %v, endpoint %q",
			saved.RefreshToken != r.RefreshToken, saved.AccessToken != r.AccessToken, saved.Endpoint)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}
	// The saved pair is the live one: a second expiry refreshes from it.
	r.ExpireAccessTokens()
	if _, err := rem.Stat(t.Context(), remote.Root); err != nil {
		t.Fatalf("Stat across a second refresh: %v", err)
	}
}

func TestInvalidGrantIsUnauthorized(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	r.RevokeRefreshTokens()
	r.ExpireAccessTokens()
	r.ResetLog()
	_, err := c.Stat(t.Context(), remote.Root)
	if !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	if n := ops(r, "oauth2/token"); n != 1 {
		t.Errorf("%d refresh attempts, want 1 (no refresh storm)", n)
	}
	tok := c.cfg.Auth.(*httpx.OAuth).Token()
	if strings.Contains(err.Error(), tok.RefreshToken) || strings.Contains(err.Error(), tok.AccessToken) {
		t.Fatalf("error text holds a token: %v", err)
	}
}

func TestOutOfSyncFromChanges(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r.ForceOutOfSync()
	if _, err := c.Changes(t.Context(), cur); !errors.Is(err, remote.ErrOutOfSync) {
		t.Fatalf("got %v, want ErrOutOfSync", err)
	}
	if _, err := c.Changes(t.Context(), remote.Cursor("nonsense")); !errors.Is(err, remote.ErrOutOfSync) {
		t.Fatalf("unreadable cursor: got %v, want ErrOutOfSync", err)
	}
	// Recovery: Head + Walk again, and the new cursor is quiet.
	cur, err = c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Walk(t.Context(), remote.Root, func(remote.Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Changes(t.Context(), cur); err != nil || len(b.Changes) != 0 || string(b.Next) != string(cur) {
		t.Fatalf("after resync: %+v %v", b, err)
	}
}

// A folder rename pairs into one move, even under the default reading, where the delta names no old path.
func TestRemoteFolderRenameIsOneMove(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c, other := newClient(t, r, nil), newClient(t, r, nil)
	mustMkdir(t, c, "photos")
	mustMkdir(t, c, "photos/2024")
	mustMkdir(t, c, "photos/empty")
	for i := range 12 {
		mustPut(t, c, fmt.Sprintf("photos/2024/p%02d.jpg", i), []byte{byte(i)})
	}
	mustPut(t, c, "photos/top.txt", []byte("top"))
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Move(t.Context(), "photos", "pictures", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	b, err := c.Changes(t.Context(), cur)
	if err != nil {
		t.Fatal(err)
	}
	var moves, deletes int
	for _, ch := range b.Changes {
		switch {
		case ch.Deleted:
			deletes++
		case ch.From != "":
			moves++
			if ch.From != "photos" || ch.Entry.Path != "pictures" || !ch.Entry.Dir {
				t.Errorf("move %+v", ch)
			}
		case !ch.Entry.Path.Within("pictures"):
			t.Errorf("unexpected change %+v", ch)
		}
	}
	if moves != 1 || deletes != 0 {
		t.Fatalf("%d moves and %d deletes, want one move: %+v", moves, deletes, b.Changes)
	}
	// A delete that is not a move stays a delete.
	if err := other.Delete(t.Context(), "pictures/top.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	b, err = c.Changes(t.Context(), b.Next)
	if err != nil || len(b.Changes) != 1 || !b.Changes[0].Deleted || b.Changes[0].Entry.Path != "pictures/top.txt" {
		t.Fatalf("delete: %+v %v", b.Changes, err)
	}
}

func TestStaleVersionConflicts(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c, other := newClient(t, r, nil), newClient(t, r, nil)
	seen := mustPut(t, c, "a.txt", []byte("v1"))
	mustPut(t, other, "a.txt", []byte("v2 by someone else"))
	_, err := c.Put(t.Context(), "a.txt", strings.NewReader("mine"), 4, time.Time{}, remote.Precondition{Rev: seen.Rev})
	if !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	// Deleted and re-created: the server restarts at version 1, the old Rev must still not match.
	if err := other.Delete(t.Context(), "a.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	fresh := mustPut(t, other, "a.txt", []byte("stranger"))
	if !strings.HasPrefix(fresh.Rev, "1:") || !strings.HasPrefix(seen.Rev, "1:") {
		t.Fatalf("revs %q %q: the test needs both at version 1", seen.Rev, fresh.Rev)
	}
	_, err = c.Put(t.Context(), "a.txt", strings.NewReader("mine"), 4, time.Time{}, remote.Precondition{Rev: seen.Rev})
	if !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("same version, different file: %v", err)
	}
	if got, _ := readAll(t, c, "a.txt"); string(got) != "stranger" {
		t.Fatalf("content %q", got)
	}
	// A new file over an existing one: the look before the intent refuses it, whatever the server does with
	// the undocumented safe=true.
	_, err = c.Put(t.Context(), "a.txt", strings.NewReader("mine"), 4, time.Time{}, remote.Precondition{Absent: true})
	if !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("a new file over an existing one: %v", err)
	}
	if got, _ := readAll(t, c, "a.txt"); string(got) != "stranger" {
		t.Fatalf("content %q", got)
	}
}

// Every emukit fault kind, on the calls it matters for. Each case gets its own emulator.
func TestFaultsSurvived(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	cases := []struct {
		name string
		rule emukit.Rule
		run  func(t *testing.T, c *Client)
	}{
		{"5xx on metadata", emukit.Rule{Match: "^metadata$", Times: 3, Action: emukit.Action{Do: emukit.DoStatus, Status: 502}}, statOK},
		{"503 on fullview", emukit.Rule{Match: "^fullview$", Times: 2, Action: emukit.Action{Do: emukit.DoStatus, Status: 503, RetryAfter: 0}}, changesOK},
		{"429 with Retry-After", emukit.Rule{Match: "^metadata$", Times: 1, Action: emukit.Action{Do: emukit.DoStatus, Status: 429, RetryAfter: 1}}, statOK},
		{"429 with Retry-After date", emukit.Rule{Match: "^metadata$", Times: 1, Action: emukit.Action{Do: emukit.DoStatus, Status: 429, RetryAfter: 1, RetryAfterDate: true}}, statOK},
		{"reset mid-body", emukit.Rule{Match: "^files$", Times: 2, Action: emukit.Action{Do: emukit.DoResetAfter, Bytes: 10000}}, readOK(data)},
		{"truncated body", emukit.Rule{Match: "^files$", Times: 2, Action: emukit.Action{Do: emukit.DoTruncateAt, Bytes: 5000}}, readOK(data)},
		{"slow body", emukit.Rule{Match: "^files$", Action: emukit.Action{Do: emukit.DoSlowBody, Rate: 1 << 20}}, readOK(data)},
		{"stalled body", emukit.Rule{Match: "^files$", Times: 1, Action: emukit.Action{Do: emukit.DoStallAfter, Bytes: 3000}}, readOK(data)},
		{"delayed headers", emukit.Rule{Match: "^metadata$", Times: 1, Action: emukit.Action{Do: emukit.DoDelayHeaders, Delay: 200 * time.Millisecond}}, statOK},
		{"garbage JSON answer", emukit.Rule{Match: "^metadata$", Times: 2, Action: emukit.Action{Do: emukit.DoGarbage}}, statOK},
		{"truncated JSON answer", emukit.Rule{Match: "^fullview$", Times: 1, Action: emukit.Action{Do: emukit.DoTruncateAt, Bytes: 40}}, changesOK},
		{"corrupt byte", emukit.Rule{Match: "^files$", Times: 1, Action: emukit.Action{Do: emukit.DoCorruptByte, Offset: 70000}}, corruptOnce(data)},
		{"garbage download", emukit.Rule{Match: "^files$", Times: 1, Action: emukit.Action{Do: emukit.DoGarbage}}, corruptOnce(data)},
		{"upload ack lost", emukit.Rule{Match: "^upload$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}, putOK},
		{"commit ack lost", emukit.Rule{Match: "^commit$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}, putChunkedOK},
		{"move ack lost", emukit.Rule{Match: "^fops/rename$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}, moveOK},
		{"delete ack lost", emukit.Rule{Match: "^fops/delete$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}, deleteOK},
		{"token expires mid-run", emukit.Rule{Match: "^metadata$", Times: 1, Action: emukit.Action{Do: emulator.HookExpireToken}}, statOK},
		{"clock skew", emukit.Rule{Match: "^fullview$", Times: 1, Action: emukit.Action{Do: emulator.HookClockOffset, Args: map[string]string{"offset": "-2h"}}}, changesOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{})
			c := newClient(t, r, func(c *Config) {
				c.IdleTimeout = 300 * time.Millisecond
				c.ChunkThreshold, c.ChunkSize = 64<<10, 16<<10
			})
			mustPut(t, c, "data.bin", data)
			mustPut(t, c, "small.txt", []byte("small"))
			if err := r.SetFaults(tc.rule); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			tc.run(t, c)
			if f := r.Kit().Faults(); len(f) == 1 && f[0].Fired == 0 {
				t.Errorf("the fault never fired: %+v", f[0])
			}
			// The HTTP-date form has whole seconds, so only the delta form gives a sharp lower bound.
			if tc.rule.Action.RetryAfter > 0 && !tc.rule.Action.RetryAfterDate && time.Since(start) < time.Duration(tc.rule.Action.RetryAfter)*time.Second-100*time.Millisecond {
				t.Errorf("retried after %v, before the Retry-After of %ds", time.Since(start), tc.rule.Action.RetryAfter)
			}
		})
	}
}

func statOK(t *testing.T, c *Client) {
	if e, err := c.Stat(t.Context(), "small.txt"); err != nil || e.Size != 5 {
		t.Fatalf("Stat: %+v %v", e, err)
	}
}

func changesOK(t *testing.T, c *Client) {
	ctx := t.Context()
	cur, err := c.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	mustPut(t, c, "new.txt", []byte("new"))
	b, err := c.Changes(ctx, cur)
	if err != nil || len(b.Changes) != 1 || b.Changes[0].Entry.Path != "new.txt" {
		t.Fatalf("Changes: %+v %v", b, err)
	}
}

func readOK(want []byte) func(t *testing.T, c *Client) {
	return func(t *testing.T, c *Client) {
		got, err := readAll(t, c, "data.bin")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, err %v", len(got), err)
		}
	}
}

// corruptOnce: the damaged body is an error (ErrCorrupt), never data; the next read is good.
func corruptOnce(want []byte) func(t *testing.T, c *Client) {
	return func(t *testing.T, c *Client) {
		got, err := readAll(t, c, "data.bin")
		if !errors.Is(err, remote.ErrCorrupt) {
			t.Fatalf("damaged body: %d bytes, err %v; want ErrCorrupt", len(got), err)
		}
		readOK(want)(t, c)
	}
}

func putOK(t *testing.T, c *Client) {
	e, err := c.Put(t.Context(), "up.txt", strings.NewReader("uploaded"), 8, time.Time{}, remote.Precondition{Absent: true})
	if err != nil || e.Size != 8 || !strings.HasPrefix(e.Rev, "1:") {
		t.Fatalf("Put: %+v %v", e, err)
	}
}

func putChunkedOK(t *testing.T, c *Client) {
	data := bytes.Repeat([]byte("chunk"), 30000)
	e, err := c.Put(t.Context(), "big.bin", io.MultiReader(bytes.NewReader(data)), int64(len(data)), time.Time{}, remote.Precondition{Absent: true})
	if err != nil || e.Size != int64(len(data)) {
		t.Fatalf("Put chunked: %+v %v", e, err)
	}
	got, err := readAll(t, c, "big.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes: %v", len(got), err)
	}
}

func moveOK(t *testing.T, c *Client) {
	e, err := c.Move(t.Context(), "small.txt", "renamed.txt", remote.Precondition{})
	if err != nil || e.Path != "renamed.txt" {
		t.Fatalf("Move: %+v %v", e, err)
	}
}

func deleteOK(t *testing.T, c *Client) {
	err := c.Delete(t.Context(), "small.txt", remote.Precondition{})
	if err != nil && !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Stat(t.Context(), "small.txt"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestHostileServerNamesAreSkipped(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	mustPut(t, c, "ok.txt", []byte("ok"))
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Walk(t.Context(), remote.Root, func(remote.Entry) error { return nil })
	hostile := []string{"..", ".", "a/b", "../escape", "nul\x00byte", "ctl\x01", ".tandem", ".tandem-1.part",
		strings.Repeat("x", 256)} // invalid UTF-8 cannot travel: JSON encoding turns it into U+FFFD
	for _, name := range hostile {
		if err := r.Emu.PutHostile(testRoot, name, []byte("evil")); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, p remote.Path) {
		if _, err := remote.ParsePath(string(p)); err != nil || (p != "ok.txt" && p != "") {
			t.Errorf("%s returned %q", what, p)
		}
	}
	// Every hostile name comes back as an entry with Skip set and its content token as ID (so that a synced
	// file renamed to such a name keeps its local copy), never as a Path.
	var n, skips int
	err = c.Walk(t.Context(), remote.Root, func(e remote.Entry) error {
		if e.Skip != "" {
			skips++
			if e.ID == "" {
				t.Errorf("skipped %q has no ID", e.Path)
			}
			return nil
		}
		n++
		check("Walk", e.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || skips != len(hostile) {
		t.Errorf("Walk returned %d entries and %d skipped, want only ok.txt and %d", n, skips, len(hostile))
	}
	if got := len(c.Skipped()); got != len(hostile) {
		t.Errorf("%d names reported as skipped, want %d: %q", got, len(hostile), c.Skipped())
	}
	b, err := c.Changes(t.Context(), cur)
	if err != nil {
		t.Fatal(err)
	}
	skips = 0
	for _, ch := range b.Changes {
		if ch.Entry.Skip != "" {
			skips++
			continue
		}
		check("Changes", ch.Entry.Path)
		check("Changes From", ch.From)
	}
	if skips != len(hostile) {
		t.Errorf("Changes reported %d skipped, want %d", skips, len(hostile))
	}
}

func TestUntrustedCAIsAClearError(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c, err := New(zaptest.NewLogger(t), Config{Endpoint: r.URL, Root: testRoot, Auth: httpx.Bearer{Token: remote.Secret(r.AccessToken)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stat(context.Background(), remote.Root)
	if err == nil || !strings.Contains(err.Error(), "TLS certificate not trusted") {
		t.Fatalf("got %v, want a TLS trust error", err)
	}
	if strings.Contains(err.Error(), r.AccessToken) {
		t.Fatal("error text holds the token")
	}
	if n := len(r.Log()); n != 0 {
		t.Fatalf("%d requests reached the server over an untrusted connection", n)
	}
}

func TestRootMissing(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, func(c *Config) { c.Root = "/VZMOBILE/elsewhere/deep" })
	if err := c.CheckRoot(t.Context()); err != nil {
		t.Fatalf("after InitRoot: %v", err)
	}
	other := newClient(t, r, func(c *Config) { c.Root = "/VZMOBILE/elsewhere" })
	cur, _ := c.Head(t.Context())
	if err := other.Delete(t.Context(), "deep", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckRoot(t.Context()); !errors.Is(err, remote.ErrRootMissing) {
		t.Fatalf("CheckRoot: %v", err)
	}
	if _, err := c.Changes(t.Context(), cur); !errors.Is(err, remote.ErrRootMissing) {
		t.Fatalf("Changes that delete the root: %v", err)
	}
	// (Before Changes, Walk would have served Head's listing: the state the cursor starts from.)
	if err := c.Walk(t.Context(), remote.Root, func(remote.Entry) error { return nil }); !errors.Is(err, remote.ErrRootMissing) {
		t.Fatalf("Walk of a missing root: %v", err)
	}
	if _, err := ValidateRoot("/VZMOBILE"); err == nil {
		t.Fatal("a virtual folder root was accepted")
	}
}

// loginEmu is an emulator that knows the app "my-app" (secret "s3cret") with a Callback URL on a free loopback
// port, and that URL.
func loginEmu(t *testing.T) (*emulator.Running, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	ln.Close()
	return startEmu(t, emulator.Options{ClientID: "my-app", ClientSecret: "s3cret", RedirectURIs: []string{redirect}}), redirect
}

func TestLogin(t *testing.T) {
	t.Parallel()
	r, redirect := loginEmu(t)
	dir := t.TempDir()
	if err := Login(t.Context(), nil, LoginOptions{Endpoint: r.URL, StateDir: dir}); !errors.Is(err, ErrNoAppKey) ||
		!strings.Contains(err.Error(), "ThingSpace") {
		t.Fatalf("login without an app key: %v", err)
	}
	var out bytes.Buffer
	browser := func(u string) error {
		resp, err := r.HTTPClient().Get(u) // follows the redirect to the loopback callback
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := Login(ctx, zaptest.NewLogger(t), LoginOptions{Endpoint: r.URL, CAFile: r.CAFile, StateDir: dir,
		ClientID: "my-app", ClientSecret: "s3cret", RedirectURL: redirect, OpenBrowser: browser, Out: &out})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !strings.Contains(out.String(), "deviceid=tandem-") {
		t.Fatalf("no deviceid in the authorize URL: %q", out.String())
	}
	if !strings.Contains(out.String(), "/oauth2/authorize?") {
		t.Fatalf("URL not printed: %q", out.String())
	}
	rem, err := Open(t.Context(), zaptest.NewLogger(t), "/VZMOBILE/login", remote.OpenOptions{StateDir: dir, CAFile: r.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer rem.Close()
	if err := rem.(remote.RootChecker).InitRoot(t.Context()); err != nil {
		t.Fatalf("using the login: %v", err)
	}
	// No login at all is ErrUnauthorized with the command to run.
	if _, err := Open(t.Context(), nil, "/VZMOBILE/x", remote.OpenOptions{StateDir: t.TempDir()}); !errors.Is(err, remote.ErrUnauthorized) ||
		!strings.Contains(err.Error(), "tandem login verizon") {
		t.Fatalf("no login: %v", err)
	}
}
