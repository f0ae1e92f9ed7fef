package engine

import (
	"errors"
	"io/fs"
	"sort"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// ErrBigDelete stops a pass that would delete more than the allowed share of one side's files.
var ErrBigDelete = errors.New("big delete")

// ErrSafetyStop wraps every stop that protects data (root missing, big delete); `tandem once` exits 1.
var ErrSafetyStop = errors.New("safety stop")

func sameDigest(a, b remote.Hash) bool { return !a.IsZero() && a == b }

// localChanged: the local record differs from the base in kind, content (the local digest, which the observer
// computes whenever the stat fingerprint moved) or permission bits (modeMoved).
func localChanged(b *state.Base, l *state.Record) bool {
	if b == nil {
		return l != nil
	}
	if l == nil || l.Dir != b.Dir {
		return true
	}
	return !l.Dir && (l.Hash != b.Hash || modeMoved(b.Local.Mode, l.Mode, b.Remote.Mode))
}

// modeMoved: a file's permission bits moved from was to now on a side, and the other side keeps modes too (its
// base record has them: both sides are local folders). A side without modes reports 0, and a base recorded before
// tandem kept modes has none, so neither makes a change.
func modeMoved(was, now, other fs.FileMode) bool {
	return was != 0 && now != 0 && other != 0 && was != now
}

// modeOnly: the only change on the changed side is its permission bits: content and the other side are as
// recorded, so setting the bits is the whole action (no transfer).
// local tells which side changed.
func modeOnly(b *state.Base, l, r *state.Record, local bool) bool {
	if b == nil || l == nil || r == nil || b.Dir || l.Dir || r.Dir {
		return false
	}
	if local {
		return l.Hash == b.Hash && r.Rev == b.Remote.Rev
	}
	return sameDigest(r.Hash, b.Hash) && l.Rev == b.Local.Rev
}

// remoteChanged: the remote record differs from the base in kind or revision. A new revision whose digest still
// equals the base's is a metadata change (a touch, a provider re-encoding), not a content change.
func remoteChanged(b *state.Base, r *state.Record) bool {
	if b == nil {
		return r != nil
	}
	if r == nil || r.Dir != b.Dir {
		return true
	}
	return !r.Dir && (r.Rev != b.Remote.Rev && !sameDigest(r.Hash, b.Hash) || modeMoved(b.Remote.Mode, r.Mode, b.Local.Mode))
}

// decide is the planner table of DESIGN.md for one path. It looks at nothing but the three records.
func decide(p remote.Path, b *state.Base, l, r *state.Record) Action {
	a := Action{Path: p, Local: l, Remote: r, Base: b}
	lch, rch := localChanged(b, l), remoteChanged(b, r)
	switch {
	case !lch && !rch:
		switch {
		case b != nil && l != nil && r != nil && !r.Dir && r.Rev != b.Remote.Rev:
			a.Op, a.Reason = Record, "remote revision changed, content did not"
		case b != nil && l != nil && r != nil && !r.Dir && l.Mode != 0 && r.Mode != 0 && (b.Local.Mode == 0 || b.Remote.Mode == 0):
			// A sync point from before tandem kept modes: recorded again with them, once, so that a later chmod
			// is a change.
			a.Op, a.Reason = Record, "sync point gains the permissions"
		}
		return a
	case lch != rch:
		s := toRemote
		if rch {
			s = toLocal
		}
		return propagate(a, s)
	}
	// Both sides changed since the base (or there is no base: the union merge).
	switch {
	case l == nil && r == nil:
		a.Op, a.Reason = Forget, "deleted on both sides"
	case l == nil || r == nil:
		s := toLocal // the side that deleted gets the other's change back
		if r == nil {
			s = toRemote
		}
		a.Op, a.Reason = sideOps[s.this].transfer, "deleted "+adverb(s.this)+", changed "+adverb(s.other)+": the change wins"
		if on(s.other, l, r).Dir {
			a.Op = sideOps[s.this].mkdir
		}
	case l.Dir && r.Dir:
		a.Op, a.Reason = Record, "folder on both sides"
	case l.Dir != r.Dir:
		a.Op, a.Reason = TypeConflict, "file on one side, folder on the other"
	case sameDigest(l.Hash, r.Hash):
		a.Op, a.Reason = Record, "same content on both sides"
	case r.Hash.IsZero() || r.Hash.Algo != l.Hash.Algo:
		a.Op, a.Reason = Compare, "both sides changed: compare content"
	default:
		a.Op, a.Reason = Conflict, "both sides changed differently"
	}
	return a
}

// propagate carries a change of side s.other to s.this, which holds what the base recorded.
func propagate(a Action, s side) Action {
	src, dst := on(s.other, a.Local, a.Remote), on(s.this, a.Local, a.Remote)
	ops, from, name := sideOps[s.this], adverb(s.other), s.other.String()
	switch {
	case modeOnly(a.Base, a.Local, a.Remote, s.other == state.Local):
		a.Op, a.Reason = ops.chmod, "permissions changed "+from
	case src == nil:
		a.Op, a.Reason = ops.del, "deleted "+from
	case src.Dir && dst == nil:
		a.Op, a.Reason = ops.mkdir, "new "+name+" folder"
	case src.Dir:
		a.Op, a.Reason = ops.del, "replaced by a folder "+from
	case dst != nil && dst.Dir:
		a.Op, a.Reason = ops.del, "replaced by a file "+from
	case dst == nil:
		a.Op, a.Reason = ops.transfer, "new "+name+" file"
	default:
		a.Op, a.Reason = ops.transfer, "changed "+from
	}
	return a
}

// keeps reports whether after the action the path exists on both sides (so its folders must too).
func (a Action) keeps() bool {
	switch a.Op {
	case DeleteLocal, DeleteRemote, Forget:
		return false
	case OpNone:
		return a.Local != nil && a.Remote != nil
	}
	return true
}

// frame is a folder on the depth-first walk through the three trees whose subtree is still being planned.
type frame struct {
	path       remote.Path
	dec        Action // what its own records ask for (decide); final when the folder leaves the stack
	onL, onR   bool   // the folder exists on that side
	kept       bool   // a path below stays on both sides, so the folder must too
	mkL, mkR   bool   // it must be created on that side for what is kept below
	ignoredDir bool
	seen       *foldSeen // its name on a folding remote (fold.go), which holds what is planned below it
}

// planner consumes the union of the three trees in store order (depth-first, children sorted bytewise) and
// collects actions. A folder is decided when it leaves the stack, after everything below it (post-order), so
// that what its children keep decides whether it goes; no action is changed once it is planned. On a folding
// remote what is planned below a folder waits in its name's list until the folder leaves the stack and the
// spellings among its names are settled (fold.go). Memory grows with the number of actions and the tree
// depth (on a folding remote also with the names of the folders on the stack), not the tree size.
type planner struct {
	ignored func(p remote.Path, dir bool) bool
	fold    *foldState // names the remote does not tell apart (fold.go); nil: it tells all apart
	done    func(*planner)
	acts    []Action
	stack   []frame
	// decided: the paths and move targets of every decision, before finish turns some into moves or holds
	// them for the next round (runRounds plans the next round over these)
	decided []remote.Path
}

// add decides one path. Calls must come in store order.
func (pl *planner) add(p remote.Path, b *state.Base, l, r *state.Record) {
	for len(pl.stack) > 0 && !p.Within(pl.stack[len(pl.stack)-1].path) {
		pl.pop()
	}
	dir := (l != nil && l.Dir) || (r != nil && r.Dir) || (b != nil && b.Dir)
	if len(pl.stack) > 0 && pl.stack[len(pl.stack)-1].ignoredDir {
		if b != nil || l != nil || r != nil {
			pl.aside(p, Action{Op: Forget, Path: p, Local: l, Remote: r, Base: b, Reason: "ignored"})
		}
		return
	}
	if pl.ignored != nil && pl.ignored(p, dir) {
		pl.aside(p, Action{Op: Forget, Path: p, Local: l, Remote: r, Base: b, Reason: "ignored"})
		if dir {
			pl.stack = append(pl.stack, frame{path: p, ignoredDir: true})
		}
		return
	}
	var me *foldSeen
	if pl.fold != nil {
		var out bool
		if me, out = pl.folded(p, b, l, r); out {
			return
		}
	}
	a := decide(p, b, l, r)
	above := len(pl.stack)
	switch {
	case dir:
		pl.stack = append(pl.stack, frame{path: p, dec: a, onL: l != nil && l.Dir, onR: r != nil && r.Dir, seen: me})
	case a.Op != OpNone:
		pl.emit(me, a)
	}
	if a.keeps() {
		pl.keep(above)
	}
}

// keep marks the folders above a path that stays (the first n frames) as kept: each must exist on both sides
// when it is decided, so "folder deletes never take unseen files".
func (pl *planner) keep(n int) {
	for i := range n {
		f := &pl.stack[i]
		f.kept = true
		if !f.onL && f.dec.Op != MkdirLocal {
			f.mkL = true
		}
		if !f.onR && !f.mkR && f.dec.Op != MkdirRemote {
			if pl.fold != nil && pl.fold.shadowed[f.path] != nil && pl.shadowedParent(f.path) {
				return // f and all below it are a collision now: nothing there is kept
			}
			f.mkR = true
		}
	}
}

// pop decides the folder on top of the stack, now that everything below it is planned: a delete of a folder
// that keeps a child is no delete (or, where a file replaced it on one side, a type conflict), and a folder
// missing on a side is created there for what it keeps.
func (pl *planner) pop() {
	f := pl.stack[len(pl.stack)-1]
	pl.stack = pl.stack[:len(pl.stack)-1]
	if f.ignoredDir {
		return
	}
	if f.seen != nil {
		pl.fold.flush(f.seen)
	}
	a := f.dec
	switch a.Op {
	case DeleteLocal, DeleteRemote:
		switch {
		case !f.kept, a.replacesFile(): // the file goes, the folder is created after it
		case a.Local != nil && a.Remote != nil && a.Local.Dir != a.Remote.Dir:
			// A file replaced the folder on one side while a child changed on the other: both stay, the file
			// is renamed aside so that the folder can be created in its place.
			a.Op, a.Reason = TypeConflict, "replaced by a file on one side, a child changed on the other"
		default:
			// Planned as a no-op, so that what looks for the path's decision (fold.go) finds it.
			a.Op, a.Reason = OpNone, "kept: a child changed"
			pl.emit(f.seen, a)
		}
	}
	if a.Op != OpNone {
		pl.emit(f.seen, a)
	}
	if f.mkL {
		pl.emit(f.seen, Action{Op: MkdirLocal, Path: f.path, Reason: "parent of a kept path"})
	}
	if f.mkR {
		pl.emit(f.seen, Action{Op: MkdirRemote, Path: f.path, Reason: "parent of a kept path"})
	}
}

// decisions closes the walk (the folders still on the stack are decided) and returns what it planned.
func (pl *planner) decisions() []Action {
	for len(pl.stack) > 0 {
		pl.pop()
	}
	if pl.fold != nil {
		pl.fold.flush(pl.fold.root)
		pl.acts, pl.fold.root.acts = append(pl.acts, pl.fold.root.acts...), nil
	}
	return pl.acts
}

// finish turns delete+create pairs of one object into moves, drops what became no-ops and orders the plan for
// execution. Actions below a move are left for the next round, after the move has re-keyed the trees.
func (pl *planner) finish(lookup idLookup) []Action {
	acts := pl.decisions()
	pl.decided = pl.decided[:0]
	for _, a := range acts {
		pl.decided = append(pl.decided, a.Path)
		if a.To != "" {
			pl.decided = append(pl.decided, a.To)
		}
	}
	if lookup != nil {
		acts = findMoves(acts, lookup).apply(acts)
	}
	if pl.fold != nil {
		acts = holdUploads(acts, pl.fold.afterDelete)
	}
	if pl.done != nil {
		pl.done(pl)
	}
	out := acts[:0]
	for _, a := range acts {
		if a.Op != OpNone {
			out = append(out, a)
		}
	}
	sortPlan(out)
	return out
}

// sortPlan orders actions by phase; folder creates parents first, deletes children first, the rest in path order.
// The order is total, so a plan never depends on map iteration.
func sortPlan(acts []Action) {
	sort.SliceStable(acts, func(i, j int) bool {
		a, b := acts[i], acts[j]
		if pa, pb := a.phase(), b.phase(); pa != pb {
			return pa < pb
		}
		c := state.Compare(a.Path, b.Path)
		if a.phase() == phaseDelete {
			return c > 0 // children (after their parent in store order) first
		}
		if c != 0 {
			return c < 0
		}
		return a.Op < b.Op
	})
}
