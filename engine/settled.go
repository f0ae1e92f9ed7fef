package engine

import (
	"context"
	"fmt"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Settled passes. A full pass whose plan of the whole store came out empty leaves a mark in the store
// (state.Writer.MarkSettled); any later commit that writes a tree voids it. A full pass that finds the mark
// standing plans its first round over only the paths its own commits wrote since it began (the walks, the
// recovery, a feed read: a state.Tracker sees them all): everywhere else the three trees are as they were when
// they planned nothing. A no-change pass over 100,000 files no longer merges the three trees to learn that.
//
// The planner decides a path from its own three records, its folders' (planRoots adds the ancestors and
// plans each root's subtree), the base's ids (a move's two ends are both written) and, where the remote folds
// names, its folded twins (planRoots plans everything when a name is new on one side). The simulation checks
// every such round against the full plan (Engine.checkRoundPlan, invariant I8).

// planRules names the planner's rules in the mark: change it with any change to what decide or the planner
// plan from the same trees, so that a store settled by older rules is planned in full once.
const planRules = "plan-rules-1"

// settledTag is what a mark must carry to be believed by this engine: the rules, the build (another build may
// plan by other rules), the digest compared, and whether the remote folds names.
func settledTag(algo string, fold bool) []byte {
	build := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		build = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" || s.Key == "vcs.time" {
				build += " " + s.Value
			}
		}
	}
	return fmt.Appendf(nil, "%s %s %s fold=%v", planRules, build, algo, fold)
}

// beginSettled attaches the pass's tracker and reads the mark, in that order: a commit that lands between
// the two is either seen by the tracker or voids the mark the read finds. A dry run and a resync plan
// everything.
func (e *Engine) beginSettled() (*state.Tracker, bool, error) {
	tr := e.d.Store.Track(maxRoundRoots)
	if e.o.Resync || e.pass.scope != nil {
		return tr, false, nil
	}
	ok, err := viewOne(e.d.Store, func(r state.Reader) (bool, error) { return r.Settled(e.settledTag) })
	if err != nil {
		tr.Stop()
		return nil, false, err
	}
	return tr, ok, nil
}

// settledRoots is what the first round of a pass that began settled plans: every path written since it began,
// or nil (plan everything) when there were too many to keep.
func (e *Engine) settledRoots(tr *state.Tracker) []remote.Path {
	ps, complete := tr.Paths()
	if !complete {
		e.lg.Debug("settled store, but the pass wrote too many paths: the first round plans everything")
		return nil
	}
	if ps == nil {
		ps = []remote.Path{} // nothing changed: an empty plan, not a full one
	}
	e.lg.Debug("settled store: the first round plans what the pass wrote", zap.Int("paths", len(ps)))
	return ps
}

// treeGen reads the store's tree generation: a plan that may lead to a mark reads it before it begins.
func (e *Engine) treeGen() (uint64, error) { return viewOne(e.d.Store, state.Reader.TreeGen) }

// markSettled records that a plan of the whole store (or a round plan, which equals it) that began at tree
// generation gen found nothing; the store refuses it if a tree was written since. It is skipped where the mark
// already stands and nothing was written since (a no-change pass writes nothing).
func (e *Engine) markSettled(ctx context.Context, gen uint64) error {
	if e.o.DryRun || e.pass.scope != nil || ctx.Err() != nil {
		return nil
	}
	if e.pass.settled != nil {
		if ps, complete := e.pass.settled.Paths(); complete && len(ps) == 0 && e.pass.settledAtStart {
			return nil
		}
	}
	return e.d.Store.Update(func(w state.Writer) error {
		ok, err := w.MarkSettled(e.settledTag, gen)
		e.lg.Debug("plan of everything empty", zap.Bool("marked settled", ok))
		return err
	})
}
