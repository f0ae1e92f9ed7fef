// Package fakefs is an in-memory localdir.FS with fsync and power-loss semantics (RELIABILITY.md F2), fault
// hooks, and a hard failure on any name that could leave the root. It is deterministic for a given seed.
//
// Model: inodes (data, mode, mtime, ctime) and folders (name → inode). Every mutation changes the live tree at
// once and is appended to a log of pending ops: data ops on an inode (write, truncate, chmod, chtimes) and name
// ops on folders (link, unlink, rename; a rename belongs to both of its folders and is atomic, as in a journaling
// filesystem). File.Sync forces the file's pending data ops, SyncDir a folder's pending name ops (and its own
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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

type node struct {
	gen   uint64      // which life of its number this inode is (the link that made it); 0: unknown
	mode  fs.FileMode // type bits and permissions
	data  []byte      // file content, or a symlink's target
	mtime time.Time
	ctime time.Time
	kids  map[string]uint64 // folders only
}

func (n *node) isDir() bool { return n.mode.IsDir() }

type tree map[uint64]*node

func (t tree) clone() tree {
	c := make(tree, len(t))
	for ino, n := range t {
		m := *n
		m.data = slices.Clone(n.data)
		if n.kids != nil {
			m.kids = maps.Clone(n.kids)
		}
		c[ino] = &m
	}
	return c
}

type opKind uint8

const (
	opWrite opKind = iota
	opTruncate
	opChmod
	opChtimes
	opLink
	opUnlink
	opRename
)

// op is one logged mutation. It carries everything needed to replay it on a state that lacks its context (an
// inode whose creation was lost is made empty), so any subset of the log can be replayed in order.
type op struct {
	kind       opKind
	ino        uint64 // the inode written, or linked, unlinked, renamed
	dir, dir2  uint64 // name ops: the folder (rename: from, to)
	name, nam2 string
	off        int64
	over       uint64      // rename: the inode whose name the target replaced (0: none)
	data       []byte      // write: the bytes; link of a symlink: its target
	mode       fs.FileMode // chmod: permissions; link: the new inode's type and permissions
	mtime      time.Time   // chtimes
	t          time.Time   // when: the new ctime (and mtime where the op sets it)
	gen        uint64      // the life of ino the op acts on (link: the new one)
	forced     bool
}

func (o *op) dataOp() bool { return o.kind <= opChtimes }

// touches reports whether o is one of folder d's name ops.
func (o *op) touches(d uint64) bool {
	return !o.dataOp() && (o.dir == d || (o.kind == opRename && o.dir2 == d))
}

// ensure returns inode ino, creating it empty with mode when the replayed state lacks it.
func (t tree) ensure(ino uint64, mode fs.FileMode, at time.Time) *node {
	n := t[ino]
	if n == nil || mode.IsDir() && !n.isDir() {
		// A folder whose number a replayed state still holds as a file (a reused inode whose old unlink was not
		// durable when the crash came) is that new folder: a reused number starts empty.
		n = &node{mode: mode, mtime: at, ctime: at}
		if mode.IsDir() {
			n.kids = map[string]uint64{}
		}
		t[ino] = n
	}
	return n
}

// unlinkDir drops every other name of folder ino: a folder has one parent, so a replayed state stays a tree.
func (t tree) unlinkDir(ino uint64) {
	for _, d := range t {
		for k, v := range d.kids {
			if v == ino {
				delete(d.kids, k)
			}
		}
	}
}

// subject returns the inode an op on a file acts on: when the replayed state still holds an earlier life of
// the number (the link that began this one was not replayed, the op was: an fsync makes a file's inode
// durable, not its name), that earlier file is not this one, and this one starts empty.
func (t tree) subject(o *op, mode fs.FileMode) *node {
	if n := t[o.ino]; n != nil && !mode.IsDir() && !n.isDir() && n.gen != 0 && o.gen != 0 && n.gen != o.gen {
		delete(t, o.ino)
	}
	n := t.ensure(o.ino, mode, o.t)
	if n.gen == 0 {
		n.gen = o.gen
	}
	return n
}

func (t tree) apply(o *op) {
	switch o.kind {
	case opWrite:
		n := t.subject(o, 0o600)
		if end := o.off + int64(len(o.data)); end > int64(len(n.data)) {
			n.data = append(n.data, make([]byte, end-int64(len(n.data)))...)
		}
		copy(n.data[o.off:], o.data)
		n.mtime, n.ctime = o.t, o.t
	case opTruncate:
		n := t.subject(o, 0o600)
		if o.off <= int64(len(n.data)) {
			n.data = n.data[:o.off]
		} else {
			n.data = append(n.data, make([]byte, o.off-int64(len(n.data)))...)
		}
		n.mtime, n.ctime = o.t, o.t
	case opChmod:
		n := t.subject(o, o.mode)
		n.mode = n.mode.Type() | o.mode.Perm()
		n.ctime = o.t
	case opChtimes:
		n := t.subject(o, o.mode)
		n.mtime, n.ctime = o.mtime, o.t
	case opLink:
		d := t.ensure(o.dir, fs.ModeDir|0o755, o.t)
		delete(t, o.ino) // a new inode: a reused number starts empty
		n := t.ensure(o.ino, o.mode, o.t)
		n.gen = o.gen
		if n.mode&fs.ModeSymlink != 0 && n.data == nil {
			n.data = slices.Clone(o.data)
		}
		if n.isDir() {
			t.unlinkDir(o.ino)
		}
		d.kids[o.name] = o.ino
		d.mtime, d.ctime, n.ctime = o.t, o.t, o.t
	case opUnlink:
		if d := t[o.dir]; d != nil && d.kids[o.name] == o.ino {
			delete(d.kids, o.name)
			d.mtime, d.ctime = o.t, o.t
		}
	case opRename:
		if d := t[o.dir]; d != nil && d.kids[o.name] == o.ino {
			delete(d.kids, o.name)
			d.mtime, d.ctime = o.t, o.t
		}
		d := t.ensure(o.dir2, fs.ModeDir|0o755, o.t)
		n := t.subject(o, o.mode)
		if n.isDir() {
			t.unlinkDir(o.ino)
		}
		d.kids[o.nam2] = o.ino
		d.mtime, d.ctime, n.ctime = o.t, o.t, o.t
	}
}

// gc drops inodes no name reaches from root (files created whose link did not survive a crash).
func (t tree) gc(root uint64) {
	seen := map[uint64]bool{}
	var mark func(uint64)
	mark = func(ino uint64) {
		if seen[ino] {
			return
		}
		seen[ino] = true
		if n := t[ino]; n != nil {
			for _, k := range n.kids {
				mark(k)
			}
		}
	}
	mark(root)
	for ino := range t {
		if !seen[ino] {
			delete(t, ino)
		}
	}
	for _, n := range t { // names whose inode never made it to this state
		for k, v := range n.kids {
			if t[v] == nil {
				delete(n.kids, k)
			}
		}
	}
}

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
}

var _ localdir.FS = (*FS)(nil)

// New returns an empty filesystem (the root folder only, durable). rnd decides inode numbers and what a Crash
// keeps.
func New(clk clockwork.Clock, rnd *rand.Rand) *FS {
	start := 1000 + rnd.Uint64N(1<<20)
	now := clk.Now()
	live := tree{start: {mode: fs.ModeDir | 0o755, mtime: now, ctime: now, kids: map[string]uint64{}}}
	return &FS{clk: clk, rnd: rnd, root: start, next: start + 1, live: live, durable: live.clone(),
		unreadable: map[uint64]bool{}, open: map[uint64]int{}}
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
// "create", "mkdir", "rename", "remove", "chtimes", "chmod", "syncdir", "read", "write", "sync") and the name
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
	if o.kind == opLink {
		f.lives++
		o.gen = f.lives
	} else if n := f.live[o.ino]; n != nil {
		o.gen = n.gen
	}
	f.live.apply(o)
	f.pending = append(f.pending, o)
}

func (f *FS) info(name string, ino uint64, n *node) localdir.FileInfo {
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
func (f *FS) Rename(from, to string) error {
	check(from)
	check(to)
	if err := f.inject("rename", to); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.rename(from, to); err != nil {
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

// SyncDir implements localdir.FS: folder name's pending name ops (and its own data ops) become durable.
func (f *FS) SyncDir(name string) error {
	if err := f.begin("syncdir", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, n, err := f.resolve(name)
	if err == nil && !n.isDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return perr("syncdir", name, err)
	}
	f.force(ino, func(o *op) bool { return o.touches(ino) || (o.dataOp() && o.ino == ino) })
	return nil
}

// force marks the pending ops sel picks durable (an fsync of inode synced, 0: everything), then folds the
// forced head of the log into the durable state (those ops survive any crash, whatever prefix it picks).
func (f *FS) force(synced uint64, sel func(*op) bool) {
	// Backwards, so that a forced link of a reused number forces every earlier op of the number's earlier lives
	// (its unlink, the rename over its name, a folder's emptying): a replayed state never holds the old name and
	// the new one. The same when the fsync'd inode, or the file a forced op acts on, is a life whose link is
	// still pending (its name not yet durable): a journaling filesystem commits an inode's release before its
	// reuse, so the old name never shows the new inode's bytes or entries (seed 1348) nor the new name the old
	// file's (seed 106).
	need := map[uint64]bool{}
	born := map[uint64]uint64{} // number -> the life a forced op acted on, its link not yet passed
	if n := f.live[synced]; synced != 0 && n != nil && n.gen != 0 {
		born[synced] = n.gen
	}
	for i := len(f.pending) - 1; i >= 0; i-- {
		o := f.pending[i]
		if sel(o) || need[o.ino] || (o.over != 0 && need[o.over]) ||
			(!o.dataOp() && (need[o.dir] || (o.kind == opRename && need[o.dir2]))) {
			o.forced = true
		}
		switch {
		case o.kind == opLink && (o.forced || (o.gen != 0 && born[o.ino] == o.gen)):
			need[o.ino] = true
			delete(born, o.ino)
		case o.forced && o.gen != 0 && !need[o.ino] && born[o.ino] == 0 && o.kind != opUnlink:
			born[o.ino] = o.gen
		}
	}
	i := 0
	for i < len(f.pending) && f.pending[i].forced {
		f.durable.apply(f.pending[i])
		i++
	}
	f.pending = slices.Delete(f.pending, 0, i)
}

// Sync makes everything durable, as a clean shutdown does.
func (f *FS) Sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.force(0, func(*op) bool { return true })
}

// Pending is the number of ops a Crash could still lose.
func (f *FS) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// Crash models a power loss: the durable state, plus a random prefix (possibly empty) of the pending ops, plus
// every forced op after that prefix, in log order, becomes the new durable state and the live tree. Files open
// before the crash fail from then on.
func (f *FS) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	keep := f.rnd.IntN(len(f.pending) + 1)
	for i, o := range f.pending {
		if i < keep || o.forced {
			f.durable.apply(o)
		}
	}
	f.durable.gc(f.root)
	f.pending = nil
	f.live = f.durable.clone()
	f.gen++
	f.free, f.open = nil, map[uint64]int{}
	for ino := range f.unreadable {
		if f.live[ino] == nil {
			delete(f.unreadable, ino)
		}
	}
}

// file is an open file. Reads and writes act on the live inode, so an unlinked open file keeps working.
type file struct {
	f      *FS
	ino    uint64
	name   string
	gen    int
	off    int64
	write  bool
	closed bool
}

var errStale = errors.New("fakefs: file was open across a crash")

// usable checks the handle; the caller holds the lock.
func (h *file) usable(op string) (*node, error) {
	switch {
	case h.closed:
		return nil, perr(op, h.name, fs.ErrClosed)
	case h.gen != h.f.gen:
		return nil, perr(op, h.name, errStale)
	}
	n := h.f.live[h.ino]
	if n == nil {
		return nil, perr(op, h.name, errStale)
	}
	return n, nil
}

func (h *file) Read(p []byte) (int, error) {
	if err := h.f.inject("read", h.name); err != nil {
		return 0, err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n, err := h.usable("read")
	if err != nil {
		return 0, err
	}
	if h.write {
		return 0, perr("read", h.name, syscall.EBADF)
	}
	if n.isDir() {
		return 0, perr("read", h.name, syscall.EISDIR)
	}
	if h.off >= int64(len(n.data)) {
		return 0, io.EOF
	}
	c := copy(p, n.data[h.off:])
	h.off += int64(c)
	return c, nil
}

func (h *file) Write(p []byte) (int, error) {
	if err := h.f.inject("write", h.name); err != nil {
		return 0, err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if _, err := h.usable("write"); err != nil {
		return 0, err
	}
	if !h.write {
		return 0, perr("write", h.name, syscall.EBADF)
	}
	if len(p) == 0 {
		return 0, nil
	}
	h.f.do(&op{kind: opWrite, ino: h.ino, off: h.off, data: slices.Clone(p), t: h.f.clk.Now()})
	h.off += int64(len(p))
	return len(p), nil
}

// Sync makes the file's data durable, not its name.
func (h *file) Sync() error {
	if err := h.f.inject("sync", h.name); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if _, err := h.usable("sync"); err != nil {
		return err
	}
	h.f.force(h.ino, func(o *op) bool { return o.dataOp() && o.ino == h.ino })
	return nil
}

func (h *file) Close() error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if h.closed {
		return perr("close", h.name, fs.ErrClosed)
	}
	h.closed = true
	if h.gen == h.f.gen {
		h.f.open[h.ino]--
	}
	return nil
}

func (h *file) Stat() (localdir.FileInfo, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n, err := h.usable("stat")
	if err != nil {
		return localdir.FileInfo{}, err
	}
	return h.f.info(h.name, h.ino, n), nil
}

// WriteFile writes data to name like a user's editor would (truncate and write, nothing synced); the parent
// must exist. No fault hook applies.
func (f *FS) WriteFile(name string, data []byte) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clk.Now()
	ino, n, err := f.resolve(name)
	switch {
	case errors.Is(err, syscall.ENOENT):
		if ino, err = f.link(name, 0o644, nil); err != nil {
			return perr("writefile", name, err)
		}
	case err != nil:
		return perr("writefile", name, err)
	case !n.mode.IsRegular():
		return perr("writefile", name, syscall.EISDIR)
	default:
		f.do(&op{kind: opTruncate, ino: ino, off: 0, t: now})
	}
	if len(data) > 0 {
		f.do(&op{kind: opWrite, ino: ino, data: slices.Clone(data), t: now})
	}
	return nil
}

// ReadFile returns the live content of file name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, n, err := f.resolve(name)
	if err == nil && !n.mode.IsRegular() {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, perr("readfile", name, err)
	}
	return slices.Clone(n.data), nil
}

// MkdirAll creates folder name and its missing parents (nothing synced). No fault hook applies.
func (f *FS) MkdirAll(name string) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "." {
		return nil
	}
	cur := ""
	for _, c := range strings.Split(name, "/") {
		cur = path.Join(cur, c)
		_, n, err := f.resolve(cur)
		switch {
		case errors.Is(err, syscall.ENOENT):
			if _, err := f.link(cur, fs.ModeDir|0o755, nil); err != nil {
				return perr("mkdirall", cur, err)
			}
		case err != nil:
			return perr("mkdirall", cur, err)
		case !n.isDir():
			return perr("mkdirall", cur, syscall.ENOTDIR)
		}
	}
	return nil
}

// RemoveAll removes name and everything below it (a user's rm -rf; nothing synced). Missing is success.
func (f *FS) RemoveAll(name string) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	var rm func(string) error
	rm = func(n string) error {
		_, nd, err := f.resolve(n)
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if err != nil {
			return perr("removeall", n, err)
		}
		if nd.isDir() {
			for _, k := range slices.Sorted(maps.Keys(nd.kids)) {
				if err := rm(path.Join(n, k)); err != nil {
					return err
				}
			}
		}
		if err := f.remove(n); err != nil {
			return perr("removeall", n, err)
		}
		return nil
	}
	return rm(name)
}

type ent struct {
	name string
	mode fs.FileMode
	data []byte
}

// entries lists the live tree below the root, parents first, names sorted.
func (f *FS) entries() []ent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []ent
	var walk func(prefix string, ino uint64)
	walk = func(prefix string, ino uint64) {
		n := f.live[ino]
		for _, k := range slices.Sorted(maps.Keys(n.kids)) {
			c := f.live[n.kids[k]]
			name := path.Join(prefix, k)
			all = append(all, ent{name, c.mode, slices.Clone(c.data)})
			if c.isDir() {
				walk(name, n.kids[k])
			}
		}
	}
	walk("", f.root)
	return all
}

// Walk calls fn for every live entry below the root, parents first, names sorted. A file's data is its
// content, a symlink's its target (dir false for both). fn may use the FS.
func (f *FS) Walk(fn func(name string, dir bool, data []byte)) {
	for _, e := range f.entries() {
		fn(e.name, e.mode.IsDir(), e.data)
	}
}

// Snapshot maps every live path to the sha256 hex of its content, "dir" for a folder, "symlink:<target>", or
// "special:<type>" for another special file.
func (f *FS) Snapshot() map[string]string {
	out := map[string]string{}
	for _, e := range f.entries() {
		switch {
		case e.mode.IsDir():
			out[e.name] = "dir"
		case e.mode&fs.ModeSymlink != 0:
			out[e.name] = "symlink:" + string(e.data)
		case e.mode&fs.ModeType != 0:
			out[e.name] = "special:" + e.mode.Type().String()
		default:
			s := sha256.Sum256(e.data)
			out[e.name] = hex.EncodeToString(s[:])
		}
	}
	return out
}
