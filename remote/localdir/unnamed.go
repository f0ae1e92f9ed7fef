package localdir

import (
	"errors"
	"io/fs"
	"path"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// unnamedProbe is where canUnnamed tries a link of an unnamed file: tandem's own folder, never synced.
const unnamedProbe = remote.ReservedDir + "/unnamed-probe"

// canUnnamed reports whether Puts of new files on this root may write them unnamed and link them in (Unnamer).
// Creating an unnamed file shows at once whether its filesystem can; linking one needs /proc or a capability
// (linkat's AT_EMPTY_PATH) that a process in a container may lack, and that only trying tells, with the file
// already written. So a link is tried once, in tandem's folder, and the answer kept; until the root has its
// .tandem folder it is false.
func (d *Dir) canUnnamed() bool {
	if v := d.unnamed.Load(); v != 0 {
		return v == 1
	}
	d.unnamedMu.Lock()
	defer d.unnamedMu.Unlock()
	if v := d.unnamed.Load(); v != 0 {
		return v == 1
	}
	if fi, err := d.fs.Lstat(remote.ReservedDir); err != nil || !fi.IsDir() {
		return false
	}
	err := d.probeUnnamed()
	d.lg.Debug("unnamed files probe", zap.Bool("link", err == nil), zap.Error(err))
	switch {
	case err == nil:
		d.unnamed.Store(1)
	case errors.Is(err, errors.ErrUnsupported) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		d.unnamed.Store(2) // no O_TMPFILE here, or no way to link (no /proc, no capability)
	default:
		// A passing fault (a full disk, an I/O error): the next new file tries again, this one takes a temp file.
	}
	return err == nil
}

// probeUnnamed creates an unnamed file in tandem's folder, links it in as unnamedProbe and removes it.
func (d *Dir) probeUnnamed() error {
	dir, err := d.openFolder(remote.ReservedDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	u, ok := dir.(Unnamer)
	if !ok {
		return errors.ErrUnsupported
	}
	clean := func() error {
		if err := d.fs.Remove(unnamedProbe); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := clean(); err != nil { // one a crash left
		return err
	}
	f, err := u.CreateUnnamed(0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := u.LinkNew(f, path.Base(unnamedProbe), time.Time{}); err != nil {
		return err
	}
	return clean()
}

// openFolder opens folder dn (a name under the root) for operations on its entries: a handle where the FS holds
// folders open (FolderOpener), else the folder's path.
func (d *Dir) openFolder(dn string) (Folder, error) {
	o, ok := d.fs.(FolderOpener)
	if !ok {
		return pathFolder{d.fs, dn}, nil
	}
	return o.OpenFolder(dn)
}
