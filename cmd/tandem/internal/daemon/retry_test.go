package daemon

import (
	"testing"
	"time"

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
