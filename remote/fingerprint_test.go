package remote

import (
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestFingerprintRev: Rev and ParseFingerprint round-trip (negative times included, which make a Rev that
// does not parse: such a file is hashed again, as before), and anything but four numbers is refused.
func TestFingerprintRev(t *testing.T) {
	for _, f := range []Fingerprint{{}, {Size: 1, MTime: 2, CTime: 3, Inode: 4},
		{Size: 1 << 62, MTime: 1_765_000_000_123_456_789, CTime: 1_765_000_000_987_654_321, Inode: 1<<64 - 1}} {
		got, ok := ParseFingerprint(f.Rev())
		if !ok || got != f {
			t.Errorf("%+v: Rev %q parses to %+v, %v", f, f.Rev(), got, ok)
		}
	}
	if r := (Fingerprint{Size: 1, MTime: -5, CTime: 3, Inode: 4}).Rev(); r != "1--5-3-4" {
		t.Errorf("negative mtime: Rev %q", r)
	}
	for _, bad := range []string{"", "1-2-3", "1-2-3-4-5", "1--5-3-4", "a-2-3-4", "1-2-3-", "-1-2-3", "12345", "1-2-3-x"} {
		if f, ok := ParseFingerprint(bad); ok {
			t.Errorf("ParseFingerprint(%q) = %+v, want refused", bad, f)
		}
	}
}

// parseBySplit is the parser ParseFingerprint replaced (strings.Cut and strconv on four parts), kept as its
// specification.
func parseBySplit(rev string) (f Fingerprint, ok bool) {
	var parts [4]string
	rest := rev
	for i := range 3 {
		var found bool
		if parts[i], rest, found = strings.Cut(rest, "-"); !found {
			return Fingerprint{}, false
		}
	}
	if strings.Contains(rest, "-") {
		return Fingerprint{}, false
	}
	parts[3] = rest
	var err [4]error
	f.Size, err[0] = strconv.ParseInt(parts[0], 10, 64)
	f.MTime, err[1] = strconv.ParseInt(parts[1], 10, 64)
	f.CTime, err[2] = strconv.ParseInt(parts[2], 10, 64)
	f.Inode, err[3] = strconv.ParseUint(parts[3], 10, 64)
	for _, e := range err {
		if e != nil {
			return Fingerprint{}, false
		}
	}
	return f, true
}

// TestParseFingerprintAgreesWithSplitting: on revisions of every shape (fingerprints of any values, numbers at
// and past the limits, signs, stray characters, missing or extra parts) the one-pass parser accepts and decodes
// exactly what splitting and strconv did.
func TestParseFingerprintAgreesWithSplitting(t *testing.T) {
	num := rapid.OneOf(
		rapid.StringMatching(`[+]?[0-9]{0,21}`),
		rapid.SampledFrom([]string{"9223372036854775807", "9223372036854775808", "18446744073709551615",
			"18446744073709551616", "99999999999999999999", "0", "+0", "", "+", "-1", "1a", " 1", "١"}),
	)
	rapid.Check(t, func(t *rapid.T) {
		var rev string
		if rapid.Bool().Draw(t, "fingerprint") {
			rev = Fingerprint{Size: rapid.Int64().Draw(t, "size"), MTime: rapid.Int64().Draw(t, "mtime"),
				CTime: rapid.Int64().Draw(t, "ctime"), Inode: rapid.Uint64().Draw(t, "inode")}.Rev()
		} else {
			parts := rapid.SliceOfN(num, 1, 6).Draw(t, "parts")
			rev = strings.Join(parts, rapid.SampledFrom([]string{"-", "-", "-", "--", "_"}).Draw(t, "sep"))
		}
		got, gok := ParseFingerprint(rev)
		want, wok := parseBySplit(rev)
		if got != want || gok != wok {
			t.Fatalf("ParseFingerprint(%q) = %+v, %v; splitting gives %+v, %v", rev, got, gok, want, wok)
		}
	})
}

func BenchmarkParseFingerprint(b *testing.B) {
	rev := Fingerprint{Size: 123456, MTime: 1_765_000_000_123_456_789, CTime: 1_765_000_000_987_654_321, Inode: 12345678}.Rev()
	b.Run("one-pass", func(b *testing.B) {
		for b.Loop() {
			ParseFingerprint(rev)
		}
	})
	b.Run("split", func(b *testing.B) {
		for b.Loop() {
			parseBySplit(rev)
		}
	})
}
