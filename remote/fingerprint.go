package remote

import (
	"math"
	"strconv"
)

// Fingerprint is the stat fast-check of a local file (DESIGN: size + mtime + ctime + inode). It is the Rev of
// a local file, so one value serves the scanner (skip hashing while it holds), the preconditions of every local
// overwrite, delete and move, and the store (state.Record keeps its inode and ctime). The ctime is what catches
// an in-place rewrite that keeps size and mtime (touch -r, cp -p, rsync -t): any write, chmod or rename moves it,
// and no user call can set it back.
type Fingerprint struct {
	Size  int64
	MTime int64  // ns since the epoch
	CTime int64  // ns since the epoch; 0 where the platform does not report it
	Inode uint64 // 0 where the platform does not report it
}

// Rev encodes f as a revision string: "size-mtime-ctime-inode".
func (f Fingerprint) Rev() string {
	// One allocation: every file of every walk gets one.
	var b [4*20 + 3]byte
	s := strconv.AppendInt(b[:0], f.Size, 10)
	s = strconv.AppendInt(append(s, '-'), f.MTime, 10)
	s = strconv.AppendInt(append(s, '-'), f.CTime, 10)
	s = strconv.AppendUint(append(s, '-'), f.Inode, 10)
	return string(s)
}

// ParseFingerprint decodes a Rev made by Fingerprint.Rev. ok is false for any other revision (a provider's, or
// one stored by a tandem whose fingerprint had no ctime: such a file is hashed again once). It accepts exactly
// what strconv.ParseInt (three times) and ParseUint on the "-"-separated parts would (decimal digits in range,
// the first three with an optional '+'), in one pass without them: every stored file of every scan is parsed.
func ParseFingerprint(rev string) (f Fingerprint, ok bool) {
	var v [4]uint64
	i := 0
	for k := range v {
		if k > 0 {
			if i == len(rev) || rev[i] != '-' {
				return Fingerprint{}, false
			}
			i++
		}
		if k < 3 && i < len(rev) && rev[i] == '+' { // ParseInt takes a '+', ParseUint (the inode) does not
			i++
		}
		start := i
		for ; i < len(rev) && rev[i] >= '0' && rev[i] <= '9'; i++ {
			d := uint64(rev[i] - '0')
			// 19 digits never overflow; from the 20th on, check (a division only there).
			if i-start >= 19 && v[k] > (math.MaxUint64-d)/10 {
				return Fingerprint{}, false // out of range
			}
			v[k] = v[k]*10 + d
		}
		if i == start || (k < 3 && v[k] > math.MaxInt64) {
			return Fingerprint{}, false
		}
	}
	if i != len(rev) {
		return Fingerprint{}, false
	}
	return Fingerprint{Size: int64(v[0]), MTime: int64(v[1]), CTime: int64(v[2]), Inode: v[3]}, true
}
