package state

import (
	"bytes"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote"
)

// A full pass that found nothing changed still planned the whole store: a merge of the three trees that cost a
// no-change pass over 100,000 files a fifth of its time, to learn what the previous pass already knew. The
// store now keeps what that knowledge depends on:
//
//   - a tree generation (metaTreeGen), moved by every commit that writes a tree (and by a migration);
//   - a settled mark (metaSettled): the generation at which the engine found a plan of the whole store empty,
//     with a tag the engine chooses (its build: other rules might plan differently);
//   - a Tracker, which collects the paths that commits write while it is attached.
//
// Settled at the start of a pass and tracked from then on, the trees differ from a state that planned nothing
// only at the tracked paths, so a plan over those is the whole plan (engine/DESIGN.md, "Settled passes").

const (
	// metaTreeGen counts the commits that wrote to a tree (uvarint).
	metaTreeGen = "treegen"
	// metaSettled is the tree generation a plan of everything found empty (uvarint), followed by the tag.
	metaSettled = "settled"
)

// treeGen reads the tree generation (0 before the first tree write).
func treeGen(meta *bolt.Bucket) uint64 {
	v := meta.Get([]byte(metaTreeGen))
	if v == nil {
		return 0
	}
	n, err := decodeUint(v, "tree generation")
	if err != nil {
		return ^uint64(0) // unreadable: match no mark
	}
	return n
}

// bumpTreeGen moves the tree generation (the commit in progress wrote a tree) and returns the new one.
func bumpTreeGen(meta *bolt.Bucket) (uint64, error) {
	g := treeGen(meta) + 1
	return g, meta.Put([]byte(metaTreeGen), encodeUint(g))
}

// wrote notes that this transaction changed tree paths at or below p.
func (t *txn) wrote(p remote.Path) {
	t.written = append(t.written, p)
}

// TreeGen is the tree generation: it moves with every commit that writes a tree.
func (t *txn) TreeGen() (uint64, error) { return treeGen(t.meta), nil }

// MarkSettled records that a plan of the whole store, by rules named by tag, found nothing to do in the trees
// as they were at generation gen (read before the plan began). Where a tree was written since, the plan did not
// see all of it and nothing is marked. Any later commit that writes a tree voids the mark.
func (t *txn) MarkSettled(tag []byte, gen uint64) (bool, error) {
	if len(t.written) > 0 || treeGen(t.meta) != gen {
		return false, nil
	}
	v := append(encodeUint(gen), tag...)
	if err := t.meta.Put([]byte(metaSettled), v); err != nil {
		return false, fmt.Errorf("state mark settled: %w", err)
	}
	return true, nil
}

// Settled reports whether the trees are as they were when MarkSettled was last called with tag.
func (t *txn) Settled(tag []byte) (bool, error) {
	v := t.meta.Get([]byte(metaSettled))
	if v == nil {
		return false, nil
	}
	gen := encodeUint(treeGen(t.meta))
	return bytes.HasPrefix(v, gen) && bytes.Equal(v[len(gen):], tag), nil
}

// Tracker collects the tree paths written by the commits made while it is attached (Store.Track), each with
// the tree generation its commit made.
type Tracker struct {
	s     *Store
	max   int
	mu    sync.Mutex
	paths []remote.Path
	gens  []uint64
	over  bool
}

// Track attaches a Tracker that keeps up to max paths; past that it only remembers that there were more. One
// Tracker at a time: a second replaces the first.
func (s *Store) Track(max int) *Tracker {
	tr := &Tracker{s: s, max: max}
	s.trackMu.Lock()
	s.tracker = tr
	s.trackMu.Unlock()
	return tr
}

// Stop detaches the Tracker.
func (tr *Tracker) Stop() {
	tr.s.trackMu.Lock()
	if tr.s.tracker == tr {
		tr.s.tracker = nil
	}
	tr.s.trackMu.Unlock()
}

// Paths returns the paths written so far (a tree operation on a folder reports the folder: what changed is at
// or below it), and false when there were more than the Tracker keeps.
func (tr *Tracker) Paths() ([]remote.Path, bool) { return tr.PathsSince(0) }

// PathsSince is Paths of the commits that made a tree generation after gen.
func (tr *Tracker) PathsSince(gen uint64) ([]remote.Path, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.over {
		return nil, false
	}
	var out []remote.Path
	for i, p := range tr.paths {
		if tr.gens[i] > gen {
			out = append(out, p)
		}
	}
	return out, true
}

func (tr *Tracker) add(gen uint64, ps []remote.Path) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.over {
		return
	}
	if len(tr.paths)+len(ps) > tr.max {
		tr.over, tr.paths, tr.gens = true, nil, nil
		return
	}
	tr.paths = append(tr.paths, ps...)
	for range ps {
		tr.gens = append(tr.gens, gen)
	}
}

// tracking is the attached Tracker, nil if none.
func (s *Store) tracking() *Tracker {
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	return s.tracker
}
