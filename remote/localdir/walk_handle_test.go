//go:build linux

package localdir_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
)

// countingFS counts the path-based lookups a walk makes through an FS, passing folder handles through.
type countingFS struct {
	localdir.FS
	lstats, readdirs atomic.Int64
}

func (c *countingFS) Lstat(name string) (localdir.FileInfo, error) {
	c.lstats.Add(1)
	return c.FS.Lstat(name)
}

func (c *countingFS) ReadDir(name string) ([]string, error) {
	c.readdirs.Add(1)
	return c.FS.ReadDir(name)
}

func (c *countingFS) OpenDir(name string) (localdir.DirHandle, error) {
	l, ok := c.FS.(localdir.DirLister)
	if !ok {
		return nil, errors.New("the FS lists no folder handles")
	}
	return l.OpenDir(name)
}

// TestWalkStatsThroughFolderHandles: a walk of the real FS resolves no path per child (os.Root opens and closes
// every component of each path it resolves: 13 openat calls per file in a no-change pass before this). The
// children are listed and stat'ed through the open folder, and the result is the same walk.
func TestWalkStatsThroughFolderHandles(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for _, d := range []string{"a", "a/b", "a/b/c", "z"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	for _, d := range []string{"", "a/", "a/b/", "a/b/c/", "z/"} {
		for _, f := range []string{"f1", "f2", "f3"} {
			if err := os.WriteFile(filepath.Join(dir, d+f), []byte(d+f), 0o644); err != nil {
				t.Fatal(err)
			}
			want = append(want, d+f)
		}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfs := &countingFS{FS: localdir.OSFS(r)}
	d := localdir.New(zaptest.NewLogger(t), cfs, localdir.Options{})
	var got []string
	err = d.Walk(context.Background(), remote.Root, func(e remote.Entry) error {
		got = append(got, string(e.Path))
		fi, err := os.Lstat(filepath.Join(dir, string(e.Path)))
		if err != nil {
			return err
		}
		st, err := d.Stat(context.Background(), e.Path) // by path, as preconditions and Put see the file
		if err != nil {
			return err
		}
		if st.Rev != e.Rev || st.ID != e.ID {
			t.Errorf("%s: walk rev %q id %q, Stat rev %q id %q", e.Path, e.Rev, e.ID, st.Rev, st.ID)
		}
		if !e.Dir && (e.Size != fi.Size() || !e.ModTime.Equal(fi.ModTime()) || e.Rev == "") {
			t.Errorf("%s: size %d mtime %v rev %q, want size %d mtime %v", e.Path, e.Size, e.ModTime, e.Rev, fi.Size(), fi.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b string) int {
		return strings.Compare(strings.ReplaceAll(a, "/", "\x00"), strings.ReplaceAll(b, "/", "\x00"))
	})
	if !slices.Equal(got, want) {
		t.Errorf("walk = %q\nwant %q", got, want)
	}
	cfs.lstats.Store(0)
	err = d.Walk(context.Background(), remote.Root, func(remote.Entry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// One Lstat: the walk's own folder, checked before it is opened.
	if n, m := cfs.lstats.Load(), cfs.readdirs.Load(); n > 1 || m > 0 {
		t.Errorf("walk of %d entries made %d Lstat and %d ReadDir calls by path, want at most 1 and 0", len(want), n, m)
	}
}

// TestFolderHandleNeverFollowsSymlink: a folder swapped for a symlink after its parent was listed is not
// followed, inside or out of the root; the walk takes it as unreadable, which deletes nothing.
func TestFolderHandleNeverFollowsSymlink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{outside, "out"}, {"in", "inlink"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := localdir.OSFS(r).(localdir.DirLister).OpenDir(".")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, n := range []string{"out", "inlink", "..", "in/..", "missing"} {
		if sub, err := h.OpenSub(n); err == nil {
			sub.Close()
			t.Errorf("OpenSub(%q) succeeded", n)
		}
	}
	sub, err := h.OpenSub("in")
	if err != nil {
		t.Fatalf("OpenSub(in): %v", err)
	}
	sub.Close()
}

// putCountingFS counts the path-based calls a Put makes, passing folder handles through.
type putCountingFS struct {
	localdir.FS
	byPath atomic.Int64
}

func (c *putCountingFS) Lstat(name string) (localdir.FileInfo, error) {
	c.byPath.Add(1)
	return c.FS.Lstat(name)
}

func (c *putCountingFS) Create(name string, perm os.FileMode) (localdir.File, error) {
	c.byPath.Add(1)
	return c.FS.Create(name, perm)
}

func (c *putCountingFS) Rename(from, to string) error {
	c.byPath.Add(1)
	return c.FS.Rename(from, to)
}

func (c *putCountingFS) OpenFolder(name string) (localdir.Folder, error) {
	return c.FS.(localdir.FolderOpener).OpenFolder(name)
}

// TestPutThroughFolderHandle: a Put on the real FS resolves its folder once and makes its stat, create, mtime,
// rename and stat again relative to it (eight path resolutions per file before; a first sync of 10,000 files
// spent a sixth of its CPU in them); the folder fsyncs stay by path. A missing parent, a file in the parent's
// place and a symlinked parent fail as before.
func TestPutThroughFolderHandle(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "a", "link")); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfs := &putCountingFS{FS: localdir.OSFS(r)}
	d := localdir.New(zaptest.NewLogger(t), cfs, localdir.Options{})
	ctx := context.Background()
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, p := range []remote.Path{"top", "a/b/new", "a/b/new"} { // the last one replaces a file
		cfs.byPath.Store(0)
		body := "content of " + string(p)
		e, err := d.Put(ctx, p, strings.NewReader(body), int64(len(body)), mtime, remote.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, string(p)))
		fi, serr := os.Lstat(filepath.Join(dir, string(p)))
		if err != nil || serr != nil || string(got) != body || !fi.ModTime().Equal(mtime) || e.Size != int64(len(body)) {
			t.Fatalf("%s: holds %q (%v), mtime %v (%v), entry %+v", p, got, err, fi.ModTime(), serr, e)
		}
		if n := cfs.byPath.Load(); n > 0 {
			t.Errorf("Put %s made %d stat, create or rename calls by path, want none", p, n)
		}
	}
	for _, c := range []struct {
		p    remote.Path
		want error
	}{{"a/none/x", remote.ErrNotFound}, {"a/file/x", nil}, {"a/link/x", nil}} {
		_, err := d.Put(ctx, c.p, strings.NewReader("x"), 1, time.Time{}, remote.Precondition{})
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("Put %s = %v, want %v", c.p, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a Put through a symlinked folder wrote outside the root: %v", ents)
	}
}

// TestSyncOfAFifoReturns: Sync opens its file without a stat first; a fifo the user put at the path since the
// upload must fail the Sync, not block the pass until a writer opens the fifo.
func TestSyncOfAFifoReturns(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "f"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := localdir.Open(zaptest.NewLogger(t), dir, localdir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Blocks (until go test's timeout) where the open waits for a writer.
	if err := d.Sync(context.Background(), "f"); err == nil {
		t.Fatal("Sync of a fifo succeeded")
	}
}

// renamingReader renames a folder once its first bytes were read: a user's mv in the middle of a Put.
type renamingReader struct {
	r        io.Reader
	from, to string
	done     bool
	err      error
}

func (r *renamingReader) Read(b []byte) (int, error) {
	if !r.done {
		r.done = true
		r.err = os.Rename(r.from, r.to)
	}
	return r.r.Read(b)
}

// TestPutFollowsAFolderRenamedMidway: the folder a Put writes into is renamed while the body streams. The Put's
// steps stay in the open folder, so the file lands in it under its new name, never elsewhere, and no temp file
// is left; a lone Put makes its folder durable by path, finds it gone and reports the failure, so the engine
// records nothing at the old path.
func TestPutFollowsAFolderRenamedMidway(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := localdir.Open(zaptest.NewLogger(t), dir, localdir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	body := "streamed while the folder moved"
	rr := &renamingReader{r: strings.NewReader(body), from: filepath.Join(dir, "d"), to: filepath.Join(dir, "e")}
	_, err = d.Put(context.Background(), "d/f", rr, int64(len(body)), time.Time{}, remote.Precondition{Absent: true})
	if rr.err != nil {
		t.Fatal(rr.err)
	}
	if err == nil {
		t.Fatal("Put into a folder renamed midway reported success with nothing at d/f")
	}
	if got, rerr := os.ReadFile(filepath.Join(dir, "e", "f")); rerr != nil || string(got) != body {
		t.Fatalf("e/f holds %q (%v), want the body", got, rerr)
	}
	var left []string
	_ = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(de.Name(), remote.TempSuffix) {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("temp files left: %q", left)
	}
}

// noFollowCounting is countingFS with the real FS's one-resolution open passed through.
type noFollowCounting struct{ countingFS }

func (c *noFollowCounting) OpenNoFollow(name string) (localdir.File, error) {
	return c.FS.(localdir.NoFollowOpener).OpenNoFollow(name)
}

// TestOpenResolvesARegularFileOnce: Open (and HashOf) of a regular file make no Lstat before the open, one walk of
// the path per file uploaded instead of two; whatever else is there takes the Lstat way and gets its error: a
// symlink and a fifo are unavailable (the fifo without blocking the open), a folder is no file, a symlinked
// folder on the way is not followed, a missing file is not found.
func TestOpenResolvesARegularFileOnce(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"d", "d/sub"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "d", "ln")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(dir, "sl")); err != nil { // inside the root: os.Root would follow it
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "d", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	c := &noFollowCounting{countingFS{FS: localdir.OSFS(root)}}
	d := localdir.New(zaptest.NewLogger(t), c, localdir.Options{})
	ctx := context.Background()

	rc, ent, err := d.Open(ctx, "d/f")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "hello" || ent.Size != 5 || ent.Rev == "" {
		t.Fatalf("Open(d/f) read %q, %v, entry %+v", b, err, ent)
	}
	if h, _, err := d.HashOf(ctx, "d/f", "sha256"); err != nil || h.Hex != sha("hello") {
		t.Fatalf("HashOf(d/f) = %v, %v", h, err)
	}
	if n := c.lstats.Load(); n != 0 {
		t.Errorf("Open and HashOf of a regular file made %d Lstat calls, want 0", n)
	}
	for _, tc := range []struct {
		p    remote.Path
		want error // nil: only an error
	}{
		{"d/ln", remote.ErrUnavailable},
		{"d/fifo", remote.ErrUnavailable},
		{"d/sub", nil},
		{"sl/f", nil},
		{"d/nope", remote.ErrNotFound},
	} {
		before := c.lstats.Load()
		rc, _, err := d.Open(ctx, tc.p)
		if err == nil {
			rc.Close()
			t.Errorf("Open(%s) succeeded", tc.p)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Open(%s) = %v, want %v", tc.p, err, tc.want)
		}
		if c.lstats.Load() == before {
			t.Errorf("Open(%s) failed without the Lstat that says why", tc.p)
		}
	}
}
