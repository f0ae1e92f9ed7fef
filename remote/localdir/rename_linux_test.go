package localdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

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
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o, ok := OSFS(r).(FolderOpener)
	if !ok {
		t.Skip("no folder handles on this platform")
	}
	f, err := o.OpenFolder(".")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, ok := f.(*folderFD)
	if !ok {
		t.Skipf("folder is a %T", f)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp"), []byte("tandem's"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = renameInto(lastMoment{fd, filepath.Join(dir, "a")}, "tmp", "a", "a", remote.Precondition{Absent: true})
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("this filesystem has no RENAME_NOREPLACE: %v", err)
	}
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
