package engine

import (
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// pageSize bounds what a streaming pass holds of a tree at once.
const pageSize = 512

// pager streams one tree in store order, one short read transaction per page, so that writes can go on
// between pages (bbolt must not hold a read transaction across a write in the same goroutine). A pager made
// done with buf set walks records already read.
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

func (it *pager[T]) head() (remote.Path, bool) {
	if h := it.peek(); h != nil {
		return it.path(h), true
	}
	return "", false
}

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

// mergeTrees calls fn for every path in the union of the three trees, in store order (state.Compare), with
// copies of the records (nil where a tree lacks the path). Full passes merge pagers over the whole store,
// scoped passes slices of one subtree each.
func mergeTrees(lc, rc *pager[state.Record], bc *pager[state.Base], fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	for {
		var at remote.Path
		found := false
		for _, c := range []interface {
			head() (remote.Path, bool)
			failed() error
		}{lc, rc, bc} {
			p, ok := c.head()
			if err := c.failed(); err != nil {
				return err
			}
			if ok && (!found || state.Compare(p, at) < 0) {
				at, found = p, true
			}
		}
		if !found {
			return nil
		}
		if err := fn(at, take(bc, at), take(lc, at), take(rc, at)); err != nil {
			return err
		}
	}
}

// take consumes a copy of c's record if it is at p.
func take[T any](c *pager[T], p remote.Path) *T {
	if h, ok := c.head(); !ok || h != p {
		return nil
	}
	v := *c.peek()
	c.next()
	return &v
}

// mergeStore is mergeTrees over the whole store, paged.
func mergeStore(st *state.Store, fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	return mergeTrees(newRecIter(st, state.Local), newRecIter(st, state.Remote), newBaseIter(st), fn)
}

// recsOf walks records already read, in store order.
func recsOf(recs []state.Record) *recIter {
	return &recIter{path: func(r *state.Record) remote.Path { return r.Path }, buf: recs, done: true}
}

// mergeSubtree is mergeTrees over root and what is below it, read in rd.
func mergeSubtree(rd state.Reader, root remote.Path, fn func(p remote.Path, b *state.Base, l, r *state.Record) error) error {
	ls, rs := recsOf(nil), recsOf(nil)
	bs := &pager[state.Base]{path: func(b *state.Base) remote.Path { return b.Path }, done: true}
	if err := rd.Each(state.Local, root, func(r state.Record) error { ls.buf = append(ls.buf, r); return nil }); err != nil {
		return err
	}
	if err := rd.Each(state.Remote, root, func(r state.Record) error { rs.buf = append(rs.buf, r); return nil }); err != nil {
		return err
	}
	if err := rd.EachBase(root, func(b state.Base) error { bs.buf = append(bs.buf, b); return nil }); err != nil {
		return err
	}
	return mergeTrees(ls, rs, bs, fn)
}
