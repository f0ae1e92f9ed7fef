package state

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote"
)

// History bounds: the newest HistoryPerPath decisions of each path, and at most HistoryTotal in all (past it the
// oldest tenth goes). They bound the database's growth whatever the pair's churn.
const (
	HistoryPerPath = 20
	HistoryTotal   = 100_000
)

// HistorySide is what one side (or the sync point) held at a path when the decision was taken.
type HistorySide struct {
	Dir   bool
	Size  int64
	Hash  string // "algo:" and the first 12 hex digits
	MTime int64  // unix ns
}

// HistoryEntry is one decision about one path: what the planner saw, what it decided and why, and how it ended.
// A move is recorded under both of its paths (From says where it came from), a conflict copy under the
// conflicting path and under the copy.
type HistoryEntry struct {
	Seq     uint64 // store order: a higher Seq is newer
	Path    remote.Path
	At      int64  // unix ns
	Pass    string // "full" or "scoped", then why
	Op      string
	From    remote.Path // a move into Path: where from
	To      remote.Path
	Copy    remote.Path // a conflict: where the other version was saved
	Reason  string
	Outcome string // done, failed, skipped
	Error   string
	Local   *HistorySide
	Remote  *HistorySide
	Base    *HistorySide
}

// The history lives in one bucket of its own, created by the first write (a database written before history
// existed simply has none: no schema change). Keys are path NUL seq (big-endian), so a path's entries are
// contiguous and in age order; the bucket's sequence numbers the entries and key "\x00n" (no path starts with
// NUL) counts them. One bucket, not an index by sequence beside it: every action's commit writes the pages it
// touches, and a second tree would add its pages to every commit.
var (
	bucketHistory = []byte("history")
	histCount     = []byte("\x00n")
)

func histKey(p remote.Path, seq uint64) []byte {
	k := make([]byte, 0, len(p)+9)
	k = append(k, p...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func histPrefix(p remote.Path) []byte { return append([]byte(string(p)), 0) }

// historyBucket returns the history's bucket, created in a write transaction; nil in a read one that has none.
func (t *txn) historyBucket() (*bolt.Bucket, error) {
	if !t.tx.Writable() {
		return t.tx.Bucket(bucketHistory), nil
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketHistory)
	return packed(b), err
}

// AddHistory stores h under h.Path. With h.Seq zero it is a new entry and its new Seq is returned; otherwise it
// replaces entry h.Seq of h.Path (an action that commits more than once, or fails after a commit), unless the
// bounds dropped that one meanwhile.
func (t *txn) AddHistory(h HistoryEntry) (uint64, error) {
	if h.Path == remote.Root || h.Path == "" {
		return 0, fmt.Errorf("state: the root has no history")
	}
	b, err := t.historyBucket()
	if err != nil {
		return 0, err
	}
	v := encodeHistory(&h)
	if h.Seq != 0 {
		k := histKey(h.Path, h.Seq)
		if b.Get(k) == nil {
			return h.Seq, nil
		}
		return h.Seq, b.Put(k, v)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := b.Put(histKey(h.Path, seq), v); err != nil {
		return 0, err
	}
	n := uint64(1)
	if raw := b.Get(histCount); raw != nil {
		c, err := decodeUint(raw, "history count")
		if err != nil {
			return 0, err
		}
		n += c
	}
	// Per path: the oldest of this path's entries come first under its prefix.
	prefix := histPrefix(h.Path)
	var mine [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		mine = append(mine, bytes.Clone(k))
	}
	for len(mine) > HistoryPerPath {
		if err := b.Delete(mine[0]); err != nil {
			return 0, err
		}
		mine, n = mine[1:], n-1
	}
	if n > HistoryTotal {
		// In all: the oldest tenth goes, found by one walk over the bucket (once per HistoryTotal/10 entries, so
		// a few key visits per entry on average).
		if n, err = dropOldest(b, seq-HistoryTotal*9/10); err != nil {
			return 0, err
		}
	}
	return seq, b.Put(histCount, encodeUint(n))
}

// dropOldest deletes the entries numbered at most upTo and returns how many are left.
func dropOldest(b *bolt.Bucket, upTo uint64) (uint64, error) {
	var old [][]byte
	var left uint64
	err := b.ForEach(func(k, _ []byte) error {
		if len(k) < 9 || k[0] == 0 {
			return nil // the count
		}
		if binary.BigEndian.Uint64(k[len(k)-8:]) <= upTo {
			old = append(old, bytes.Clone(k))
		} else {
			left++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return left, nil
}

// History calls fn with p's entries, newest first.
func (t *txn) History(p remote.Path, fn func(HistoryEntry) error) error {
	b, err := t.historyBucket()
	if err != nil || b == nil {
		return err
	}
	prefix := histPrefix(p)
	c := b.Cursor()
	// Seek past the last key of the prefix, then walk back.
	end := append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	var k, v []byte
	if k, _ = c.Seek(end); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Prev() {
		h, err := decodeHistory(v)
		if err != nil {
			return fmt.Errorf("history %s: %w", p.Quoted(), err)
		}
		h.Path, h.Seq = p, binary.BigEndian.Uint64(k[len(prefix):])
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// HistoryCount is the number of history entries kept.
func (t *txn) HistoryCount() (int, error) {
	b, err := t.historyBucket()
	if err != nil || b == nil {
		return 0, err
	}
	raw := b.Get(histCount)
	if raw == nil {
		return 0, nil
	}
	n, err := decodeUint(raw, "history count")
	return int(n), err
}

// History values: the version byte, then At, Pass, Op, From, To, Copy, Reason, Outcome, Error and the three sides
// (a presence byte, then flags, size, hash prefix, mtime). Binary rather than JSON: an entry is written with
// every action, and its size is what the history adds to the database.
func encodeHistory(h *HistoryEntry) []byte {
	e := encoder{b: make([]byte, 0, 96+len(h.Reason)+len(h.Pass)+len(h.Error))}
	e.byte(valueV1)
	e.varint(h.At)
	for _, s := range []string{h.Pass, h.Op, string(h.From), string(h.To), string(h.Copy), h.Reason, h.Outcome, h.Error} {
		e.str(s)
	}
	for _, sd := range []*HistorySide{h.Local, h.Remote, h.Base} {
		if sd == nil {
			e.byte(0)
			continue
		}
		f := byte(1)
		if sd.Dir {
			f |= 2
		}
		e.byte(f)
		e.varint(sd.Size)
		e.str(sd.Hash)
		e.varint(sd.MTime)
	}
	return e.b
}

func decodeHistory(v []byte) (HistoryEntry, error) {
	d := decoder{s: string(v), what: "history"}
	d.version(valueV1)
	var h HistoryEntry
	h.At = d.varint()
	h.Pass, h.Op = d.str(), d.str()
	h.From, h.To, h.Copy = remote.Path(d.str()), remote.Path(d.str()), remote.Path(d.str())
	h.Reason, h.Outcome, h.Error = d.str(), d.str(), d.str()
	for _, sd := range []**HistorySide{&h.Local, &h.Remote, &h.Base} {
		f := d.byte()
		if f == 0 {
			continue
		}
		*sd = &HistorySide{Dir: f&2 != 0, Size: d.varint(), Hash: d.str(), MTime: d.varint()}
	}
	return h, d.end()
}
