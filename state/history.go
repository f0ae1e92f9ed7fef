package state

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote"
)

// History bounds: the newest HistoryPerPath decisions of each path and HistoryTotal in all are kept; the oldest
// go first. They bound the database's growth whatever the pair's churn (about 250 bytes an entry).
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

// The history lives in its own bucket, created by the first write (a database written before history existed
// simply has none: no schema change). "path" maps path NUL seq -> entry, "seq" maps seq -> path (the global
// order for dropping the oldest), key "n" counts the entries.
var (
	bucketHistory = []byte("history")
	histByPath    = []byte("path")
	histBySeq     = []byte("seq")
	histCount     = []byte("n")
)

func histKey(p remote.Path, seq uint64) []byte {
	k := make([]byte, 0, len(p)+9)
	k = append(k, p...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func histPrefix(p remote.Path) []byte { return append([]byte(string(p)), 0) }

// historyBuckets returns the history's buckets, creating them in a write transaction; nil in a read one that
// has none yet.
func (t *txn) historyBuckets() (top, byPath, bySeq *bolt.Bucket, err error) {
	if !t.tx.Writable() {
		top = t.tx.Bucket(bucketHistory)
		if top == nil {
			return nil, nil, nil, nil
		}
		byPath, bySeq = top.Bucket(histByPath), top.Bucket(histBySeq)
		if byPath == nil || bySeq == nil {
			return nil, nil, nil, fmt.Errorf("%w: history bucket incomplete", ErrCorrupt)
		}
		return top, byPath, bySeq, nil
	}
	if top, err = t.tx.CreateBucketIfNotExists(bucketHistory); err != nil {
		return nil, nil, nil, err
	}
	if byPath, err = top.CreateBucketIfNotExists(histByPath); err != nil {
		return nil, nil, nil, err
	}
	if bySeq, err = top.CreateBucketIfNotExists(histBySeq); err != nil {
		return nil, nil, nil, err
	}
	return top, byPath, bySeq, nil
}

// AddHistory stores h under h.Path. With h.Seq zero it is a new entry and its new Seq is returned; otherwise it
// replaces entry h.Seq of h.Path (an action that commits more than once, or fails after a commit), unless the
// bounds dropped that one meanwhile.
func (t *txn) AddHistory(h HistoryEntry) (uint64, error) {
	if h.Path == remote.Root || h.Path == "" {
		return 0, fmt.Errorf("state: the root has no history")
	}
	top, byPath, bySeq, err := t.historyBuckets()
	if err != nil {
		return 0, err
	}
	v := encodeHistory(&h)
	if h.Seq != 0 {
		k := histKey(h.Path, h.Seq)
		if byPath.Get(k) == nil {
			return h.Seq, nil
		}
		return h.Seq, byPath.Put(k, v)
	}
	seq, err := bySeq.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := byPath.Put(histKey(h.Path, seq), v); err != nil {
		return 0, err
	}
	if err := bySeq.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(h.Path)); err != nil {
		return 0, err
	}
	n := uint64(1)
	if raw := top.Get(histCount); raw != nil {
		c, err := decodeUint(raw, "history count")
		if err != nil {
			return 0, err
		}
		n += c
	}
	// Per path: the oldest of this path's entries come first under its prefix.
	prefix := histPrefix(h.Path)
	var mine [][]byte
	c := byPath.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		mine = append(mine, bytes.Clone(k))
	}
	for len(mine) > HistoryPerPath {
		if err := byPath.Delete(mine[0]); err != nil {
			return 0, err
		}
		if err := bySeq.Delete(mine[0][len(prefix):]); err != nil {
			return 0, err
		}
		mine, n = mine[1:], n-1
	}
	// In all: the globally oldest.
	for n > HistoryTotal {
		sk, p := bySeq.Cursor().First()
		if sk == nil {
			break
		}
		seqOld := binary.BigEndian.Uint64(sk)
		if err := byPath.Delete(histKey(remote.Path(p), seqOld)); err != nil {
			return 0, err
		}
		if err := bySeq.Delete(bytes.Clone(sk)); err != nil {
			return 0, err
		}
		n--
	}
	return seq, top.Put(histCount, encodeUint(n))
}

// History calls fn with p's entries, newest first.
func (t *txn) History(p remote.Path, fn func(HistoryEntry) error) error {
	_, byPath, _, err := t.historyBuckets()
	if err != nil || byPath == nil {
		return err
	}
	prefix := histPrefix(p)
	c := byPath.Cursor()
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
	top, _, _, err := t.historyBuckets()
	if err != nil || top == nil {
		return 0, err
	}
	raw := top.Get(histCount)
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
	d.version()
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
