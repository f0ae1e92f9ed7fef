package engine

import (
	"errors"
	"io/fs"
	"slices"
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
	case lch && !rch && modeOnly(b, l, r, true):
		a.Op, a.Reason = ChmodRemote, "permissions changed locally"
		return a
	case !lch && rch && modeOnly(b, l, r, false):
		a.Op, a.Reason = ChmodLocal, "permissions changed remotely"
		return a
	case lch && !rch:
		return toRemote(a)
	case !lch && rch:
		return toLocal(a)
	}
	// Both sides changed since the base (or there is no base: the union merge).
	switch {
	case l == nil && r == nil:
		a.Op, a.Reason = Forget, "deleted on both sides"
	case l == nil && r.Dir:
		a.Op, a.Reason = MkdirLocal, "deleted locally, changed remotely: the change wins"
	case l == nil:
		a.Op, a.Reason = Download, "deleted locally, changed remotely: the change wins"
	case r == nil && l.Dir:
		a.Op, a.Reason = MkdirRemote, "deleted remotely, changed locally: the change wins"
	case r == nil:
		a.Op, a.Reason = Upload, "deleted remotely, changed locally: the change wins"
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

func toRemote(a Action) Action {
	l, r := a.Local, a.Remote
	switch {
	case l == nil:
		a.Op, a.Reason = DeleteRemote, "deleted locally"
	case l.Dir && r == nil:
		a.Op, a.Reason = MkdirRemote, "new local folder"
	case l.Dir:
		a.Op, a.Reason = DeleteRemote, "replaced by a folder locally"
	case r != nil && r.Dir:
		a.Op, a.Reason = DeleteRemote, "replaced by a file locally"
	case r == nil:
		a.Op, a.Reason = Upload, "new local file"
	default:
		a.Op, a.Reason = Upload, "changed locally"
	}
	return a
}

func toLocal(a Action) Action {
	l, r := a.Local, a.Remote
	switch {
	case r == nil:
		a.Op, a.Reason = DeleteLocal, "deleted remotely"
	case r.Dir && l == nil:
		a.Op, a.Reason = MkdirLocal, "new remote folder"
	case r.Dir:
		a.Op, a.Reason = DeleteLocal, "replaced by a folder remotely"
	case l != nil && l.Dir:
		a.Op, a.Reason = DeleteLocal, "replaced by a file remotely"
	case l == nil:
		a.Op, a.Reason = Download, "new remote file"
	default:
		a.Op, a.Reason = Download, "changed remotely"
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

// frame is an ancestor folder on the depth-first walk through the three trees.
type frame struct {
	path       remote.Path
	onL, onR   bool // the folder exists on that side
	act        int  // index of its action in planner.acts, -1 if none
	mkL, mkR   bool // a mkdir is planned on that side
	ignoredDir bool
}

// planner consumes the union of the three trees in store order (depth-first, children sorted bytewise) and
// collects actions. Memory grows with the number of actions and the tree depth, not the tree size.
type planner struct {
	ignored   func(p remote.Path, dir bool) bool
	fold      *foldState // names the remote does not tell apart (fold.go); nil: it tells all apart
	done      func(*planner)
	acts      []Action
	stack     []frame
	baseFiles int
}

// add decides one path. Calls must come in store order.
func (pl *planner) add(p remote.Path, b *state.Base, l, r *state.Record) {
	for len(pl.stack) > 0 && !p.Within(pl.stack[len(pl.stack)-1].path) {
		pl.stack = pl.stack[:len(pl.stack)-1]
	}
	if b != nil && !b.Dir {
		pl.baseFiles++
	}
	dir := (l != nil && l.Dir) || (r != nil && r.Dir) || (b != nil && b.Dir)
	if len(pl.stack) > 0 && pl.stack[len(pl.stack)-1].ignoredDir {
		if b != nil || l != nil || r != nil {
			pl.acts = append(pl.acts, Action{Op: Forget, Path: p, Local: l, Remote: r, Base: b, Reason: "ignored"})
		}
		return
	}
	if pl.ignored != nil && pl.ignored(p, dir) {
		pl.acts = append(pl.acts, Action{Op: Forget, Path: p, Local: l, Remote: r, Base: b, Reason: "ignored"})
		if dir {
			pl.stack = append(pl.stack, frame{path: p, act: -1, ignoredDir: true})
		}
		return
	}
	if pl.fold != nil && pl.folded(p, b, l, r) {
		return
	}
	a := decide(p, b, l, r)
	idx := -1
	if a.Op != OpNone {
		idx = len(pl.acts)
		pl.acts = append(pl.acts, a)
	}
	if pl.fold != nil {
		pl.fold.after(pl, p, idx)
	}
	if a.keeps() {
		pl.ensureAncestors()
	}
	if dir {
		pl.stack = append(pl.stack, frame{path: p, onL: l != nil && l.Dir, onR: r != nil && r.Dir, act: idx})
	}
}

// ensureAncestors keeps every ancestor folder on both sides: a planned delete of one is cancelled (its child
// survives, so "folder deletes never take unseen files"), and a folder missing on a side is created there.
func (pl *planner) ensureAncestors() {
	for i := range pl.stack {
		f := &pl.stack[i]
		if f.act >= 0 {
			switch a := &pl.acts[f.act]; a.Op {
			case DeleteLocal, DeleteRemote:
				if a.replacesFile() { // the file goes, the folder is created after it
					break
				}
				if a.Local != nil && a.Remote != nil && a.Local.Dir != a.Remote.Dir {
					// A file replaced the folder on one side while a child changed on the other: both stay,
					// the file is renamed aside so that the folder can be created in its place.
					pl.acts[f.act].Op = TypeConflict
					pl.acts[f.act].Reason = "replaced by a file on one side, a child changed on the other"
					break
				}
				pl.acts[f.act].Op = OpNone
				pl.acts[f.act].Reason = "kept: a child changed"
			}
		}
		if !f.onL && !f.mkL && !pl.planned(f, MkdirLocal) {
			f.mkL = true
			pl.acts = append(pl.acts, Action{Op: MkdirLocal, Path: f.path, Reason: "parent of a kept path"})
		}
		if !f.onR && !f.mkR && !pl.planned(f, MkdirRemote) {
			if pl.fold != nil && pl.fold.shadowed[f.path] != nil && pl.shadowedParent(f.path) {
				return // f and all below it are a collision now: nothing there is kept
			}
			f.mkR = true
			pl.acts = append(pl.acts, Action{Op: MkdirRemote, Path: f.path, Reason: "parent of a kept path"})
		}
	}
}

func (pl *planner) planned(f *frame, op Op) bool { return f.act >= 0 && pl.acts[f.act].Op == op }

// idLookup finds the base path that held an object (move detection).
type idLookup func(ix state.Index, id string) (remote.Path, bool)

// finish turns delete+create pairs of one object into moves, drops what became no-ops and orders the plan for
// execution. Actions below a move are left for the next round, after the move has re-keyed the trees.
func (pl *planner) finish(lookup idLookup) []Action {
	acts := pl.acts
	if lookup != nil {
		acts = detectMoves(acts, lookup)
	}
	if pl.fold != nil {
		pl.fold.holdUploads(acts)
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

func detectMoves(acts []Action, lookup idLookup) []Action {
	goneL := map[remote.Path]int{} // deleted locally, remote still as in the base: DeleteRemote candidates
	goneR := map[remote.Path]int{}
	for i, a := range acts {
		if a.Base == nil {
			continue
		}
		switch {
		case a.Op == DeleteRemote && a.Local == nil:
			goneL[a.Path] = i
		case a.Op == DeleteLocal && a.Remote == nil:
			goneR[a.Path] = i
		}
	}
	if len(goneL) == 0 && len(goneR) == 0 {
		return acts
	}
	evidence := folderMoveEvidence(acts, goneL, goneR, lookup)
	var moves []Action
	for i, a := range acts {
		if a.Base != nil {
			continue
		}
		switch {
		case (a.Op == Upload || a.Op == MkdirRemote) && a.Local != nil && a.Remote == nil && a.Local.ID != "":
			p, ok := lookup(state.IDBaseLocal, a.Local.ID)
			j, gone := goneL[p]
			if !ok || !gone || acts[j].Op != DeleteRemote {
				continue
			}
			src := acts[j]
			// An inode is reused by the filesystem: the same inode proves a move only with the same content,
			// and for a folder only with a file inside that came along (rm -rf D; mkdir E often gives E the
			// inode D just freed).
			if src.Base.Dir != a.Local.Dir || (!a.Local.Dir && a.Local.Hash != src.Base.Hash) ||
				(a.Local.Dir && !evidence[folderMove{src.Path, a.Path, state.Local}]) {
				continue
			}
			acts[j].Op, acts[i].Op = OpNone, OpNone
			moves = append(moves, Action{Op: MoveRemote, Path: src.Path, To: a.Path, Local: a.Local,
				Remote: src.Remote, Base: src.Base, Reason: "moved locally"})
		case (a.Op == Download || a.Op == MkdirLocal) && a.Remote != nil && a.Local == nil && a.Remote.ID != "":
			p, ok := lookup(state.IDBaseRemote, a.Remote.ID)
			j, gone := goneR[p]
			if !ok || !gone || acts[j].Op != DeleteLocal {
				continue
			}
			src := acts[j]
			if src.Base.Dir != a.Remote.Dir || (!a.Remote.Dir && !sameRemoteContent(a.Remote, src.Base)) ||
				(a.Remote.Dir && !evidence[folderMove{src.Path, a.Path, state.Remote}]) {
				continue
			}
			acts[j].Op, acts[i].Op = OpNone, OpNone
			moves = append(moves, Action{Op: MoveLocal, Path: src.Path, To: a.Path, Local: src.Local,
				Remote: a.Remote, Base: src.Base, Reason: "moved remotely"})
		}
	}
	if len(moves) == 0 {
		return acts
	}
	// Defer everything inside a moved folder, and every other move into or out of one, to the next round.
	for _, m := range moves {
		if !m.Base.Dir {
			continue
		}
		for i := range acts {
			p := acts[i].Path
			if (p != m.Path && p.Within(m.Path)) || (p != m.To && p.Within(m.To)) {
				acts[i].Op = OpNone
			}
		}
	}
	// Moves inside another moved folder wait for the next round, after the trees are re-keyed. Moves are kept
	// greedily by destination depth, so a folder's new parent is placed before what moves into it; the greedy
	// order also keeps one of two moves that each lie inside the other (seed 31503: b moved out of Z to a/x,
	// then Z moved into a/x; dropping both left them unplanned for ever).
	slices.SortStableFunc(moves, func(a, b Action) int {
		if da, db := a.To.Depth(), b.To.Depth(); da != db {
			return da - db
		}
		return state.Compare(a.To, b.To)
	})
	var kept []Action
	for _, m := range moves {
		nested := false
		for _, o := range kept {
			if o.Base.Dir && ((m.Path != o.Path && m.Path.Within(o.Path)) || (m.To != o.To && m.To.Within(o.To)) ||
				(m.Path != o.To && m.Path.Within(o.To)) || (m.To != o.Path && m.To.Within(o.Path))) {
				nested = true
				break
			}
		}
		if !nested {
			kept = append(kept, m)
		}
	}
	return append(acts, kept...)
}

// folderMove is a folder move candidate: the folder from (gone on side) and the new folder to with its id.
type folderMove struct {
	from, to remote.Path
	side     state.Side
}

// sameRemoteContent: remote file r holds the content of base b (same revision, or the same digest).
func sameRemoteContent(r *state.Record, b *state.Base) bool {
	return r.Rev == b.Remote.Rev || sameDigest(r.Hash, b.Hash)
}

// folderMoveEvidence finds, for each new folder whose id the base knew at a folder now gone on the same side,
// whether a file came along: a new file below it whose content is what the base held at the same place below
// the old folder, or at the base path its own id names there. Only such folders are moves: a folder's id
// alone (an inode) is handed out again by the filesystem, and a wrong move would replace the files at the old
// place by new ones without their old versions going to any trash. Without evidence the old folder is
// deleted (its files to the trash) and the new one created.
func folderMoveEvidence(acts []Action, goneL, goneR map[remote.Path]int, lookup idLookup) map[folderMove]bool {
	cands := map[remote.Path][]folderMove{} // by new folder
	for _, a := range acts {
		switch {
		case a.Base != nil:
		case a.Op == MkdirRemote && a.Local != nil && a.Local.Dir && a.Remote == nil && a.Local.ID != "":
			if p, ok := lookup(state.IDBaseLocal, a.Local.ID); ok {
				if j, gone := goneL[p]; gone && acts[j].Base.Dir {
					cands[a.Path] = append(cands[a.Path], folderMove{p, a.Path, state.Local})
				}
			}
		case a.Op == MkdirLocal && a.Remote != nil && a.Remote.Dir && a.Local == nil && a.Remote.ID != "":
			if p, ok := lookup(state.IDBaseRemote, a.Remote.ID); ok {
				if j, gone := goneR[p]; gone && acts[j].Base.Dir {
					cands[a.Path] = append(cands[a.Path], folderMove{p, a.Path, state.Remote})
				}
			}
		}
	}
	found := map[folderMove]bool{}
	if len(cands) == 0 {
		return found
	}
	for _, a := range acts {
		if a.Base != nil {
			continue
		}
		var side state.Side
		var r *state.Record
		switch {
		case a.Op == Upload && a.Local != nil && a.Remote == nil:
			side, r = state.Local, a.Local
		case a.Op == Download && a.Remote != nil && a.Local == nil:
			side, r = state.Remote, a.Remote
		default:
			continue
		}
		// An empty file proves nothing: every empty file has the same digest, and a new one often gets the
		// inode of an empty file just removed with the old folder (seed 3981: rm -r D; mkdir E; touch E/b took
		// D/café's inode, the folder "move" then uploaded the empty E/b over D/b, whose version no trash held).
		if r.Size == 0 {
			continue
		}
		for d := a.Path.Dir(); d != remote.Root; d = d.Dir() {
			for _, c := range cands[d] {
				if c.side != side || found[c] {
					continue
				}
				same := func(p remote.Path) bool {
					gone := goneL
					if side == state.Remote {
						gone = goneR
					}
					j, ok := gone[p]
					if !ok || acts[j].Base.Dir || !p.Within(c.from) {
						return false
					}
					if side == state.Local {
						return sameDigest(r.Hash, acts[j].Base.Hash)
					}
					return sameRemoteContent(r, acts[j].Base)
				}
				if same(a.Path.Rebase(c.to, c.from)) {
					found[c] = true
					continue
				}
				ix := state.IDBaseLocal
				if side == state.Remote {
					ix = state.IDBaseRemote
				}
				if r.ID != "" {
					if p, ok := lookup(ix, r.ID); ok && same(p) {
						found[c] = true
					}
				}
			}
		}
	}
	return found
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
