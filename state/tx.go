package state

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

// Reader reads one consistent snapshot. Results are copies: they stay valid after the transaction ends.
// Callbacks must not write to the tree they are iterating.
type Reader interface {
	Get(side Side, p remote.Path) (Record, bool, error)
	GetBase(p remote.Path) (Base, bool, error)
	// Each calls fn for under itself and every record below it (under == remote.Root: all records), in store
	// order: depth-first, each folder's children sorted by name bytes, i.e. "/" sorts before every other byte
	// ("a", "a/b", "a/b/c", "a.txt", "a0", "b"); the same order as a walk that sorts ReadDir names bytewise, and
	// the order of Compare. An error from fn stops the scan and is returned as it is.
	Each(side Side, under remote.Path, fn func(Record) error) error
	// EachBase is Each over the base tree.
	EachBase(under remote.Path, fn func(Base) error) error
	// Page returns up to n records whose path comes strictly after `after` in store order (the order of Each
	// and Compare; remote.Root = from the start). Fewer than n means the end was reached. The engine
	// merge-joins the three trees in chunks this way without holding a read transaction open across writes.
	Page(side Side, after remote.Path, n int) ([]Record, error)
	// PageBase is Page over the base tree.
	PageBase(after remote.Path, n int) ([]Base, error)
	// PathOfID finds a path whose record carries id in the given index. When several do (hard links), the
	// first in store order is returned.
	PathOfID(ix Index, id string) (remote.Path, bool, error)
	// HasBase reports whether any sync point is stored, at the cost of one cursor step.
	HasBase() (bool, error)
	// Cursor is the stored provider cursor, nil when there is none.
	Cursor() (remote.Cursor, error)
	// Meta is a free-form value set with SetMeta, nil when absent.
	Meta(key string) ([]byte, error)
	// Settled reports whether no commit has written a tree since MarkSettled(tag) (settled.go).
	Settled(tag []byte) (bool, error)
	// TreeGen is the tree generation, which every commit that writes a tree moves (settled.go).
	TreeGen() (uint64, error)
	// Intents lists the open journal intents in the order they were begun.
	Intents(fn func(Intent) error) error
	// Conflicts lists the recorded conflicts in store order of their paths.
	Conflicts(fn func(Conflict) error) error
	// History lists the decisions kept about p, newest first (history.go); HistoryCount counts all kept.
	History(p remote.Path, fn func(HistoryEntry) error) error
	HistoryCount() (int, error)
}

// Writer is a Reader inside a write transaction. Nothing is visible to others until the transaction commits,
// and an error from the Update/Batch function discards every change made through the Writer.
type Writer interface {
	Reader
	// Put stores r at r.Path on one side, replacing what was there, and keeps the id index in step.
	Put(side Side, r Record) error
	// Delete removes one record (absent is fine).
	Delete(side Side, p remote.Path) error
	// PutBase stores b at b.Path, replacing what was there.
	PutBase(b Base) error
	DeleteBase(p remote.Path) error
	// MoveTree re-keys from and everything below it to to, in the local, remote and base trees alike (after a
	// folder move), updating Path fields and the id indexes. In each tree that holds something at or below
	// from, whatever was at or below to is replaced, as rename(2) replaces its target; trees with nothing at
	// from are left alone. Neither path may be the root or lie within the other.
	MoveTree(from, to remote.Path) error
	// DeleteTree removes p and everything below it on one side (remote.Root: the whole side).
	DeleteTree(side Side, p remote.Path) error
	// DeleteBaseTree removes p and everything below it from the base tree (remote.Root: the whole base).
	DeleteBaseTree(p remote.Path) error
	// SetCursor stores the provider cursor (nil clears it). Commit it in the transaction that stores the
	// remote records it covers, never before.
	SetCursor(c remote.Cursor) error
	// SetMeta stores a free-form value (nil deletes it). "magic", "schema", "cursor", "treegen" and "settled"
	// are reserved.
	SetMeta(key string, v []byte) error
	// MarkSettled records that a plan of all three trees at generation gen, by rules named by tag, found
	// nothing to do; false when a tree was written since gen. The next tree write voids it (settled.go).
	MarkSettled(tag []byte, gen uint64) (bool, error)
	// BeginIntent journals in and returns its new id (also set as in.ID in the store).
	BeginIntent(in Intent) (uint64, error)
	// EndIntent removes an intent; an unknown id is not an error, so a replayed or re-run commit stays harmless.
	EndIntent(id uint64) error
	// AddConflict records c at c.Path, replacing an earlier one there.
	AddConflict(c Conflict) error
	DeleteConflict(p remote.Path) error
	// AddHistory keeps one decision about h.Path, dropping the oldest beyond the bounds (history.go).
	AddHistory(h HistoryEntry) (uint64, error)
}

// txn implements Reader and Writer over one bbolt transaction.
type txn struct {
	tx        *bolt.Tx
	trees     [3]*bolt.Bucket // Local, Remote, base
	ids       [len(idsBuckets)]*bolt.Bucket
	meta      *bolt.Bucket
	journal   *bolt.Bucket
	conflicts *bolt.Bucket
	// written: the tree paths this transaction wrote (settled.go)
	written []remote.Path
}

const baseTree = 2 // index of the base tree in txn.trees

var (
	_ Writer = (*txn)(nil)
	// every tree's buckets, for the loops that treat the three trees alike
	treeBuckets = [3][]byte{bucketLocal, bucketRemote, bucketBase}
)

// treeFill is how full a write fills a tree's pages before it splits one (bbolt's default is half). The trees
// and the history are written mostly in key order (a walk, a first sync's commits), where half-full pages
// doubled the file: a no-change pass of 100,000 files read a 340 MB database at 47 % leaf use. The id indexes
// are keyed by provider ids, in no order, and keep the default.
const treeFill = 0.9

func packed(b *bolt.Bucket) *bolt.Bucket {
	if b != nil && b.Tx().Writable() {
		b.FillPercent = treeFill
	}
	return b
}

func newTxn(tx *bolt.Tx) (*txn, error) {
	t := &txn{tx: tx, meta: tx.Bucket(bucketMeta), journal: tx.Bucket(bucketJournal), conflicts: tx.Bucket(bucketConflicts)}
	for i, name := range treeBuckets {
		t.trees[i] = packed(tx.Bucket(name))
	}
	if ids := tx.Bucket(bucketIDs); ids != nil {
		for i, name := range idsBuckets {
			t.ids[i] = ids.Bucket(name)
		}
	}
	if err := t.complete(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *txn) complete() error {
	if t.meta == nil || t.journal == nil || t.conflicts == nil || t.trees[0] == nil || t.trees[1] == nil || t.trees[2] == nil {
		return fmt.Errorf("%w: a bucket is missing", ErrCorrupt)
	}
	for i, b := range t.ids {
		if b == nil {
			return fmt.Errorf("%w: id index %s is missing", ErrCorrupt, Index(i))
		}
	}
	return nil
}

func (t *txn) tree(side Side) (*bolt.Bucket, error) {
	if side > Remote {
		return nil, fmt.Errorf("state: invalid side %d", side)
	}
	return t.trees[side], nil
}

// storable validates a path that is about to become a key.
func storable(p remote.Path) error {
	if p == remote.Root {
		return fmt.Errorf("state: the root has no record")
	}
	if _, err := remote.ParsePath(string(p)); err != nil {
		return fmt.Errorf("state %s: %w", p.Quoted(), err)
	}
	return nil
}

// scan visits the key range of under (the exact key, then the keys below it) or the whole bucket for Root.
func scan(b *bolt.Bucket, under remote.Path, fn func(k, v []byte) error) error {
	c := b.Cursor()
	if under == remote.Root {
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	exact := key(under)
	below := append(exact[:len(exact):len(exact)], sep)
	for k, v := c.Seek(exact); k != nil; k, v = c.Next() {
		if !bytes.Equal(k, exact) && !bytes.HasPrefix(k, below) {
			break
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// page collects up to n values after `after`.
func page(b *bolt.Bucket, after remote.Path, n int, fn func(k, v []byte) error) error {
	if n <= 0 {
		return nil
	}
	c := b.Cursor()
	var k, v []byte
	if after == remote.Root {
		k, v = c.First()
	} else {
		ak := key(after)
		k, v = c.Seek(ak)
		if k != nil && bytes.Equal(k, ak) {
			k, v = c.Next()
		}
	}
	for ; k != nil && n > 0; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
		n--
	}
	return nil
}

func recordAt(k, v []byte, side Side) (Record, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return Record{}, fmt.Errorf("state %s %s: %w", side, pathOf(k).Quoted(), err)
	}
	return r, nil
}

func baseAt(k, v []byte) (Base, error) {
	b, err := decodeBase(v)
	if err != nil {
		return Base{}, fmt.Errorf("state base %s: %w", pathOf(k).Quoted(), err)
	}
	return b, nil
}

func (t *txn) Get(side Side, p remote.Path) (Record, bool, error) {
	b, err := t.tree(side)
	if err != nil || p == remote.Root {
		return Record{}, false, err
	}
	v := b.Get(key(p))
	if v == nil {
		return Record{}, false, nil
	}
	r, err := recordAt(key(p), v, side)
	return r, err == nil, err
}

func (t *txn) GetBase(p remote.Path) (Base, bool, error) {
	if p == remote.Root {
		return Base{}, false, nil
	}
	v := t.trees[baseTree].Get(key(p))
	if v == nil {
		return Base{}, false, nil
	}
	b, err := baseAt(key(p), v)
	return b, err == nil, err
}

func (t *txn) Each(side Side, under remote.Path, fn func(Record) error) error {
	b, err := t.tree(side)
	if err != nil {
		return err
	}
	return scan(b, under, func(k, v []byte) error {
		r, err := recordAt(k, v, side)
		if err != nil {
			return err
		}
		return fn(r)
	})
}

func (t *txn) EachBase(under remote.Path, fn func(Base) error) error {
	return scan(t.trees[baseTree], under, func(k, v []byte) error {
		b, err := baseAt(k, v)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

func (t *txn) Page(side Side, after remote.Path, n int) ([]Record, error) {
	b, err := t.tree(side)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, min(max(n, 0), 4096))
	err = page(b, after, n, func(k, v []byte) error {
		r, err := recordAt(k, v, side)
		out = append(out, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t *txn) PageBase(after remote.Path, n int) ([]Base, error) {
	out := make([]Base, 0, min(max(n, 0), 4096))
	err := page(t.trees[baseTree], after, n, func(k, v []byte) error {
		b, err := baseAt(k, v)
		out = append(out, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t *txn) index(ix Index) (*bolt.Bucket, error) {
	if int(ix) >= len(t.ids) {
		return nil, fmt.Errorf("state: invalid index %d", ix)
	}
	return t.ids[ix], nil
}

func (t *txn) PathOfID(ix Index, id string) (remote.Path, bool, error) {
	b, err := t.index(ix)
	if err != nil || id == "" {
		return remote.Root, false, err
	}
	prefix := idPrefix(id)
	k, _ := b.Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return remote.Root, false, nil
	}
	return pathOf(k[len(prefix):]), true, nil
}

func (t *txn) HasBase() (bool, error) {
	k, _ := t.trees[baseTree].Cursor().First()
	return k != nil, nil
}

func (t *txn) Cursor() (remote.Cursor, error) {
	return remote.Cursor(bytes.Clone(t.meta.Get([]byte(metaCursor)))), nil
}

func (t *txn) Meta(k string) ([]byte, error) {
	if k == "" {
		return nil, nil
	}
	return bytes.Clone(t.meta.Get([]byte(k))), nil
}

func (t *txn) Intents(fn func(Intent) error) error {
	c := t.journal.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		in, err := decodeIntent(v)
		if err != nil {
			return fmt.Errorf("state journal %x: %w", k, err)
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) Conflicts(fn func(Conflict) error) error {
	c := t.conflicts.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		cf, err := decodeConflict(v)
		if err != nil {
			return fmt.Errorf("state conflict %s: %w", pathOf(k).Quoted(), err)
		}
		if err := fn(cf); err != nil {
			return err
		}
	}
	return nil
}

// ---- writes ----

// recordIndex is the id index a side's records feed (a base feeds IDBaseLocal and IDBaseRemote).
func recordIndex(side Side) Index {
	if side == Local {
		return IDLocal
	}
	return IDRemote
}

// reindex moves one path's index entry from oldID to newID.
func (t *txn) reindex(ix Index, oldID, newID string, pk []byte) error {
	if oldID == newID {
		return nil
	}
	if oldID != "" {
		if err := t.ids[ix].Delete(idKey(oldID, pk)); err != nil {
			return err
		}
	}
	if newID != "" {
		return t.ids[ix].Put(idKey(newID, pk), nil)
	}
	return nil
}

func (t *txn) Put(side Side, r Record) error {
	b, err := t.tree(side)
	if err != nil {
		return err
	}
	if err := storable(r.Path); err != nil {
		return err
	}
	k := key(r.Path)
	var oldID string
	if v := b.Get(k); v != nil {
		old, err := recordAt(k, v, side)
		if err != nil {
			return err
		}
		oldID = old.ID
	}
	t.wrote(r.Path)
	if err := b.Put(k, encodeRecord(&r)); err != nil {
		return fmt.Errorf("state put %s %s: %w", side, r.Path.Quoted(), err)
	}
	if err := t.reindex(recordIndex(side), oldID, r.ID, k); err != nil {
		return fmt.Errorf("state put %s %s: index: %w", side, r.Path.Quoted(), err)
	}
	return nil
}

func (t *txn) Delete(side Side, p remote.Path) error {
	b, err := t.tree(side)
	if err != nil || p == remote.Root {
		return err
	}
	k := key(p)
	v := b.Get(k)
	if v == nil {
		return nil
	}
	t.wrote(p)
	if err := t.deleteKey(int(side), k, v); err != nil {
		return fmt.Errorf("state delete %s %s: %w", side, p.Quoted(), err)
	}
	return nil
}

// deleteKey removes one key of tree i with its index entries; v is its current value. A value that does not
// decode is still deleted (there is nothing to unindex that Check would not already flag).
func (t *txn) deleteKey(i int, k, v []byte) error {
	if i == baseTree {
		if old, err := decodeBase(v); err == nil {
			if err := t.reindex(IDBaseLocal, old.Local.ID, "", k); err != nil {
				return err
			}
			if err := t.reindex(IDBaseRemote, old.Remote.ID, "", k); err != nil {
				return err
			}
		}
	} else if old, err := decodeRecord(v); err == nil {
		if err := t.reindex(recordIndex(Side(i)), old.ID, "", k); err != nil {
			return err
		}
	}
	return t.trees[i].Delete(k)
}

func (t *txn) PutBase(b Base) error {
	if err := failpoint.Hit("state.tx.putBase"); err != nil { // inside the transaction, before the write
		return err
	}
	if err := storable(b.Path); err != nil {
		return err
	}
	k := key(b.Path)
	var oldL, oldR string
	if v := t.trees[baseTree].Get(k); v != nil {
		old, err := baseAt(k, v)
		if err != nil {
			return err
		}
		oldL, oldR = old.Local.ID, old.Remote.ID
	}
	t.wrote(b.Path)
	if err := t.trees[baseTree].Put(k, encodeBase(&b)); err != nil {
		return fmt.Errorf("state put base %s: %w", b.Path.Quoted(), err)
	}
	if err := t.reindex(IDBaseLocal, oldL, b.Local.ID, k); err != nil {
		return fmt.Errorf("state put base %s: index: %w", b.Path.Quoted(), err)
	}
	if err := t.reindex(IDBaseRemote, oldR, b.Remote.ID, k); err != nil {
		return fmt.Errorf("state put base %s: index: %w", b.Path.Quoted(), err)
	}
	return nil
}

func (t *txn) DeleteBase(p remote.Path) error {
	if err := failpoint.Hit("state.tx.deleteBase"); err != nil { // inside the transaction, before the write
		return err
	}
	if p == remote.Root {
		return nil
	}
	k := key(p)
	v := t.trees[baseTree].Get(k)
	if v == nil {
		return nil
	}
	t.wrote(p)
	if err := t.deleteKey(baseTree, k, v); err != nil {
		return fmt.Errorf("state delete base %s: %w", p.Quoted(), err)
	}
	return nil
}

type kv struct{ k, v []byte }

// collect copies out the key range of under: bbolt cursors must not run over keys being changed.
func collect(b *bolt.Bucket, under remote.Path) []kv {
	var out []kv
	_ = scan(b, under, func(k, v []byte) error {
		out = append(out, kv{bytes.Clone(k), bytes.Clone(v)})
		return nil
	})
	return out
}

func (t *txn) deleteTree(i int, p remote.Path) error {
	t.wrote(p)
	if p == remote.Root {
		return t.clearTree(i)
	}
	for _, e := range collect(t.trees[i], p) {
		if err := t.deleteKey(i, e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// clearTree empties a whole tree and its indexes by recreating the buckets: far cheaper than key by key.
func (t *txn) clearTree(i int) error {
	ixs := treeIndexes(i)
	var err error
	if err = t.tx.DeleteBucket(treeBuckets[i]); err != nil {
		return err
	}
	if t.trees[i], err = t.tx.CreateBucket(treeBuckets[i]); err != nil {
		return err
	}
	packed(t.trees[i])
	ids := t.tx.Bucket(bucketIDs)
	for _, ix := range ixs {
		if err = ids.DeleteBucket(idsBuckets[ix]); err != nil {
			return err
		}
		if t.ids[ix], err = ids.CreateBucket(idsBuckets[ix]); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) DeleteTree(side Side, p remote.Path) error {
	if _, err := t.tree(side); err != nil {
		return err
	}
	if err := t.deleteTree(int(side), p); err != nil {
		return fmt.Errorf("state delete tree %s %s: %w", side, p.Quoted(), err)
	}
	return nil
}

func (t *txn) DeleteBaseTree(p remote.Path) error {
	if err := t.deleteTree(baseTree, p); err != nil {
		return fmt.Errorf("state delete base tree %s: %w", p.Quoted(), err)
	}
	return nil
}

func (t *txn) MoveTree(from, to remote.Path) error {
	if err := failpoint.Hit("state.tx.moveTree"); err != nil { // inside the transaction, before the write
		return err
	}
	if err := storable(from); err != nil {
		return err
	}
	if err := storable(to); err != nil {
		return err
	}
	if from == to {
		return nil
	}
	if to.Within(from) || from.Within(to) {
		return fmt.Errorf("state move tree %s to %s: one lies within the other", from.Quoted(), to.Quoted())
	}
	t.wrote(from)
	t.wrote(to)
	for i := range t.trees {
		if err := t.moveTree(i, from, to); err != nil {
			return fmt.Errorf("state move tree %s to %s: %w", from.Quoted(), to.Quoted(), err)
		}
	}
	return nil
}

func rebase(p, from, to remote.Path) remote.Path {
	if p.Within(from) {
		return p.Rebase(from, to)
	}
	return p
}

func (t *txn) moveTree(i int, from, to remote.Path) error {
	moving := collect(t.trees[i], from)
	if len(moving) == 0 {
		return nil
	}
	if err := t.deleteTree(i, to); err != nil {
		return err
	}
	for _, e := range moving {
		if err := t.deleteKey(i, e.k, e.v); err != nil {
			return err
		}
	}
	for _, e := range moving {
		np := rebase(pathOf(e.k), from, to)
		if err := storable(np); err != nil { // a longer prefix can push a path past MaxPathBytes
			return err
		}
		if i == baseTree {
			b, err := baseAt(e.k, e.v)
			if err != nil {
				return err
			}
			b.Path = np
			b.Local.Path = rebase(b.Local.Path, from, to)
			b.Remote.Path = rebase(b.Remote.Path, from, to)
			if err := t.PutBase(b); err != nil {
				return err
			}
			continue
		}
		r, err := recordAt(e.k, e.v, Side(i))
		if err != nil {
			return err
		}
		r.Path = np
		if err := t.Put(Side(i), r); err != nil {
			return err
		}
	}
	return nil
}

func reservedMeta(k string) bool {
	return k == metaMagic || k == metaSchema || k == metaCursor || k == metaTreeGen || k == metaSettled
}

func (t *txn) SetCursor(c remote.Cursor) error {
	if err := failpoint.Hit("state.tx.setCursor"); err != nil { // inside the transaction, before the write
		return err
	}
	var err error
	if c == nil {
		err = t.meta.Delete([]byte(metaCursor))
	} else {
		err = t.meta.Put([]byte(metaCursor), c)
	}
	if err != nil {
		return fmt.Errorf("state set cursor: %w", err)
	}
	return nil
}

func (t *txn) SetMeta(k string, v []byte) error {
	if err := failpoint.Hit("state.tx.setMeta"); err != nil { // inside the transaction, before the write
		return err
	}
	if k == "" || reservedMeta(k) {
		return fmt.Errorf("state set meta %q: reserved or empty key", k)
	}
	var err error
	if v == nil {
		err = t.meta.Delete([]byte(k))
	} else {
		err = t.meta.Put([]byte(k), v)
	}
	if err != nil {
		return fmt.Errorf("state set meta %q: %w", k, err)
	}
	return nil
}

func intentKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func (t *txn) BeginIntent(in Intent) (uint64, error) {
	if err := failpoint.Hit("state.tx.beginIntent"); err != nil { // inside the transaction, before the write
		return 0, err
	}
	id, err := t.journal.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("state begin intent %s %s: %w", in.Op, in.Path.Quoted(), err)
	}
	in.ID = id
	if err := t.journal.Put(intentKey(id), encodeIntent(&in)); err != nil {
		return 0, fmt.Errorf("state begin intent %s %s: %w", in.Op, in.Path.Quoted(), err)
	}
	return id, nil
}

func (t *txn) EndIntent(id uint64) error {
	if err := failpoint.Hit("state.tx.endIntent"); err != nil { // inside the transaction, before the write
		return err
	}
	if err := t.journal.Delete(intentKey(id)); err != nil {
		return fmt.Errorf("state end intent %d: %w", id, err)
	}
	return nil
}

func (t *txn) AddConflict(c Conflict) error {
	if err := failpoint.Hit("state.tx.addConflict"); err != nil { // inside the transaction, before the write
		return err
	}
	if err := storable(c.Path); err != nil {
		return err
	}
	if err := t.conflicts.Put(key(c.Path), encodeConflict(&c)); err != nil {
		return fmt.Errorf("state add conflict %s: %w", c.Path.Quoted(), err)
	}
	return nil
}

func (t *txn) DeleteConflict(p remote.Path) error {
	if err := failpoint.Hit("state.tx.deleteConflict"); err != nil { // inside the transaction, before the write
		return err
	}
	if p == remote.Root {
		return nil
	}
	if err := t.conflicts.Delete(key(p)); err != nil {
		return fmt.Errorf("state delete conflict %s: %w", p.Quoted(), err)
	}
	return nil
}
