//go:build linux

package localdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// beneath resolves every path in one openat2 call with RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS (Linux 5.6): the
// kernel walks the whole path, refuses any component that is a symlink or leads out of the root, and a rename
// racing the walk makes the call fail (EAGAIN, retried) instead of escaping. os.Root reaches the same containment
// by opening and closing every component of the path in turn (a first sync of 2,000 files made 156,000 openat
// calls, 78 per file, most of its system time); this costs one call per path. Unlike os.Root it also refuses a
// symlink to a place inside the root, which tandem never follows anyway (a symlink is skipped, not synced).
type beneath struct {
	root *os.File // kept open: its fd anchors every resolution
	fd   int
}

// openBeneath returns nil where openat2 is not available (a kernel before 5.6, or a seccomp filter that refuses
// it, as some container runtimes do): os.Root's component walk is used then.
func openBeneath(r *os.Root) pathOps {
	f, err := r.Open(".")
	if err != nil {
		return nil
	}
	b := &beneath{root: f, fd: int(f.Fd())}
	fd, err := b.open(".", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		f.Close()
		return nil
	}
	unix.Close(fd)
	return b
}

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

func (b *beneath) open(name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(b.fd, name, &how)
		// EAGAIN: a rename elsewhere in the tree raced the lookup; the kernel asks to try again.
		if err == unix.EINTR || (err == unix.EAGAIN && tries < 64) {
			continue
		}
		if errors.Is(err, unix.ELOOP) {
			err = errSymlinkOnPath
		}
		return fd, err
	}
}

// errSymlinkOnPath: openat2 met a symlink on the path (ELOOP); it still reads as ELOOP to errors.Is.
var errSymlinkOnPath = &symlinkErr{}

type symlinkErr struct{}

func (*symlinkErr) Error() string        { return "a symlink is on the path (not followed)" }
func (*symlinkErr) Is(target error) bool { return target == unix.ELOOP }

// at opens name's folder (O_PATH) and runs fn on it with name's last component.
func (b *beneath) at(op, name string, fn func(dirfd int, base string) error) error {
	dir, base := path.Split(name)
	dfd, err := b.open(or(dir, "."), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	defer unix.Close(dfd)
	if err := ignoringEINTR(func() error { return fn(dfd, base) }); err != nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	return nil
}

func (b *beneath) file(op, name string, flags int, mode uint32) (*os.File, error) {
	fd, err := b.open(name, flags, mode)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func (b *beneath) Lstat(name string) (FileInfo, error) {
	var st unix.Stat_t
	if name == "." {
		if err := ignoringEINTR(func() error { return unix.Fstat(b.fd, &st) }); err != nil {
			return FileInfo{}, &fs.PathError{Op: "lstat", Path: name, Err: err}
		}
		return fromStat(".", &st), nil
	}
	err := b.at("lstat", name, func(dfd int, base string) error {
		return unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return FileInfo{}, err
	}
	return fromStat(path.Base(name), &st), nil
}

// Open opens name for reading, following no symlink (b.open). O_NONBLOCK: a fifo (swapped in after the caller's
// check, or opened without one: Sync, OpenNoFollow) would otherwise block the open until some writer came;
// reads of a regular file ignore it. O_NOCTTY: a terminal device there never becomes the daemon's.
func (b *beneath) Open(name string) (File, error) {
	return b.rawFile("open", name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
}

func (b *beneath) Create(name string, perm fs.FileMode) (File, error) {
	return b.rawFile("open", name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, uint32(perm.Perm()))
}

func (b *beneath) rawFile(op, name string, flags int, mode uint32) (File, error) {
	fd, err := b.open(name, flags, mode)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return &fdFile{fd: fd, name: name}, nil
}

func (b *beneath) OpenDir(name string) (*os.File, error) {
	return b.file("open", name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
}

func (b *beneath) Mkdir(name string, perm fs.FileMode) error {
	return b.at("mkdir", name, func(dfd int, base string) error { return unix.Mkdirat(dfd, base, uint32(perm.Perm())) })
}

// Remove is os.Remove's rule relative to the folder: unlink, else rmdir, and the unlink's error unless the
// rmdir's says more.
func (b *beneath) Remove(name string) error {
	return b.at("remove", name, func(dfd int, base string) error {
		err := unix.Unlinkat(dfd, base, 0)
		if err == nil {
			return nil
		}
		err1 := unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR)
		if err1 == nil {
			return nil
		}
		if err1 != unix.ENOTDIR {
			err = err1
		}
		return err
	})
}

func (b *beneath) Rename(from, to string) error { return b.rename(from, to, 0) }

var _ NoReplacer = (*beneath)(nil)

func (b *beneath) RenameNoReplace(from, to string) error {
	return b.rename(from, to, unix.RENAME_NOREPLACE)
}

var _ Exchanger = (*beneath)(nil)

func (b *beneath) RenameExchange(a, c string) error {
	return b.rename(a, c, unix.RENAME_EXCHANGE)
}

func (b *beneath) rename(from, to string, flags uint) error {
	fdir, fbase := path.Split(from)
	tdir, tbase := path.Split(to)
	fail := func(err error) error { return &os.LinkError{Op: "rename", Old: from, New: to, Err: err} }
	ffd, err := b.open(or(fdir, "."), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(ffd)
	tfd, err := b.open(or(tdir, "."), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(tfd)
	if err := ignoringEINTR(func() error { return unix.Renameat2(ffd, fbase, tfd, tbase, flags) }); err != nil {
		return fail(noReplaceErr(flags, err))
	}
	return nil
}

// noReplaceErr is err of a rename with flags, the lack of RENAME_NOREPLACE or RENAME_EXCHANGE (a filesystem
// without it, a kernel before 3.15) as errors.ErrUnsupported: the caller then checks and renames.
func noReplaceErr(flags uint, err error) error {
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	switch {
	case flags&unix.RENAME_NOREPLACE != 0:
		return fmt.Errorf("rename without replacing: %w (%w)", errors.ErrUnsupported, err)
	case flags&unix.RENAME_EXCHANGE != 0:
		return fmt.Errorf("rename exchanging: %w (%w)", errors.ErrUnsupported, err)
	}
	return err
}

// SyncFS is syncfs(2) on the root's descriptor, opened with the FS: Linux reports to it every write-back error
// of the filesystem since then (FSSyncer).
func (b *beneath) SyncFS() error {
	if err := ignoringEINTR(func() error { return unix.Syncfs(b.fd) }); err != nil {
		return &fs.PathError{Op: "syncfs", Path: ".", Err: err}
	}
	return nil
}

// syncFSReportsErrors: syncfs reports write-back errors from Linux 5.8 on; before, it succeeds whatever was lost,
// so the FS does not offer it.
func syncFSReportsErrors() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || (major == 5 && minor >= 8)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Chtimes sets the mtime and leaves the access time alone, on the link itself (never a symlink's target).
func (b *beneath) Chtimes(name string, mtime time.Time) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	return b.at("chtimes", name, func(dfd int, base string) error {
		return unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// OpenFolder opens folder name (O_PATH: only for the *at calls below) for a sequence of operations on its
// entries, each one name relative to it: no path is resolved again, and no entry name can lead out of it.
func (b *beneath) OpenFolder(name string) (Folder, error) {
	fd, err := b.open(name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &folderFD{fd: fd, name: name}, nil
}

type folderFD struct {
	fd   int
	name string
}

func (f *folderFD) err(op, base string, err error) error {
	return &fs.PathError{Op: op, Path: path.Join(f.name, base), Err: err}
}

func (f *folderFD) Lstat(base string) (FileInfo, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(f.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return FileInfo{}, f.err("lstat", base, err)
	}
	return fromStat(base, &st), nil
}

func (f *folderFD) Create(base string, perm fs.FileMode) (File, error) {
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(f.fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC,
			uint32(perm.Perm()))
		return err
	})
	if err != nil {
		return nil, f.err("open", base, err)
	}
	return &fdFile{fd: fd, name: path.Join(f.name, base)}, nil
}

func (f *folderFD) Chtimes(base string, mtime time.Time) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	if err := ignoringEINTR(func() error { return unix.UtimesNanoAt(f.fd, base, ts, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return f.err("chtimes", base, err)
	}
	return nil
}

func (f *folderFD) Rename(from, to string) error { return f.rename(from, to, 0) }

var _ NoReplacer = (*folderFD)(nil)

func (f *folderFD) RenameNoReplace(from, to string) error {
	return f.rename(from, to, unix.RENAME_NOREPLACE)
}

var _ Exchanger = (*folderFD)(nil)

func (f *folderFD) RenameExchange(a, b string) error {
	return f.rename(a, b, unix.RENAME_EXCHANGE)
}

func (f *folderFD) rename(from, to string, flags uint) error {
	if err := ignoringEINTR(func() error { return unix.Renameat2(f.fd, from, f.fd, to, flags) }); err != nil {
		err = noReplaceErr(flags, err)
		return &os.LinkError{Op: "rename", Old: path.Join(f.name, from), New: path.Join(f.name, to), Err: err}
	}
	return nil
}

var _ Unnamer = (*folderFD)(nil)

// CreateUnnamed implements Unnamer with O_TMPFILE (Linux 3.11; ext4, xfs, btrfs, tmpfs among others). A kernel
// before it takes the flag for O_DIRECTORY and fails with EISDIR, a filesystem without it with EOPNOTSUPP: both
// are errors.ErrUnsupported here.
func (f *folderFD) CreateUnnamed(perm fs.FileMode) (File, error) {
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(f.fd, ".", unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, uint32(perm.Perm()))
		return err
	})
	if err != nil {
		if errors.Is(err, unix.EISDIR) || errors.Is(err, errors.ErrUnsupported) {
			err = fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
		}
		return nil, f.err("open unnamed", ".", err)
	}
	return &fdFile{fd: fd, name: path.Join(f.name, "(unnamed)")}, nil
}

// LinkNew implements Unnamer: futimens, fstat, then linkat of the descriptor (linkDescriptor; it never replaces:
// EEXIST). Where no link serves (no /proc in a container, no capability) Dir.canUnnamed's probe finds out first.
func (f *folderFD) LinkNew(file File, base string, mtime time.Time) (FileInfo, error) {
	ff, ok := file.(*fdFile)
	if !ok {
		return FileInfo{}, &os.LinkError{Op: "link", Old: "(unnamed)", New: path.Join(f.name, base), Err: errors.ErrUnsupported}
	}
	var st unix.Stat_t
	var errno error // the failing call's own error, for a LinkError naming both sides
	uerr := ff.use("link", func(fd int) error {
		if !mtime.IsZero() {
			ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
			if errno = ignoringEINTR(func() error { return futimens(fd, &ts) }); errno != nil {
				return errno
			}
		}
		if errno = ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); errno != nil {
			return errno
		}
		errno = linkDescriptor(fd, f.fd, base, false)
		return errno
	})
	if uerr != nil {
		if errno == nil { // the file was closed
			return FileInfo{}, uerr
		}
		return FileInfo{}, &os.LinkError{Op: "link", Old: ff.name, New: path.Join(f.name, base), Err: errno}
	}
	return fromStat(base, &st), nil
}

// linkDescriptor gives the open file fd the name base in folder dirfd (linkat, never replacing): through
// AT_EMPTY_PATH, which needs CAP_DAC_READ_SEARCH (ENOENT without it), else through /proc/self/fd, which serves
// every process where /proc is mounted. viaProc goes there at once (a test of that way as root).
func linkDescriptor(fd, dirfd int, base string, viaProc bool) error {
	var err error = unix.ENOENT
	if !viaProc {
		err = ignoringEINTR(func() error { return unix.Linkat(fd, "", dirfd, base, unix.AT_EMPTY_PATH) })
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		proc := "/proc/self/fd/" + strconv.Itoa(fd)
		err = ignoringEINTR(func() error { return unix.Linkat(unix.AT_FDCWD, proc, dirfd, base, unix.AT_SYMLINK_FOLLOW) })
	}
	return err
}

// futimens is utimensat(fd, NULL, ts, 0): the times of the open file itself (x/sys/unix has no nanosecond
// futimens).
func futimens(fd int, ts *[2]unix.Timespec) error {
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

func (f *folderFD) Close() error { return unix.Close(f.fd) }

// fdFile is a regular file read and written through its bare descriptor. os.NewFile asks fcntl for a
// descriptor's flags and, for one opened O_NONBLOCK, tries to register it with the runtime's poller (an epoll_ctl
// that fails for a regular file): three system calls of the forty or so each uploaded file cost in a first sync,
// for a poller a regular file never uses. Like an *os.File it may be closed while another goroutine still reads
// it (an HTTP transport may read a request body after RoundTrip returned): the lock makes Close wait for a call
// in flight, and every later call fails with fs.ErrClosed instead of reaching a descriptor number reused since.
// Unlike an *os.File it has no finalizer: every user closes it.
type fdFile struct {
	mu   sync.RWMutex // held shared by every call on fd, exclusively by Close
	fd   int          // -1 once closed
	name string
}

func (f *fdFile) err(op string, err error) error {
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

// use runs fn on the open descriptor, or fails with fs.ErrClosed.
func (f *fdFile) use(op string, fn func(fd int) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.fd < 0 {
		return f.err(op, fs.ErrClosed)
	}
	if err := fn(f.fd); err != nil {
		return f.err(op, err)
	}
	return nil
}

func (f *fdFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	err := f.use("read", func(fd int) error {
		for {
			var err error
			n, err = unix.Read(fd, p)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				n = 0
			}
			return err
		}
	})
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

func (f *fdFile) Write(p []byte) (int, error) {
	done := 0
	err := f.use("write", func(fd int) error {
		for done < len(p) {
			n, err := unix.Write(fd, p[done:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrShortWrite
			}
			done += n
		}
		return nil
	})
	return done, err
}

func (f *fdFile) Sync() error {
	return f.use("sync", func(fd int) error { return ignoringEINTR(func() error { return unix.Fsync(fd) }) })
}

// Close closes the descriptor once; a second Close is fs.ErrClosed, as for an *os.File.
func (f *fdFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return f.err("close", fs.ErrClosed)
	}
	fd := f.fd
	f.fd = -1
	// Not retried on EINTR: Linux frees the descriptor whatever close reports.
	if err := unix.Close(fd); err != nil {
		return f.err("close", err)
	}
	return nil
}

func (f *fdFile) Stat() (FileInfo, error) {
	var st unix.Stat_t
	if err := f.use("stat", func(fd int) error { return ignoringEINTR(func() error { return unix.Fstat(fd, &st) }) }); err != nil {
		return FileInfo{}, err
	}
	return fromStat(path.Base(f.name), &st), nil
}

func (f *fdFile) Chmod(mode fs.FileMode) error {
	return f.use("chmod", func(fd int) error {
		return ignoringEINTR(func() error { return unix.Fchmod(fd, uint32(mode.Perm())) })
	})
}
