//go:build linux

package localdir_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandemsync/tandem/remote/localdir"
)

// TestOSFSRefusesSymlinksOnThePath: with openat2 every operation resolves its whole path beneath the root and
// refuses a symlink anywhere on it, one inside the root included (os.Root would follow that one), so nothing
// is read, created, renamed or removed through a folder that was swapped for a symlink. The link itself is
// still described by Lstat.
func TestOSFSRefusesSymlinksOnThePath(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if fd, err := unix.Openat2(int(d.Fd()), ".", &unix.OpenHow{Flags: unix.O_PATH, Resolve: unix.RESOLVE_BENEATH}); err != nil {
		t.Skipf("openat2 not available here (%v): os.Root's walk is used instead", err)
	} else {
		unix.Close(fd)
	}
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "a"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a", "f"), []byte("inside"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644))
	must(os.Symlink("a", filepath.Join(dir, "in")))
	must(os.Symlink(outside, filepath.Join(dir, "out")))
	r, err := os.OpenRoot(dir)
	must(err)
	defer r.Close()
	fsys := localdir.OSFS(r)

	if fi, err := fsys.Lstat("in"); err != nil || !fi.IsSymlink() {
		t.Errorf("Lstat(in) = %+v, %v: want the link described", fi, err)
	}
	if fi, err := fsys.Lstat("a/f"); err != nil || fi.Size != 6 {
		t.Errorf("Lstat(a/f) = %+v, %v", fi, err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !errors.Is(err, syscall.ELOOP) {
			t.Errorf("%s through a symlink: %v, want ELOOP", what, err)
		}
	}
	for _, via := range []string{"in", "out"} {
		_, err := fsys.Lstat(via + "/f")
		refused("Lstat "+via, err)
		_, err = fsys.Open(via + "/secret")
		refused("Open "+via, err)
		_, err = fsys.Create(via+"/new", 0o600)
		refused("Create "+via, err)
		refused("Mkdir "+via, fsys.Mkdir(via+"/d", 0o755))
		refused("Rename into "+via, fsys.Rename("a/f", via+"/g"))
		refused("Remove "+via, fsys.Remove(via+"/f"))
		refused("Chtimes "+via, fsys.Chtimes(via+"/f", time.Unix(1, 0)))
		if err := fsys.SyncDir(via); err == nil {
			t.Errorf("SyncDir of the link %s succeeded: it must not follow it", via)
		}
	}
	_, err = fsys.Open("in")
	refused("Open of the link itself", err)
	for _, p := range []string{filepath.Join(dir, "a", "new"), filepath.Join(dir, "a", "g"), filepath.Join(outside, "new")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created through a symlink", p)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "f")); err != nil || string(b) != "inside" {
		t.Errorf("a/f = %q, %v: touched through a symlink", b, err)
	}
	// The ordinary operations still work.
	f, err := fsys.Create("a/new", 0o600)
	must(err)
	must(f.Close())
	must(fsys.Rename("a/new", "a/renamed"))
	must(fsys.Chtimes("a/renamed", time.Unix(1000, 0)))
	if fi, err := fsys.Lstat("a/renamed"); err != nil || fi.ModTime.Unix() != 1000 || fi.Mode.Perm() != 0o600 {
		t.Errorf("a/renamed = %+v, %v", fi, err)
	}
	must(fsys.Mkdir("a/d", 0o755))
	must(fsys.SyncDir("a/d"))
	must(fsys.Remove("a/d"))
	must(fsys.Remove("a/renamed"))
	if err := fsys.Remove("a/nothing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove of a missing name = %v, want not-exist", err)
	}
}
