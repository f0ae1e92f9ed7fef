// Package fakefs is an in-memory localdir.FS with fsync and power-loss semantics (RELIABILITY.md F2), fault
// hooks, and a hard failure on any name that could leave the root. It is deterministic for a given seed.
//
// Model: inodes (data, mode, mtime, ctime) and folders (name → inode). Every mutation changes the live tree at
// once and is appended to a log of pending ops: data ops on an inode (write, truncate, chmod, chtimes, and the
// creation of an unnamed file, O_TMPFILE) and name ops on folders (link, unlink, rename, an unnamed file's link;
// a rename belongs to both of its folders and is atomic, as in a journaling filesystem). File.Sync forces the file's pending data ops, SyncDir a folder's pending name ops (and its own
// data ops). Crash keeps the durable state plus a random prefix of the pending log plus every forced op after
// it. Syncing a file does not make its name durable: that takes SyncDir of its folder, as on Linux.
//
// Inode numbers are handed out again once free, the most recently freed first, as ext4 and tmpfs often do
// (rm -rf D; mkdir E gives E the number D had): an inode is free when its last name is gone and no open file
// holds it. Making a reused number's new name or new inode durable (a link, or an fsync of the new file or
// folder) makes the old one's removal durable first, as a journaling filesystem commits them in order: each
// life of a number is told apart (node.gen), and an op replayed without the link that began its life acts on a
// new, empty inode, never on the earlier life's bytes or entries.
package fakefs

import (
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote/localdir"
)

// Dev is the device number every inode reports.
const Dev = 0xfa4e

// FS is the fake filesystem. Safe for concurrent use.
type FS struct {
	clk clockwork.Clock
	rnd *rand.Rand

	mu         sync.Mutex
	root       uint64
	next       uint64
	lives      uint64 // links made so far: each one begins a new life of its number (node.gen)
	live       tree
	durable    tree
	pending    []*op
	gen        int // bumped by Crash: files opened before it are dead
	fault      func(op, name string) error
	unreadable map[uint64]bool
	free       []uint64       // numbers whose inode lost its last name, most recent last
	open       map[uint64]int // open files per inode (this generation)

	noUnnamed bool // SetUnnamed(false): a filesystem without O_TMPFILE

	// Multigrain timestamps (SetMultigrain); off unless asked for, so that existing traces keep their times.
	multigrain bool
	floor      time.Time       // the latest fine-grained stamp handed out
	queried    map[uint64]bool // inodes whose ctime was read since their last change (in memory: Crash drops it)
}

var _ localdir.FS = (*FS)(nil)

// New returns an empty filesystem (the root folder only, durable). rnd decides inode numbers and what a Crash
// keeps.
func New(clk clockwork.Clock, rnd *rand.Rand) *FS {
	start := 1000 + rnd.Uint64N(1<<20)
	now := clk.Now()
	live := tree{start: {mode: fs.ModeDir | 0o755, mtime: now, ctime: now, kids: map[string]uint64{}}}
	return &FS{clk: clk, rnd: rnd, root: start, next: start + 1, live: live, durable: live.clone(),
		unreadable: map[uint64]bool{}, open: map[uint64]int{}, queried: map[uint64]bool{}}
}

// SetMultigrain turns on (or off) Linux 6.13+ multigrain timestamps (ext4, xfs, btrfs, tmpfs): changes get the
// coarse clock time, except that the first change of an inode after its ctime was read (Lstat, File.Stat) gets
// a fine-grained stamp later than every stamp handed out so far, so a change after a stat always moves the
// ctime. Off (the default) every change gets the clock's time, like a coarse-grained kernel clock.
func (f *FS) SetMultigrain(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.multigrain = on
	if !on {
		clear(f.queried)
	}
}

// check fails the test hard on a name that could leave the root: the simulation reports it as an I5 violation.
func check(name string) {
	bad := ""
	switch {
	case name == "":
		bad = "empty"
	case strings.HasPrefix(name, "/"):
		bad = "absolute"
	case path.Clean(name) != name:
		bad = "not clean"
	case slices.Contains(strings.Split(name, "/"), ".."):
		bad = `contains ".."`
	}
	if bad != "" {
		panic(fmt.Sprintf("fakefs: out-of-root name %q (%s): containment (I5) violated", name, bad))
	}
}

func perr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// begin starts a hooked call on name: name must be a clean relative path (a caller bug panics), then the
// fault hook for op runs.
func (f *FS) begin(op, name string) error {
	check(name)
	return f.inject(op, name)
}

// inject runs the fault hook outside the lock, so a hook may use the FS.
func (f *FS) inject(op, name string) error {
	f.mu.Lock()
	h := f.fault
	f.mu.Unlock()
	if h == nil {
		return nil
	}
	if err := h(op, name); err != nil {
		return perr(op, name, err)
	}
	return nil
}

// SetFault installs h, called before every FS and File operation with the op name ("lstat", "readdir", "open",
// "create", "mkdir", "rename", "remove", "chtimes", "chmod", "syncdir", "syncfs", "read", "write", "sync") and the name
// (for rename: the target; for File ops: the name it was opened by). A non-nil result (syscall.ENOSPC, EACCES,
// EIO, ...) fails the operation, which then changes nothing. nil removes the hook.
func (f *FS) SetFault(h func(op, name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = h
}

// Unreadable makes ReadDir and Open of name fail with EACCES (like chmod 000), following the inode on renames.
func (f *FS) Unreadable(name string) { f.setReadable(name, false) }

// Readable undoes Unreadable.
func (f *FS) Readable(name string) { f.setReadable(name, true) }

func (f *FS) setReadable(name string, ok bool) {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, _, err := f.resolve(name)
	if err != nil {
		panic(fmt.Sprintf("fakefs: Unreadable(%q): %v", name, err))
	}
	if ok {
		delete(f.unreadable, ino)
	} else {
		f.unreadable[ino] = true
	}
}

// resolve finds name in the live tree without following symlinks (fakefs never follows one: os.Root would,
// inside the root, but tandem must not depend on it).
func (f *FS) resolve(name string) (uint64, *node, error) {
	ino := f.root
	if name == "." {
		return ino, f.live[ino], nil
	}
	for _, c := range strings.Split(name, "/") {
		n := f.live[ino]
		switch {
		case n.mode&fs.ModeSymlink != 0:
			return 0, nil, syscall.ELOOP
		case !n.isDir():
			return 0, nil, syscall.ENOTDIR
		}
		next, ok := n.kids[c]
		if !ok {
			return 0, nil, syscall.ENOENT
		}
		ino = next
	}
	return ino, f.live[ino], nil
}

// parent resolves the folder that holds name and returns it with name's last component.
func (f *FS) parent(name string) (uint64, *node, string, error) {
	if name == "." {
		return 0, nil, "", syscall.EBUSY // the root has no parent we may touch
	}
	dino, d, err := f.resolve(path.Dir(name))
	if err != nil {
		return 0, nil, "", err
	}
	if d.mode&fs.ModeSymlink != 0 {
		return 0, nil, "", syscall.ELOOP
	}
	if !d.isDir() {
		return 0, nil, "", syscall.ENOTDIR
	}
	return dino, d, path.Base(name), nil
}

// do applies o to the live tree and logs it, stamped with the life of the inode it acts on.
func (f *FS) do(o *op) {
	if f.multigrain {
		f.stamp(o)
	}
	if o.begins() {
		f.lives++
		o.gen = f.lives
	} else if n := f.live[o.ino]; n != nil {
		o.gen = n.gen
	}
	if o.kind == opExchange {
		if n := f.live[o.over]; n != nil {
			o.gen2 = n.gen
		}
	}
	f.live.apply(o)
	f.pending = append(f.pending, o)
}

// stamp sets o.t, which the caller filled with the clock's time, by the multigrain rule: a fine stamp (after
// the floor and after the inode's ctime) when the op changes the ctime of a queried inode, else the coarse time,
// never below the floor. The op keeps it, so a replay after a crash restores the ctimes handed out. The caller
// holds the lock.
func (f *FS) stamp(o *op) {
	var changed []uint64 // the inodes whose ctime o changes (as tree.apply does), that were there before it
	switch o.kind {
	case opLink:
		delete(f.queried, o.ino) // a new inode: a stat of an earlier life of the number does not count
		changed = []uint64{o.dir}
	case opNew:
		delete(f.queried, o.ino)
	case opLinkIn:
		changed = []uint64{o.dir, o.ino}
	case opUnlink:
		changed = []uint64{o.dir}
	case opRename:
		changed = []uint64{o.dir, o.dir2, o.ino}
	case opExchange:
		changed = []uint64{o.dir, o.ino, o.over}
	default:
		changed = []uint64{o.ino}
	}
	t := o.t
	if t.Before(f.floor) {
		t = f.floor
	}
	fine := false
	for _, ino := range changed {
		if !f.queried[ino] {
			continue
		}
		fine = true
		delete(f.queried, ino)
		if n := f.live[ino]; n != nil && !t.After(n.ctime) {
			t = n.ctime.Add(time.Nanosecond)
		}
	}
	if fine {
		if !t.After(f.floor) {
			t = f.floor.Add(time.Nanosecond)
		}
		f.floor = t
	}
	o.t = t
}

// info describes inode ino; under multigrain timestamps it marks the inode's ctime queried. The caller holds
// the lock.
func (f *FS) info(name string, ino uint64, n *node) localdir.FileInfo {
	if f.multigrain {
		f.queried[ino] = true
	}
	size := int64(len(n.data))
	if n.isDir() {
		size = 0
	}
	return localdir.FileInfo{Name: path.Base(name), Mode: n.mode, Size: size, ModTime: n.mtime,
		CTime: n.ctime.UnixNano(), Dev: Dev, Ino: ino}
}

// Lstat implements localdir.FS.
func (f *FS) Lstat(name string) (localdir.FileInfo, error) {
	if err := f.begin("lstat", name); err != nil {
		return localdir.FileInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, n, err := f.resolve(name)
	if err != nil {
		return localdir.FileInfo{}, perr("lstat", name, err)
	}
	return f.info(name, ino, n), nil
}

// ReadDir implements localdir.FS.
func (f *FS) ReadDir(name string) ([]string, error) {
	if err := f.begin("readdir", name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, n, err := f.resolve(name)
	switch {
	case err != nil:
	case !n.isDir():
		err = syscall.ENOTDIR
	case f.unreadable[ino]:
		err = syscall.EACCES
	}
	if err != nil {
		return nil, perr("readdir", name, err)
	}
	return slices.Sorted(maps.Keys(n.kids)), nil
}

var _ localdir.NoFollowOpener = (*FS)(nil)

// OpenNoFollow implements localdir.NoFollowOpener: Open already refuses a symlink at any component.
func (f *FS) OpenNoFollow(name string) (localdir.File, error) { return f.Open(name) }

// Open implements localdir.FS. It refuses a symlink (ELOOP) instead of following it.
func (f *FS) Open(name string) (localdir.File, error) {
	if err := f.begin("open", name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, n, err := f.resolve(name)
	switch {
	case err != nil:
	case n.mode&fs.ModeSymlink != 0:
		err = syscall.ELOOP
	case f.unreadable[ino]:
		err = syscall.EACCES
	}
	if err != nil {
		return nil, perr("open", name, err)
	}
	f.open[ino]++
	return &file{f: f, ino: ino, name: name, gen: f.gen}, nil
}

// Create implements localdir.FS (O_WRONLY|O_CREATE|O_EXCL).
func (f *FS) Create(name string, perm fs.FileMode) (localdir.File, error) {
	if err := f.begin("create", name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, err := f.link(name, perm.Perm(), nil)
	if err != nil {
		return nil, perr("create", name, err)
	}
	f.open[ino]++
	return &file{f: f, ino: ino, name: name, gen: f.gen, write: true}, nil
}

// link creates a new inode of mode at name; the caller holds the lock.
func (f *FS) link(name string, mode fs.FileMode, target []byte) (uint64, error) {
	dino, d, base, err := f.parent(name)
	if err != nil {
		return 0, err
	}
	if _, ok := d.kids[base]; ok {
		return 0, syscall.EEXIST
	}
	ino := f.alloc()
	f.do(&op{kind: opLink, ino: ino, dir: dino, name: base, mode: mode, data: target, t: f.clk.Now()})
	return ino, nil
}

// alloc picks the number of a new inode: the most recently freed one that no open file holds, else a new one.
// The caller holds the lock.
func (f *FS) alloc() uint64 {
	for i := len(f.free) - 1; i >= 0; i-- {
		ino := f.free[i]
		if f.open[ino] > 0 {
			continue
		}
		f.free = slices.Delete(f.free, i, i+1)
		delete(f.unreadable, ino)
		return ino
	}
	ino := f.next
	f.next++
	return ino
}

// Mkdir implements localdir.FS.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	if err := f.begin("mkdir", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "." {
		return perr("mkdir", name, syscall.EEXIST)
	}
	if _, err := f.link(name, fs.ModeDir|perm.Perm(), nil); err != nil {
		return perr("mkdir", name, err)
	}
	return nil
}

// Symlink creates a symlink at name pointing to target (a test helper: tandem never creates one).
func (f *FS) Symlink(target, name string) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.link(name, fs.ModeSymlink|0o777, []byte(target)); err != nil {
		return perr("symlink", name, err)
	}
	return nil
}

// Mkfifo creates a named pipe at name (a test helper: a special file tandem must skip, never sync).
func (f *FS) Mkfifo(name string) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.link(name, fs.ModeNamedPipe|0o644, nil); err != nil {
		return perr("mkfifo", name, err)
	}
	return nil
}

// Rename implements localdir.FS with POSIX semantics: a file replaces a file, a folder replaces an empty
// folder; a non-empty folder target is ENOTEMPTY.
func (f *FS) Rename(from, to string) error { return f.renameOp(from, to, false) }

// RenameNoReplace implements localdir.NoReplacer as Linux's RENAME_NOREPLACE does: EEXIST when anything is at
// to, checked and renamed under one lock.
func (f *FS) RenameNoReplace(from, to string) error { return f.renameOp(from, to, true) }

// RenameExchange implements localdir.Exchanger as Linux's RENAME_EXCHANGE does for two files of one folder:
// the two names swap their inodes in one step; ENOENT when either is missing. Folders, and names in two
// folders, are EINVAL here (localdir never exchanges them; the model keeps to what it replays).
func (f *FS) RenameExchange(a, b string) error {
	check(a)
	check(b)
	if err := f.inject("rename", b); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.exchange(a, b); err != nil {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: err}
	}
	return nil
}

func (f *FS) exchange(a, b string) error {
	dino, d, abase, err := f.parent(a)
	if err != nil {
		return err
	}
	d2ino, d2, bbase, err := f.parent(b)
	if err != nil {
		return err
	}
	ai, aok := d.kids[abase]
	bi, bok := d2.kids[bbase]
	switch {
	case !aok || !bok:
		return syscall.ENOENT
	case dino != d2ino || f.live[ai].isDir() || f.live[bi].isDir():
		return syscall.EINVAL
	case ai == bi:
		return nil
	}
	f.do(&op{kind: opExchange, ino: ai, dir: dino, name: abase, nam2: bbase, over: bi, mode: f.live[ai].mode,
		t: f.clk.Now()})
	return nil
}

func (f *FS) renameOp(from, to string, noReplace bool) error {
	check(from)
	check(to)
	if err := f.inject("rename", to); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if noReplace {
		if _, td, tbase, e := f.parent(to); e != nil {
			err = e
		} else if _, taken := td.kids[tbase]; taken {
			err = syscall.EEXIST
		}
	}
	if err == nil {
		err = f.rename(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

func (f *FS) rename(from, to string) error {
	fdino, fd, fbase, err := f.parent(from)
	if err != nil {
		return err
	}
	ino, ok := fd.kids[fbase]
	if !ok {
		return syscall.ENOENT
	}
	n := f.live[ino]
	tdino, td, tbase, err := f.parent(to)
	if err != nil {
		return err
	}
	if n.isDir() { // not into itself: no ancestor of to may be from
		for a := path.Dir(to); ; a = path.Dir(a) {
			if a == from {
				return syscall.EINVAL
			}
			if a == "." {
				break
			}
		}
	}
	var over uint64
	if old, ok := td.kids[tbase]; ok {
		if old == ino {
			return nil
		}
		over = old
		o := f.live[old]
		switch {
		case n.isDir() && !o.isDir():
			return syscall.ENOTDIR
		case !n.isDir() && o.isDir():
			return syscall.EISDIR
		case o.isDir() && len(o.kids) > 0:
			return syscall.ENOTEMPTY
		}
	}
	f.do(&op{kind: opRename, ino: ino, dir: fdino, name: fbase, dir2: tdino, nam2: tbase, mode: n.mode, over: over,
		t: f.clk.Now()})
	if over != 0 {
		f.free = append(f.free, over)
	}
	return nil
}

// Remove implements localdir.FS.
func (f *FS) Remove(name string) error {
	if err := f.begin("remove", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.remove(name); err != nil {
		return perr("remove", name, err)
	}
	return nil
}

func (f *FS) remove(name string) error {
	dino, d, base, err := f.parent(name)
	if err != nil {
		return err
	}
	ino, ok := d.kids[base]
	if !ok {
		return syscall.ENOENT
	}
	if n := f.live[ino]; n.isDir() && len(n.kids) > 0 {
		return syscall.ENOTEMPTY
	}
	f.do(&op{kind: opUnlink, ino: ino, dir: dino, name: base, t: f.clk.Now()})
	f.free = append(f.free, ino)
	return nil
}

// target resolves name for chmod and chtimes; like tandem's use of them, it refuses a symlink.
func (f *FS) target(name string) (uint64, *node, error) {
	ino, n, err := f.resolve(name)
	if err == nil && n.mode&fs.ModeSymlink != 0 {
		err = syscall.ELOOP
	}
	return ino, n, err
}

// Chtimes implements localdir.FS.
func (f *FS) Chtimes(name string, mtime time.Time) error {
	return f.setAttr("chtimes", name, func(ino uint64, n *node) *op {
		return &op{kind: opChtimes, ino: ino, mode: n.mode, mtime: mtime, t: f.clk.Now()}
	})
}

// Chmod implements localdir.FS.
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	return f.setAttr("chmod", name, func(ino uint64, n *node) *op {
		return &op{kind: opChmod, ino: ino, mode: n.mode.Type() | mode.Perm(), t: f.clk.Now()}
	})
}

// setAttr is a hooked attribute change (call opName) on name's inode, never a symlink's: it logs the op that
// mk builds, under the lock.
func (f *FS) setAttr(opName, name string, mk func(ino uint64, n *node) *op) error {
	if err := f.begin(opName, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, n, err := f.target(name)
	if err != nil {
		return perr(opName, name, err)
	}
	f.do(mk(ino, n))
	return nil
}
