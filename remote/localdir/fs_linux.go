//go:build linux

package localdir

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var _ DirLister = osFS{}

// OpenDir opens folder name through the root (os.Root resolves it inside the root), then lists and stats
// relative to the open folder: a walk costs one open per folder and one fstatat per child, where a path-based
// Lstat through os.Root opens and closes every component of the path (a no-change pass over 2,000 files made
// 27,000 openat calls).
func (o osFS) OpenDir(name string) (DirHandle, error) {
	var f *os.File
	var err error
	if o.fast != nil {
		f, err = o.fast.OpenDir(name)
	} else {
		f, err = o.r.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	}
	if err != nil {
		return nil, err
	}
	return &fdDir{f: f, fd: int(f.Fd())}, nil
}

// fdDir is an open folder. Children are reached only by names read from it and opened with O_NOFOLLOW, so a
// walk through fdDirs never leaves the root by a symlink (a folder swapped for a symlink after it was listed
// fails to open instead of being followed).
type fdDir struct {
	f  *os.File
	fd int
}

func (d *fdDir) Close() error { return d.f.Close() }

func (d *fdDir) Entries() ([]DirEntry, error) {
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]DirEntry, len(names))
	for i, n := range names {
		out[i].Name = n
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(d.fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			out[i].Err = &fs.PathError{Op: "fstatat", Path: n, Err: err}
			continue
		}
		out[i].Info = fromStat(n, &st)
	}
	return out, nil
}

func (d *fdDir) OpenSub(name string) (DirHandle, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return nil, &fs.PathError{Op: "openat", Path: name, Err: fs.ErrInvalid}
	}
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = errors.New("is a symlink now (not followed)")
		}
		return nil, &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	return &fdDir{f: os.NewFile(uintptr(fd), name), fd: fd}, nil
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// fromStat is fromOS for a raw stat: the same mode bits and times as os.Lstat reports, so fingerprints taken
// either way compare equal.
func fromStat(name string, st *unix.Stat_t) FileInfo {
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return FileInfo{Name: name, Mode: mode, Size: st.Size, ModTime: time.Unix(st.Mtim.Unix()), CTime: st.Ctim.Nano(),
		Dev: uint64(st.Dev), Ino: st.Ino}
}
