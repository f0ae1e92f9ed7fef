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
