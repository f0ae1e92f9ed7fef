package state

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// FuzzDecodeRecord feeds arbitrary bytes to every value decoder (RELIABILITY's FuzzStateRecord): none may
// panic, every failure wraps ErrCorrupt, and whatever decodes re-encodes to a value that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	full := rec("dir/file.txt", "dev:1")
	full.Incomplete = true
	seeds := [][]byte{
		nil,
		{valueV1},
		{2, 0},
		encodeRecord(&full),
		encodeRecord(&Record{Entry: remote.Entry{Path: "d", Dir: true}}),
		encodeRecord(&Record{Entry: remote.Entry{Path: "t", ModTime: time.Date(3000, 1, 1, 0, 0, 0, 1, time.UTC)}}),
		encodeBase(&Base{Path: "a", Hash: full.Hash, Local: rec("a", "1"), Remote: rec("A", "2")}),
		encodeIntent(&Intent{ID: 7, Op: "upload", Path: "a", To: "b", Temp: ".tandem-x.part", At: -1}),
		encodeConflict(&Conflict{Path: "a", Copy: "a (conflict)", At: 3, Reason: "both", LocalHash: full.Hash}),
		{valueV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},          // varint overflow
		{valueV1, flagModTime, 1, 'x', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0, 0}, // nanos out of range
	}
	e := encodeRecord(&full)
	for i := 1; i < len(e); i += 7 {
		seeds = append(seeds, e[:i])
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		corrupt := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: error %v does not wrap ErrCorrupt", what, err)
			}
		}
		if r, err := decodeRecord(b); err == nil {
			again, err := decodeRecord(encodeRecord(&r))
			if err != nil || !sameRecord(again, r) {
				t.Fatalf("record re-encode: %+v, %v; want %+v", again, err, r)
			}
		} else {
			corrupt("record", err)
		}
		if bs, err := decodeBase(b); err == nil {
			again, err := decodeBase(encodeBase(&bs))
			if err != nil || again.Path != bs.Path || !sameRecord(again.Local, bs.Local) || !sameRecord(again.Remote, bs.Remote) {
				t.Fatalf("base re-encode: %+v, %v; want %+v", again, err, bs)
			}
		} else {
			corrupt("base", err)
		}
		if in, err := decodeIntent(b); err == nil {
			if again, err := decodeIntent(encodeIntent(&in)); err != nil || again != in {
				t.Fatalf("intent re-encode: %+v, %v; want %+v", again, err, in)
			}
		} else {
			corrupt("intent", err)
		}
		if c, err := decodeConflict(b); err == nil {
			if again, err := decodeConflict(encodeConflict(&c)); err != nil || again != c {
				t.Fatalf("conflict re-encode: %+v, %v; want %+v", again, err, c)
			}
		} else {
			corrupt("conflict", err)
		}
		_, err := decodeUint(b, "uint")
		corrupt("uint", err)
		if id, pk, err := splitIDKey(b); err == nil {
			if !bytes.Equal(idKey(id, pk), b) {
				t.Fatalf("id key %q does not round trip", b)
			}
		} else {
			corrupt("id key", err)
		}
	})
}

// sameRecord compares with time.Time.Equal: the decoded location differs from the encoded one.
func sameRecord(a, b Record) bool {
	if !a.ModTime.Equal(b.ModTime) {
		return false
	}
	a.ModTime, b.ModTime = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestDecodeRejectsTrailingBytes(t *testing.T) {
	r := rec("a", "1")
	v := append(encodeRecord(&r), 0)
	if _, err := decodeRecord(v); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeRecord with a trailing byte: %v", err)
	}
}

// TestModeRoundTrip: permission bits (schema 2) survive encoding, in a record and nested in a base; a record
// without them encodes as schema 1 did; bits out of range are damage.
func TestModeRoundTrip(t *testing.T) {
	r := rec("a", "1")
	plain := encodeRecord(&r)
	r.Mode = 0o640
	v := encodeRecord(&r)
	got, err := decodeRecord(v)
	if err != nil || !sameRecord(got, r) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, r)
	}
	r.Mode = 0
	if !reflect.DeepEqual(encodeRecord(&r), plain) {
		t.Error("a record without mode is not encoded as before")
	}
	b := Base{Path: "a", Local: rec("a", "1"), Remote: rec("a", "2")}
	b.Local.Mode, b.Remote.Mode = 0o600, 0o755
	gb, err := decodeBase(encodeBase(&b))
	if err != nil || gb.Local.Mode != 0o600 || gb.Remote.Mode != 0o755 {
		t.Fatalf("base modes %o %o, %v", gb.Local.Mode, gb.Remote.Mode, err)
	}
	bad := append([]byte{}, v...)
	bad[len(bad)-2] = 0xff // the mode's varint: 0o640 takes two bytes
	bad[len(bad)-1] = 0x7f
	if _, err := decodeRecord(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("mode out of range decoded: %v", err)
	}
}
