package localdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

// rootFolder opens dir as a root and its top folder through a folder handle, closed with the test.
func rootFolder(t *testing.T, dir string) *folderFD {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	o, ok := OSFS(r).(FolderOpener)
	if !ok {
		t.Skip("no folder handles on this platform")
	}
	f, err := o.OpenFolder(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fd, ok := f.(*folderFD)
	if !ok {
		t.Skipf("folder is a %T", f)
	}
	return fd
}

// needRenameFlags skips the test where the filesystem under fd lacks RENAME_NOREPLACE or RENAME_EXCHANGE:
// renameInto then falls back to a check and a plain rename by design, and never says so in its result.
func needRenameFlags(t *testing.T, dir string, fd *folderFD) {
	t.Helper()
	probes := []string{".probe-a", ".probe-b"}
	for _, n := range probes {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, n := range probes {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}()
	if err := fd.RenameExchange(probes[0], probes[1]); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("this filesystem has no RENAME_EXCHANGE: %v", err)
	}
	if err := fd.RenameNoReplace(probes[0], probes[1]); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("this filesystem has no RENAME_NOREPLACE: %v", err)
	}
}

// replaceSetup makes a folder holding "a" (the file a Put replaces) and "tmp" (the Put's complete temp file)
// and returns the folder and both stats.
func replaceSetup(t *testing.T) (dir string, fd *folderFD, afi, tfi FileInfo) {
	t.Helper()
	dir = t.TempDir()
	fd = rootFolder(t, dir)
	needRenameFlags(t, dir, fd)
	for n, b := range map[string]string{"a": "the old version", "tmp": "tandem's"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if afi, err = fd.Lstat("a"); err != nil {
		t.Fatal(err)
	}
	if tfi, err = fd.Lstat("tmp"); err != nil {
		t.Fatal(err)
	}
	return dir, fd, afi, tfi
}

// lastMoment is a folder where the user creates the target file at the last moment before each rename, after
// every check a Put made: the window between a check and a plain rename.
type lastMoment struct {
	*folderFD
	user string // the full path of the target
}

func (l lastMoment) Rename(from, to string) error {
	if err := os.WriteFile(l.user, []byte("the user's"), 0o644); err != nil {
		return err
	}
	return l.folderFD.Rename(from, to)
}

func (l lastMoment) RenameNoReplace(from, to string) error {
	if err := os.WriteFile(l.user, []byte("the user's"), 0o644); err != nil {
		return err
	}
	return l.folderFD.RenameNoReplace(from, to)
}

// TestPutRenameNeverReplacesAFileCreatedAtTheLastMoment: a Put of a new file ("nothing there") whose target the
// user creates after the Put's checks does not replace it: the rename itself refuses (RENAME_NOREPLACE), the
// Put is a conflict and the user's file stays. With a plain rename (the fallback) the user's file was lost.
func TestPutRenameNeverReplacesAFileCreatedAtTheLastMoment(t *testing.T) {
	dir := t.TempDir()
	fd := rootFolder(t, dir)
	needRenameFlags(t, dir, fd)
	if err := os.WriteFile(filepath.Join(dir, "tmp"), []byte("tandem's"), 0o600); err != nil {
		t.Fatal(err)
	}
	tfi, err := fd.Lstat("tmp")
	if err != nil {
		t.Fatal(err)
	}
	_, err = renameInto(lastMoment{fd, filepath.Join(dir, "a")}, "tmp", "a", "a", remote.Precondition{Absent: true}, tfi)
	if !errors.Is(err, remote.ErrConflict) {
		t.Errorf("rename over a file created at the last moment: %v, want a conflict", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(got) != "the user's" {
		t.Errorf("the user's file holds %q (%v)", got, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tmp")); err != nil {
		t.Errorf("the temp file is gone (%v): the caller drops it", err)
	}
}

// editAtSwap is a folder where the user changes the target file at the last moment before the first swap of
// names, after every check a Put made: in place (a rewrite of the same inode) or by an editor's save (a new
// file renamed over it).
type editAtSwap struct {
	*folderFD
	user     string // the full path of the target
	inPlace  bool
	swaps    *int
	failBack bool // the swap back fails
}

func (e editAtSwap) edit() error {
	if e.inPlace {
		return os.WriteFile(e.user, []byte("the user's edit"), 0o644)
	}
	side := e.user + ".save"
	if err := os.WriteFile(side, []byte("the user's edit"), 0o644); err != nil {
		return err
	}
	return os.Rename(side, e.user)
}

func (e editAtSwap) Rename(from, to string) error {
	if err := e.edit(); err != nil {
		return err
	}
	return e.folderFD.Rename(from, to)
}

func (e editAtSwap) RenameExchange(a, b string) error {
	if *e.swaps++; *e.swaps == 1 {
		if err := e.edit(); err != nil {
			return err
		}
	} else if e.failBack {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: errors.New("simulated I/O error")}
	}
	return e.folderFD.RenameExchange(a, b)
}

// TestPutReplaceNeverDestroysAChangeMadeAtTheLastMoment: a Put that replaces a file (a revision precondition)
// whose target the user changes after the Put's last check does not destroy the change: the swap takes the
// changed file out, the check after it sees the change, the file goes back and the Put is a conflict. With a
// plain rename (the fallback) the user's edit was lost. Without a change, the old file comes out at the temp
// name for the caller to remove.
func TestPutReplaceNeverDestroysAChangeMadeAtTheLastMoment(t *testing.T) {
	for _, inPlace := range []bool{true, false} {
		for _, change := range []bool{true, false} {
			t.Run(fmt.Sprintf("in place %v, change %v", inPlace, change), func(t *testing.T) {
				dir, fd, afi, tfi := replaceSetup(t)
				var folder Folder = fd
				swaps := 0
				if change {
					folder = editAtSwap{fd, filepath.Join(dir, "a"), inPlace, &swaps, false}
				}
				left, err := renameInto(folder, "tmp", "a", "a", remote.Precondition{Rev: rev(afi)}, tfi)
				read := func(n string) string {
					b, err := os.ReadFile(filepath.Join(dir, n))
					if err != nil {
						return err.Error()
					}
					return string(b)
				}
				if !change {
					if err != nil || left != "tmp.swap" || read("a") != "tandem's" || read(left) != "the old version" {
						t.Fatalf("replace: left %q, %v; a holds %q, the swap name %q", left, err, read("a"), read("tmp.swap"))
					}
					return
				}
				if !errors.Is(err, remote.ErrConflict) || left != "tmp.swap" {
					t.Errorf("replace of a file changed at the last moment: left %q, %v; want a conflict", left, err)
				}
				if got := read("a"); got != "the user's edit" {
					t.Errorf("the user's file holds %q", got)
				}
				if got := read("tmp.swap"); got != "tandem's" {
					t.Errorf("the swap name holds %q, want tandem's own file (the caller drops it)", got)
				}
			})
		}
	}
}

// TestReplaceKeepsTheChangeWhenItCannotSwapBack: the swap took out a change made at the last moment and the swap
// back fails: the changed file must not stay under the swap name (which the caller drops): it gets a visible
// name beside the target, and the Put is a conflict.
func TestReplaceKeepsTheChangeWhenItCannotSwapBack(t *testing.T) {
	dir, fd, afi, tfi := replaceSetup(t)
	swaps := 0
	left, err := renameInto(editAtSwap{fd, filepath.Join(dir, "a"), false, &swaps, true}, "tmp", "a", "a",
		remote.Precondition{Rev: rev(afi)}, tfi)
	if !errors.Is(err, remote.ErrConflict) || left != "" {
		t.Fatalf("left %q, %v; want a conflict and nothing to drop", left, err)
	}
	kept, rerr := os.ReadFile(filepath.Join(dir, "a (kept by tandem 1)"))
	if rerr != nil || string(kept) != "the user's edit" {
		t.Errorf("kept file: %q, %v", kept, rerr)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tmp.swap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the swap name still holds a file (%v)", err)
	}
}

// takeKeptName is editAtSwap whose first rename to a "kept by tandem" name finds the user's own file made under
// that very name at the last moment (after any check).
type takeKeptName struct {
	editAtSwap
	dir   string
	taken *bool
}

func (k takeKeptName) take(to string) error {
	if *k.taken || !strings.Contains(to, "(kept by tandem") {
		return nil
	}
	*k.taken = true
	return os.WriteFile(filepath.Join(k.dir, to), []byte("the user's own file"), 0o644)
}

func (k takeKeptName) Rename(from, to string) error {
	if err := k.take(to); err != nil {
		return err
	}
	return k.folderFD.Rename(from, to)
}

func (k takeKeptName) RenameNoReplace(from, to string) error {
	if err := k.take(to); err != nil {
		return err
	}
	return k.folderFD.RenameNoReplace(from, to)
}

// TestKeepAsideNeverReplacesANameTakenAtTheLastMoment: the visible name a raced change is kept under is taken by
// the rename itself; a file the user made under that name after a check stays (a check and a plain rename lost
// it), and the change goes to the next free name.
func TestKeepAsideNeverReplacesANameTakenAtTheLastMoment(t *testing.T) {
	dir, fd, afi, tfi := replaceSetup(t)
	swaps, taken := 0, false
	k := takeKeptName{editAtSwap{fd, filepath.Join(dir, "a"), true, &swaps, true}, dir, &taken}
	left, err := renameInto(k, "tmp", "a", "a", remote.Precondition{Rev: rev(afi)}, tfi)
	if !errors.Is(err, remote.ErrConflict) || left != "" || !taken {
		t.Fatalf("left %q, %v (name taken: %v); want a conflict and nothing to drop", left, err, taken)
	}
	for name, want := range map[string]string{"a (kept by tandem 1)": "the user's own file", "a (kept by tandem 2)": "the user's edit"} {
		if got, rerr := os.ReadFile(filepath.Join(dir, name)); rerr != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, rerr, want)
		}
	}
}
