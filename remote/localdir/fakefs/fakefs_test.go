package fakefs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func newFS(seed uint64) *FS {
	return New(clockwork.NewFakeClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), rand.New(rand.NewPCG(seed, 42)))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// create writes data to a new file through the localdir.FS methods, syncing the file when syncFile is set.
func create(t *testing.T, f *FS, name, data string, syncFile bool) {
	t.Helper()
	h, err := f.Create(name, 0o600)
	must(t, err)
	_, err = h.Write([]byte(data))
	must(t, err)
	if syncFile {
		must(t, h.Sync())
	}
	must(t, h.Close())
}

func content(f *FS, name string) (string, bool) {
	b, err := f.ReadFile(name)
	return string(b), err == nil
}

// outcomes runs scenario on seeds 0..n-1 and counts what check reports after a Crash.
func outcomes(t *testing.T, n int, scenario func(*FS), check func(*FS) string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for seed := range uint64(n) {
		f := newFS(seed)
		scenario(f)
		f.Crash()
		got[check(f)]++
	}
	return got
}

func TestFullySyncedAlwaysSurvives(t *testing.T) {
	got := outcomes(t, 100, func(f *FS) {
		must(t, f.Mkdir("d", 0o755))
		must(t, f.SyncDir("."))
		create(t, f, "d/f", "durable", true)
		must(t, f.SyncDir("d"))
		f.WriteFile("noise", []byte("unsynced"))
	}, func(f *FS) string { s, _ := content(f, "d/f"); return s })
	if len(got) != 1 || got["durable"] != 100 {
		t.Errorf("outcomes = %v, want always durable", got)
	}
}

func TestDataSyncedNameNotSynced(t *testing.T) {
	got := outcomes(t, 100, func(f *FS) {
		f.WriteFile("before", []byte("x"))
		create(t, f, "f", "data", true)
	}, func(f *FS) string {
		s, ok := content(f, "f")
		if !ok {
			return "gone"
		}
		return s
	})
	if got["gone"] == 0 || got["data"] == 0 || got["gone"]+got["data"] != 100 {
		t.Errorf("outcomes = %v, want both gone and complete, nothing else", got)
	}
}

func TestNameSyncedDataNotSynced(t *testing.T) {
	// The name is durable but the data is not: a zero-length file (or a prefix of the writes) remains.
	got := outcomes(t, 200, func(f *FS) {
		h, err := f.Create("f", 0o600)
		must(t, err)
		must(t, f.SyncDir("."))
		h.Write([]byte("abc"))
		h.Write([]byte("def"))
		h.Close()
	}, func(f *FS) string { s, _ := content(f, "f"); return "[" + s + "]" })
	for k := range got {
		if k != "[]" && k != "[abc]" && k != "[abcdef]" {
			t.Errorf("outcome %s is not a prefix of the writes", k)
		}
	}
	if got["[]"] == 0 || got["[abcdef]"] == 0 {
		t.Errorf("outcomes = %v, want zero-length and complete among them", got)
	}
}

func TestUnsyncedUserWrites(t *testing.T) {
	got := outcomes(t, 200, func(f *FS) {
		f.WriteFile("f", []byte("v1"))
		f.Sync()
		f.WriteFile("f", []byte("version 2"))
	}, func(f *FS) string { s, _ := content(f, "f"); return s })
	for k := range got {
		if k != "v1" && k != "" && k != "version 2" {
			t.Errorf("outcome %q", k)
		}
	}
	if len(got) < 2 {
		t.Errorf("outcomes = %v, want the write lost for some seeds and kept for others", got)
	}
}

func TestSyncedRenameSurvives(t *testing.T) {
	got := outcomes(t, 100, func(f *FS) {
		must(t, f.Mkdir("a", 0o755))
		must(t, f.Mkdir("b", 0o755))
		create(t, f, "a/tmp", "new", true)
		f.WriteFile("b/target", []byte("old"))
		f.Sync()
		must(t, f.Rename("a/tmp", "b/target"))
		must(t, f.SyncDir("b")) // one folder of the two is enough: a rename is atomic
	}, func(f *FS) string {
		s, _ := content(f, "b/target")
		_, tmp := content(f, "a/tmp")
		return s + "/" + map[bool]string{true: "tmp", false: "-"}[tmp]
	})
	if len(got) != 1 || got["new/-"] != 100 {
		t.Errorf("outcomes = %v", got)
	}
}

func TestCrashKeepsTreeSane(t *testing.T) {
	// Folders moved around with partial syncs: whatever survives is a tree (every folder reached once), and a
	// rename synced in both folders (and with the new parent reachable) is there.
	for _, syncRoot := range []bool{false, true} {
		for seed := range uint64(200) {
			f := newFS(seed)
			f.MkdirAll("a/b/c")
			f.WriteFile("a/b/c/f", []byte("1"))
			must(t, f.Rename("a/b", "b"))
			must(t, f.Rename("b/c", "c"))
			must(t, f.Rename("a", "c/a"))
			must(t, f.SyncDir("c"))
			if syncRoot { // c's own name lives in the root: syncing c alone does not make c reachable
				must(t, f.SyncDir("."))
			}
			f.Crash()
			seen := map[string]bool{}
			f.Walk(func(name string, dir bool, _ []byte) {
				if seen[name] {
					t.Errorf("seed %d: %s twice", seed, name)
				}
				seen[name] = true
			})
			if syncRoot && !seen["c/a"] {
				t.Errorf("seed %d: the synced rename c/a is missing: %v", seed, slices.Sorted(maps.Keys(seen)))
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	run := func(seed uint64) (map[string]string, []uint64) {
		f := newFS(seed)
		f.MkdirAll("d/e")
		for i := range 20 {
			name := "d/f" + string(rune('a'+i))
			create(t, f, name, strings.Repeat("x", i), i%3 == 0)
			if i%4 == 0 {
				must(t, f.SyncDir("d"))
			}
		}
		f.Crash()
		var inos []uint64
		for _, n := range []string{"d", "d/e"} {
			fi, err := f.Lstat(n)
			must(t, err)
			inos = append(inos, fi.Ino)
		}
		return f.Snapshot(), inos
	}
	for seed := range uint64(20) {
		a, ia := run(seed)
		b, ib := run(seed)
		if !maps.Equal(a, b) || !slices.Equal(ia, ib) {
			t.Errorf("seed %d: two runs differ:\n%v\n%v", seed, a, b)
		}
	}
	a, _ := run(1)
	differ := false
	for seed := uint64(2); seed < 20 && !differ; seed++ {
		b, _ := run(seed)
		differ = !maps.Equal(a, b)
	}
	if !differ {
		t.Error("every seed crashed the same way")
	}
}

func TestOpenFilesDieInCrash(t *testing.T) {
	f := newFS(1)
	h, err := f.Create("f", 0o600)
	must(t, err)
	f.Crash()
	if _, err := h.Write([]byte("x")); err == nil {
		t.Error("write to a file opened before the crash succeeded")
	}
}

func TestPOSIXNames(t *testing.T) {
	f := newFS(1)
	f.MkdirAll("full/x")
	f.MkdirAll("empty")
	f.WriteFile("a", []byte("a"))
	f.WriteFile("b", []byte("b"))
	must(t, f.Rename("a", "b"))
	if s, _ := content(f, "b"); s != "a" {
		t.Errorf("rename over a file: b = %q", s)
	}
	if err := f.Rename("empty", "full"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rename over a non-empty folder = %v", err)
	}
	if err := f.Rename("full", "full/x/y"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("rename into itself = %v", err)
	}
	if err := f.Remove("full"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("remove non-empty = %v", err)
	}
	if _, err := f.Create("b", 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("create existing = %v", err)
	}
	if _, err := f.Lstat("nope/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lstat missing = %v", err)
	}
	must(t, f.Symlink("b", "ln"))
	fi, err := f.Lstat("ln")
	if err != nil || !fi.IsSymlink() {
		t.Errorf("lstat symlink = %+v, %v", fi, err)
	}
	if _, err := f.Open("ln"); err == nil {
		t.Error("open followed a symlink")
	}
	if _, err := f.Lstat("ln/x"); err == nil {
		t.Error("lstat through a symlink")
	}
	names, err := f.ReadDir(".")
	if err != nil || !slices.Equal(names, []string{"b", "empty", "full", "ln"}) {
		t.Errorf("ReadDir = %q, %v", names, err)
	}
	before, _ := f.Lstat("b")
	f.WriteFile("b", []byte("bb"))
	after, _ := f.Lstat("b")
	if after.Ino != before.Ino || after.Size != 2 || after.Dev != Dev {
		t.Errorf("stat after rewrite = %+v", after)
	}
	h, err := f.Open("b")
	must(t, err)
	b, err := io.ReadAll(h)
	if err != nil || string(b) != "bb" {
		t.Errorf("read = %q, %v", b, err)
	}
	h.Close()
	if snap := f.Snapshot(); snap["full"] != "dir" || snap["ln"] != "symlink:b" || len(snap) != 5 {
		t.Errorf("snapshot = %v", snap)
	}
	must(t, f.RemoveAll("full"))
	if _, ok := f.Snapshot()["full/x"]; ok {
		t.Error("RemoveAll left full/x")
	}
}

func TestCTimeChanges(t *testing.T) {
	clk := clockwork.NewFakeClock()
	f := New(clk, rand.New(rand.NewPCG(1, 1)))
	f.WriteFile("a", []byte("1"))
	c0, _ := f.Lstat("a")
	clk.Advance(time.Second)
	must(t, f.Chmod("a", 0o600))
	c1, _ := f.Lstat("a")
	clk.Advance(time.Second)
	must(t, f.Rename("a", "b"))
	c2, _ := f.Lstat("b")
	if c0.CTime >= c1.CTime || c1.CTime >= c2.CTime || c1.ModTime != c0.ModTime {
		t.Errorf("ctimes %d %d %d, mtimes %v %v", c0.CTime, c1.CTime, c2.CTime, c0.ModTime, c1.ModTime)
	}
	mt := time.Date(2020, 1, 1, 0, 0, 0, 5, time.UTC)
	must(t, f.Chtimes("b", mt))
	if fi, _ := f.Lstat("b"); !fi.ModTime.Equal(mt) || fi.Mode.Perm() != 0o600 {
		t.Errorf("after chtimes: %+v", fi)
	}
}

func TestFaults(t *testing.T) {
	f := newFS(1)
	f.MkdirAll("d")
	f.WriteFile("d/f", []byte("keep"))
	f.SetFault(func(op, name string) error {
		if name == "d/g" || op == "rename" {
			return syscall.ENOSPC
		}
		return nil
	})
	if _, err := f.Create("d/g", 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("create = %v", err)
	}
	if err := f.Rename("d/f", "d/h"); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("rename = %v", err)
	}
	f.SetFault(func(op, name string) error {
		if op == "write" {
			return syscall.EIO
		}
		return nil
	})
	h, err := f.Create("d/w", 0o600)
	must(t, err)
	if _, err := h.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Errorf("write = %v", err)
	}
	f.SetFault(nil)
	if snap := f.Snapshot(); len(snap) != 3 || snap["d/w"] != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("snapshot after refused ops = %v", snap)
	}
	f.Unreadable("d")
	if _, err := f.ReadDir("d"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("ReadDir unreadable = %v", err)
	}
	must(t, f.Rename("d", "e")) // the mark follows the inode, like a mode bit
	if _, err := f.ReadDir("e"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("ReadDir renamed unreadable = %v", err)
	}
	if _, err := f.Open("e/f"); err != nil {
		t.Errorf("Open of a file in it = %v", err)
	}
	f.Readable("e")
	if _, err := f.ReadDir("e"); err != nil {
		t.Errorf("ReadDir after Readable = %v", err)
	}
}

func TestOutOfRootPanics(t *testing.T) {
	f := newFS(1)
	for _, name := range []string{"../x", "..", "/etc/passwd", "a/../b", "a//b", "./a", "a/", "", "a/.."} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), "out-of-root") {
					t.Errorf("Lstat(%q): recover = %v", name, r)
				}
			}()
			f.Lstat(name)
		})
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Rename to ../x did not panic")
			}
		}()
		f.Rename("a", "../x")
	}()
	if _, err := f.Lstat("a..b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(`"a..b" is a legal name: %v`, err)
	}
}

// TestExchangeIsAtomicAcrossACrash: two names swapped with RenameExchange are, after a power loss, either both
// swapped or both as they were (never one file under both names, never a name lost); once the folder is
// synced, swapped. Both files' bytes were durable before the swap.
func TestExchangeIsAtomicAcrossACrash(t *testing.T) {
	for _, syncDir := range []bool{false, true} {
		got := outcomes(t, 200, func(f *FS) {
			must(t, f.Mkdir("d", 0o755))
			create(t, f, "d/tmp", "new", true)
			create(t, f, "d/target", "old", true)
			must(t, f.SyncDir("d"))
			must(t, f.SyncDir("."))
			must(t, f.RenameExchange("d/tmp", "d/target"))
			if syncDir {
				must(t, f.SyncDir("d"))
			}
		}, func(f *FS) string {
			s, _ := content(f, "d/target")
			tmp, _ := content(f, "d/tmp")
			return s + "/" + tmp
		})
		want := map[string]bool{"new/old": true}
		if !syncDir {
			want["old/new"] = true
		}
		for o := range got {
			if !want[o] {
				t.Errorf("sync %v: outcomes %v: %q is neither swapped nor as before", syncDir, got, o)
			}
		}
		if syncDir && got["new/old"] != 200 {
			t.Errorf("synced exchange: outcomes %v", got)
		}
	}
	f := newFS(1)
	create(t, f, "a", "a", false)
	if err := f.RenameExchange("a", "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("exchange with a missing name: %v, want ErrNotExist", err)
	}
}
