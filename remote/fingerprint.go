package remote

import (
	"strconv"
	"strings"
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
// one stored by a tandem whose fingerprint had no ctime: such a file is hashed again once).
func ParseFingerprint(rev string) (f Fingerprint, ok bool) {
	// strings.Split's four parts without its slice (every stored file of every walk is parsed).
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
