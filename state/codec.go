package state

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// Values are a version byte followed by varints and length-prefixed strings. The version byte lets a later
// schema change the layout of one bucket's values; a decoder that meets an unknown version reports ErrCorrupt
// (a migration rewrites values, or the decoder reads the older layout too, before a newer one is ever read).
//
// Records and bases are written as valueV2 (schema 3): a record holds two stamps, HashedAt and ListGen, where a
// valueV1 record held one, Scanned, that meant the one or the other by the side it was on. A valueV1 record's
// stamp is read into both fields: the racy-clean rule reads HashedAt and the listing's sweep reads ListGen, so
// each sees the value it saw before, and no database is rewritten on upgrade.
const (
	valueV1 = 1
	valueV2 = 2
)

// Record flag bits.
const (
	flagDir        = 1 << 0
	flagIncomplete = 1 << 1
	flagModTime    = 1 << 2 // a zero ModTime is stored as absent, so it decodes back to the zero time.Time
	flagInherit    = 1 << 3 // nested in a Base: Path omitted because it equals the Base's Path
	flagMode       = 1 << 4 // permission bits follow (schema 2): only sides that keep modes have them
	flagMask       = flagDir | flagIncomplete | flagModTime | flagInherit | flagMode
)

type encoder struct{ b []byte }

func (e *encoder) byte(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) hash(h remote.Hash) { e.str(h.Algo); e.str(h.Hex) }

// decoder reads from a string copy of the value, so every string field it returns is a substring of one
// allocation instead of one allocation per field (bbolt's value bytes are only valid inside the transaction).
type decoder struct {
	s    string
	i    int
	what string
	err  error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s value: %s at byte %d", ErrCorrupt, d.what, why, d.i)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.i >= len(d.s) {
		d.fail("truncated")
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	var shift uint
	for n := 0; ; n++ {
		if d.i >= len(d.s) {
			d.fail("truncated varint")
			return 0
		}
		c := d.s[d.i]
		d.i++
		if n == binary.MaxVarintLen64-1 && c > 1 {
			d.fail("varint overflows 64 bits")
			return 0
		}
		if c < 0x80 {
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.fail("string length past the end")
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *decoder) hash() remote.Hash { return remote.Hash{Algo: d.str(), Hex: d.str()} }

// version reads the encoding version, from valueV1 up to newest.
func (d *decoder) version(newest byte) byte {
	v := d.byte()
	if d.err == nil && (v < valueV1 || v > newest) {
		d.fail(fmt.Sprintf("unknown encoding version %d", v))
	}
	return v
}

func (d *decoder) end() error {
	if d.err == nil && d.i != len(d.s) {
		d.fail("trailing bytes")
	}
	return d.err
}

// appendRecord encodes r. With inherit set, r.Path is left out (the caller knows it).
func appendRecord(e *encoder, r *Record, inherit bool) {
	var f byte
	if r.Dir {
		f |= flagDir
	}
	if r.Incomplete {
		f |= flagIncomplete
	}
	if !r.ModTime.IsZero() {
		f |= flagModTime
	}
	if inherit {
		f |= flagInherit
	}
	if r.Mode != 0 {
		f |= flagMode
	}
	e.byte(f)
	if !inherit {
		e.str(string(r.Path))
	}
	e.varint(r.Size)
	if !r.ModTime.IsZero() {
		// seconds + nanoseconds: UnixNano cannot hold every time.Time
		e.varint(r.ModTime.Unix())
		e.uvarint(uint64(r.ModTime.Nanosecond()))
	}
	e.str(r.ID)
	e.str(r.Rev)
	e.hash(r.Hash)
	e.uvarint(r.Inode)
	e.varint(r.CTime)
	e.varint(r.HashedAt)
	e.varint(r.ListGen)
	if r.Mode != 0 {
		e.uvarint(uint64(r.Mode.Perm()))
	}
}

// readRecord decodes what appendRecord wrote in encoding version v; parent is the Path an inheriting record takes.
func readRecord(d *decoder, v byte, parent remote.Path) Record {
	var r Record
	f := d.byte()
	if f&^flagMask != 0 {
		d.fail(fmt.Sprintf("unknown flags %#x", f))
		return r
	}
	r.Dir = f&flagDir != 0
	r.Incomplete = f&flagIncomplete != 0
	if f&flagInherit != 0 {
		r.Path = parent
	} else {
		r.Path = remote.Path(d.str())
	}
	r.Size = d.varint()
	if f&flagModTime != 0 {
		sec := d.varint()
		ns := d.uvarint()
		if ns >= 1e9 {
			d.fail("nanoseconds out of range")
		}
		r.ModTime = time.Unix(sec, int64(ns))
	}
	r.ID = d.str()
	r.Rev = d.str()
	r.Hash = d.hash()
	r.Inode = d.uvarint()
	r.CTime = d.varint()
	r.HashedAt = d.varint()
	if v == valueV1 {
		r.ListGen = r.HashedAt // the one stamp of version 1 (see valueV2)
	} else {
		r.ListGen = d.varint()
	}
	if f&flagMode != 0 {
		m := d.uvarint()
		if m == 0 || m > 0o777 {
			d.fail("permission bits out of range")
		}
		r.Mode = fs.FileMode(m)
	}
	if d.err != nil {
		return Record{}
	}
	return r
}

func encodeRecord(r *Record) []byte {
	e := encoder{b: make([]byte, 0, 64+len(r.Path)+len(r.ID)+len(r.Rev)+len(r.Hash.Hex))}
	e.byte(valueV2)
	appendRecord(&e, r, false)
	return e.b
}

// decodeRecord decodes a local or remote tree value. It never panics; garbage yields an error wrapping ErrCorrupt.
func decodeRecord(v []byte) (Record, error) {
	d := decoder{s: string(v), what: "record"}
	r := readRecord(&d, d.version(valueV2), "")
	if err := d.end(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func encodeBase(b *Base) []byte {
	e := encoder{b: make([]byte, 0, 128+2*len(b.Path))}
	e.byte(valueV2)
	var f byte
	if b.Dir {
		f |= flagDir
	}
	e.byte(f)
	e.str(string(b.Path))
	e.hash(b.Hash)
	// each side's record usually sits at the base's own path; store it once
	appendRecord(&e, &b.Local, b.Local.Path == b.Path)
	appendRecord(&e, &b.Remote, b.Remote.Path == b.Path)
	return e.b
}

func decodeBase(v []byte) (Base, error) {
	d := decoder{s: string(v), what: "base"}
	ver := d.version(valueV2)
	var b Base
	f := d.byte()
	if f&^flagDir != 0 {
		d.fail(fmt.Sprintf("unknown flags %#x", f))
	}
	b.Dir = f&flagDir != 0
	b.Path = remote.Path(d.str())
	b.Hash = d.hash()
	b.Local = readRecord(&d, ver, b.Path)
	b.Remote = readRecord(&d, ver, b.Path)
	if err := d.end(); err != nil {
		return Base{}, err
	}
	return b, nil
}

func encodeIntent(in *Intent) []byte {
	e := encoder{b: make([]byte, 0, 32+len(in.Path)+len(in.To)+len(in.Temp))}
	e.byte(valueV1)
	e.uvarint(in.ID)
	e.str(in.Op)
	e.str(string(in.Path))
	e.str(string(in.To))
	e.str(in.Temp)
	e.varint(in.At)
	return e.b
}

func decodeIntent(v []byte) (Intent, error) {
	d := decoder{s: string(v), what: "intent"}
	d.version(valueV1)
	in := Intent{ID: d.uvarint(), Op: d.str(), Path: remote.Path(d.str()), To: remote.Path(d.str()), Temp: d.str(), At: d.varint()}
	if err := d.end(); err != nil {
		return Intent{}, err
	}
	return in, nil
}

func encodeConflict(c *Conflict) []byte {
	e := encoder{b: make([]byte, 0, 64+len(c.Path)+len(c.Copy)+len(c.Reason))}
	e.byte(valueV1)
	e.str(string(c.Path))
	e.str(string(c.Copy))
	e.varint(c.At)
	e.str(c.Reason)
	e.hash(c.LocalHash)
	e.hash(c.RemoteHash)
	return e.b
}

func decodeConflict(v []byte) (Conflict, error) {
	d := decoder{s: string(v), what: "conflict"}
	d.version(valueV1)
	c := Conflict{Path: remote.Path(d.str()), Copy: remote.Path(d.str()), At: d.varint(), Reason: d.str()}
	c.LocalHash = d.hash()
	c.RemoteHash = d.hash()
	if err := d.end(); err != nil {
		return Conflict{}, err
	}
	return c, nil
}

func encodeUint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func decodeUint(v []byte, what string) (uint64, error) {
	d := decoder{s: string(v), what: what}
	n := d.uvarint()
	return n, d.end()
}
