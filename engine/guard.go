package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// minGuardDeletes: the big-delete guard never stops fewer deletes than this (small trees are edited by hand).
const minGuardDeletes = 10

// ValidMaxDelete reports whether pct is a usable big-delete percentage: finite, above 0 and at most 100.
func ValidMaxDelete(pct float64) bool {
	return !math.IsNaN(pct) && !math.IsInf(pct, 0) && pct > 0 && pct <= 100
}

// DeleteWindow is a rolling delete budget shared by the passes of one pair (the daemon's): every file delete
// the engine propagates is remembered for Span, and the big-delete guard counts them together with what a pass
// plans, so that a slow `rm` of most files, one scoped pass per file, stops like a fast one. A process restart
// starts an empty window. Safe for concurrent use.
type DeleteWindow struct {
	mu   sync.Mutex
	span time.Duration
	at   [2][]windowDelete
}

// windowDelete is one delete the window remembers: the path, so that a delete that failed after it may have
// happened and was then made again counts once.
type windowDelete struct {
	p remote.Path
	t time.Time
}

// NewDeleteWindow returns a window of span (0: no window, nil).
func NewDeleteWindow(span time.Duration) *DeleteWindow {
	if span <= 0 {
		return nil
	}
	return &DeleteWindow{span: span}
}

// Span is how far back the window counts.
func (w *DeleteWindow) Span() time.Duration { return w.span }

func (w *DeleteWindow) add(side int, p remote.Path, t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at[side] = append(w.at[side], windowDelete{p: p, t: t})
}

// paths prunes what fell out of the window and returns the distinct paths left, per side.
func (w *DeleteWindow) paths(now time.Time) [2]map[remote.Path]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := [2]map[remote.Path]bool{{}, {}}
	for i := range w.at {
		j := 0
		for j < len(w.at[i]) && now.Sub(w.at[i][j].t) >= w.span {
			j++
		}
		w.at[i] = w.at[i][j:]
		for _, d := range w.at[i] {
			n[i][d.p] = true
		}
	}
	return n
}

// count is the number of distinct paths deleted in the window, per side.
func (w *DeleteWindow) count(now time.Time) [2]int {
	ps := w.paths(now)
	return [2]int{len(ps[0]), len(ps[1])}
}

// Reset forgets every counted delete (the user allowed them).
func (w *DeleteWindow) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = [2][]windowDelete{}
}

func sideIndex(op Op) int {
	if op == DeleteLocal {
		return 0
	}
	return 1
}

// countsAsDelete: the action removes a synced file from a side (what the guard budgets).
func countsAsDelete(a Action) bool {
	return (a.Op == DeleteLocal || a.Op == DeleteRemote) && a.Base != nil && !a.Base.Dir
}

// deleted books a finished file delete against the pass and the window.
func (e *Engine) deleted(a Action) {
	if !countsAsDelete(a) {
		return
	}
	i := sideIndex(a.Op)
	e.pass.mu.Lock()
	e.pass.deleted[i][a.Path] = true
	e.pass.mu.Unlock()
	if e.o.Window != nil && !e.o.AllowDeletes {
		e.o.Window.add(i, a.Path, e.d.Clock.Now())
	}
}

// created books a file that got its first sync point in this pass (an upload or download of a new file, a
// compare or record of one new on both sides): the guard leaves it out of what the pair had.
func (e *Engine) created(a Action) {
	if a.Base != nil || (a.Local != nil && a.Local.Dir) || (a.Remote != nil && a.Remote.Dir) {
		return
	}
	switch a.Op {
	case Upload, Download, Compare, Record, Conflict:
		e.pass.mu.Lock()
		e.pass.created[a.Path] = true
		e.pass.mu.Unlock()
	}
}

// guard is the big-delete guard, run on every plan of every round: the deletes it plans plus those the pass
// (and, in the daemon, the rolling window) already made must stay within MaxDeletePct of the files the pair
// had, counted as the synced files now plus those deleted since, on one side, or below minGuardDeletes.
// The denominator is files (never folders) in full and scoped passes alike.
func (e *Engine) guard(acts []Action) error {
	if e.o.AllowDeletes {
		return nil
	}
	// Deletes are counted by path: a delete that failed after it may have happened (counted then, so the
	// guard never under-counts) and was made again later is one file, not two. Counted twice it would also
	// swell the denominator and let the other side's deletes through (sim seed 4160).
	e.pass.mu.Lock()
	recentPaths := [2]map[remote.Path]bool{maps.Clone(e.pass.deleted[0]), maps.Clone(e.pass.deleted[1])}
	e.pass.mu.Unlock()
	if e.o.Window != nil {
		win := e.o.Window.paths(e.d.Clock.Now())
		for i := range recentPaths {
			maps.Copy(recentPaths[i], win[i])
		}
	}
	var planned [2]int
	for _, a := range acts {
		if countsAsDelete(a) && !recentPaths[sideIndex(a.Op)][a.Path] {
			planned[sideIndex(a.Op)]++
		}
	}
	if planned[0]+planned[1] == 0 {
		return nil
	}
	recent := [2]int{len(recentPaths[0]), len(recentPaths[1])}
	if planned[0]+recent[0] < minGuardDeletes && planned[1]+recent[1] < minGuardDeletes {
		return nil
	}
	// The files the pair had are the synced files now and those deleted since, each once: a counted delete
	// whose file is still synced (it failed without happening) is not added again.
	files, err := e.baseFiles(func(p remote.Path) bool { return recentPaths[0][p] || recentPaths[1][p] })
	if err != nil {
		return err
	}
	gone := maps.Clone(recentPaths[0])
	maps.Copy(gone, recentPaths[1])
	// overBudget adds both sides' recent deletes to files: take out what that counts twice.
	files -= recent[0] + recent[1] - len(gone)
	// Files this pass synced for the first time were not the pair's when it began: a round of uploads before
	// a round of deletes (a remote folder moved, then emptied) must not widen the deletes' budget (seed
	// 681333, -sim.lazydisk: 15 of 29 went through as 15 of 30).
	e.pass.mu.Lock()
	for p := range e.pass.created {
		if !gone[p] {
			files--
		}
	}
	e.pass.mu.Unlock()
	span := "this pass"
	if e.o.Window != nil {
		span = "the last " + e.o.Window.Span().String()
	}
	return overBudget(planned, recent, files, e.o.MaxDeletePct, span)
}

// overBudget is the guard's rule: on a side, the planned deletes plus the recent ones (made earlier in the
// pass or the window) may exceed pct% of the files the pair had (the synced files now plus the recent deletes
// of both sides) only while they are fewer than minGuardDeletes.
func overBudget(planned, recent [2]int, files int, pct float64, span string) error {
	had := files + recent[0] + recent[1]
	for i, name := range []string{"local", "remote"} {
		n := planned[i] + recent[i]
		if planned[i] == 0 || n < minGuardDeletes || float64(n) <= pct/100*float64(had) {
			continue
		}
		already := ""
		if recent[i] > 0 {
			already = fmt.Sprintf(", %d of them already deleted in %s", recent[i], span)
		}
		// No advice here: how to let it through differs between `tandem once` (--allow-deletes) and the daemon
		// (`tandem resume --allow-deletes`); each caller adds its own, once.
		return fmt.Errorf("%w: %w: the pass would delete %d of %d files on the %s side (more than %g%%%s)",
			ErrSafetyStop, ErrBigDelete, n, had, name, pct, already)
	}
	return nil
}

// baseFiles counts the synced files (not folders) but those skip names. Only asked when a plan deletes at
// least minGuardDeletes.
func (e *Engine) baseFiles(skip func(remote.Path) bool) (int, error) {
	n := 0
	err := e.d.Store.View(func(r state.Reader) error {
		return r.EachBase(remote.Root, func(b state.Base) error {
			if !b.Dir && !skip(b.Path) {
				n++
			}
			return nil
		})
	})
	return n, err
}

// rootCheckers are the sides that can tell whether their root (and its marker) is still there.
func (e *Engine) rootCheckers() []remote.RootChecker {
	var rcs []remote.RootChecker
	for _, side := range []remote.Remote{e.d.Local, e.d.Remote} {
		if rc, ok := side.(remote.RootChecker); ok {
			rcs = append(rcs, rc)
		}
	}
	return rcs
}

// verifyRoots is the unmount guard for the rounds after the first: a root that lost its marker or vanished
// during the pass stops it before anything is planned from what is (not) there now.
func (e *Engine) verifyRoots(ctx context.Context) error {
	for _, side := range e.rootCheckers() {
		err := side.CheckRoot(ctx)
		switch {
		case err == nil:
		case errors.Is(err, remote.ErrRootMissing):
			return fmt.Errorf("%w: %w (during the pass); nothing more was changed. If the folder was moved or "+
				"unmounted, put it back", ErrSafetyStop, err)
		default:
			return fmt.Errorf("check the sync root: %w", err)
		}
	}
	return nil
}

// noteSkip handles an entry a side reports as not syncable: reported, and (for a valid path) left alone.
func (e *Engine) noteSkip(side state.Side, ent remote.Entry, rep *Report) {
	rep.skipOnce(side.String(), ent.Path, ent.Skip)
	if p, err := remote.ParsePath(string(ent.Path)); err == nil && p == ent.Path && p != remote.Root {
		e.markSkipped(side, p, "", rep)
	}
}

// markSkipped keeps every plan of this pass away from p and what is below it (RELIABILITY I4: a skipped path
// is never evidence that the other side's copy was deleted). why, when set, is reported.
func (e *Engine) markSkipped(side state.Side, p remote.Path, why string, rep *Report) {
	if why != "" && rep != nil {
		rep.skipOnce(side.String(), p, why)
	}
	e.pass.mu.Lock()
	e.pass.skipped[p] = true
	e.pass.mu.Unlock()
}

// dropSkipped removes the actions at or below a path skipped in this pass (on either side).
func (e *Engine) dropSkipped(acts []Action) []Action {
	e.pass.mu.Lock()
	defer e.pass.mu.Unlock()
	if len(e.pass.skipped) == 0 {
		return acts
	}
	under := func(p remote.Path) bool {
		for q := p; ; q = q.Dir() {
			if e.pass.skipped[q] {
				return true
			}
			if q == remote.Root {
				return false
			}
		}
	}
	out := acts[:0]
	for _, a := range acts {
		if under(a.Path) || (a.To != "" && under(a.To)) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// skippedAncestor: a path that vanished from a scoped observation may only have become unreachable, because
// a folder above it was replaced by a symlink or special file. That folder is then skipped, and nothing below
// it is taken as deleted.
func (e *Engine) skippedAncestor(ctx context.Context, side state.Side, p remote.Path, rep *Report) bool {
	r := e.sideRemote(side)
	for d := p.Dir(); d != remote.Root; d = d.Dir() {
		ent, err := r.Stat(ctx, d)
		switch {
		case err == nil && ent.Dir:
			return false
		case err == nil:
			return false // a file took the folder's place: the folder and its contents are gone
		case errors.Is(err, remote.ErrNotFound):
			continue
		default:
			e.markSkipped(side, d, fmt.Sprintf("%v", err), rep)
			return true
		}
	}
	return false
}
