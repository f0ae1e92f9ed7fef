package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

// TestPoolRunsEachTaskOnceWithinItsLimit: every task runs exactly once, never more than limit at a time, and a
// per-path error does not stop the others.
func TestPoolRunsEachTaskOnceWithinItsLimit(t *testing.T) {
	const n, limit = 500, 7
	var ran [n]atomic.Int32
	var in, most atomic.Int32
	tasks := make([]Task, n)
	for i := range tasks {
		tasks[i] = func(context.Context) error {
			c := in.Add(1)
			for {
				m := most.Load()
				if c <= m || most.CompareAndSwap(m, c) {
					break
				}
			}
			ran[i].Add(1)
			in.Add(-1)
			if i%10 == 0 {
				return fmt.Errorf("path %d: %w", i, remote.ErrNotFound) // not fatal
			}
			return nil
		}
	}
	if err := NewPool(limit).Run(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	for i := range ran {
		if got := ran[i].Load(); got != 1 {
			t.Fatalf("task %d ran %d times", i, got)
		}
	}
	if m := most.Load(); m > limit {
		t.Fatalf("%d tasks at once, limit %d", m, limit)
	}
}

// TestPoolStopsAtAFatalError: after a fatal error no task starts, the ones running see their context cancelled,
// and Run returns that error.
func TestPoolStopsAtAFatalError(t *testing.T) {
	const n, limit = 200, 4
	var started atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	tasks := make([]Task, n)
	for i := range tasks {
		tasks[i] = func(ctx context.Context) error {
			started.Add(1)
			if i == 10 {
				once.Do(func() { close(release) })
				return fmt.Errorf("commit: %w", errStore)
			}
			if i > 10 {
				<-release
				<-ctx.Done() // the fatal error cancels the tasks in flight
			}
			return nil
		}
	}
	err := NewPool(limit).Run(context.Background(), tasks)
	if !errors.Is(err, errStore) {
		t.Fatalf("Run = %v, want the fatal error", err)
	}
	if s := started.Load(); s > 11+limit {
		t.Fatalf("%d tasks started after the fatal error at task 10 (limit %d)", s, limit)
	}
}

// TestPoolYieldHandsTheSlotOn: a task that yields (remote.Yield) lets the next task start while it waits, so
// the tasks waiting after their yield all wait at once, up to yieldCap x limit of them; never more than limit
// tasks run before their yield; every task runs once; a yield outside the pool does nothing.
func TestPoolYieldHandsTheSlotOn(t *testing.T) {
	const limit = 3
	for _, n := range []int{5, 40} { // fewer waiting tasks than the cap, more
		var ran [40]atomic.Int32
		var mu sync.Mutex
		busy, mostBusy, waiting, closed := 0, 0, 0, false
		wantWaiting := min(n, limit*(1+yieldCap))
		allWaiting := make(chan struct{})
		tasks := make([]Task, n)
		for i := range tasks {
			tasks[i] = func(ctx context.Context) error {
				ran[i].Add(1)
				mu.Lock()
				busy++
				mostBusy = max(mostBusy, busy)
				busy-- // from here it only waits
				mu.Unlock()
				remote.Yield(ctx)
				remote.Yield(ctx) // a second yield is a no-op
				mu.Lock()
				waiting++
				if waiting == wantWaiting && !closed {
					close(allWaiting)
					closed = true
				}
				mu.Unlock()
				<-allWaiting // the commit every waiting task shares: it comes once all of them wait
				mu.Lock()
				waiting--
				mu.Unlock()
				return nil
			}
		}
		if err := NewPool(limit).Run(context.Background(), tasks); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if got := ran[i].Load(); got != 1 {
				t.Fatalf("n=%d: task %d ran %d times", n, i, got)
			}
		}
		if mostBusy > limit {
			t.Fatalf("n=%d: %d tasks before their yield at once, limit %d", n, mostBusy, limit)
		}
	}
	remote.Yield(context.Background()) // no pool: nothing happens

	// A pool of one runs its tasks one at a time, start to end, yield or not (a second task started after a
	// yield would overlap the first's end in some runs: this catches it then, and never fails otherwise).
	var in, most atomic.Int32
	tasks := make([]Task, 20)
	for i := range tasks {
		tasks[i] = func(ctx context.Context) error {
			c := in.Add(1)
			for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
			}
			remote.Yield(ctx)
			in.Add(-1)
			return nil
		}
	}
	if err := NewPool(1).Run(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("a pool of one ran %d tasks at once", m)
	}
}
