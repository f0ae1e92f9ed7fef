package fakefs

import (
	"slices"
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

// An fsync of a file on a reused number makes that inode durable, not its name: whatever a crash keeps, the old
// name never shows the new file's bytes (the journal commits the old inode's release before its reuse; seed
// 1348 under -sim.lazydisk uploaded them over the remote's copy of the old file), and the new file, wherever a
// name reaches it, holds its own bytes, never the old file's tail under them (seed 106).
func TestFsyncOfAReusedNumberKeepsTheLivesApart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		moved bool // the new file is renamed, and that folder synced, after the fsync
	}{{"in place", false}, {"renamed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			got := outcomes(t, 300, func(f *FS) {
				must(t, f.MkdirAll("x"))
				must(t, f.MkdirAll("y"))
				create(t, f, "x/a", "the old file, long", true)
				f.Sync()
				must(t, f.Remove("x/a")) // unsynced, as a user's rm
				h, err := f.Create("y/b", 0o644)
				must(t, err)
				_, err = h.Write([]byte("NEW"))
				must(t, err)
				must(t, h.Sync()) // the file's bytes, not its name
				must(t, h.Close())
				if tc.moved {
					must(t, f.Rename("y/b", "c"))
					must(t, f.SyncDir("."))
				}
			}, func(f *FS) string {
				if s, ok := content(f, "x/a"); ok && s != "the old file, long" {
					return "x/a = " + s
				}
				for _, n := range []string{"y/b", "c"} {
					if s, ok := content(f, n); ok && s != "NEW" {
						return n + " = " + s
					}
				}
				return "ok"
			})
			if len(got) != 1 || got["ok"] != 300 {
				t.Fatalf("outcomes: %v", got)
			}
		})
	}
}

// The same for a folder: rm -r a; mkdir n (a's number); a file in n, fsync'd with n. Whatever a crash keeps,
// "a" never shows n's entries (seed 1348: the old a/Z showed the new file written as n/Z).
func TestSyncDirOfAReusedNumberKeepsTheLivesApart(t *testing.T) {
	got := outcomes(t, 300, func(f *FS) {
		must(t, f.MkdirAll("a"))
		create(t, f, "a/old", "old", true)
		f.Sync()
		must(t, f.RemoveAll("a"))
		must(t, f.Mkdir("n", 0o755))
		create(t, f, "n/Z", "NEW", true)
		must(t, f.SyncDir("n")) // n's entries, not n's own name
	}, func(f *FS) string {
		if names, err := f.ReadDir("a"); err == nil && slices.Contains(names, "Z") {
			s, _ := content(f, "a/Z")
			return "a/Z = " + s
		}
		if s, ok := content(f, "n/Z"); ok && s != "NEW" {
			return "n/Z = " + s
		}
		return "ok"
	})
	if len(got) != 1 || got["ok"] != 300 {
		t.Fatalf("outcomes: %v", got)
	}
}
