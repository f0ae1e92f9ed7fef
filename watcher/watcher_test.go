package watcher

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"
)

// fast is the debounce of the real-inotify tests: short so they run quickly; correctness never hangs on it
// because every wait is for a batch, with a deadline.
var fast = Options{Debounce: 20 * time.Millisecond}

func TestBurstCreateModifyRenameDelete(t *testing.T) {
	root := t.TempDir()
	h := start(t, root, fast, nil)
	h.startup()

	h.write("a.txt", "1")
	h.write("b.txt", "1")
	h.write("a.txt", "22")
	h.rename("b.txt", "c.txt")
	h.remove("a.txt")
	h.write("d.txt", "1")
	seen := h.until("the burst", coversAll("a.txt", "b.txt", "c.txt", "d.txt"))
	for _, e := range seen {
		if e.Subtree {
			t.Errorf("a file burst needs no rescan, got %v", names(seen))
		}
	}
	// Coalescing: six operations on four names, written back to back, do not make six batches.
	if len(h.batches) > 1+4 {
		t.Errorf("burst came out in %d batches: %v", len(h.batches)-1, h.batches[1:])
	}
}

func TestNestedMkdirThenFile(t *testing.T) {
	root := t.TempDir()
	h := start(t, root, fast, nil)
	h.startup()

	h.mkdir("a/b/c")
	h.write("a/b/c/f", "x")
	h.until("a/b/c/f", coversAll("a/b/c/f"))
	h.waitWatched(4)

	// The watches exist now: a later file comes out under its own name, not as another rescan.
	h.write("a/b/c/g", "y")
	seen := h.until("a/b/c/g", func(s []Event) bool { return has(s, "a/b/c/g") })
	if slices.ContainsFunc(seen, func(e Event) bool { return e.Subtree }) {
		t.Errorf("write in a watched folder reported as a rescan: %v", names(seen))
	}
}

func TestDirCreatedAndPopulatedAtOnce(t *testing.T) {
	root := t.TempDir()
	h := start(t, root, fast, nil)
	h.startup()

	// Everything here happens before the watcher can add a watch on d: only the Subtree event covers it.
	for i := range 20 {
		h.mkdir(filepath.Join("d", "sub", strings.Repeat("x", i+1)))
		h.write(filepath.Join("d", "sub", strings.Repeat("x", i+1), "f"), "z")
	}
	h.write("d/top", "z")
	h.until("d as a subtree", func(s []Event) bool { return slices.Contains(s, Event{Path: "d", Subtree: true}) })
	h.waitWatched(1 + 2 + 20)
}

func TestAtomicSaveIsOneEventForTarget(t *testing.T) {
	root := t.TempDir()
	h := start(t, root, fast, nil)
	h.startup()
	h.write("x", "v1")
	h.until("x", coversAll("x"))

	// gedit / most libraries: write a temp file, rename it over the target.
	h.write(".goutputstream-ABC123", "v2")
	h.rename(".goutputstream-ABC123", "x")
	// vim: probe file 4913, swap file, backup by rename, write the target anew, drop the backup.
	h.write("4913", "")
	h.remove("4913")
	h.write(".x.swp", "swap")
	h.rename("x", "x~")
	h.write("x", "v3")
	h.remove("x~")
	h.remove(".x.swp")
	// An editor writing x.tmp and renaming it over x.
	h.write("x.tmp", "v4")
	h.rename("x.tmp", "x")
	h.until("x again", coversAll("x", "x~", "x.tmp"))
	for _, b := range h.batches[2:] {
		n := 0
		for _, e := range b {
			if e.Path == "x" {
				n++
			}
		}
		if n > 1 {
			t.Errorf("x appears %d times in one batch: %v", n, b)
		}
	}
}

func TestRenamedDirKeepsWatchingUnderNewName(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "d/sub")
	h := start(t, root, fast, nil)
	h.startup()

	h.rename("d", "e")
	h.until("the move", coversAll("d", "e"))
	h.waitWatched(3)

	// Writes after the move come out under the new name: inotify followed the inode, and stale "d/..." names
	// would send the engine looking in the wrong place.
	h.write("e/f", "1")
	h.write("e/sub/g", "1")
	seen := h.until("writes under e", func(s []Event) bool { return has(s, "e/f") && has(s, "e/sub/g") })
	for _, e := range seen {
		if under(e.Path, "d") {
			t.Errorf("stale path %q after the move: %v", e.Path, names(seen))
		}
	}
}

func TestRemovedDirDropsItsWatches(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "keep", "gone/a/b", "gone/c")
	h := start(t, root, fast, nil)
	h.startup()
	h.waitWatched(6)

	h.write("gone/a/b/f", "1")
	h.until("f", coversAll("gone/a/b/f"))
	h.remove("gone")
	h.until("gone as a subtree", func(s []Event) bool {
		return slices.Contains(s, Event{Path: "gone", Subtree: true})
	})
	h.waitWatched(2)
}

func TestIgnoredPathsNeverAppear(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "build/deep", ".tandem")
	o := fast
	o.Ignore = func(rel string, dir bool) bool {
		return (dir && rel == "build") || strings.HasSuffix(rel, ".tmp") || (dir && strings.HasSuffix(rel, "/cache"))
	}
	h := start(t, root, o, nil)
	h.startup()
	h.waitWatched(1) // root only: build and .tandem are not watched at all

	h.write("build/out.o", "x")
	h.write("build/deep/out.o", "x")
	h.write(".tandem/state.db", "x")
	h.write("scratch.tmp", "x")
	h.mkdir("src/cache/objs")
	h.write("src/cache/objs/o", "x")
	h.write("src/main.go", "x")
	h.write("sentinel", "x")
	seen := h.until("sentinel", coversAll("sentinel", "src/main.go"))
	for _, e := range seen {
		if e.Path == "build" || under(e.Path, "build") || under(e.Path, ".tandem") ||
			strings.HasSuffix(e.Path, ".tmp") || under(e.Path, "src/cache") {
			t.Errorf("ignored path %q reported: %v", e.Path, names(seen))
		}
	}
	h.waitWatched(2) // root and src; not src/cache
}

func TestSymlinkedDirIsNotEntered(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	h := start(t, root, fast, nil)
	h.startup()
	if err := os.Symlink(elsewhere, h.path("link")); err != nil {
		t.Fatal(err)
	}
	seen := h.until("link", coversAll("link"))
	if slices.Contains(seen, Event{Path: "link", Subtree: true}) {
		t.Errorf("symlink reported as a folder to rescan: %v", names(seen))
	}
	h.waitWatched(1)
}

// TestOverflow feeds fsnotify's overflow error: fsnotify reports IN_Q_OVERFLOW as ErrEventOverflow, and only
// 16,384 queued events while the daemon is stopped produce it for real (that is LOCAL-06, in test/e2e).
func TestOverflow(t *testing.T) {
	root := t.TempDir()
	clk := clockwork.NewFakeClock()
	f := newFake()
	h := start(t, root, Options{Clock: clk, Debounce: time.Second}, func() (source, error) { return f, nil })
	clk.BlockUntilContext(t.Context(), 1)
	clk.Advance(time.Second)
	h.startup()

	f.feed(t, fsnotify.Event{Name: h.path("a"), Op: fsnotify.Write})
	f.fail(t, fsnotify.ErrEventOverflow)
	f.feed(t, fsnotify.Event{Name: h.path("b"), Op: fsnotify.Write})
	if d := h.w.Degraded(); !strings.Contains(d, "overflow") || !strings.Contains(d, "max_queued_events") {
		t.Errorf("Degraded() = %q, want the overflow and the sysctl", d)
	}
	// Issue 13 item 7: status shows the watchers of both sides; each message names its folder.
	if d := h.w.Degraded(); !strings.HasPrefix(d, root+": ") {
		t.Errorf("Degraded() = %q does not name the folder %s", d, root)
	}
	clk.Advance(time.Second)
	if b := h.next(); !slices.Equal(b, []Event{{Path: "", Subtree: true}}) {
		t.Errorf("after overflow got %v, want only the root rescan", b)
	}

	// The message stays up for a while, then clears once overflows stop.
	clk.Advance(overflowQuiet / 2)
	f.feed(t)
	if h.w.Degraded() == "" {
		t.Errorf("overflow message cleared too early")
	}
	clk.Advance(overflowQuiet)
	deadline := time.Now().Add(waitFor)
	for h.w.Degraded() != "" {
		if time.Now().After(deadline) {
			t.Fatalf("Degraded() = %q after a quiet period, want empty", h.w.Degraded())
		}
		f.feed(t) // let the loop take the quiet timer's fire
	}
}

func TestOtherWatchErrorRescansRoot(t *testing.T) {
	root := t.TempDir()
	clk := clockwork.NewFakeClock()
	f := newFake()
	h := start(t, root, Options{Clock: clk}, func() (source, error) { return f, nil })
	clk.BlockUntilContext(t.Context(), 1)
	clk.Advance(defaultDebounce)
	h.startup()
	f.fail(t, errors.New("short read"))
	clk.Advance(defaultDebounce)
	if b := h.next(); !slices.Equal(b, []Event{{Path: "", Subtree: true}}) {
		t.Errorf("after a read error got %v, want the root rescan", b)
	}
}

// TestWatchLimit makes inotify_add_watch fail with ENOSPC after the start-up watches, as at the
// fs.inotify.max_user_watches limit; TestInotifyWatchLimit does the same with the kernel's own limit.
func TestWatchLimit(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "a")
	h := start(t, root, fast, func() (source, error) {
		s, err := newFSSource()
		return &limitSource{source: s, left: 2}, err
	})
	h.startup()
	if d := h.w.Degraded(); d != "" {
		t.Fatalf("Degraded() = %q before the limit", d)
	}

	h.mkdir("late/inner")
	h.write("late/inner/f", "x")
	h.until("late as a subtree", func(s []Event) bool {
		return slices.Contains(s, Event{Path: "late", Subtree: true})
	})
	d := h.w.Degraded()
	for _, want := range []string{"watch limit", "fs.inotify.max_user_watches", "sysctl", "(2 watched)"} {
		if !strings.Contains(d, want) {
			t.Errorf("Degraded() = %q, want it to mention %q", d, want)
		}
	}
	if n := h.w.Watched(); n != 2 {
		t.Errorf("Watched() = %d, want 2", n)
	}

	// Past the limit, a new folder is a rescan too; watched folders still report precisely.
	h.mkdir("later")
	h.write("a/f", "x")
	seen := h.until("later and a/f", func(s []Event) bool {
		return slices.Contains(s, Event{Path: "later", Subtree: true}) && has(s, "a/f")
	})
	_ = seen
}

func TestWatchLimitAtStartup(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "a/b", "c")
	h := start(t, root, fast, func() (source, error) {
		s, err := newFSSource()
		return &limitSource{source: s, left: 2}, err
	})
	h.startup() // the root rescan covers the unwatched folders
	if !strings.Contains(h.w.Degraded(), "max_user_watches") {
		t.Errorf("Degraded() = %q", h.w.Degraded())
	}
	if n := h.w.Watched(); n != 2 {
		t.Errorf("Watched() = %d, want 2", n)
	}
}

func TestRootMustBeADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(nil, f, Options{}); err == nil {
		t.Errorf("New on a file: no error")
	}
	if _, err := New(nil, filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Errorf("New on a missing path: no error")
	}
}

func TestRootRemoved(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	mkTree(t, root, "a")
	h := start(t, root, fast, nil)
	h.startup()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	h.until("the root rescan", func(s []Event) bool { return slices.Contains(s, Event{Path: "", Subtree: true}) })
	if d := h.w.Degraded(); !strings.Contains(d, "moved or deleted") {
		t.Errorf("Degraded() = %q", d)
	}
	h.waitWatched(0)
}

func TestRunTwice(t *testing.T) {
	h, _, _ := fakeStart(t, Options{})
	if err := h.w.Run(t.Context(), make(chan []Event)); err == nil {
		t.Errorf("second Run: no error")
	}
}
