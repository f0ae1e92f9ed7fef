package vboxx

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/vboxx/emulator"
)

// Tests of the client under the emulator's variants (issue 12): each fails against the client as it was.

func read(t testing.TB, c *Client, p string) string {
	t.Helper()
	rc, _, err := c.Open(t.Context(), remote.Path(p))
	mustDo(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	mustDo(t, err)
	return string(b)
}

func putPre(t testing.TB, c *Client, p, data string, pre remote.Precondition) (remote.Entry, error) {
	t.Helper()
	return c.Put(t.Context(), remote.Path(p), strings.NewReader(data), int64(len(data)), time.Time{}, pre)
}

// TestUploadPlainFilename: a server that ignores filename*= (RFC 7578) still gets the name. The variant accepts
// chunked bodies, so only the name is under test.
func TestUploadPlainFilename(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Variants: []string{"chunked"}})
	c := e.open("")
	_, err := put(t, c, "Grüße – Übersicht (2026).txt", []byte("hallo"))
	mustDo(t, err)
	if got := read(t, c, "Grüße – Übersicht (2026).txt"); got != "hallo" {
		t.Fatalf("content %q", got)
	}
}

// TestUploadContentLength: a server that answers 411 to chunked bodies takes the upload. The variant reads
// filename*, so only the length is under test.
func TestUploadContentLength(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Variants: []string{"filename-star"}})
	c := e.open("")
	_, err := put(t, c, "a.bin", make([]byte, 300<<10))
	mustDo(t, err)
	for _, x := range e.emu.Log() {
		if x.Op == "root/upload" && x.Status != 200 {
			t.Fatalf("an upload was refused: %+v", x)
		}
	}
}

// TestReplaceWithoutOverwrite: on a server that ignores overwrite (the documented 409), a new version replaces the
// old one in steps; the old version stays in the server's deleted files, and a change made meanwhile is a
// conflict that loses nothing. With the overwrite variant the same Put is one new revision of the same id.
func TestReplaceWithoutOverwrite(t *testing.T) {
	t.Parallel()
	// chunked and filename-star take the upload fixes out of the question: only the replace is under test.
	for _, variant := range []string{"", "overwrite"} {
		t.Run("variant="+variant, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, emulator.Options{Variants: []string{variant, "chunked", "filename-star"}})
			c := e.open("")
			v1, err := putPre(t, c, "doc.txt", "version one", remote.Precondition{Absent: true})
			mustDo(t, err)
			v2, err := putPre(t, c, "doc.txt", "version two!", remote.Precondition{Rev: v1.Rev})
			mustDo(t, err)
			if got := read(t, c, "doc.txt"); got != "version two!" {
				t.Fatalf("content %q", got)
			}
			if v2.Rev == v1.Rev {
				t.Fatalf("same revision after a replace: %+v", v2)
			}
			dels, err := e.emu.Emu.DeletedFiles()
			mustDo(t, err)
			if variant == "overwrite" {
				if v2.ID != v1.ID {
					t.Fatalf("overwrite made a new id: %s -> %s", v1.ID, v2.ID)
				}
			} else if dels["version one"] != "/doc.txt" {
				t.Fatalf("the old version is not among the deleted files: %v", dels)
			}
			// A stale precondition changes nothing.
			if _, err := putPre(t, c, "doc.txt", "three", remote.Precondition{Rev: v1.Rev}); !errors.Is(err, remote.ErrConflict) {
				t.Fatalf("stale precondition: %v", err)
			}
			if paths := e.emu.Emu.Paths(); strings.Join(paths, " ") != "/doc.txt" {
				t.Fatalf("left behind: %v", paths)
			}
			if got := read(t, c, "doc.txt"); got != "version two!" {
				t.Fatalf("content after the refused put %q", got)
			}
		})
	}
}

// TestEndpointWithAPISuffix: the documented base https://host/api/2, pasted as the endpoint, works.
func TestEndpointWithAPISuffix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, suffix := range []string{"/api/2", "/api/2/"} {
		c := e.client("", func(cfg *Config) { cfg.Endpoint = e.emu.URL + suffix })
		if _, err := c.Stat(t.Context(), remote.Root); err != nil {
			t.Fatalf("endpoint %s: %v", suffix, err)
		}
	}
}

// TestOSTypeDocumented: only the documented os_type values are ever sent (the field is optional).
func TestOSTypeDocumented(t *testing.T) {
	for goos, want := range map[string]string{"windows": "win", "darwin": "osx", "linux": "", "freebsd": ""} {
		if got := osType(goos); got != want {
			t.Errorf("osType(%s) = %q, want %q", goos, got, want)
		}
	}
}

// TestSlashRenameDoesNotLoop: a folder renamed on the server to a name with "/" (slash-names variant) made a
// poll list that folder for ever. A poll must end, within a bound of requests.
func TestSlashRenameDoesNotLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Variants: []string{"slash-names"}})
	_, err := e.emu.Emu.MkdirAll("/Docs/sub")
	mustDo(t, err)
	_, err = e.emu.Emu.WriteFile("/Docs/a.txt", []byte("a"))
	mustDo(t, err)
	_, err = e.emu.Emu.WriteFile("/keep.txt", []byte("k"))
	mustDo(t, err)
	var mu sync.Mutex
	skipped := map[string]string{}
	c := e.client("", func(cfg *Config) {
		cfg.OnSkip = func(p, why string) {
			mu.Lock()
			defer mu.Unlock()
			skipped[p] = why
		}
	})
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	mustDo(t, e.emu.Emu.RenameItem("/Docs", "Do/cs"))
	e.emu.ResetLog()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var first []string
	var firstSkip string
	go func() {
		for i := range 3 {
			b, err := c.Changes(ctx, cur)
			if err != nil {
				done <- err
				return
			}
			if i == 0 {
				first = changeList(b)
				for _, ch := range b.Changes {
					firstSkip += ch.Entry.Skip
				}
			}
			cur = b.Next
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			t.Fatalf("polls did not end: %v, %d requests", err, len(e.emu.Log()))
		}
	case <-ctx.Done():
		t.Fatalf("polls did not end in 20 s: %d requests", len(e.emu.Log()))
	}
	if n := len(e.emu.Log()); n > 60 {
		t.Fatalf("%d requests for three polls of a 3-folder tree", n)
	}
	// The folder now has a name no path can hold: it is reported as a skip from its old path (the engine keeps
	// the local copy, issue 9 hole 13), never as deleted, and nothing else changed.
	if len(first) != 1 || !strings.HasPrefix(first[0], "skip Docs /") || !strings.HasSuffix(first[0], "Do/cs") {
		t.Fatalf("first poll: %q", first)
	}
	if why := firstSkip; !strings.Contains(why, `contains "/"`) {
		t.Fatalf("skip reason %q, want the slash named", why)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(skipped) != 0 {
		t.Fatalf("OnSkip heard %v: the skip travels in the change itself", skipped)
	}
}

// TestCaseInsensitiveNames: the server takes Reports and reports for the same name; the client resolves them
// the same way, so a mkdir of reports/ adopts Reports/ instead of failing with 409 on every pass, and a stat of
// readme.TXT finds README.txt. Under the case-sensitive variant, a listing that shows both spellings turns
// FoldsCase off and names resolve exactly.
func TestCaseInsensitiveNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, err := e.emu.Emu.MkdirAll("/Reports")
	mustDo(t, err)
	_, err = e.emu.Emu.WriteFile("/README.txt", []byte("r"))
	mustDo(t, err)
	c := e.open("")
	if !c.Capabilities().FoldsCase {
		t.Fatal("default server: FoldsCase false")
	}
	if _, err := c.Mkdir(t.Context(), "reports"); err != nil {
		t.Fatalf("mkdir reports next to Reports: %v", err)
	}
	if st, err := c.Stat(t.Context(), "readme.TXT"); err != nil || st.Size != 1 {
		t.Fatalf("stat readme.TXT: %+v %v", st, err)
	}
	if _, err := putPre(t, c, "ReadMe.txt", "x", remote.Precondition{Absent: true}); !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("put over a name taken in another case: %v", err)
	}

	s := newEnv(t, emulator.Options{Variants: []string{"case-sensitive"}})
	_, err = s.emu.Emu.WriteFile("/README.txt", []byte("r"))
	mustDo(t, err)
	_, err = s.emu.Emu.WriteFile("/readme.txt", []byte("rr"))
	mustDo(t, err)
	c = s.open("")
	if st, err := c.Stat(t.Context(), "readme.txt"); err != nil || st.Size != 2 {
		t.Fatalf("stat readme.txt: %+v %v", st, err)
	}
	if c.Capabilities().FoldsCase {
		t.Fatal("case-sensitive server with both spellings listed: FoldsCase still true")
	}
}

// TestPolicyRefusedBeforeSending: an excluded extension, a size above the maximum under any unit, or a file the
// server refused before is refused without sending a byte, as ErrUnavailable naming the policy. The unit of
// max_file_size is learned from the server's answers.
func TestPolicyRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	// chunked and filename-star take the upload fixes out of the question: only the policy is under test.
	e := newEnv(t, emulator.Options{ExcludedExtensions: []string{".mp4"}, MaxFileSize: 1000,
		Variants: []string{"chunked", "filename-star"}})
	c := e.open("")
	uploads := func() int { return e.emu.Count("root/upload") }
	if _, err := put(t, c, "holiday.MP4", make([]byte, 10)); !errors.Is(err, remote.ErrUnavailable) ||
		!strings.Contains(err.Error(), "policy") {
		t.Fatalf("excluded extension: %v", err)
	}
	if n := uploads(); n != 0 {
		t.Fatalf("%d uploads for an excluded extension", n)
	}
	// 2000 bytes: over 1000 bytes, under 1000 MB. The server refuses it once; never again.
	for range 3 {
		if _, err := put(t, c, "big.bin", make([]byte, 2000)); !errors.Is(err, remote.ErrUnavailable) {
			t.Fatalf("over max_file_size: %v", err)
		}
	}
	if n := uploads(); n != 1 {
		t.Fatalf("%d uploads of a file the server refused, want 1", n)
	}
	// Learned: the unit is bytes, so another file over 1000 bytes is not sent at all.
	if _, err := put(t, c, "big2.bin", make([]byte, 1500)); !errors.Is(err, remote.ErrUnavailable) || uploads() != 1 {
		t.Fatalf("after learning the unit: %v, %d uploads", err, uploads())
	}

	m := newEnv(t, emulator.Options{Variants: []string{"max-size-mb"}, MaxFileSize: 1 << 20})
	c = m.open("")
	if _, err := put(t, c, "small.bin", make([]byte, 5000)); err != nil {
		t.Fatalf("5000 bytes under a limit of 1 MB: %v", err)
	}
	if _, err := put(t, c, "huge.bin", make([]byte, 2<<20)); !errors.Is(err, remote.ErrUnavailable) || m.emu.Count("root/upload") != 1 {
		t.Fatalf("2 MiB over 1 MB: %v, %d uploads", err, m.emu.Count("root/upload"))
	}
}

// TestReadOnlyRoot: a root without FILE_WRITE syncs down only: reads work, every change is refused at once as
// ErrUnavailable saying read-only (nothing sent), and the root is never "lost".
func TestReadOnlyRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Variants: []string{"readonly-root", "chunked", "filename-star"}})
	c := e.open("")
	mustDo(t, c.CheckRoot(t.Context()))
	if got := read(t, c, "welcome.txt"); got == "" {
		t.Fatal("welcome.txt empty")
	}
	e.emu.ResetLog()
	if _, err := put(t, c, "new.txt", []byte("x")); !errors.Is(err, remote.ErrUnavailable) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("put: %v", err)
	}
	if _, err := c.Mkdir(t.Context(), "d"); !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("mkdir: %v", err)
	}
	if err := c.Delete(t.Context(), "welcome.txt", remote.Precondition{}); !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("delete: %v", err)
	}
	for _, x := range e.emu.Log() {
		if x.Method == "POST" {
			t.Fatalf("a change was sent: %+v", x)
		}
	}
	if !c.ReadOnly() {
		t.Fatal("ReadOnly() false")
	}

	f := newEnv(t, emulator.Options{Variants: []string{"readonly-folder"}})
	c = f.open("")
	_, err := put(t, c, "Read-only/mine.txt", []byte("x"))
	if !errors.Is(err, remote.ErrUnavailable) || errors.Is(err, remote.ErrRootMissing) {
		t.Fatalf("put into a read-only folder: %v", err)
	}
	if _, err := put(t, c, "elsewhere.txt", []byte("x")); err != nil {
		t.Fatalf("put outside it: %v", err)
	}
	mustDo(t, c.CheckRoot(t.Context()))
}

// TestFeedUnderBothReadingsOfModifiedSince: whether modified_since filters on the upload time (default) or on the
// file's own `modified` (since-modified: a desktop agent's old mtime hides the file from it), a new file and a new
// revision with an old date arrive with the next poll, even where the sweep budget (1 here) would reach their
// folders polls later: the root's space_used moved while the feed named nothing new, so every folder is asked.
func TestFeedUnderBothReadingsOfModifiedSince(t *testing.T) {
	t.Parallel()
	for _, variant := range []string{"", "since-modified"} {
		t.Run("variant="+variant, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, emulator.Options{Variants: []string{variant}})
			tree(t, e.emu.Emu, 5, 1)
			c := e.client("", func(cfg *Config) { cfg.SweepBudget = 1 })
			cur, err := c.Head(t.Context())
			mustDo(t, err)
			old := time.Now().Add(-30 * 24 * time.Hour)
			_, err = e.emu.Emu.WriteFileAt("/f03/from-camera.jpg", []byte("jpeg"), old)
			mustDo(t, err)
			_, err = e.emu.Emu.WriteFileAt("/f01/a.txt", []byte("edited, old date"), old)
			mustDo(t, err)
			b, err := c.Changes(t.Context(), cur)
			mustDo(t, err)
			if got := strings.Join(changeList(b), ", "); got != "put f01/a.txt, put f03/from-camera.jpg" {
				t.Fatalf("changes: %s", got)
			}
		})
	}
}

// TestReplaceTempAnswerLost: the answer to the upload beside the file is lost (applied, then the connection
// reset); the client finds its temp file by name, finishes the replace and leaves nothing behind.
func TestReplaceTempAnswerLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.open("")
	big := strings.Repeat("v1 ", 30000) // over learnMax: replaced in steps straight away
	v1, err := putPre(t, c, "doc.txt", big, remote.Precondition{Absent: true})
	mustDo(t, err)
	mustDo(t, e.emu.SetFaults(emukit.Rule{Match: "root/upload", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}))
	v2 := strings.Repeat("v2 ", 30000)
	if _, err := putPre(t, c, "doc.txt", v2, remote.Precondition{Rev: v1.Rev}); err != nil {
		t.Fatalf("replace with a lost answer: %v", err)
	}
	if e.emu.Kit().Faults()[0].Fired != 1 {
		t.Fatal("the fault did not fire")
	}
	if got := read(t, c, "doc.txt"); got != v2 {
		t.Fatalf("content: %.20q", got)
	}
	if paths := e.emu.Emu.Paths(); strings.Join(paths, " ") != "/doc.txt" {
		t.Fatalf("left behind: %v", paths)
	}
}

// TestNotModifiedWithBody: a server that sends the reference's {"status": "not_modified"} body with 304 (and, as
// it must then, closes the connection) leaves polls correct and quiet.
func TestNotModifiedWithBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Variants: []string{"not-modified-body"}})
	tree(t, e.emu.Emu, 3, 1)
	c := e.open("")
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	for i := range 3 {
		b, err := c.Changes(t.Context(), cur)
		mustDo(t, err)
		if len(b.Changes) != 0 {
			t.Fatalf("poll %d: %v", i, changeList(b))
		}
		cur = b.Next
	}
	_, err = e.emu.Emu.WriteFile("/f01/new.txt", []byte("n"))
	mustDo(t, err)
	b, err := c.Changes(t.Context(), cur)
	mustDo(t, err)
	if got := strings.Join(changeList(b), ", "); got != "put f01/new.txt" {
		t.Fatalf("changes: %s", got)
	}
	n304 := 0
	for _, l := range e.emu.Log() {
		if l.Status == 304 {
			n304++
		}
	}
	if n304 == 0 {
		t.Fatal("no 304 was answered")
	}
}
