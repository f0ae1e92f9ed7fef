package engine

import (
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// pageSize bounds what a streaming pass holds of a tree at once.
const pageSize = 512

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

// cursor walks one tree in store order: a pager over the store, or a slice read in one transaction.
type cursor[T any] interface {
	peek() *T // nil at the end or after an error
	next()
	failed() error
}

// sliceCursor is a cursor over records already read.
type sliceCursor[T any] struct{ items []T }

func (c *sliceCursor[T]) peek() *T {
	if len(c.items) == 0 {
		return nil
	}
	return &c.items[0]
}

func (c *sliceCursor[T]) next()         { c.items = c.items[1:] }
func (c *sliceCursor[T]) failed() error { return nil }

// mergeTrees calls fn for every path in the union of the three trees, in store order (state.Compare), with
// copies of the records (nil where a tree lacks the path). Full passes merge pagers over the whole store,
// scoped passes slices of one subtree each.
func mergeTrees(lc, rc cursor[state.Record], bc cursor[state.Base], fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	for {
		l, r, b := lc.peek(), rc.peek(), bc.peek()
		for _, err := range []error{lc.failed(), rc.failed(), bc.failed()} {
			if err != nil {
				return err
			}
		}
		var p *remote.Path
		for _, q := range []*remote.Path{pathOfRec(l), pathOfRec(r), pathOfBase(b)} {
			if q != nil && (p == nil || state.Compare(*q, *p) < 0) {
				p = q
			}
		}
		if p == nil {
			return nil
		}
		at := *p
		var lcopy, rcopy *state.Record
		var bcopy *state.Base
		if l != nil && l.Path == at {
			c := *l
			lcopy = &c
			lc.next()
		}
		if r != nil && r.Path == at {
			c := *r
			rcopy = &c
			rc.next()
		}
		if b != nil && b.Path == at {
			c := *b
			bcopy = &c
			bc.next()
		}
		if err := fn(at, bcopy, lcopy, rcopy); err != nil {
			return err
		}
	}
}

// mergeStore is mergeTrees over the whole store, paged.
func mergeStore(st *state.Store, fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	return mergeTrees(newRecIter(st, state.Local), newRecIter(st, state.Remote), newBaseIter(st), fn)
}

// mergeSubtree is mergeTrees over root and what is below it, read in rd.
func mergeSubtree(rd state.Reader, root remote.Path, fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	var ls, rs sliceCursor[state.Record]
	var bs sliceCursor[state.Base]
	if err := rd.Each(state.Local, root, func(r state.Record) error { ls.items = append(ls.items, r); return nil }); err != nil {
		return err
	}
	if err := rd.Each(state.Remote, root, func(r state.Record) error { rs.items = append(rs.items, r); return nil }); err != nil {
		return err
	}
	if err := rd.EachBase(root, func(b state.Base) error { bs.items = append(bs.items, b); return nil }); err != nil {
		return err
	}
	return mergeTrees(&ls, &rs, &bs, fn)
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
