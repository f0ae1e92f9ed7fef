package remote

import "testing"

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
