package vboxx

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tandemsync/tandem/remote"
)

// feedState is what the change feed needs between polls, and it travels whole in the cursor (Batch.Next): the
// server time to ask modified_since from, and the known tree (every folder with its last hash, every file with
// its revision) so a folder whose hash changed can be compared child by child. Keeping it in the cursor, not in
// a side file, means the engine commits it in the same transaction as the changes it covers (DESIGN, state);
// nothing here can run ahead of what was recorded. The file revisions are needed too: modified_since repeats
// the overlap window on every poll, and only the stored (id, revision) tells a repeat from a new edit.
//
// Encoding: "VBX1", then a flate stream of uvarints and length-prefixed strings: the header, the folders in
// parent-first order, the files sorted by folder. Ids repeat the same few prefixes and names share extensions,
// so a 10,000-file tree takes a few hundred kilobytes before and far less after compression.
type feedState struct {
	since  int64 // server time, Unix seconds: the next modified_since asks from since - overlap
	rootID int64
	baseID int64 // folder id of the pair root; 0 = the vBoxx root's top level
	rr     int64 // round robin: the folder swept last
	used   int64 // the vBoxx root's space_used at the last poll; -1 unknown
	dirs   map[int64]*dirRec
	files  map[int64]*fileRec
}

type dirRec struct {
	parent int64 // unused for the base
	name   string
	hash   string
	dirs   map[int64]struct{}
	files  map[int64]struct{}
}

type fileRec struct {
	parent int64
	name   string
	rev    int64
}

func newState(rootID, baseID int64) *feedState {
	st := &feedState{rootID: rootID, baseID: baseID, used: -1, dirs: map[int64]*dirRec{}, files: map[int64]*fileRec{}}
	st.dirs[baseID] = newDir(0, "")
	return st
}

func newDir(parent int64, name string) *dirRec {
	return &dirRec{parent: parent, name: name, dirs: map[int64]struct{}{}, files: map[int64]struct{}{}}
}

// dirPath is the pair path of a known folder.
func (st *feedState) dirPath(id int64) remote.Path {
	var names []string
	for id != st.baseID {
		d := st.dirs[id]
		if d == nil || len(names) > remote.MaxPathBytes {
			return remote.Root // cannot happen for a decoded state: parents are checked
		}
		names = append(names, d.name)
		id = d.parent
	}
	slices.Reverse(names)
	p := remote.Root
	for _, n := range names {
		p, _ = p.Join(n)
	}
	return p
}

func (st *feedState) filePath(id int64) remote.Path {
	f := st.files[id]
	p, _ := st.dirPath(f.parent).Join(f.name)
	return p
}

func (st *feedState) addDir(id, parent int64, name string) {
	st.dirs[id] = newDir(parent, name)
	st.dirs[parent].dirs[id] = struct{}{}
}

func (st *feedState) addFile(id, parent int64, name string, rev int64) {
	st.files[id] = &fileRec{parent: parent, name: name, rev: rev}
	st.dirs[parent].files[id] = struct{}{}
}

func (st *feedState) reparentDir(id, parent int64, name string) {
	d := st.dirs[id]
	delete(st.dirs[d.parent].dirs, id)
	d.parent, d.name = parent, name
	st.dirs[parent].dirs[id] = struct{}{}
}

func (st *feedState) reparentFile(id, parent int64, name string) {
	f := st.files[id]
	delete(st.dirs[f.parent].files, id)
	f.parent, f.name = parent, name
	st.dirs[parent].files[id] = struct{}{}
}

func (st *feedState) removeFile(id int64) {
	if f := st.files[id]; f != nil {
		delete(st.dirs[f.parent].files, id)
		delete(st.files, id)
	}
}

func (st *feedState) removeDir(id int64) {
	d := st.dirs[id]
	if d == nil || id == st.baseID {
		return
	}
	for f := range d.files {
		delete(st.files, f)
	}
	for sub := range d.dirs {
		st.removeDir(sub)
	}
	delete(st.dirs[d.parent].dirs, id)
	delete(st.dirs, id)
}

// isAncestor reports whether dir a lies at or above dir b.
func (st *feedState) isAncestor(a, b int64) bool {
	for i := 0; i <= len(st.dirs); i++ {
		if b == a {
			return true
		}
		if b == st.baseID {
			return false
		}
		b = st.dirs[b].parent
	}
	return false
}

// cursorMagic: VBX2 added the root's space_used; a VBX1 cursor is read with it unknown.
const (
	cursorMagic  = "VBX2"
	cursorMagic1 = "VBX1"
)

// maxCursor bounds what a cursor may inflate to, so a damaged one cannot exhaust memory.
const maxCursor = 512 << 20

func (st *feedState) encode() remote.Cursor {
	var raw bytes.Buffer
	w := bufio.NewWriter(&raw)
	var tmp [binary.MaxVarintLen64]byte
	u := func(v int64) { w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(v))]) }
	s := func(v string) { u(int64(len(v))); w.WriteString(v) }
	u(st.since)
	u(st.rootID)
	u(st.baseID)
	u(st.rr)
	u(st.used + 1)
	u(int64(len(st.dirs)))
	order := []int64{st.baseID}
	for i := 0; i < len(order); i++ {
		d := st.dirs[order[i]]
		kids := make([]int64, 0, len(d.dirs))
		for k := range d.dirs {
			kids = append(kids, k)
		}
		slices.Sort(kids)
		order = append(order, kids...)
	}
	for _, id := range order {
		d := st.dirs[id]
		u(id)
		u(d.parent)
		s(d.name)
		if h, err := hex.DecodeString(d.hash); err == nil && len(d.hash) == 40 {
			u(1)
			w.Write(h)
		} else {
			u(0)
			s(d.hash)
		}
	}
	u(int64(len(st.files)))
	for _, id := range order {
		d := st.dirs[id]
		ids := make([]int64, 0, len(d.files))
		for f := range d.files {
			ids = append(ids, f)
		}
		slices.Sort(ids)
		for _, f := range ids {
			r := st.files[f]
			u(f)
			u(r.parent)
			u(r.rev)
			s(r.name)
		}
	}
	w.Flush()
	var out bytes.Buffer
	out.WriteString(cursorMagic)
	zw, _ := flate.NewWriter(&out, flate.BestSpeed)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

var errCursor = errors.New("cursor")

// decodeCursor reads a cursor back. Anything malformed (another version, damage, a tree that does not hang
// together) is an error wrapping remote.ErrOutOfSync: the engine then lists everything, which is always safe.
func decodeCursor(cur remote.Cursor) (*feedState, error) {
	st, err := decodeCursorRaw(cur)
	if err != nil {
		return nil, fmt.Errorf("vboxx cursor unusable (%v): %w", err, remote.ErrOutOfSync)
	}
	return st, nil
}

func decodeCursorRaw(cur remote.Cursor) (*feedState, error) {
	v1 := bytes.HasPrefix(cur, []byte(cursorMagic1))
	if !v1 && !bytes.HasPrefix(cur, []byte(cursorMagic)) {
		return nil, fmt.Errorf("%w: not a vboxx cursor", errCursor)
	}
	r := bufio.NewReader(io.LimitReader(flate.NewReader(bytes.NewReader(cur[len(cursorMagic):])), maxCursor))
	var err error
	u := func() int64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = binary.ReadUvarint(r)
		if err == nil && v > 1<<62 {
			err = fmt.Errorf("%w: number out of range", errCursor)
		}
		return int64(v)
	}
	s := func(max int64) string {
		n := u()
		if err != nil {
			return ""
		}
		if n > max {
			err = fmt.Errorf("%w: string of %d bytes", errCursor, n)
			return ""
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b)
	}
	st := &feedState{since: u(), rootID: u(), baseID: u(), rr: u(), used: -1, dirs: map[int64]*dirRec{},
		files: map[int64]*fileRec{}}
	if !v1 {
		st.used = u() - 1
	}
	nd := u()
	for i := int64(0); err == nil && i < nd; i++ {
		id, parent, name := u(), u(), s(remote.MaxNameBytes)
		var hash string
		if u() == 1 {
			var h [20]byte
			if err == nil {
				_, err = io.ReadFull(r, h[:])
			}
			hash = hex.EncodeToString(h[:])
		} else {
			hash = s(256)
		}
		if err != nil {
			break
		}
		switch {
		case i == 0 && id != st.baseID:
			err = fmt.Errorf("%w: first folder is not the base", errCursor)
		case i == 0:
			st.dirs[id] = newDir(0, "")
		case st.dirs[id] != nil || st.dirs[parent] == nil:
			err = fmt.Errorf("%w: folder %d out of order", errCursor, id)
		case remote.ValidName(name) != nil:
			err = fmt.Errorf("%w: bad folder name", errCursor)
		default:
			st.addDir(id, parent, name)
		}
		if err == nil {
			st.dirs[id].hash = hash
		}
	}
	if err == nil && nd == 0 {
		err = fmt.Errorf("%w: no base folder", errCursor)
	}
	nf := u()
	for i := int64(0); err == nil && i < nf; i++ {
		id, parent, rev, name := u(), u(), u(), s(remote.MaxNameBytes)
		switch {
		case err != nil:
		case st.files[id] != nil || st.dirs[parent] == nil:
			err = fmt.Errorf("%w: file %d out of place", errCursor, id)
		case remote.ValidName(name) != nil:
			err = fmt.Errorf("%w: bad file name", errCursor)
		default:
			st.addFile(id, parent, name, rev)
		}
	}
	if err != nil {
		return nil, err
	}
	if _, perr := r.ReadByte(); perr != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", errCursor)
	}
	return st, nil
}
