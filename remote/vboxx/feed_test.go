package vboxx

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/vboxx/emulator"
)

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tree makes folders f00..f(n-1) at the top of the sync root, each with a.txt and b.txt.
func tree(t testing.TB, emu *emulator.Emulator, folders, files int) {
	t.Helper()
	for i := range folders {
		dir := fmt.Sprintf("/f%02d", i)
		_, err := emu.MkdirAll(dir)
		mustDo(t, err)
		for j := range files {
			_, err := emu.WriteFile(fmt.Sprintf("%s/%c.txt", dir, 'a'+j), []byte(dir))
			mustDo(t, err)
		}
	}
}

// isListing: a folder or root GET with its children (not the root's usage, which asks without them).
func isListing(l emukit.Entry) bool {
	return (l.Op == "folder" || l.Op == "root") && strings.Contains(l.Query, "include_children=true")
}

func listings(log []emukit.Entry) int {
	n := 0
	for _, l := range log {
		if isListing(l) {
			n++
		}
	}
	return n
}

func changeList(b remote.Batch) []string {
	var out []string
	for _, c := range b.Changes {
		s := string(c.Entry.Path)
		switch {
		case c.Entry.Skip != "" && c.From != "":
			s = "skip " + string(c.From) + " " + s
		case c.Entry.Skip != "":
			s = "skip " + s
		case c.Deleted:
			s = "del " + s
		case c.From != "":
			s = "mv " + string(c.From) + " " + s
		default:
			s = "put " + s
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestDeleteAndMoveWithoutRelisting: in a root of 50 folders, a remote delete and a remote move are found by the
// hash sweep, and only the folders whose hash changed are listed again (200); the other 47 answer 304.
func TestDeleteAndMoveWithoutRelisting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	tree(t, e.emu.Emu, 50, 2)
	c := e.client("", nil)
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	mustDo(t, e.emu.Emu.Remove("/f07/a.txt"))
	mustDo(t, e.emu.Emu.Rename("/f12/b.txt", "/f13/moved.txt"))
	e.emu.ResetLog()
	b, err := c.Changes(t.Context(), cur)
	mustDo(t, err)
	want := []string{"del f07/a.txt", "mv f12/b.txt f13/moved.txt"}
	if got := changeList(b); !slices.Equal(got, want) {
		t.Fatalf("changes = %q, want %q", got, want)
	}
	var relisted []string
	notModified := 0
	for _, l := range e.emu.Log() {
		if l.Op != "folder" {
			continue
		}
		switch l.Status {
		case 200:
			relisted = append(relisted, l.Path)
		case 304:
			notModified++
		}
	}
	if len(relisted) != 3 || notModified != 47 {
		t.Fatalf("folder listings: %d with 200 (%q), %d with 304; want 3 and 47", len(relisted), relisted, notModified)
	}
	// The cursor that follows is quiet, and costs one feed call plus one 304 per folder.
	e.emu.ResetLog()
	b, err = c.Changes(t.Context(), b.Next)
	mustDo(t, err)
	if len(b.Changes) != 0 {
		t.Fatalf("second poll: %q", changeList(b))
	}
	for _, l := range e.emu.Log() {
		if isListing(l) && l.Status != 304 {
			t.Errorf("second poll listed %s with %d", l.Path, l.Status)
		}
	}
}

// TestSweepBudgetRoundRobin: with a budget smaller than the tree, every folder is still reached within
// ceil(folders/budget) polls, and modified_since reports edits in folders the sweep has not reached.
func TestSweepBudgetRoundRobin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	tree(t, e.emu.Emu, 10, 1)
	c := e.client("", func(cfg *Config) { cfg.SweepBudget = 3 })
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	_, err = e.emu.Emu.WriteFile("/f09/a.txt", []byte("edited, longer"))
	mustDo(t, err)
	mustDo(t, e.emu.Emu.Remove("/f05/a.txt"))
	b, err := c.Changes(t.Context(), cur)
	mustDo(t, err)
	if got := changeList(b); !slices.Contains(got, "put f09/a.txt") {
		t.Fatalf("the edit did not arrive through modified_since: %q", got)
	}
	var all []string
	all = append(all, changeList(b)...)
	for range 4 {
		cur = b.Next
		if b, err = c.Changes(t.Context(), cur); err != nil {
			t.Fatal(err)
		}
		all = append(all, changeList(b)...)
	}
	if !slices.Contains(all, "del f05/a.txt") {
		t.Fatalf("the delete did not arrive within a round of the sweep: %q", all)
	}
}

// TestClockSkew: the cursor is the server's time, so a server clock 2 h behind or ahead of ours (and a jump
// back mid-run) loses nothing. The sweep budget is 1 so that only modified_since can report the edits.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-2 * time.Hour, 2 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, emulator.Options{})
			e.emu.SetClockSkew(skew)
			tree(t, e.emu.Emu, 4, 1)
			c := e.client("", func(cfg *Config) { cfg.SweepBudget = 1 })
			cur, err := c.Head(t.Context())
			mustDo(t, err)
			_, err = e.emu.Emu.WriteFile("/f03/a.txt", []byte("edit under skew"))
			mustDo(t, err)
			b, err := c.Changes(t.Context(), cur)
			mustDo(t, err)
			if got := changeList(b); !slices.Equal(got, []string{"put f03/a.txt"}) {
				t.Fatalf("skew %v: changes %q", skew, got)
			}
			// A jump back by 2 h: new revisions carry times before the cursor.
			e.emu.SetClockSkew(skew - 2*time.Hour)
			_, err = e.emu.Emu.WriteFile("/f02/a.txt", []byte("edit after the jump"))
			mustDo(t, err)
			b, err = c.Changes(t.Context(), b.Next)
			mustDo(t, err)
			if got := changeList(b); !slices.Equal(got, []string{"put f02/a.txt"}) {
				t.Fatalf("after a backward jump: changes %q", got)
			}
			// And the poll after it is quiet and back to the budget.
			e.emu.ResetLog()
			b, err = c.Changes(t.Context(), b.Next)
			mustDo(t, err)
			if n := listings(e.emu.Log()); len(b.Changes) != 0 || n > 1 {
				t.Fatalf("poll after the jump: %q, %d listings", changeList(b), n)
			}
		})
	}
}

// TestFeedOverlapRepeatsAreQuiet: modified_since repeats the overlap window on every poll; stored revisions keep
// the repeats out of the batch.
func TestFeedOverlapRepeatsAreQuiet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{FeedDeletions: true})
	c := e.client("", nil)
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	_, err = e.emu.Emu.WriteFile("/x.txt", []byte("x"))
	mustDo(t, err)
	b, err := c.Changes(t.Context(), cur)
	mustDo(t, err)
	if len(b.Changes) != 1 {
		t.Fatalf("changes %q", changeList(b))
	}
	mustDo(t, e.emu.Emu.Remove("/x.txt")) // with --feed-deletions the feed shows it too; the sweep confirms
	b, err = c.Changes(t.Context(), b.Next)
	mustDo(t, err)
	if got := changeList(b); !slices.Equal(got, []string{"del x.txt"}) {
		t.Fatalf("changes %q", got)
	}
	for range 2 {
		if b, err = c.Changes(t.Context(), b.Next); err != nil || len(b.Changes) != 0 {
			t.Fatalf("repeat: %q %v", changeList(b), err)
		}
	}
}

// TestFolderMoveAndNewSubtree: a folder moved into a new folder arrives as a new folder and a move, parents
// first, and the moved folder's children are not reported again.
func TestFolderMoveAndNewSubtree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	tree(t, e.emu.Emu, 3, 2)
	c := e.client("", nil)
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	_, err = e.emu.Emu.MkdirAll("/new/deeper")
	mustDo(t, err)
	mustDo(t, e.emu.Emu.Rename("/f01", "/new/deeper/g"))
	b, err := c.Changes(t.Context(), cur)
	mustDo(t, err)
	want := []string{"mv f01 new/deeper/g", "put new", "put new/deeper"}
	if got := changeList(b); !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
	idx := func(p string) int {
		return slices.IndexFunc(b.Changes, func(c remote.Change) bool { return string(c.Entry.Path) == p })
	}
	if !(idx("new") < idx("new/deeper") && idx("new/deeper") < idx("new/deeper/g")) {
		t.Fatalf("not parents first: %+v", b.Changes)
	}
	if b, err = c.Changes(t.Context(), b.Next); err != nil || len(b.Changes) != 0 {
		t.Fatalf("after: %q %v", changeList(b), err)
	}
}

// TestHostileNamesSkipped: names the server allows but tandem cannot hold (reserved, over 255 bytes, a name like
// tandem's temp files that this client did not make) are left out of Walk and of the feed as skipped entries;
// only this client's own upload temp names (.tandem-up-*) are kept aside silently.
func TestHostileNamesSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.client("", nil)
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	long := strings.Repeat("é", 200) // 200 characters for the server, 400 bytes for Linux
	for _, n := range []string{".tandem", ".tandem-1.part", ".tandem-up-0a1b-ok.txt", long, "ok.txt"} {
		_, err := e.emu.Emu.WriteFile("/"+n, []byte("x"))
		mustDo(t, err)
	}
	var walked, skips []string
	mustDo(t, c.Walk(t.Context(), remote.Root, func(en remote.Entry) error {
		if en.Skip != "" { // emitted so the engine keeps what it stored for the object, never synced
			skips = append(skips, string(en.Path))
			return nil
		}
		walked = append(walked, string(en.Path))
		return nil
	}))
	if !slices.Equal(walked, []string{"ok.txt"}) || len(skips) != 3 {
		t.Fatalf("walk: %q, skips %q", walked, skips)
	}
	b, err := c.Changes(t.Context(), cur)
	mustDo(t, err)
	if got := changeList(b); !slices.Equal(got, []string{"put ok.txt", "skip .tandem", "skip .tandem-1.part", "skip " + long}) {
		t.Fatalf("changes: %q", got)
	}
}

// TestRootDeleted: a deleted vBoxx root stops the pair (ErrRootMissing) from CheckRoot and from Changes.
func TestRootDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.client("", nil)
	cur, err := c.Head(t.Context())
	mustDo(t, err)
	e.emu.Emu.DeleteRoot()
	if err := c.CheckRoot(t.Context()); !errors.Is(err, remote.ErrRootMissing) {
		t.Fatalf("CheckRoot: %v", err)
	}
	if _, err := c.Changes(t.Context(), cur); !errors.Is(err, remote.ErrRootMissing) {
		t.Fatalf("Changes: %v", err)
	}
}

// TestCursorRoundTrip: encode/decode keeps the tree, and damage is ErrOutOfSync.
func TestCursorRoundTrip(t *testing.T) {
	st := newState(318, 0)
	st.since, st.rr = 1700000000, 5
	st.addDir(10, 0, "a")
	st.dirs[10].hash = strings.Repeat("ab", 20)
	st.addDir(11, 10, "b")
	st.addFile(20, 11, "x.txt", 99)
	cur := st.encode()
	got, err := decodeCursor(cur)
	mustDo(t, err)
	if got.since != st.since || got.rr != 5 || got.filePath(20) != "a/b/x.txt" || got.dirs[10].hash != st.dirs[10].hash {
		t.Fatalf("round trip: %+v", got)
	}
	if !bytes.Equal(got.encode(), cur) {
		t.Fatal("encoding is not deterministic")
	}
	for _, bad := range []remote.Cursor{nil, remote.Cursor("VBX1"), cur[:len(cur)-3], remote.Cursor("xyz")} {
		if _, err := decodeCursor(bad); !errors.Is(err, remote.ErrOutOfSync) {
			t.Errorf("decode %q: %v", bad, err)
		}
	}
}
