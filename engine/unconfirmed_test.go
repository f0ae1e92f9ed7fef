package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

var errKilled = errors.New("test: the process was killed here")

// dyingFeed is the remote of a process killed right after its remote writes: once written to, its feed is never
// read again, so the pass ends before the cursor passes those writes.
type dyingFeed struct {
	beforePut
	wrote atomic.Bool
}

func newDyingFeed(mem *memremote.Mem) *dyingFeed {
	d := &dyingFeed{}
	d.beforePut = beforePut{Mem: mem, hook: func() error { d.wrote.Store(true); return nil }}
	return d
}

func (d *dyingFeed) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	if d.wrote.Load() {
		return remote.Batch{}, errKilled
	}
	return d.Mem.Changes(ctx, cur)
}

// TestUnconfirmedWritesSurviveAKill: the remote paths a pass wrote are noted in the store with their records,
// so the next process looks at them when its feed read reaches the end; one the feed never named and another
// client deleted is then a remote delete. With more notes than the engine Stats, the remote is listed instead.
func TestUnconfirmedWritesSurviveAKill(t *testing.T) {
	for _, many := range []bool{false, true} {
		ctx := context.Background()
		clk, local, mem := memPair(memremote.Options{})
		st := memStore(t)
		pass := func(r remote.Remote) (*Report, error) {
			e := testEngine(t, Deps{Clock: clk, Local: local, Remote: r, Store: st}, Options{})
			if many {
				e.maxUnconfirmed = 2
			}
			return e.RunPass(ctx)
		}
		for _, f := range []string{"keep.txt"} {
			if err := local.WriteFile(f, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pass(mem); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"a.txt", "b.txt", "c.txt"} {
			if err := local.WriteFile(f, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pass(newDyingFeed(mem)); !errors.Is(err, errKilled) {
			t.Fatalf("many=%v: the dying pass ended with %v", many, err)
		}
		if err := mem.Handle().Remove("b.txt"); err != nil {
			t.Fatal(err)
		}
		rep, err := pass(&memremote.FeedHoles{Mem: mem, Hide: map[remote.Path]bool{"b.txt": true}})
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("many=%v: pass after the kill: %v %+v", many, err, rep.Problems)
		}
		if rep.FullListing != many {
			t.Fatalf("many=%v: the pass listed the remote completely: %v", many, rep.FullListing)
		}
		if _, err := local.Stat(ctx, "b.txt"); !errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("many=%v: b.txt, deleted remotely after the killed pass uploaded it, is still local: %v", many, err)
		}
		for _, f := range []remote.Path{"keep.txt", "a.txt", "c.txt"} {
			if _, err := local.Stat(ctx, f); err != nil {
				t.Fatalf("many=%v: %s: %v", many, f, err)
			}
		}
		if err := st.View(func(r state.Reader) error {
			n, err := unconfirmedCount(r)
			if err == nil && n != 0 {
				t.Errorf("many=%v: %d chunks of notes left after a pass that confirmed them", many, n)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if rep, err := pass(mem); err != nil || len(rep.Done) != 0 {
			t.Fatalf("many=%v: a pass after convergence: %v %+v", many, err, rep.Done)
		}
	}
}
