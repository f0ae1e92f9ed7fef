package memremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote"
)

func newMem(t *testing.T, o Options) (*Mem, *clockwork.FakeClock) {
	t.Helper()
	clk := clockwork.NewFakeClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return New(clk, o), clk
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// feed returns the changes after cur as short strings, which keeps expectations readable.
func feed(t *testing.T, m *Mem, cur remote.Cursor) ([]string, remote.Cursor) {
	t.Helper()
	b, err := m.Changes(t.Context(), cur)
	must(t, err)
	var out []string
	for _, c := range b.Changes {
		switch {
		case c.Deleted:
			out = append(out, "-"+string(c.Entry.Path))
		case c.From != "":
			out = append(out, string(c.From)+">"+string(c.Entry.Path))
		default:
			out = append(out, "+"+string(c.Entry.Path))
		}
	}
	return out, b.Next
}

func TestFeedShapes(t *testing.T) {
	m, _ := newMem(t, Options{})
	cur, err := m.Head(t.Context())
	must(t, err)
	must(t, m.WriteFile("d/s/x", []byte("x")))
	must(t, m.WriteFile("d/y", []byte("y")))
	must(t, m.Rename("d", "e"))
	must(t, m.Remove("e"))
	got, next := feed(t, m, cur)
	want := []string{"+d", "+d/s", "+d/s/x", "+d/y", "d>e", "-e/y", "-e/s/x", "-e/s", "-e"}
	if !slices.Equal(got, want) {
		t.Errorf("feed = %q\nwant   %q", got, want)
	}
	if again, _ := feed(t, m, next); len(again) != 0 {
		t.Errorf("feed after Next = %q, want nothing", again)
	}
	if len(m.Trash()) != 0 {
		t.Errorf("Remove (the user's own delete) filled the trash: %+v", m.Trash())
	}
	if snap := m.Snapshot(); len(snap) != 0 {
		t.Errorf("Snapshot after removing everything = %v", snap)
	}
}

func TestDeleteGoesToTrash(t *testing.T) {
	m, clk := newMem(t, Options{})
	e, err := m.Put(t.Context(), "a.txt", bytes.NewReader([]byte("keep me")), 7, time.Time{}, remote.Precondition{})
	must(t, err)
	clk.Advance(time.Hour)
	must(t, m.Delete(t.Context(), "a.txt", remote.Precondition{Rev: e.Rev}))
	tr := m.Trash()
	if len(tr) != 1 || tr[0].Path != "a.txt" || string(tr[0].Data) != "keep me" || !tr[0].At.Equal(clk.Now()) {
		t.Fatalf("Trash = %+v", tr)
	}
	tr[0].Data[0] = 'X'
	if string(m.Trash()[0].Data) != "keep me" {
		t.Error("Trash hands out the store's own bytes")
	}
}

func TestHistoryLimit(t *testing.T) {
	m, _ := newMem(t, Options{HistoryLimit: 2})
	ctx := t.Context()
	old, err := m.Head(ctx)
	must(t, err)
	must(t, m.WriteFile("a", nil))
	mid, err := m.Head(ctx)
	must(t, err)
	must(t, m.WriteFile("b", nil))
	must(t, m.WriteFile("c", nil))
	if _, err := m.Changes(ctx, old); !errors.Is(err, remote.ErrOutOfSync) {
		t.Errorf("cursor before the kept history: %v, want ErrOutOfSync", err)
	}
	if got, _ := feed(t, m, mid); !slices.Equal(got, []string{"+b", "+c"}) {
		t.Errorf("cursor at the edge of the kept history: %q", got)
	}
	for _, bad := range []remote.Cursor{remote.Cursor("x"), remote.Cursor("99"), nil} {
		if _, err := m.Changes(ctx, bad); !errors.Is(err, remote.ErrOutOfSync) {
			t.Errorf("Changes(%q) = %v, want ErrOutOfSync", bad, err)
		}
	}
}

func TestCompactKillsHead(t *testing.T) {
	m, _ := newMem(t, Options{})
	ctx := t.Context()
	cur, err := m.Head(ctx)
	must(t, err)
	m.Compact()
	if _, err := m.Changes(ctx, cur); !errors.Is(err, remote.ErrOutOfSync) {
		t.Errorf("Head taken before Compact: %v, want ErrOutOfSync", err)
	}
	cur, err = m.Head(ctx)
	must(t, err)
	must(t, m.WriteFile("a", nil))
	if got, _ := feed(t, m, cur); !slices.Equal(got, []string{"+a"}) {
		t.Errorf("feed after Compact = %q", got)
	}
}

func TestPaging(t *testing.T) {
	m, _ := newMem(t, Options{PageSize: 2})
	cur, err := m.Head(t.Context())
	must(t, err)
	for i := range 5 {
		must(t, m.WriteFile(fmt.Sprint(i), nil))
	}
	var all []string
	for range 4 {
		var page []string
		page, cur = feed(t, m, cur)
		if len(page) > 2 {
			t.Errorf("page of %d changes, limit 2", len(page))
		}
		all = append(all, page...)
	}
	if want := []string{"+0", "+1", "+2", "+3", "+4"}; !slices.Equal(all, want) {
		t.Errorf("pages = %q, want %q", all, want)
	}
}

func TestChangesAtStamps(t *testing.T) {
	m, clk := newMem(t, Options{})
	cur, err := m.Head(t.Context())
	must(t, err)
	t0 := clk.Now()
	must(t, m.WriteFile("a", nil))
	clk.Advance(time.Minute)
	must(t, m.WriteFile("b", nil))
	b, at, err := m.ChangesAt(t.Context(), cur)
	must(t, err)
	if len(b.Changes) != 2 || !at[0].Equal(t0) || !at[1].Equal(t0.Add(time.Minute)) {
		t.Errorf("ChangesAt = %+v at %v", b.Changes, at)
	}
}

func TestFailedUploadStoresNothing(t *testing.T) {
	m, _ := newMem(t, Options{})
	cur, err := m.Head(t.Context())
	must(t, err)
	body := io.MultiReader(bytes.NewReader([]byte("half")), iotest.ErrReader(errors.New("connection reset")))
	if _, err := m.Put(t.Context(), "a", body, 8, time.Time{}, remote.Precondition{}); err == nil {
		t.Fatal("Put with a broken body succeeded")
	}
	if _, err := m.Put(t.Context(), "a", bytes.NewReader([]byte("short")), 9, time.Time{}, remote.Precondition{}); !errors.Is(err, remote.ErrCorrupt) {
		t.Errorf("Put with a body shorter than size: %v, want ErrCorrupt", err)
	}
	if _, err := m.Stat(t.Context(), "a"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("Stat after failed uploads: %v, want ErrNotFound", err)
	}
	if got, _ := feed(t, m, cur); len(got) != 0 {
		t.Errorf("failed uploads reached the feed: %q", got)
	}
}

func TestOptions(t *testing.T) {
	m, _ := newMem(t, Options{NoHash: true, MTimeStep: time.Second, Label: "box"})
	mt := time.Date(2025, 1, 1, 0, 0, 1, 999, time.UTC)
	e, err := m.Put(t.Context(), "a", bytes.NewReader(nil), 0, mt, remote.Precondition{})
	must(t, err)
	if !e.Hash.IsZero() || !e.ModTime.Equal(mt.Truncate(time.Second)) {
		t.Errorf("entry %+v: want no digest and a whole-second mtime", e)
	}
	c := m.Capabilities()
	if len(c.Hashes) != 0 || c.MTimeStep != time.Second || m.String() != "mem:box" {
		t.Errorf("Capabilities %+v, String %q", c, m)
	}
	if _, _, err := m.HashOf(t.Context(), "a", "sha256"); err == nil {
		t.Error("HashOf on a NoHash store answered")
	}

	s1, _ := newMem(t, Options{Hash: "sha1"})
	e, err = s1.Put(t.Context(), "a", bytes.NewReader([]byte("abc")), 3, mt, remote.Precondition{})
	must(t, err)
	if e.Hash != (remote.Hash{Algo: "sha1", Hex: "a9993e364706816aba3e25717850c26c9cd0d89d"}) {
		t.Errorf("sha1 store reported %v", e.Hash)
	}
}

func TestRootMissing(t *testing.T) {
	m, _ := newMem(t, Options{})
	must(t, m.CheckRoot(t.Context()))
	m.Handle().SetRootMissing(true)
	if err := m.CheckRoot(t.Context()); !errors.Is(err, remote.ErrRootMissing) {
		t.Errorf("CheckRoot = %v, want ErrRootMissing", err)
	}
	m.SetRootMissing(false)
	must(t, m.CheckRoot(t.Context()))
}

func TestDriverErrors(t *testing.T) {
	m, _ := newMem(t, Options{})
	must(t, m.WriteFile("a", []byte("a")))
	must(t, m.WriteFile("b", []byte("b")))
	if err := m.Rename("a", "b"); !errors.Is(err, remote.ErrConflict) {
		t.Errorf("Rename onto b: %v, want ErrConflict", err)
	}
	if err := m.WriteFile("../x", nil); !errors.Is(err, remote.ErrInvalidName) {
		t.Errorf("WriteFile ../x: %v, want ErrInvalidName", err)
	}
	if err := m.WriteFile("a/x", nil); !errors.Is(err, remote.ErrConflict) {
		t.Errorf("WriteFile below a file: %v, want ErrConflict", err)
	}
	if err := m.Remove("missing"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("Remove missing: %v, want ErrNotFound", err)
	}
	if _, err := m.ReadFile("missing"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("ReadFile missing: %v, want ErrNotFound", err)
	}
	must(t, m.MkdirAll("d/e"))
	if err := m.Rename("d", "d/e/f"); !errors.Is(err, remote.ErrConflict) {
		t.Errorf("Rename into itself: %v, want ErrConflict", err)
	}
	data, err := m.ReadFile("a")
	must(t, err)
	data[0] = 'X'
	if got, _ := m.ReadFile("a"); string(got) != "a" {
		t.Error("ReadFile hands out the store's own bytes")
	}
}

// Two runs of the same operations give the same ids, revisions, feed and walk: nothing depends on map order
// or on the wall clock, which the simulation's replay needs.
func TestDeterministic(t *testing.T) {
	run := func() string {
		m, _ := newMem(t, Options{})
		for i := range 20 {
			must(t, m.WriteFile(fmt.Sprintf("d%d/f%d", i%3, i), []byte{byte(i)}))
		}
		must(t, m.Rename("d1", "z"))
		must(t, m.Remove("d2"))
		var out bytes.Buffer
		b, err := m.Changes(context.Background(), remote.Cursor("0"))
		must(t, err)
		fmt.Fprintf(&out, "%+v\n", b)
		must(t, m.Walk(context.Background(), remote.Root, func(e remote.Entry) error {
			fmt.Fprintf(&out, "%+v\n", e)
			return nil
		}))
		return out.String()
	}
	if a, b := run(), run(); a != b {
		t.Errorf("two identical runs differ:\n%s\n---\n%s", a, b)
	}
}

// Run with -race: handles share one store and one mutex.
func TestConcurrentHandles(t *testing.T) {
	m, _ := newMem(t, Options{HistoryLimit: 50})
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range 4 {
		h := m.Handle()
		wg.Go(func() {
			for i := range 50 {
				p := remote.Path(fmt.Sprintf("w%d-%d", w, i%5))
				_, _ = h.Put(ctx, p, bytes.NewReader([]byte("x")), 1, time.Time{}, remote.Precondition{})
				_, _ = h.Stat(ctx, p)
				_ = h.Walk(ctx, remote.Root, func(remote.Entry) error { return nil })
				_ = h.Delete(ctx, p, remote.Precondition{})
				cur, _ := h.Head(ctx)
				_, _ = h.Changes(ctx, cur)
			}
		})
	}
	wg.Wait()
}

// TestFoldingStore: with FoldsCase and NormalizesUnicode, every spelling of a name reaches the one object,
// which keeps the name it was created with; a rename to another spelling of the same name is refused.
func TestFoldingStore(t *testing.T) {
	ctx := context.Background()
	m := New(clockwork.NewFakeClock(), Options{FoldsCase: true, NormalizesUnicode: true})
	if c := m.Capabilities(); !c.FoldsCase || !c.NormalizesUnicode {
		t.Fatalf("capabilities %+v", c)
	}
	if err := m.WriteFile("Report.txt", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if e, err := m.Stat(ctx, "report.TXT"); err != nil || e.Path != "Report.txt" {
		t.Fatalf("Stat other spelling = %+v, %v", e, err)
	}
	if _, err := m.Put(ctx, "REPORT.txt", strings.NewReader("two"), 3, time.Time{}, remote.Precondition{Absent: true}); !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("Put absent under another spelling = %v", err)
	}
	if _, err := m.Move(ctx, "Report.txt", "report.txt", remote.Precondition{}); !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("case-only Move = %v", err)
	}
	if _, err := m.Mkdir(ctx, "reports"); err != nil {
		t.Fatal(err)
	}
	if e, err := m.Put(ctx, "Reports/x", strings.NewReader("x"), 1, time.Time{}, remote.Precondition{Absent: true}); err != nil || e.Path != "reports/x" {
		t.Fatalf("Put into another spelling of a folder = %+v, %v", e, err)
	}
	if err := m.WriteFile("caf\u00e9", []byte("nfc")); err != nil {
		t.Fatal(err)
	}
	if e, err := m.Stat(ctx, "cafe\u0301"); err != nil || e.Path != "caf\u00e9" {
		t.Fatalf("Stat NFD = %+v, %v", e, err)
	}
	snap := m.Snapshot()
	if len(snap) != 4 {
		t.Fatalf("snapshot %v", snap)
	}
}
