package engine

import (
	"sync"

	"github.com/tandemsync/tandem/state"
)

// groupCommit records finished actions' new bases in shared transactions. The first caller with nothing in
// flight commits at once, alone; callers that arrive while a commit runs queue up, and the next commit takes all
// of them in one transaction (one fsync). A batch thus grows with the commit's own latency, with no timer to
// wait out: a lone action (serial phases, the simulation's executor) costs one transaction, as with Update.
//
// Every fn is handed over only after the bytes its records describe are durable (the caller's syncs ran
// first), so grouping never records a base early. If the shared transaction fails, each fn of it is run again
// alone, so one failing fn does not fail the others: fns must be idempotent within a transaction (as bbolt's
// Batch asks too).
type groupCommit struct {
	mu      sync.Mutex
	pending []*commitReq
	leading bool // a caller is committing; the pending ones wait for it
}

type commitReq struct {
	fn   func(state.Writer) error
	done chan commitRes
}

type commitRes struct {
	err  error
	lead bool // no result yet: the receiver commits the next batch
}

// run commits fn, grouped with concurrent callers, and returns fn's outcome.
func (g *groupCommit) run(st *state.Store, fn func(state.Writer) error) error {
	req := &commitReq{fn: fn, done: make(chan commitRes, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if g.leading {
		g.mu.Unlock()
		res := <-req.done
		if !res.lead {
			return res.err
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	// This caller leads: it commits everything pending (its own request among it), then hands the lead to
	// the first of those that queued meanwhile, so no caller commits for others for long.
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	errs := commitBatch(st, batch)
	var mine error
	for i, r := range batch {
		if r == req {
			mine = errs[i]
			continue
		}
		r.done <- commitRes{err: errs[i]}
	}
	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].done <- commitRes{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return mine
}

// commitBatch runs the fns in one transaction; if it fails, each alone.
func commitBatch(st *state.Store, batch []*commitReq) []error {
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = st.Batch(batch[0].fn)
		return errs
	}
	err := st.Batch(func(tx state.Writer) error {
		for _, r := range batch {
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return errs
	}
	for i, r := range batch {
		errs[i] = st.Batch(r.fn)
	}
	return errs
}
