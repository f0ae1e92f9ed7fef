package fakefs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/tandemsync/tandem/remote/localdir"
)

var _ localdir.UnnamedFS = (*FS)(nil)

// SetUnnamed(false) makes the FS one without unnamed files (O_TMPFILE: FUSE, NFS, vfat and exFAT have none):
// CreateUnnamed fails with EOPNOTSUPP, so Puts of new files take temp files. On (the default) as ext4, xfs,
// btrfs and tmpfs.
func (f *FS) SetUnnamed(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noUnnamed = !on
}

// CreateUnnamed implements localdir.UnnamedFS as Linux's O_TMPFILE does: a new inode, open for writing, in no
// folder. Closed before LinkNew named it, it is gone (its number free again); a crash takes it whatever was
// synced. The fault hook's op is "tmpfile", with the folder's name.
func (f *FS) CreateUnnamed(dir string, perm fs.FileMode) (localdir.File, error) {
	if err := f.begin("tmpfile", dir); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, d, err := f.resolve(dir)
	switch {
	case err != nil:
	case !d.isDir():
		err = syscall.ENOTDIR
	case f.noUnnamed:
		err = syscall.EOPNOTSUPP
	}
	if err != nil {
		return nil, perr("open", dir, err)
	}
	ino := f.alloc()
	f.do(&op{kind: opNew, ino: ino, mode: perm.Perm(), t: f.clk.Now()})
	f.open[ino]++
	return &file{f: f, ino: ino, name: path.Join(dir, "(unnamed)"), gen: f.gen, write: true, unnamed: true}, nil
}

// LinkNew implements localdir.UnnamedFS as futimens, fstat and Linux's linkat do: the mtime set through the
// file, its stat, then name made to hold it (EEXIST when taken; never a replace). The fault hook's op is
// "link", with name.
func (f *FS) LinkNew(lf localdir.File, name string, mtime time.Time) (localdir.FileInfo, error) {
	h, ok := lf.(*file)
	if !ok || !h.unnamed {
		return localdir.FileInfo{}, &os.LinkError{Op: "link", New: name, Err: errors.ErrUnsupported}
	}
	if err := f.begin("link", name); err != nil {
		return localdir.FileInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lerr := func(err error) error { return &os.LinkError{Op: "link", Old: h.name, New: name, Err: err} }
	n, err := h.usable("link")
	if err != nil {
		return localdir.FileInfo{}, err
	}
	if h.linked {
		return localdir.FileInfo{}, lerr(syscall.EINVAL) // tandem links an unnamed file once
	}
	dino, d, base, err := f.parent(name)
	if err != nil {
		return localdir.FileInfo{}, lerr(err)
	}
	if !mtime.IsZero() {
		f.do(&op{kind: opChtimes, ino: h.ino, mode: n.mode, mtime: mtime, t: f.clk.Now()})
	}
	fi := f.info(name, h.ino, f.live[h.ino])
	if _, taken := d.kids[base]; taken {
		return localdir.FileInfo{}, lerr(syscall.EEXIST)
	}
	f.do(&op{kind: opLinkIn, ino: h.ino, dir: dino, name: base, mode: n.mode, t: f.clk.Now()})
	h.linked = true
	return fi, nil
}
