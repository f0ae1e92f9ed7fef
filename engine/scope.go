package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// ScopePath is a path a watcher reported. Subtree: precision was lost below it (a new folder, an overflow),
// so everything below it is looked at again.
type ScopePath struct {
	Path    remote.Path
	Subtree bool
}

// Scope limits a pass to what changed, so that its cost follows the number of changes rather than the number of
// files. Local lists what the local watcher saw; Remote what a watcher on a feed-less remote (dir:) saw. A remote
// with a change feed is always observed through its feed, and the paths the feed reports join the scope.
// A nil *Scope is a full pass.
type Scope struct {
	Local, Remote []ScopePath
}

// RunScoped runs a pass that observes and plans only the paths in sc (and what lies below them), plus what the
// remote's feed reports. Everything else in the store is trusted as last observed. A path that fails is planned
// again by the next pass that looks at it (the daemon retries failed paths with a pass scoped to them).
func (e *Engine) RunScoped(ctx context.Context, sc *Scope) (*Report, error) {
	if sc == nil {
		return e.RunPass(ctx)
	}
	local, err := cleanScope(sc.Local)
	rem, rerr := cleanScope(sc.Remote)
	if err != nil || rerr != nil {
		return e.RunPass(ctx) // a path that is not a valid Path cannot be scoped: look at everything
	}
	scope := &scopeState{roots: map[remote.Path]bool{}, local: local, remote: rem}
	for _, sp := range local {
		scope.add(sp.Path)
	}
	for _, sp := range rem {
		scope.add(sp.Path)
	}
	return e.run(ctx, scope)
}

// scopeState is the scope of the running pass: what to observe, and the roots the planner visits (every path
// an observation or an action touched, each with what is below it).
type scopeState struct {
	local, remote []ScopePath
	roots         map[remote.Path]bool
}

func (s *scopeState) add(p remote.Path) { s.roots[p] = true }

// scopeAdd widens the running pass's planning scope (no-op in a full pass): conflict copies, move targets and
// feed paths must be planned in the rounds that follow.
func (e *Engine) scopeAdd(p remote.Path) {
	if e.pass.scope == nil {
		return
	}
	e.pass.mu.Lock()
	e.pass.scope.add(p)
	e.pass.mu.Unlock()
}

// cleanScope validates, sorts and de-duplicates watcher paths, folding paths below a Subtree entry into it.
func cleanScope(in []ScopePath) ([]ScopePath, error) {
	out := make([]ScopePath, 0, len(in))
	for _, sp := range in {
		p, err := remote.ParsePath(string(sp.Path))
		if err != nil {
			return nil, err
		}
		out = append(out, ScopePath{Path: p, Subtree: sp.Subtree || p == remote.Root})
	}
	slices.SortFunc(out, func(a, b ScopePath) int { return state.Compare(a.Path, b.Path) })
	var res []ScopePath
	for _, sp := range out {
		if n := len(res); n > 0 {
			last := &res[n-1]
			if last.Path == sp.Path {
				last.Subtree = last.Subtree || sp.Subtree
				continue
			}
			if last.Subtree && sp.Path.Within(last.Path) {
				continue
			}
		}
		res = append(res, sp)
	}
	return res, nil
}

// observeScoped observes only the scope: the local paths by stat (and walk where a folder appeared or
// precision was lost), the remote through its feed, or by its watcher's paths when it has none.
func (e *Engine) observeScoped(ctx context.Context, rep *Report) error {
	if err := e.observePaths(ctx, state.Local, e.pass.scope.local, rep); err != nil {
		return err
	}
	if !e.d.Remote.Capabilities().Feed {
		return e.observePaths(ctx, state.Remote, e.pass.scope.remote, rep)
	}
	touched := e.pass.touched
	if touched == nil {
		e.pass.touched = map[remote.Path]bool{}
		defer func() { e.pass.touched = nil }()
	}
	if err := e.observeFeed(ctx, rep); err != nil {
		return err
	}
	if rep.FullListing {
		// The feed was out of sync (or there was no cursor): the whole remote was listed, so plan everything.
		e.scopeAdd(remote.Root)
	}
	for p := range e.pass.touched {
		e.scopeAdd(p)
	}
	if touched != nil {
		for p := range e.pass.touched {
			touched[p] = true
		}
	}
	return nil
}

// observePaths brings the stored records of the given paths up to date on one side.
func (e *Engine) observePaths(ctx context.Context, side state.Side, paths []ScopePath, rep *Report) error {
	r := e.sideRemote(side)
	for _, sp := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if sp.Path == remote.Root {
			if err := e.observeWalk(ctx, side, rep); err != nil {
				return err
			}
			continue
		}
		if err := e.observeAncestors(ctx, side, sp.Path); err != nil {
			return err
		}
		ent, err := r.Stat(ctx, sp.Path)
		stored, serr := e.stored(side, sp.Path)
		if serr != nil {
			return serr
		}
		switch {
		case errors.Is(err, remote.ErrNotFound):
			if e.skippedAncestor(ctx, side, sp.Path, rep) {
				continue // unreachable behind a symlink or special file, not deleted
			}
			if err := e.d.Store.Update(func(tx state.Writer) error { return tx.DeleteTree(side, sp.Path) }); err != nil {
				return err
			}
		case errors.Is(err, remote.ErrUnavailable):
			// A symlink or special file (or a locked entry): never synced, and never evidence of a delete.
			e.markSkipped(side, sp.Path, err.Error(), rep)
		case err != nil:
			// Unreadable is never deleted: keep what is stored and let a later pass look again.
			rep.skip(side.String(), sp.Path, fmt.Sprintf("%v (will retry)", err))
			e.markSkipped(side, sp.Path, "", rep)
		case e.ignored(sp.Path, ent.Dir):
		case ent.Dir:
			known := stored != nil && stored.Dir && stored.ID == ent.ID
			if !known {
				rec := state.Record{Entry: ent, HashedAt: e.now()}
				rec.Rev = ""
				if err := e.d.Store.Update(func(tx state.Writer) error {
					if stored != nil && !stored.Dir {
						if err := tx.Delete(side, sp.Path); err != nil {
							return err
						}
					}
					return tx.Put(side, rec)
				}); err != nil {
					return err
				}
			}
			if sp.Subtree || !known {
				if err := e.observeWalkUnder(ctx, side, sp.Path, rep); err != nil {
					return err
				}
			}
		default:
			if err := e.observeFile(ctx, side, ent, stored, rep); err != nil {
				return err
			}
		}
	}
	return nil
}

// observeAncestors records the folders above p that the store does not know yet (a watcher reports the file in
// a new folder; the folder itself may come in another batch).
func (e *Engine) observeAncestors(ctx context.Context, side state.Side, p remote.Path) error {
	var missing []remote.Path
	if err := e.d.Store.View(func(rd state.Reader) error {
		for d := p.Dir(); d != remote.Root; d = d.Dir() {
			rec, ok, err := rd.Get(side, d)
			if err != nil {
				return err
			}
			if ok && rec.Dir {
				break
			}
			missing = append(missing, d)
		}
		return nil
	}); err != nil {
		return err
	}
	r := e.sideRemote(side)
	for i := len(missing) - 1; i >= 0; i-- {
		ent, err := r.Stat(ctx, missing[i])
		if err != nil || !ent.Dir || e.ignored(ent.Path, true) {
			return nil // gone again, or not a folder: the path's own observation settles it
		}
		rec := state.Record{Entry: ent, HashedAt: e.now()}
		rec.Rev = ""
		if err := e.d.Store.Update(func(tx state.Writer) error {
			if err := tx.Delete(side, ent.Path); err != nil {
				return err
			}
			return tx.Put(side, rec)
		}); err != nil {
			return err
		}
	}
	return nil
}

// observeFile applies fileRecord to one stat'ed file.
func (e *Engine) observeFile(ctx context.Context, side state.Side, ent remote.Entry, stored *state.Record, rep *Report) error {
	rec, changed, err := e.fileRecord(ctx, side, ent, stored, rep)
	if err != nil || !changed {
		return err
	}
	return e.d.Store.Update(func(tx state.Writer) error {
		if stored != nil && stored.Dir {
			if err := tx.DeleteTree(side, ent.Path); err != nil { // a folder became a file
				return err
			}
		}
		return tx.Put(side, rec)
	})
}

// planScoped is plan over the scope's roots: each root's ancestors (so the planner sees the folders above,
// which its rules need), then the root and everything below it, in store order.
func (e *Engine) planScoped(ctx context.Context) ([]Action, error) {
	e.pass.mu.Lock()
	roots := make([]remote.Path, 0, len(e.pass.scope.roots))
	for p := range e.pass.scope.roots {
		roots = append(roots, p)
	}
	e.pass.mu.Unlock()
	return e.planRoots(ctx, roots)
}

// maxRoundRoots bounds the paths a full pass's later round plans one by one: each costs a few lookups and a
// subtree merge, so past a few thousand (a first sync's second round) one merge of the whole store is cheaper.
const maxRoundRoots = 2048

// nextRound is what a full pass's next round plans: the paths the round just planned decided on, with their
// move targets, and the conflict copies made so far (nil: too many, plan everything).
func (e *Engine) nextRound(rep *Report, decided []remote.Path) []remote.Path {
	roots := slices.Clone(decided)
	rep.mu.Lock()
	for _, c := range rep.Conflicts {
		if c.Copy != "" {
			roots = append(roots, c.Copy)
		}
	}
	rep.mu.Unlock()
	if len(roots) > maxRoundRoots {
		return nil
	}
	return roots
}

// planRound plans a later round of a full pass over roots (nextRound). Tests set Engine.checkRoundPlan to
// compare it with the full plan it stands for.
func (e *Engine) planRound(ctx context.Context, roots []remote.Path) ([]Action, error) {
	var full []Action
	if e.checkRoundPlan != nil {
		var err error
		if full, err = e.plan(ctx); err != nil {
			return nil, err
		}
	}
	acts, err := e.planRoots(ctx, roots)
	if err == nil && e.checkRoundPlan != nil {
		e.checkRoundPlan(roots, acts, full)
	}
	return acts, err
}

// planRoots is plan over roots and what lies below them (and their ancestors, which the planner's rules need).
func (e *Engine) planRoots(ctx context.Context, roots []remote.Path) ([]Action, error) {
	acts, scoped, err := e.planRootsOnly(ctx, roots)
	if err == nil && !scoped {
		return e.plan(ctx)
	}
	return acts, err
}

// planRootsOnly is planRoots where that can be told from roots alone: scoped is false (and nothing planned)
// where only a plan of everything can tell.
func (e *Engine) planRootsOnly(ctx context.Context, roots []remote.Path) (acts []Action, scoped bool, err error) {
	sps := make([]ScopePath, len(roots))
	for i, p := range roots {
		sps[i] = ScopePath{Path: p, Subtree: true}
	}
	clean, err := cleanScope(sps)
	if err != nil || (len(clean) > 0 && clean[0].Path == remote.Root) {
		return nil, false, nil
	}
	pl := e.newPlanner()
	emitted := map[remote.Path]bool{}
	// On a remote that folds names, a name new on one side may have a twin outside the scope (a sibling the
	// watcher did not report) that the planner must see to tell a collision or a case rename (seed 5894: a new
	// local folder was created over and over beside the remote's file of the same folded name). The store has
	// no index by folded name, so such a scope is planned in full.
	full := false
	newOnOneSide := func(b *state.Base, l, r *state.Record) bool {
		return pl.fold != nil && ((l != nil && r == nil) || (l == nil && r != nil && b == nil))
	}
	err = e.d.Store.View(func(rd state.Reader) error {
		get := func(p remote.Path) (*state.Base, *state.Record, *state.Record, error) {
			b, err := found(rd.GetBase(p))
			if err != nil {
				return nil, nil, nil, err
			}
			l, err := found(rd.Get(state.Local, p))
			if err != nil {
				return nil, nil, nil, err
			}
			r, err := found(rd.Get(state.Remote, p))
			return b, l, r, err
		}
		for _, root := range clean {
			if err := ctx.Err(); err != nil {
				return err
			}
			var anc []remote.Path
			for d := root.Path.Dir(); d != remote.Root; d = d.Dir() {
				anc = append(anc, d)
			}
			for i := len(anc) - 1; i >= 0; i-- {
				if emitted[anc[i]] {
					continue
				}
				emitted[anc[i]] = true
				b, l, r, err := get(anc[i])
				if err != nil {
					return err
				}
				if newOnOneSide(b, l, r) {
					full = true
					return nil
				}
				if b != nil || l != nil || r != nil {
					pl.add(anc[i], b, l, r)
				}
			}
			if b, l, r, err := get(root.Path); err != nil {
				return err
			} else if newOnOneSide(b, l, r) {
				full = true
				return nil
			}
			if err := mergeSubtree(rd, root.Path, func(p remote.Path, b *state.Base, l, r *state.Record) error {
				pl.add(p, b, l, r)
				return nil
			}); err != nil {
				return err
			}
		}
		acts = pl.finish(baseIDs(rd))
		return nil
	})
	if full {
		return nil, false, err
	}
	return acts, err == nil, err
}
