package fakefs

import (
	"io/fs"
	"maps"
	"slices"
	"time"
)

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
	opNew // a file with no name (O_TMPFILE): begins a life of its number, as opLink does, in no folder
	opLink
	opUnlink
	opRename
	opExchange // two names of one folder swap their inodes (Linux RENAME_EXCHANGE): ino at name, over at nam2
	opLinkIn   // an existing inode (an unnamed file) gets name in folder dir (Linux linkat)
)

// op is one logged mutation. It carries everything needed to replay it on a state that lacks its context (an
// inode whose creation was lost is made empty), so any subset of the log can be replayed in order.
type op struct {
	kind       opKind
	ino        uint64 // the inode written, or linked, unlinked, renamed
	dir, dir2  uint64 // name ops: the folder (rename: from, to)
	name, nam2 string
	off        int64
	over       uint64      // rename: the inode whose name the target replaced (0: none); exchange: the one at nam2
	data       []byte      // write: the bytes; link of a symlink: its target
	mode       fs.FileMode // chmod: permissions; link: the new inode's type and permissions
	mtime      time.Time   // chtimes
	t          time.Time   // when: the new ctime (and mtime where the op sets it)
	gen        uint64      // the life of ino the op acts on (link: the new one)
	gen2       uint64      // exchange: the life of over
	forced     bool
}

// dataOp: an op on one inode, not on a folder's names; an unnamed file's creation is one (its fsync makes the
// inode durable, as it does its data).
func (o *op) dataOp() bool { return o.kind <= opNew }

// begins reports whether o begins a new life of its number (a link of a new inode, an unnamed file).
func (o *op) begins() bool { return o.kind == opLink || o.kind == opNew }

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
	case opNew:
		delete(t, o.ino) // a new inode: a reused number starts empty
		n := t.ensure(o.ino, o.mode, o.t)
		n.gen = o.gen
	case opLinkIn:
		// The unnamed file's inode as this state has it: empty where its creation or its bytes did not survive
		// (a link made durable before the file's fsync shows an empty file under the name).
		d := t.ensure(o.dir, fs.ModeDir|0o755, o.t)
		n := t.subject(o, o.mode)
		d.kids[o.name] = o.ino
		d.mtime, d.ctime, n.ctime = o.t, o.t, o.t
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
	case opExchange:
		// Files only (localdir exchanges a complete temp file with the file it replaces). Each inode lands under
		// the other's name, whatever the replayed state held there.
		d := t.ensure(o.dir, fs.ModeDir|0o755, o.t)
		n := t.subject(o, o.mode)
		m := t.subject(&op{ino: o.over, gen: o.gen2, t: o.t}, o.mode)
		d.kids[o.nam2], d.kids[o.name] = o.ino, o.over
		d.mtime, d.ctime, n.ctime, m.ctime = o.t, o.t, o.t, o.t
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
