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
// names, its folded twins, which could be anywhere in its folder: against such a remote every full pass plans
// everything (beginSettled). The simulation checks every such round against the full plan
// (Engine.checkRoundPlan, invariant I8).

// planRules names the planner's rules in the mark: change it with any change to what decide or the planner
// plan from the same trees, so that a store settled by older rules is planned in full once.
const planRules = "plan-rules-1"

// settledTag is what a mark must carry to be believed by this engine: the rules, the build (another build may
// plan by other rules) and the digest compared.
func settledTag(algo string) []byte {
	build := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		build = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" || s.Key == "vcs.time" {
				build += " " + s.Value
			}
		}
	}
	return fmt.Appendf(nil, "%s %s %s", planRules, build, algo)
}

// beginSettled attaches the pass's tracker and reads the mark, in that order: a commit that lands between
// the two is either seen by the tracker or voids the mark the read finds. A resync plans everything, and so
// does every pass against a remote that folds names: there a path's plan depends on its folded twins, which
// may lie anywhere in its folder (a local delete of "a" frees the name for an "A" that waited; seeds 109 and
// 6726 found it), and the store has no index by folded name to find them.
func (e *Engine) beginSettled() error {
	if e.folds {
		return nil
	}
	tr := e.d.Store.Track(maxRoundRoots)
	e.pass.settled = tr
	if e.o.Resync {
		return nil
	}
	return e.d.Store.View(func(r state.Reader) error {
		ok, err := r.Settled(e.settledTag)
		if err != nil || !ok {
			return err
		}
		e.pass.settledGen, err = r.TreeGen()
		e.pass.settledAtStart, e.pass.settledKnown = err == nil, err == nil
		return err
	})
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
	if !e.canMarkSettled() || ctx.Err() != nil {
		return nil
	}
	if e.pass.settledKnown && e.pass.settledGen == gen {
		return nil
	}
	return e.mark(gen)
}

// canMarkSettled: an empty plan of the running pass's rounds may mark the store settled (a full pass that acts,
// against a remote that does not fold names).
func (e *Engine) canMarkSettled() bool { return !e.folds && !e.o.DryRun && e.pass.scope == nil }

// mark writes the settled mark for generation gen and, if the store took it, remembers it for keepSettled.
func (e *Engine) mark(gen uint64) error {
	var ok bool
	err := e.d.Store.Update(func(w state.Writer) error {
		var err error
		ok, err = w.MarkSettled(e.settledTag, gen)
		return err
	})
	e.lg.Debug("plan of everything empty", zap.Bool("marked settled", ok), zap.Uint64("generation", gen))
	if err == nil && ok {
		e.pass.settledKnown, e.pass.settledGen = true, gen
	}
	return err
}

// keepSettled ends a pass (full or scoped) that knew the trees settled at some generation but wrote to them
// since (its actions' commits, a feed read after the last round, a scoped observation): the paths written
// since are planned, and if that plan is empty the mark moves to now. Without it, every pass that wrote
// anything left the next full pass to plan everything. A plan that only everything could tell (a new name on
// a folding remote, too many paths) is not made here: the next full pass makes it.
func (e *Engine) keepSettled(ctx context.Context) error {
	if !e.pass.settledKnown || e.o.DryRun || ctx.Err() != nil {
		return nil
	}
	gen, err := e.treeGen()
	if err != nil || gen == e.pass.settledGen {
		return err
	}
	ps, complete := e.pass.settled.PathsSince(e.pass.settledGen)
	if !complete {
		return nil
	}
	var full []Action
	if e.checkRoundPlan != nil {
		if full, err = e.plan(ctx); err != nil {
			return err
		}
	}
	acts, scoped, err := e.planRootsOnly(ctx, ps)
	if err != nil || !scoped {
		return err
	}
	if e.checkRoundPlan != nil {
		e.checkRoundPlan(ps, acts, full)
	}
	if len(acts) > 0 || len(e.pass.collisions) > 0 {
		return nil
	}
	return e.mark(gen)
}
