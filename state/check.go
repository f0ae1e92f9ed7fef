package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote"
)

// maxProblems bounds what Check reports: one broken invariant usually repeats for every record.
const maxProblems = 20

// boltCheck runs bbolt's page-level consistency check and drains its channel (the checker goroutine blocks
// until every error is received).
func boltCheck(tx *bolt.Tx) error {
	var errs []error
	n := 0
	for err := range tx.Check() {
		if n++; n <= maxProblems {
			errs = append(errs, err)
		}
	}
	if n > maxProblems {
		errs = append(errs, fmt.Errorf("and %d more bbolt check errors", n-maxProblems))
	}
	return errors.Join(errs...)
}

// Check verifies the database: bbolt's page-level check, then tandem's invariants. Every key is a valid Path
// and every value decodes to a record whose Path is its key; every ids entry points at a record with that id and
// every record with an id is indexed; journal and conflict entries decode; the schema version is current. It
// reads one snapshot and may run beside writers. The error wraps ErrCorrupt and lists up to 20 problems.
func (s *Store) Check() (err error) {
	var problems []error
	more := 0
	add := func(err error) {
		if len(problems) < maxProblems {
			problems = append(problems, err)
		} else {
			more++
		}
	}
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some damaged pages
			err = fmt.Errorf("check state %s: %w: bbolt panicked: %v", s.path, ErrCorrupt, r)
		}
	}()
	verr := s.db.View(func(tx *bolt.Tx) error {
		if err := boltCheck(tx); err != nil {
			add(err) // the pages are unsound: walking them could panic, so stop here
			return nil
		}
		t, err := newTxn(tx)
		if err != nil {
			add(err)
			return nil
		}
		t.checkMeta(add)
		// Each valid index entry names a distinct path whose record carries that id, so when an index has as
		// many valid entries as there are records with an id, every such record is indexed. Only a mismatch
		// pays for a lookup per record, to name the unindexed ones.
		var ided, valid [len(idsBuckets)]int
		for i := range t.trees {
			t.checkTree(i, add, &ided)
		}
		for ix := range t.ids {
			valid[ix] = t.checkIndex(Index(ix), add)
		}
		for i := range t.trees {
			for _, ix := range treeIndexes(i) {
				if ided[ix] != valid[ix] {
					t.checkIndexed(i, add)
					break
				}
			}
		}
		t.checkJournal(add)
		t.checkConflicts(add)
		return nil
	})
	if verr != nil {
		return fmt.Errorf("check state %s: %w", s.path, verr)
	}
	if more > 0 {
		problems = append(problems, fmt.Errorf("and %d more problems", more))
	}
	if len(problems) > 0 {
		return fmt.Errorf("check state %s: %w: %w", s.path, ErrCorrupt, errors.Join(problems...))
	}
	return nil
}

func (t *txn) checkMeta(add func(error)) {
	if string(t.meta.Get([]byte(metaMagic))) != magic {
		add(errors.New("meta: bad magic"))
	}
	v, err := decodeUint(t.meta.Get([]byte(metaSchema)), "schema version")
	switch {
	case err != nil:
		add(fmt.Errorf("meta: %w", err))
	case v != SchemaVersion:
		add(fmt.Errorf("meta: schema version %d, want %d", v, SchemaVersion))
	}
}

// checkKey reports whether k is the key of a valid, non-root Path.
func checkKey(what string, k []byte, add func(error)) (remote.Path, bool) {
	p := pathOf(k)
	if len(k) == 0 {
		add(fmt.Errorf("%s: empty key", what))
		return p, false
	}
	if bytes.IndexByte(k, '/') >= 0 { // key() never leaves one: this key is not in store order
		add(fmt.Errorf("%s: key %q holds a slash", what, k))
		return p, false
	}
	if _, err := remote.ParsePath(string(p)); err != nil {
		add(fmt.Errorf("%s: key %q: %w", what, k, err))
		return p, false
	}
	return p, true
}

// has reports whether b holds key k (index entries have empty values, which Get cannot tell from absence).
func has(b *bolt.Bucket, k []byte) bool {
	got, _ := b.Cursor().Seek(k)
	return got != nil && bytes.Equal(got, k)
}

// treeIndexes lists the id indexes tree i feeds.
func treeIndexes(i int) []Index {
	switch i {
	case int(Local):
		return []Index{IDLocal}
	case int(Remote):
		return []Index{IDRemote}
	}
	return []Index{IDBaseLocal, IDBaseRemote}
}

// treeIDs decodes a value of tree i into its path and the ids it should have in each index ("" = none).
func treeIDs(i int, v []byte) (ids [len(idsBuckets)]string, p remote.Path, err error) {
	if i == baseTree {
		b, err := decodeBase(v)
		ids[IDBaseLocal], ids[IDBaseRemote] = b.Local.ID, b.Remote.ID
		return ids, b.Path, err
	}
	r, err := decodeRecord(v)
	ids[recordIndex(Side(i))] = r.ID
	return ids, r.Path, err
}

// checkTree checks keys and values of tree i and counts its ids per index.
func (t *txn) checkTree(i int, add func(error), ided *[len(idsBuckets)]int) {
	what := string(treeBuckets[i])
	c := t.trees[i].Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, ok := checkKey(what, k, add)
		if !ok {
			continue
		}
		if v == nil {
			add(fmt.Errorf("%s %s: nested bucket", what, p.Quoted()))
			continue
		}
		ids, rp, err := treeIDs(i, v)
		if err != nil {
			add(fmt.Errorf("%s %s: %w", what, p.Quoted(), err))
			continue
		}
		if rp != p {
			add(fmt.Errorf("%s %s: record says %s", what, p.Quoted(), rp.Quoted()))
		}
		for ix, id := range ids {
			if id != "" {
				ided[ix]++
			}
		}
	}
}

// checkIndexed names the records of tree i whose id is missing from its index.
func (t *txn) checkIndexed(i int, add func(error)) {
	what := string(treeBuckets[i])
	c := t.trees[i].Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		ids, _, err := treeIDs(i, v)
		if err != nil || v == nil {
			continue // reported by checkTree
		}
		for ix, id := range ids {
			if id != "" && !has(t.ids[ix], idKey(id, k)) {
				add(fmt.Errorf("%s %s: id %q not in index %s", what, pathOf(k).Quoted(), id, Index(ix)))
			}
		}
	}
}

// checkIndex checks that every entry of index ix points at a record with its id and returns how many do.
func (t *txn) checkIndex(ix Index, add func(error)) (valid int) {
	what := "ids/" + ix.String()
	c := t.ids[ix].Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		id, pk, err := splitIDKey(k)
		if err != nil {
			add(fmt.Errorf("%s: %w", what, err))
			continue
		}
		p, ok := checkKey(what, pk, add)
		if !ok {
			continue
		}
		var got string
		switch ix {
		case IDLocal, IDRemote:
			v := t.trees[ix].Get(pk) // IDLocal, IDRemote equal Local, Remote
			if v == nil {
				add(fmt.Errorf("%s: id %q points at %s, which has no record", what, id, p.Quoted()))
				continue
			}
			r, err := decodeRecord(v)
			if err != nil {
				continue // reported by checkTree
			}
			got = r.ID
		default:
			v := t.trees[baseTree].Get(pk)
			if v == nil {
				add(fmt.Errorf("%s: id %q points at %s, which has no base", what, id, p.Quoted()))
				continue
			}
			b, err := decodeBase(v)
			if err != nil {
				continue
			}
			if got = b.Local.ID; ix == IDBaseRemote {
				got = b.Remote.ID
			}
		}
		if got != id {
			add(fmt.Errorf("%s: id %q points at %s, which has id %q", what, id, p.Quoted(), got))
			continue
		}
		valid++
	}
	return valid
}

func (t *txn) checkJournal(add func(error)) {
	c := t.journal.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		in, err := decodeIntent(v)
		switch {
		case err != nil:
			add(fmt.Errorf("journal %x: %w", k, err))
		case len(k) != 8 || binary.BigEndian.Uint64(k) != in.ID:
			add(fmt.Errorf("journal %x: intent says id %d", k, in.ID))
		}
	}
}

func (t *txn) checkConflicts(add func(error)) {
	c := t.conflicts.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, ok := checkKey("conflicts", k, add)
		if !ok {
			continue
		}
		cf, err := decodeConflict(v)
		switch {
		case err != nil:
			add(fmt.Errorf("conflicts %s: %w", p.Quoted(), err))
		case cf.Path != p:
			add(fmt.Errorf("conflicts %s: record says %s", p.Quoted(), cf.Path.Quoted()))
		}
	}
}
