package fakefs

import (
	"testing"
	"time"
)

// Freed inode numbers are handed out again, the most recent first, but never while an open file holds them.
func TestInodeNumbersAreReused(t *testing.T) {
	f := newFS(1)
	must(t, f.MkdirAll("D"))
	create(t, f, "D/f", "old", false)
	d, _ := f.Lstat("D")
	df, _ := f.Lstat("D/f")
	must(t, f.RemoveAll("D"))
	must(t, f.MkdirAll("E"))
	e, _ := f.Lstat("E")
	if e.Ino != d.Ino {
		t.Fatalf("rm -rf D; mkdir E: E has inode %d, D had %d", e.Ino, d.Ino)
	}
	create(t, f, "E/f", "new", false)
	ef, _ := f.Lstat("E/f")
	if ef.Ino != df.Ino {
		t.Fatalf("E/f has inode %d, D/f had %d", ef.Ino, df.Ino)
	}
	if s, _ := content(f, "E/f"); s != "new" {
		t.Fatalf("E/f = %q: a reused inode kept old content", s)
	}
	// An open file keeps its number.
	h, err := f.Open("E/f")
	must(t, err)
	must(t, f.Remove("E/f"))
	create(t, f, "g", "g", false)
	if g, _ := f.Lstat("g"); g.Ino == ef.Ino {
		t.Fatal("an inode still open was handed out again")
	}
	must(t, h.Close())
}

// ctime moves on write, chmod, chtimes and rename, never backwards through a user call.
func TestCTimeMoves(t *testing.T) {
	f := newFS(1)
	clk := f.clk
	create(t, f, "a", "x", false)
	last, _ := f.Lstat("a")
	step := func(what string, fn func()) {
		t.Helper()
		clk.(interface{ Advance(time.Duration) }).Advance(time.Second)
		fn()
		n, err := f.Lstat(what)
		must(t, err)
		if n.CTime <= last.CTime {
			t.Fatalf("ctime of %s did not move: %d, was %d", what, n.CTime, last.CTime)
		}
		last = n
	}
	step("a", func() { must(t, f.WriteFile("a", []byte("y"))) })
	step("a", func() { must(t, f.Chmod("a", 0o600)) })
	step("a", func() { must(t, f.Chtimes("a", time.Unix(0, 0))) })
	step("b", func() { must(t, f.Rename("a", "b")) })
}

// Whatever a crash keeps, a reused number never shows up under its old name and its new one at once, and the
// new inode never shows the old one's content.
func TestReuseSurvivesCrash(t *testing.T) {
	got := outcomes(t, 200, func(f *FS) {
		must(t, f.MkdirAll("x"))
		must(t, f.MkdirAll("y"))
		create(t, f, "x/a", "old content", true)
		for _, d := range []string{"x", "y", "."} {
			must(t, f.SyncDir(d))
		}
		must(t, f.Remove("x/a"))
		create(t, f, "y/b", "new", true) // gets the number x/a had
		must(t, f.SyncDir("y"))          // y/b durable: x/a's removal must be too
	}, func(f *FS) string {
		s, okA := content(f, "x/a")
		b, okB := content(f, "y/b")
		switch {
		case okA:
			return "x/a still there: " + s
		case !okB || b != "new":
			return "y/b = " + b
		}
		return "ok"
	})
	if len(got) != 1 || got["ok"] != 200 {
		t.Fatalf("outcomes: %v", got)
	}
}
