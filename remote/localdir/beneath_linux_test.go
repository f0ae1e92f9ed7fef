//go:build linux

package localdir_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
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

// osfsIn is OSFS over a new temporary folder (closed when the test ends).
func osfsIn(t *testing.T) (string, localdir.FS) {
	t.Helper()
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, localdir.OSFS(r)
}

// TestOSFSFilesReadWriteAndCloseOnce: the files OSFS opens and creates through openat2 (bare descriptors, not
// *os.File) behave as os.File does for tandem's uses: a whole write, reads to io.EOF, the open file's stat, and
// a second Close that reports fs.ErrClosed instead of closing a descriptor number reused meanwhile.
func TestOSFSFilesReadWriteAndCloseOnce(t *testing.T) {
	_, fsys := osfsIn(t)
	body := make([]byte, 300_000) // more than one read
	for i := range body {
		body[i] = byte(i * 7)
	}
	w, err := fsys.Create("f", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write(body); err != nil || n != len(body) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := w.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if fi, err := w.Stat(); err != nil || fi.Size != int64(len(body)) || fi.Mode.Perm() != 0o640 || fi.Name != "f" {
		t.Fatalf("Stat = %+v, %v", fi, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close = %v, want fs.ErrClosed", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Write after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := fsys.Create("f", 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file = %v, want fs.ErrExist", err)
	}
	f, err := fsys.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("ReadAll = %d bytes, %v", len(got), err)
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v, want io.EOF", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing file = %v", err)
	}
}

// TestOSFSFileCloseWhileRead: a file closed while other goroutines read it (an HTTP transport may still read a
// request body after RoundTrip returned) gives them its bytes or fs.ErrClosed, never another file's: after the
// Close the descriptor number is reused by a file of other bytes.
func TestOSFSFileCloseWhileRead(t *testing.T) {
	dir, fsys := osfsIn(t)
	a := bytes.Repeat([]byte{'a'}, 1<<20)
	if err := os.WriteFile(filepath.Join(dir, "a"), a, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), bytes.Repeat([]byte{'b'}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		f, err := fsys.Open("a")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 4)
		for range 4 {
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := f.Read(buf)
					if bytes.ContainsRune(buf[:n], 'b') {
						done <- errors.New("read another file's bytes through a closed descriptor")
						return
					}
					if err != nil {
						if err != io.EOF && !errors.Is(err, fs.ErrClosed) {
							done <- err
							return
						}
						done <- nil
						return
					}
				}
			}()
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		g, err := fsys.Open("b") // likely the descriptor number just freed
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		g.Close()
	}
}
