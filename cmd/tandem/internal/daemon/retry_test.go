package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
)

// TestHeldForWaitsForTheFirstPathToComeFree: when every path still to retry was held back by the engine's path
// backoff, the retry pass comes when the first of them is free again, not at the daemon's own jittered wait,
// which could come just before and find them all held again (TestDaemonBusyFileIsNotStarved failed so on a
// loaded machine: the retry 0.01 s early, the next one 20 s later).
func TestHeldForWaitsForTheFirstPathToComeFree(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	held := func(p remote.Path, in time.Duration) engine.Problem {
		return engine.Problem{Op: engine.Upload, Path: p, Err: "held", RetryAt: now.Add(in)}
	}
	failed := engine.Problem{Op: engine.Upload, Path: "c", Err: "refused"}
	retry := func(ps ...remote.Path) map[remote.Path]bool {
		m := map[remote.Path]bool{}
		for _, p := range ps {
			m[p] = true
		}
		return m
	}
	for _, c := range []struct {
		name     string
		retry    map[remote.Path]bool
		problems []engine.Problem
		wait     time.Duration
		ok       bool
	}{
		{"all held", retry("a", "b"), []engine.Problem{held("a", 7*time.Second), held("b", 3*time.Second)}, 3 * time.Second, true},
		{"one tried and failed", retry("a", "c"), []engine.Problem{held("a", 7*time.Second), failed}, 0, false},
		{"a retry path not in this pass", retry("a", "d"), []engine.Problem{held("a", 7*time.Second)}, 0, false},
		{"free already", retry("a"), []engine.Problem{held("a", -time.Second)}, 0, true},
		{"nothing to retry", retry(), nil, 0, false},
	} {
		wait, ok := heldFor(c.retry, c.problems, now)
		if wait != c.wait || ok != c.ok {
			t.Errorf("%s: heldFor = %v, %v; want %v, %v", c.name, wait, ok, c.wait, c.ok)
		}
	}
}

// TestRetryPassComesWhenTheHeldPathIsFree drives the pair loop's end of a pass (passEnded) on a fake clock: when
// every failed path was held back by the engine, the retry is armed for the moment the first comes free, to the
// nanosecond, and the daemon's own backoff does not grow; a path that was tried and failed gets the daemon's
// jittered backoff instead (8-12 s at first), which then grows.
func TestRetryPassComesWhenTheHeldPathIsFree(t *testing.T) {
	fc := clockwork.NewFakeClockAt(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	d, err := New(Options{Clock: fc, StateDir: t.TempDir(),
		Config: &config.Config{Pairs: []config.Pair{{Name: "p", Local: t.TempDir(), Remote: "mem:/"}}},
		Open:   func(context.Context, *zap.Logger, config.Pair) (*PairDeps, error) { return nil, errors.New("unused") }})
	if err != nil {
		t.Fatal(err)
	}
	l := d.pairs["p"].l
	fired := func(ls *loopState) bool {
		select {
		case <-ls.retryAt:
			return true
		default:
			return false
		}
	}
	newState := func() *loopState {
		return &loopState{retry: map[remote.Path]bool{}, retryBack: backoff{min: d.retryMin, max: 10 * time.Minute},
			run: passKind{scope: &engine.Scope{}}}
	}

	ls := newState()
	free := fc.Now().Add(7*time.Second + 3*time.Millisecond)
	l.passEnded(ls, passResult{rep: &engine.Report{Problems: []engine.Problem{
		{Op: engine.Upload, Path: "busy.db", Err: "held", RetryAt: free}}}})
	if ls.retryAt == nil || ls.retryBack.cur != 0 {
		t.Fatalf("retry armed %v, daemon backoff %s: want a retry and no backoff step", ls.retryAt != nil, ls.retryBack.cur)
	}
	fc.Advance(free.Sub(fc.Now()) - time.Nanosecond)
	if fired(ls) {
		t.Fatal("the retry came before the held path was free")
	}
	fc.Advance(time.Nanosecond)
	if !fired(ls) {
		t.Fatal("the retry did not come when the held path came free")
	}

	ls = newState()
	start := fc.Now()
	l.passEnded(ls, passResult{rep: &engine.Report{Problems: []engine.Problem{
		{Op: engine.Upload, Path: "other.db", Err: "refused"}}}})
	if ls.retryAt == nil || ls.retryBack.cur != d.retryMin {
		t.Fatalf("retry armed %v, daemon backoff %s: want a retry after the first backoff step", ls.retryAt != nil, ls.retryBack.cur)
	}
	fc.Advance(d.retryMin*8/10 - time.Nanosecond)
	if fired(ls) {
		t.Fatalf("the retry came %s after a failure, before the backoff's shortest wait", fc.Since(start))
	}
	fc.Advance(d.retryMin*4/10 + time.Nanosecond)
	if !fired(ls) {
		t.Fatalf("no retry %s after a failure, past the backoff's longest wait", fc.Since(start))
	}
}
