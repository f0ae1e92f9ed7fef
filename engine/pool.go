package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/tandemsync/tandem/remote"
)

// Task is one action's work. A fatal error (see isFatal) stops the tasks not yet started.
type Task func(ctx context.Context) error

// Executor runs a phase's tasks. Production uses a bounded pool; the simulation runs them one at a time in a
// seeded order, so that every interleaving it explores can be replayed.
type Executor interface {
	Run(ctx context.Context, tasks []Task) error
}

// Pool runs at most limit tasks at once (x/sync errgroup).
type Pool struct{ limit int }

// NewPool returns a pool of limit workers (at least 1).
func NewPool(limit int) *Pool {
	if limit < 1 {
		limit = 1
	}
	return &Pool{limit: limit}
}

// yieldCap bounds the tasks that yielded their slot (remote.Yield) and still wait, as a multiple of the limit:
// each holds a few file descriptors and its buffers until its wait ends.
const yieldCap = 3

// Run implements Executor: up to limit workers (an errgroup) take the tasks in order; the first fatal error
// cancels the others' context and no task starts after it. The workers live for the whole phase: a goroutine per
// task grew a fresh stack through a transfer's deep calls for every file, 2.6 % of a 20,000-file first sync's CPU.
//
// A task that yields (remote.Yield: from then on it only waits for a sync or a commit) hands its slot to a new
// worker and ends with its task, so at most limit tasks read and write at once while those waiting share their
// syncs and commits with more. At most yieldCap x limit tasks wait so; beyond that a yield keeps its slot. A
// pool of one never yields: --parallel 1 asks for one transfer at a time, start to end (and tests that stop the
// process at an action's failpoint rely on nothing else running then).
func (p *Pool) Run(ctx context.Context, tasks []Task) error {
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	var mu sync.Mutex
	waiting := 0
	var worker func() error
	worker = func() error {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(tasks) {
				return nil
			}
			if err := gctx.Err(); err != nil {
				return err
			}
			gave, done := false, false
			yield := func() {
				mu.Lock()
				defer mu.Unlock()
				if p.limit == 1 || gave || done || waiting >= p.limit*yieldCap || int(next.Load()) >= len(tasks) {
					return
				}
				gave = true
				waiting++
				g.Go(worker) // this goroutine still counts in g, so Wait has not returned
			}
			err := tasks[i](remote.WithYield(gctx, yield))
			mu.Lock()
			done = true
			if gave {
				waiting--
			}
			mu.Unlock()
			if isFatal(err) {
				return err
			}
			if gave {
				return nil // the slot is the new worker's
			}
		}
	}
	for range min(p.limit, len(tasks)) {
		g.Go(worker)
	}
	return g.Wait()
}

// Serial runs tasks one at a time, in an order drawn from rnd (nil: as given).
type Serial struct{ Rand *rand.Rand }

// Run implements Executor.
func (s Serial) Run(ctx context.Context, tasks []Task) error {
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	if s.Rand != nil {
		s.Rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	for _, i := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tasks[i](ctx); isFatal(err) {
			return err
		}
	}
	return nil
}

// isFatal: errors that make every further action pointless (no auth, a vanished root, cancellation, a broken
// state database). Everything else is a per-path problem.
func isFatal(err error) bool {
	return err != nil && (errors.Is(err, remote.ErrUnauthorized) || errors.Is(err, remote.ErrRootMissing) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errStore))
}

// errStore marks a failed state commit: the pass stops rather than run on with a store it cannot write.
var errStore = errors.New("state store")
