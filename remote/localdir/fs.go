package localdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"time"
)

// FS is the filesystem under one sync root. Names are slash-separated and relative to the root ("." is the
// root itself); the caller passes only names built from validated remote.Paths. Implementations are safe for
// concurrent use.
type FS interface {
	// Lstat describes name without following a final symlink.
	Lstat(name string) (FileInfo, error)
	// ReadDir lists the names in folder name, sorted bytewise.
	ReadDir(name string) ([]string, error)
	// Open opens name read-only. It may follow a symlink that stays inside the root, so callers Lstat first.
	Open(name string) (File, error)
	// Create creates name exclusively (O_WRONLY|O_CREATE|O_EXCL) with perm.
	Create(name string, perm fs.FileMode) (File, error)
	Mkdir(name string, perm fs.FileMode) error
	// Rename replaces an existing file at to (POSIX rename).
	Rename(from, to string) error
	// Remove removes a file or an empty folder.
	Remove(name string) error
	Chtimes(name string, mtime time.Time) error
	Chmod(name string, mode fs.FileMode) error
	// SyncDir fsyncs folder name so the entries created, renamed or removed in it survive a power loss.
	SyncDir(name string) error
}

// NoFollowOpener is an FS whose OpenNoFollow opens name read-only without following a symlink at any component
// of the path (the open fails instead) and without blocking on or taking over a special file (O_NONBLOCK,
// O_NOCTTY). A caller may then open first and check the open file's own type (fstat): one path resolution where
// an Lstat before the open made two, each a walk of the path (a first sync opens every file it uploads). An FS
// that cannot returns an error matching errors.ErrUnsupported: the caller Lstats, then Opens.
type NoFollowOpener interface {
	OpenNoFollow(name string) (File, error)
}

// FSSyncer is an FS that can make everything written to the filesystem that holds its root durable in one call
// (Linux's syncfs), reporting any write-back error on that filesystem since the FS was opened. Only writes to
// that filesystem (FileInfo.Dev equal to the root's) are covered: a folder under the root may be another mount.
type FSSyncer interface {
	SyncFS() error
}

// DirLister is an FS that can list a folder through one open handle and stat its children relative to it (one
// open per folder instead of a path resolution per child: the walk of a full pass). Walk uses it when the FS
// offers it, and names plus Lstat otherwise.
type DirLister interface {
	// OpenDir opens folder name under the root.
	OpenDir(name string) (DirHandle, error)
}

// DirHandle is an open folder.
type DirHandle interface {
	// Entries lists the folder's children sorted bytewise by name, each with its stat (a symlink is described,
	// not followed) or the error of stat'ing it. A child removed between the listing and its stat has
	// fs.ErrNotExist.
	Entries() ([]DirEntry, error)
	// OpenSub opens the child folder name (one name, no separator) through this handle. A child that is now a
	// symlink is not followed: it is an error.
	OpenSub(name string) (DirHandle, error)
	Close() error
}

// DirEntry is one child of a DirHandle.
type DirEntry struct {
	Name string
	Info FileInfo
	Err  error
}

// FolderOpener is an FS that can hold a folder open for a sequence of operations on its entries, each
// resolved relative to the open folder: a Put's stat, create, mtime, rename and stat again cost one path
// resolution instead of eight. A folder renamed meanwhile is followed (the operations land in it under its new
// name), as if the rename had come just after them. Put reaches the entries by path on an FS without it.
type FolderOpener interface {
	// OpenFolder opens folder name under the root.
	OpenFolder(name string) (Folder, error)
}

// Folder is an open folder; every name is one entry of it (no separator).
type Folder interface {
	Lstat(base string) (FileInfo, error)
	// Create creates base exclusively (O_WRONLY|O_CREATE|O_EXCL) with perm.
	Create(base string, perm fs.FileMode) (File, error)
	Chtimes(base string, mtime time.Time) error
	// Rename renames entry from to entry to, replacing a file there.
	Rename(from, to string) error
	Close() error
}

// NoReplacer is a Folder (or an FS, for paths under its root) that can rename without replacing, in one atomic
// step (Linux's RENAME_NOREPLACE): a Put whose precondition is "nothing there" then cannot replace a file created
// between its check and its rename. RenameNoReplace fails with an error matching fs.ErrExist when to exists, and
// errors.ErrUnsupported where the filesystem cannot (the caller checks, then renames).
type NoReplacer interface {
	RenameNoReplace(from, to string) error
}

// Exchanger is a Folder (or an FS, for paths under its root) that can swap two names in one atomic step (Linux's
// RENAME_EXCHANGE): a Put that replaces a file then takes out exactly the file that was there, and can check it
// and put it back, where a plain rename would destroy a change made between its check and the rename.
// RenameExchange fails with an error matching fs.ErrNotExist when either name is missing, and
// errors.ErrUnsupported where the filesystem cannot (the caller checks, then renames).
type Exchanger interface {
	RenameExchange(a, b string) error
}

// Unnamer is a Folder that can create a file with no name in it and give the file a name once it is complete
// (Linux's O_TMPFILE and linkat). A Put of a new file then writes no temp name and renames nothing: one change
// to the folder (the link) where a temp file made two (its create and the rename), each taking the folder's
// lock, which the other writers in the folder and a syncfs writing the folder back wait for (a 10,000-file first
// sync spent a quarter of its system-call time creating temp files). Partial data never has a name at all, and
// a power loss takes an unnamed file with it: nothing is left to sweep.
type Unnamer interface {
	// CreateUnnamed creates a file open for writing, with permission bits perm and no name, in the folder. It
	// vanishes when closed unless LinkNew named it. An error matching errors.ErrUnsupported where the folder's
	// filesystem cannot (the caller writes a temp file instead).
	CreateUnnamed(perm fs.FileMode) (File, error)
	// LinkNew sets the mtime of f (CreateUnnamed's, still open) unless mtime is zero, and gives f the name base
	// in the folder, never replacing anything: an error matching fs.ErrExist when base is taken. It returns f's
	// stat, taken before the link (which moves the ctime: the caller stats base again).
	LinkNew(f File, base string, mtime time.Time) (FileInfo, error)
}

// UnnamedFS is an FS whose folders, by name, are Unnamers: pathFolder's way to them (the simulation's FS).
type UnnamedFS interface {
	// CreateUnnamed is Unnamer's, in folder dir under the root.
	CreateUnnamed(dir string, perm fs.FileMode) (File, error)
	// LinkNew is Unnamer's, name a path under the root.
	LinkNew(f File, name string, mtime time.Time) (FileInfo, error)
}

// cannotNoReplace is RenameNoReplace's (and RenameExchange's) error where the FS has no such rename.
func cannotNoReplace(from, to string) error {
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: errors.ErrUnsupported}
}

// pathFolder is a Folder of an FS without folder handles: each entry by its path.
type pathFolder struct {
	fs  FS
	dir string
}

func (f pathFolder) name(base string) string             { return path.Join(f.dir, base) }
func (f pathFolder) Lstat(base string) (FileInfo, error) { return f.fs.Lstat(f.name(base)) }
func (f pathFolder) Chtimes(base string, mtime time.Time) error {
	return f.fs.Chtimes(f.name(base), mtime)
}
func (f pathFolder) Rename(from, to string) error { return f.fs.Rename(f.name(from), f.name(to)) }
func (f pathFolder) RenameNoReplace(from, to string) error {
	if nr, ok := f.fs.(NoReplacer); ok {
		return nr.RenameNoReplace(f.name(from), f.name(to))
	}
	return cannotNoReplace(f.name(from), f.name(to))
}
func (f pathFolder) RenameExchange(a, b string) error {
	if ex, ok := f.fs.(Exchanger); ok {
		return ex.RenameExchange(f.name(a), f.name(b))
	}
	return cannotNoReplace(f.name(a), f.name(b))
}
func (f pathFolder) CreateUnnamed(perm fs.FileMode) (File, error) {
	if u, ok := f.fs.(UnnamedFS); ok {
		return u.CreateUnnamed(f.dir, perm)
	}
	return nil, &fs.PathError{Op: "open", Path: f.dir, Err: errors.ErrUnsupported}
}
func (f pathFolder) LinkNew(file File, base string, mtime time.Time) (FileInfo, error) {
	if u, ok := f.fs.(UnnamedFS); ok {
		return u.LinkNew(file, f.name(base), mtime)
	}
	return FileInfo{}, &os.LinkError{Op: "link", Old: f.dir, New: f.name(base), Err: errors.ErrUnsupported}
}
func (f pathFolder) Close() error { return nil }
func (f pathFolder) Create(base string, perm fs.FileMode) (File, error) {
	return f.fs.Create(f.name(base), perm)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.Writer
	Sync() error
	Close() error
	Stat() (FileInfo, error)
	// Chmod sets the open file's permission bits (fchmod: no path to resolve, no symlink to follow).
	Chmod(mode fs.FileMode) error
}

// FileInfo is what tandem needs of a stat: the fast-check fingerprint (size, mtime, ctime, inode) and the kind.
type FileInfo struct {
	Name    string
	Mode    fs.FileMode
	Size    int64
	ModTime time.Time
	CTime   int64 // ns since the epoch; 0 where the platform does not report it
	Dev     uint64
	Ino     uint64 // 0 where the platform does not report it
}

// IsDir reports whether fi is a folder.
func (fi FileInfo) IsDir() bool { return fi.Mode.IsDir() }

// IsRegular reports whether fi is a regular file.
func (fi FileInfo) IsRegular() bool { return fi.Mode.IsRegular() }

// IsSymlink reports whether fi is a symbolic link.
func (fi FileInfo) IsSymlink() bool { return fi.Mode&fs.ModeSymlink != 0 }

// OSFS is the production FS. Every access goes through root, so no name and no symlink leads out of it, even
// when a folder is swapped for a symlink between a check and the act (the kernel resolves each component).
// The caller keeps ownership of root.
func OSFS(root *os.Root) FS {
	o := osFS{r: root, fast: openBeneath(root)}
	if s, ok := o.fast.(FSSyncer); ok && syncFSReportsErrors() {
		return osFSSyncer{o, s}
	}
	return o
}

// osFSSyncer is the production FS where the kernel's syncfs reports write-back errors (fsbarrier.go).
type osFSSyncer struct {
	osFS
	s FSSyncer
}

func (o osFSSyncer) SyncFS() error { return o.s.SyncFS() }

// osFS goes through fast where the platform resolves a whole path beneath the root in one call (Linux:
// beneath_linux.go), and through os.Root otherwise.
type osFS struct {
	r    *os.Root
	fast pathOps
}

// pathOps are the FS operations that resolve a path, done with a one-call resolution beneath the root.
type pathOps interface {
	Lstat(name string) (FileInfo, error)
	Open(name string) (File, error)
	Create(name string, perm fs.FileMode) (File, error)
	OpenDir(name string) (*os.File, error)
	Mkdir(name string, perm fs.FileMode) error
	Remove(name string) error
	Rename(from, to string) error
	Chtimes(name string, mtime time.Time) error
}

func fromOS(fi fs.FileInfo) FileInfo {
	dev, ino, ctime := sysStat(fi)
	return FileInfo{Name: fi.Name(), Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime(), CTime: ctime, Dev: dev, Ino: ino}
}

func (o osFS) Lstat(name string) (FileInfo, error) {
	if o.fast != nil {
		return o.fast.Lstat(name)
	}
	fi, err := o.r.Lstat(name)
	if err != nil {
		return FileInfo{}, err
	}
	return fromOS(fi), nil
}

func (o osFS) ReadDir(name string) ([]string, error) {
	f, err := o.r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func (o osFS) Open(name string) (File, error) {
	if o.fast != nil {
		return o.fast.Open(name)
	}
	f, err := o.r.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// errNoFollow is OpenNoFollow's answer where it cannot: one value, not one formatted per file opened.
var errNoFollow = fmt.Errorf("open without following symlinks: %w", errors.ErrUnsupported)

// OpenNoFollow implements NoFollowOpener where the platform resolves beneath the root without symlinks (Linux);
// os.Root follows a symlink that stays inside the root, so elsewhere it is unsupported.
func (o osFS) OpenNoFollow(name string) (File, error) {
	if o.fast == nil {
		return nil, errNoFollow
	}
	return o.fast.Open(name)
}

func (o osFS) Create(name string, perm fs.FileMode) (File, error) {
	if o.fast != nil {
		return o.fast.Create(name, perm)
	}
	f, err := o.r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (o osFS) Mkdir(name string, perm fs.FileMode) error {
	if o.fast != nil {
		return o.fast.Mkdir(name, perm)
	}
	return o.r.Mkdir(name, perm)
}

// OpenFolder holds the folder open where the platform resolves beneath the root in one call (Linux), else
// reaches its entries by path.
func (o osFS) OpenFolder(name string) (Folder, error) {
	if f, ok := o.fast.(FolderOpener); ok {
		return f.OpenFolder(name)
	}
	return pathFolder{o, name}, nil
}

func (o osFS) Rename(from, to string) error {
	if o.fast != nil {
		return o.fast.Rename(from, to)
	}
	return o.r.Rename(from, to)
}

var _ NoReplacer = osFS{}

// RenameNoReplace is the platform's rename without replacing where it has one (Linux), else
// errors.ErrUnsupported.
func (o osFS) RenameNoReplace(from, to string) error {
	if nr, ok := o.fast.(NoReplacer); ok {
		return nr.RenameNoReplace(from, to)
	}
	return cannotNoReplace(from, to)
}

var _ Exchanger = osFS{}

// RenameExchange is the platform's atomic swap of two names where it has one (Linux), else
// errors.ErrUnsupported.
func (o osFS) RenameExchange(a, b string) error {
	if ex, ok := o.fast.(Exchanger); ok {
		return ex.RenameExchange(a, b)
	}
	return cannotNoReplace(a, b)
}

func (o osFS) Remove(name string) error {
	if o.fast != nil {
		return o.fast.Remove(name)
	}
	return o.r.Remove(name)
}

// Chtimes leaves the access time alone (a zero time.Time is "unchanged").
func (o osFS) Chtimes(name string, mtime time.Time) error {
	if o.fast != nil {
		return o.fast.Chtimes(name, mtime)
	}
	return o.r.Chtimes(name, time.Time{}, mtime)
}

func (o osFS) Chmod(name string, mode fs.FileMode) error { return o.r.Chmod(name, mode) }

func (o osFS) SyncDir(name string) error {
	open := o.r.Open
	if o.fast != nil {
		open = o.fast.OpenDir
	}
	f, err := open(name)
	if err != nil {
		return err
	}
	err = syncDir(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct{ f *os.File }

func (f osFile) Read(p []byte) (int, error)   { return f.f.Read(p) }
func (f osFile) Write(p []byte) (int, error)  { return f.f.Write(p) }
func (f osFile) Sync() error                  { return f.f.Sync() }
func (f osFile) Close() error                 { return f.f.Close() }
func (f osFile) Chmod(mode fs.FileMode) error { return f.f.Chmod(mode) }

func (f osFile) Stat() (FileInfo, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	return fromOS(fi), nil
}
