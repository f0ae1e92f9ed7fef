package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
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
	Dir   bool   `json:"d,omitempty"`
	Size  int64  `json:"s,omitempty"`
	Hash  string `json:"h,omitempty"` // "algo:" and the first 12 hex digits
	MTime int64  `json:"m,omitempty"` // unix ns
}

// HistoryEntry is one decision about one path: what the planner saw, what it decided and why, and how it ended.
// A move is recorded under both of its paths (From says where it came from), a conflict copy under the
// conflicting path and under the copy.
type HistoryEntry struct {
	Seq     uint64       `json:"-"` // store order: a higher Seq is newer
	Path    remote.Path  `json:"-"`
	At      int64        `json:"t"`           // unix ns
	Pass    string       `json:"p,omitempty"` // "full" or "scoped", then why
	Op      string       `json:"o"`
	From    remote.Path  `json:"f,omitempty"` // a move into Path: where from
	To      remote.Path  `json:"to,omitempty"`
	Copy    remote.Path  `json:"c,omitempty"` // a conflict: where the other version was saved
	Reason  string       `json:"r,omitempty"`
	Outcome string       `json:"x"` // done, failed, skipped
	Error   string       `json:"e,omitempty"`
	Local   *HistorySide `json:"l,omitempty"`
	Remote  *HistorySide `json:"R,omitempty"`
	Base    *HistorySide `json:"b,omitempty"`
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
	if err := storable(h.Path); err != nil {
		return 0, err
	}
	top, byPath, bySeq, err := t.historyBuckets()
	if err != nil {
		return 0, err
	}
	v, err := json.Marshal(h)
	if err != nil {
		return 0, err
	}
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
		var h HistoryEntry
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("%w: history %s: %v", ErrCorrupt, p.Quoted(), err)
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
