package state

import (
	"bytes"
	"encoding/hex"
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
	for _, v1 := range []string{v1Record, v1Base} { // schema 2's values
		b, err := hex.DecodeString(v1)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
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

// Values written by schema 2 (encoding version 1), kept byte for byte: a file record rec("a/b", "dev:1") whose one
// stamp Scanned was 1_700_000_002_000_000_000, and a base of rec("a", "1") and rec("A", "2") whose remote
// record's stamp was 1_700_000_009_000_000_001 (the local one's as the record's).
const (
	v1Record = "010403612f62d80480c49fd50c959aef3a056465763a31077265762d612f620673686132353640303030303030303030303030" +
		"303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030332a80a8" +
		"a69ccebfce972f80d0fcd5d5bfce972f"
	v1Base = "01000161067368613235364030303030303030303030303030303030303030303030303030303030303030303030303030303030" +
		"3030303030303030303030303030303030303030303030330cc80180c49fd50c959aef3a0131057265762d610673686132353640" +
		"30303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030" +
		"3030303030303030303030312a80a8a69ccebfce972f80d0fcd5d5bfce972f040141c80180c49fd50c959aef3a0132057265762d" +
		"41067368613235364030303030303030303030303030303030303030303030303030303030303030303030303030303030303030" +
		"3030303030303030303030303030303030303030312a80a8a69ccebfce972f82e8d8e989c0ce972f"
)

// TestV1StampReadsIntoBothFields: a record of schema 2 held one stamp, Scanned, that the racy-clean rule read on a
// digested side and a complete listing's sweep on the remote side of a feed. Decoded now it lands in HashedAt
// and in ListGen, so each rule reads what it read before; everything else decodes as it did.
func TestV1StampReadsIntoBothFields(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const stamp = 1_700_000_002_000_000_000
	want := rec("a/b", "dev:1")
	want.HashedAt, want.ListGen = stamp, stamp
	got, err := decodeRecord(unhex(v1Record))
	if err != nil || !sameRecord(got, want) || got.HashedAt != stamp || got.ListGen != stamp {
		t.Fatalf("version 1 record decoded as %+v, %v; want %+v", got, err, want)
	}
	b, err := decodeBase(unhex(v1Base))
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != "a" || b.Local.Path != "a" || b.Remote.Path != "A" || b.Local.Rev != "rev-a" || b.Remote.ID != "2" {
		t.Errorf("version 1 base decoded as %+v", b)
	}
	if b.Local.HashedAt != stamp || b.Local.ListGen != stamp {
		t.Errorf("base's local stamps %d, %d; want %d in both", b.Local.HashedAt, b.Local.ListGen, int64(stamp))
	}
	const rstamp = 1_700_000_009_000_000_001
	if b.Remote.HashedAt != rstamp || b.Remote.ListGen != rstamp {
		t.Errorf("base's remote stamps %d, %d; want %d in both", b.Remote.HashedAt, b.Remote.ListGen, int64(rstamp))
	}
	// Written again, the record keeps both fields apart.
	got.ListGen = 7
	again, err := decodeRecord(encodeRecord(&got))
	if err != nil || again.HashedAt != stamp || again.ListGen != 7 {
		t.Errorf("re-encoded: %+v, %v", again, err)
	}
}
