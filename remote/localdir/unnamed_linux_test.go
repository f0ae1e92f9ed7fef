//go:build linux

package localdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestFolderFDUnnamedOnThisDisk: the production Unnamer on the test's own filesystem. An unnamed file has no
// name until linked and none after it was closed unlinked; the link sets the mtime, names exactly that inode
// and never replaces (the user's file stays); the link through /proc/self/fd (every unprivileged process's
// way) works as well as AT_EMPTY_PATH.
func TestFolderFDUnnamedOnThisDisk(t *testing.T) {
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, ok := openBeneath(r).(*beneath)
	if !ok {
		t.Skip("no openat2 here")
	}
	folder, err := b.OpenFolder(".")
	if err != nil {
		t.Fatal(err)
	}
	defer folder.Close()
	u := folder.(Unnamer)
	names := func() []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	f, err := u.CreateUnnamed(0o600)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no O_TMPFILE on this filesystem: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("content")); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 0 {
		t.Fatalf("names before the link: %q", got)
	}
	mtime := time.Date(2021, 2, 3, 4, 5, 6, 7, time.UTC)
	fi, err := u.LinkNew(f, "a", mtime)
	if err != nil {
		t.Fatal(err)
	}
	on, err := os.Lstat(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if !on.ModTime().Equal(mtime) || !fi.ModTime.Equal(mtime) || fi.Size != 7 || fi.Name != "a" || fi.Ino != on.Sys().(*syscall.Stat_t).Ino {
		t.Errorf("LinkNew's stat %+v, on disk mtime %v", fi, on.ModTime())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a")); string(got) != "content" {
		t.Errorf("a = %q", got)
	}

	// A taken name: EEXIST, the file there untouched; closed, the unnamed file leaves nothing.
	g, err := u.CreateUnnamed(0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("ours")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.LinkNew(g, "a", time.Time{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("LinkNew onto a taken name = %v, want EEXIST", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a")); string(got) != "content" {
		t.Errorf("a = %q after the refused link", got)
	}
	g.Close()
	if got := names(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("names after an unlinked file was closed: %q", got)
	}

	// The /proc way.
	h, err := u.CreateUnnamed(0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Write([]byte("via proc")); err != nil {
		t.Fatal(err)
	}
	ff := h.(*fdFile)
	if err := linkDescriptor(ff.fd, folder.(*folderFD).fd, "b", true); err != nil {
		t.Fatalf("link through /proc: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b")); string(got) != "via proc" {
		t.Errorf("b = %q", got)
	}
}
