package fakefs

import (
	"testing"
	"time"
)

// lstat is Lstat that fails the test on error.
func lstat(t *testing.T, f *FS, name string) (ctime int64, mtime time.Time) {
	t.Helper()
	fi, err := f.Lstat(name)
	must(t, err)
	return fi.CTime, fi.ModTime
}

// With the clock frozen, a change after a stat (Lstat or File.Stat) always moves the ctime, and the write's
// mtime is that same stamp.
func TestMultigrainStatWriteStat(t *testing.T) {
	f := newFS(1)
	f.SetMultigrain(true)
	h, err := f.Create("a", 0o600)
	must(t, err)
	defer h.Close()
	for i := range 1000 {
		var before int64
		if i%2 == 0 {
			before, _ = lstat(t, f, "a")
		} else {
			fi, err := h.Stat()
			must(t, err)
			before = fi.CTime
		}
		_, err := h.Write([]byte("x"))
		must(t, err)
		after, mtime := lstat(t, f, "a")
		if after <= before || mtime.UnixNano() != after {
			t.Fatalf("iteration %d: ctime %d -> %d, mtime %d", i, before, after, mtime.UnixNano())
		}
	}
}

// Changes nobody stat'ed in between get the coarse time: two files created back to back share a ctime, and a
// coarse stamp is never below a fine one already handed out.
func TestMultigrainUnqueriedShareCTime(t *testing.T) {
	f := newFS(1)
	f.SetMultigrain(true)
	must(t, f.WriteFile("a", []byte("1")))
	must(t, f.WriteFile("b", []byte("2")))
	must(t, f.WriteFile("e", nil)) // not stat'ed until the end
	ca, _ := lstat(t, f, "a")
	if cb, _ := lstat(t, f, "b"); ca != cb {
		t.Fatalf("back to back creates: ctimes %d and %d", ca, cb)
	}
	// a and b were stat'ed: each change gets a fine stamp past the last one, the new floor. A second change
	// of a, not stat'ed since, and changes of files never stat'ed, get the coarse time raised to the floor.
	must(t, f.Chmod("a", 0o644))
	must(t, f.Chmod("b", 0o644))
	must(t, f.Chmod("a", 0o600))
	must(t, f.WriteFile("c", nil))
	must(t, f.Chmod("e", 0o644))
	floor, _ := lstat(t, f, "b")
	if floor <= ca {
		t.Fatalf("chmod after a stat: ctime %d -> %d", ca, floor)
	}
	for _, name := range []string{"a", "c", "e"} {
		if c, _ := lstat(t, f, name); c != floor {
			t.Errorf("%s: ctime %d, want the floor %d (b's fine stamp)", name, c, floor)
		}
	}
}

// A folder whose ctime was read moves on a name op in it (create, rename, remove), and a renamed file that was
// stat'ed moves too; an explicit mtime (chtimes) is kept while the ctime gets the fine stamp.
func TestMultigrainNameOpsAndChtimes(t *testing.T) {
	f := newFS(1)
	f.SetMultigrain(true)
	must(t, f.MkdirAll("d"))
	must(t, f.WriteFile("d/x", []byte("1")))
	step := func(what, name, after string, change func() error) {
		t.Helper()
		c0, _ := lstat(t, f, name)
		must(t, change())
		if c1, _ := lstat(t, f, after); c1 <= c0 {
			t.Fatalf("%s: ctime of %s %d -> %d", what, after, c0, c1)
		}
	}
	step("create", "d", "d", func() error { return f.WriteFile("d/y", nil) })
	step("rename", "d", "d", func() error { return f.Rename("d/y", "d/z") })
	// Only x is stat'ed when it is renamed (d's flag cleared by a change), and x holds the floor, so only x's
	// own flag can move its ctime.
	must(t, f.WriteFile("d/q", nil))
	step("chmod", "d/x", "d/x", func() error { return f.Chmod("d/x", 0o644) })
	step("rename", "d/x", "d/w", func() error { return f.Rename("d/x", "d/w") })
	step("remove", "d", "d", func() error { return f.Remove("d/z") })
	m := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	step("chtimes", "d/w", "d/w", func() error { return f.Chtimes("d/w", m) })
	if _, mtime := lstat(t, f, "d/w"); !mtime.Equal(m) {
		t.Fatalf("chtimes: mtime %v, want %v", mtime, m)
	}
}

// The queried flags are in memory: after a Crash a change gets the coarse time until the inode is stat'ed again.
func TestMultigrainCrashForgetsQueried(t *testing.T) {
	f := newFS(1)
	f.SetMultigrain(true)
	must(t, f.WriteFile("a", []byte("1")))
	f.Sync()
	c0, _ := lstat(t, f, "a")
	f.Crash()
	must(t, f.Chmod("a", 0o644))
	c1, _ := lstat(t, f, "a")
	if c1 != c0 {
		t.Fatalf("change after a crash, no stat since: ctime %d -> %d, want it kept (coarse)", c0, c1)
	}
	must(t, f.Chmod("a", 0o600))
	if c2, _ := lstat(t, f, "a"); c2 <= c1 {
		t.Fatalf("change after a stat: ctime %d -> %d", c1, c2)
	}
}

// The fine stamps are in the log: a crash replay restores the ctimes (and mtimes) handed out.
func TestMultigrainCrashKeepsStamps(t *testing.T) {
	for seed := range uint64(20) {
		f := newFS(seed)
		f.SetMultigrain(true)
		h, err := f.Create("a", 0o600)
		must(t, err)
		for range 5 {
			_, err := h.Stat()
			must(t, err)
			_, err = h.Write([]byte("x"))
			must(t, err)
		}
		must(t, h.Sync())
		must(t, h.Close())
		must(t, f.SyncDir("."))
		lstat(t, f, "a")
		must(t, f.Chtimes("a", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
		f.Sync()
		c0, m0 := lstat(t, f, "a")
		must(t, f.WriteFile("b", nil)) // pending: the crash may keep it or not
		f.Crash()
		c1, m1 := lstat(t, f, "a")
		if c1 != c0 || !m1.Equal(m0) {
			t.Fatalf("seed %d: after the crash ctime %d, mtime %v; before %d, %v", seed, c1, m1, c0, m0)
		}
	}
}

// Off (the default), the ctime is the clock's: stat, change, stat at a frozen clock keeps it, as tests of the
// coarse behaviour rely on.
func TestMultigrainOffIsCoarse(t *testing.T) {
	f := newFS(1)
	h, err := f.Create("a", 0o600)
	must(t, err)
	defer h.Close()
	c0, _ := lstat(t, f, "a")
	for i := range 100 {
		_, err := h.Write([]byte("x"))
		must(t, err)
		if c, _ := lstat(t, f, "a"); c != c0 {
			t.Fatalf("iteration %d: ctime %d, want %d", i, c, c0)
		}
	}
	f.SetMultigrain(true)
	f.SetMultigrain(false)
	lstat(t, f, "a")
	must(t, f.Chmod("a", 0o644))
	if c, _ := lstat(t, f, "a"); c != c0 {
		t.Fatalf("after turning the mode off again: ctime %d, want %d", c, c0)
	}
}

// A stat of a removed file does not carry over to the new file that reuses its inode number.
func TestMultigrainReusedNumberNotQueried(t *testing.T) {
	f := newFS(1)
	f.SetMultigrain(true)
	must(t, f.WriteFile("a", []byte("1")))
	old, err := f.Lstat("a")
	must(t, err)
	must(t, f.Remove("a"))
	must(t, f.WriteFile("b", nil))
	fi, err := f.Lstat("b")
	must(t, err)
	if fi.Ino != old.Ino {
		t.Fatalf("b has inode %d, not a's %d: the test needs the number reused", fi.Ino, old.Ino)
	}
	fresh := newFS(1) // b's ctime as stat'ed above queried it; ask a twin that never stat'ed b
	fresh.SetMultigrain(true)
	must(t, fresh.WriteFile("a", []byte("1")))
	_, err = fresh.Lstat("a")
	must(t, err)
	must(t, fresh.Remove("a"))
	must(t, fresh.WriteFile("b", nil))
	must(t, fresh.Chmod("b", 0o644))
	if c, _ := lstat(t, fresh, "b"); c != fi.CTime {
		t.Fatalf("chmod of b, never stat'ed: ctime %d, want the coarse %d", c, fi.CTime)
	}
}
