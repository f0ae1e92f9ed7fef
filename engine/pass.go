package engine

import (
	"sync"
	"sync/atomic"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// pass is what lives only while one pass runs (RunPass, RunScoped): made by beginPass, dropped when the pass
// ends, so nothing of one pass leaks into the next. What outlives a pass (the open temp session, whether the
// unconfirmed writes were looked at, a requested listing, the folders a failed feed read left to look at, the
// path backoff) stays on the Engine.
type pass struct {
	rep *Report
	// scope: what a scoped pass observes and plans; nil in a full pass
	scope *scopeState
	// commits groups the commits of actions finishing together (commit.go)
	commits groupCommit

	// mu guards skipped, deleted, wrote and scope.roots, which the executor's tasks reach concurrently.
	mu sync.Mutex
	// skipped: paths skipped in any observation of the pass, left alone by every later plan of it
	skipped map[remote.Path]bool
	// deleted: files deleted in this pass, local and remote: the delete budget is the pass's, not a round's
	// (a retried delete counts once)
	deleted [2]map[remote.Path]bool
	// created: files this pass gave their first sync point: the delete budget is a share of the files the pair
	// had when the pass began, not of those a round before the deletes added (guard)
	created map[remote.Path]bool
	// wrote: remote paths written since confirmWrites last read the feed past them
	wrote map[remote.Path]bool

	// failures counts failed actions (problems and refusals) in the running round
	failures atomic.Int64

	// What follows is touched by the observation only, which runs alone.

	// touched: the paths the feed mentioned, while confirmWrites or a scoped observation reads it (nil: no one
	// is asking)
	touched map[remote.Path]bool
	// listings counts complete remote listings: confirmWrites tells by it that its feed read fell back to one
	listings int
	// collisions: those of the last plan (newPlanner)
	collisions []collision
	// decided: the paths (and move targets) of every decision of the last plan, those it held back included
	decided []remote.Path

	// settled: the tracker of what this pass's commits wrote (settled.go); settledKnown: the trees planned
	// nothing at generation settledGen (the mark stood when the pass began: settledAtStart, or it wrote one);
	// firstRoots: what the first round of a full pass plans (nil: everything)
	settled        *state.Tracker
	settledKnown   bool
	settledAtStart bool
	settledGen     uint64
	firstRoots     []remote.Path
	// round: the round being planned or run (runRounds counts from 0 in each call)
	round int
	// afterUnclean: the store's last holder ended uncleanly (state.Store.Unclean): a download that would
	// replace a local file compares the two first and keeps both if they differ (exec.go)
	afterUnclean bool
}

// beginPass starts a pass's own state; sc is the scope of a scoped pass (nil: a full pass).
func (e *Engine) beginPass(rep *Report, sc *scopeState) {
	e.pass = &pass{rep: rep, scope: sc, skipped: map[remote.Path]bool{}, deleted: [2]map[remote.Path]bool{{}, {}},
		created: map[remote.Path]bool{}}
	if e.o.AllowDeletes && e.o.Window != nil {
		// The user let this pass through: what the window counted so far was approved with it.
		e.o.Window.Reset()
	}
}
