package engine

import (
	"strings"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// pageSize bounds what a streaming pass holds of a tree at once.
const pageSize = 512

// key is the store's sort key of a path: "/" sorts before every other byte, so the order is depth-first with
// each folder's children sorted bytewise, the order of localdir's walk.
func key(p remote.Path) string { return strings.ReplaceAll(string(p), "/", "\x00") }

// pager streams one tree in store order, one short read transaction per page, so that writes can go on
// between pages (bbolt must not hold a read transaction across a write in the same goroutine).
type pager[T any] struct {
	st    *state.Store
	fetch func(r state.Reader, after remote.Path) ([]T, error)
	path  func(*T) remote.Path
	buf   []T
	after remote.Path
	done  bool
	err   error
}

func (it *pager[T]) peek() *T {
	if len(it.buf) == 0 && !it.done && it.err == nil {
		it.err = it.st.View(func(r state.Reader) error {
			var err error
			it.buf, err = it.fetch(r, it.after)
			return err
		})
		if len(it.buf) < pageSize {
			it.done = true
		}
		if len(it.buf) > 0 {
			it.after = it.path(&it.buf[len(it.buf)-1])
		}
	}
	if len(it.buf) == 0 {
		return nil
	}
	return &it.buf[0]
}

func (it *pager[T]) next() { it.buf = it.buf[1:] }

func (it *pager[T]) failed() error { return it.err }

// recIter pages one side's records.
type recIter = pager[state.Record]

func newRecIter(st *state.Store, side state.Side) *recIter {
	return &recIter{st: st, path: func(r *state.Record) remote.Path { return r.Path },
		fetch: func(r state.Reader, after remote.Path) ([]state.Record, error) { return r.Page(side, after, pageSize) }}
}

func newBaseIter(st *state.Store) *pager[state.Base] {
	return &pager[state.Base]{st: st, path: func(b *state.Base) remote.Path { return b.Path },
		fetch: func(r state.Reader, after remote.Path) ([]state.Base, error) { return r.PageBase(after, pageSize) }}
}

// mergeTrees calls fn for every path in the union of the three trees, in store order, with copies of the
// records (nil where a tree lacks the path).
func mergeTrees(st *state.Store, fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	li := newRecIter(st, state.Local)
	ri := newRecIter(st, state.Remote)
	bi := newBaseIter(st)
	for {
		l, r, b := li.peek(), ri.peek(), bi.peek()
		if li.err != nil {
			return li.err
		}
		if ri.err != nil {
			return ri.err
		}
		if bi.err != nil {
			return bi.err
		}
		if l == nil && r == nil && b == nil {
			return nil
		}
		k, first := "", true
		for _, p := range []*remote.Path{pathOfRec(l), pathOfRec(r), pathOfBase(b)} {
			if p != nil && (first || key(*p) < k) {
				k, first = key(*p), false
			}
		}
		var lc, rc *state.Record
		var bc *state.Base
		var p remote.Path
		if l != nil && key(l.Path) == k {
			c := *l
			lc, p = &c, c.Path
			li.next()
		}
		if r != nil && key(r.Path) == k {
			c := *r
			rc, p = &c, c.Path
			ri.next()
		}
		if b != nil && key(b.Path) == k {
			c := *b
			bc, p = &c, c.Path
			bi.next()
		}
		if err := fn(p, bc, lc, rc); err != nil {
			return err
		}
	}
}

func pathOfRec(r *state.Record) *remote.Path {
	if r == nil {
		return nil
	}
	return &r.Path
}

func pathOfBase(b *state.Base) *remote.Path {
	if b == nil {
		return nil
	}
	return &b.Path
}
