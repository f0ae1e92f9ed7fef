package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// historyDoc mirrors `tandem history --json` (README "tandem history").
type historyDoc struct {
	Pair, Path string
	Entries    []struct {
		At                                              time.Time
		Pass, Op, Path, From, To, Copy, Reason, Outcome string
		Error                                           string
		Local, Remote, Base                             *struct {
			Dir    bool
			Size   int64
			Digest string
			MTime  *time.Time
		}
	}
}

func parseHistory(t *testing.T, r testenv.Result) historyDoc {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("tandem history failed:\n%s", r)
	}
	var h historyDoc
	if err := json.Unmarshal([]byte(r.Stdout), &h); err != nil {
		t.Fatalf("%v:\n%s", err, r.Stdout)
	}
	return h
}

// TestHistoryOnce: `tandem history --remote R PATH` for a pair synced with tandem once lists an upload, a move
// out and in, and a conflict with its copy, newest first, with what each side held; a path of no pair is a
// usage error (exit 2).
func TestHistoryOnce(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	hist := func(rel string, flags ...string) testenv.Result {
		args := append([]string{"history", "--state-dir", p.SD, "--remote", "dir:" + p.R}, flags...)
		return testenv.Run(t, bin, append(args, filepath.Join(p.L, rel))...)
	}
	p.write(p.L, "docs/a.txt", "first")
	p.sync()
	if err := os.Rename(filepath.Join(p.L, "docs/a.txt"), filepath.Join(p.L, "docs/b.txt")); err != nil {
		t.Fatal(err)
	}
	p.sync()
	p.write(p.L, "docs/b.txt", "local edit")
	p.write(p.R, "docs/b.txt", "remote edit, longer")
	d := p.sync()
	if len(d.Conflicts) != 1 {
		t.Fatalf("want a conflict: %+v", d.Conflicts)
	}

	a := parseHistory(t, hist("docs/a.txt", "--json"))
	if a.Path != "docs/a.txt" || len(a.Entries) != 2 {
		t.Fatalf("a.txt: %+v", a)
	}
	mv, up := a.Entries[0], a.Entries[1]
	if mv.Op != "move-remote" || mv.To != "docs/b.txt" || mv.Outcome != "done" || mv.Reason == "" ||
		!strings.HasPrefix(mv.Pass, "full") {
		t.Fatalf("newest first, the move out: %+v", mv)
	}
	if up.Op != "upload" || up.Local == nil || up.Local.Size != 5 || !strings.HasPrefix(up.Local.Digest, "sha256:") ||
		len(up.Local.Digest) != len("sha256:")+12 || up.Local.MTime == nil || up.Remote != nil || up.Base != nil {
		t.Fatalf("the upload, with what each side held: %+v", up)
	}
	if !up.At.Before(mv.At) {
		t.Fatalf("newest first: %v then %v", mv.At, up.At)
	}

	b := parseHistory(t, hist("docs/b.txt", "--json"))
	if len(b.Entries) != 2 || b.Entries[0].Op != "conflict" || b.Entries[0].Copy != d.Conflicts[0].Copy ||
		b.Entries[0].Local.Size != 10 || b.Entries[0].Remote.Size != 19 || b.Entries[1].From != "docs/a.txt" {
		t.Fatalf("b.txt: the conflict, then the move in: %+v", b.Entries)
	}
	cp := parseHistory(t, hist(d.Conflicts[0].Copy, "--json"))
	found := false
	for _, e := range cp.Entries {
		found = found || (e.From == "docs/b.txt" && e.Op == "conflict")
	}
	if !found {
		t.Fatalf("the copy names the path it was made from: %+v", cp.Entries)
	}

	txt := hist("docs/b.txt")
	if txt.Code != 0 {
		t.Fatalf("%s", txt)
	}
	for _, want := range []string{"conflict", "both sides changed", "copy:", "moved in from docs/a.txt", "outcome:    done",
		"full pass: tandem once"} {
		mustContain(t, txt.Stdout, want, "tandem history text")
	}
	if r := hist("never.txt"); r.Code != 0 || !strings.Contains(r.Stdout, "no decisions recorded") {
		t.Fatalf("a path without history: %s", r)
	}
	if r := testenv.Run(t, bin, "history", "--state-dir", p.SD, "--remote", "dir:"+t.TempDir(), filepath.Join(p.L, "docs/b.txt")); r.Code != 2 {
		t.Fatalf("a remote of no pair must be a usage error:\n%s", r)
	}
}

// TestHistoryDaemon: while `tandem run` holds the state database, tandem history asks it (a scoped pass);
// without the daemon it reads the database; tandem conflicts points at tandem history.
func TestHistoryDaemon(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	d.start()
	p := filepath.Join(d.L, "notes.txt")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(d.R, "notes.txt"), "hello", 30*time.Second)
	var h historyDoc
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h = parseHistory(t, d.tandem("history", p, "--json"))
		if len(h.Entries) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.Pair != "docs" || len(h.Entries) != 1 || h.Entries[0].Op != "upload" || h.Entries[0].Outcome != "done" ||
		!strings.HasPrefix(h.Entries[0].Pass, "scoped") {
		t.Fatalf("from the daemon: %+v", h)
	}
	d.stop(15)
	// Without the daemon, read-only from the database; and conflicts link to it.
	if err := os.WriteFile(p, []byte("local"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.R, "notes.txt"), []byte("remote!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := testenv.Run(t, bin, "once", "--state-dir", d.SD, d.L, "dir:"+d.R); r.Code != 0 {
		t.Fatalf("%s", r)
	}
	h = parseHistory(t, d.tandem("history", p, "--json"))
	if len(h.Entries) != 2 || h.Entries[0].Op != "conflict" {
		t.Fatalf("read-only: %+v", h)
	}
	c := d.tandem("conflicts")
	if c.Code != 0 {
		t.Fatalf("%s", c)
	}
	mustContain(t, c.Stdout, "tandem history "+p, "tandem conflicts")
}
