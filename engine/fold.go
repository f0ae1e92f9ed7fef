package engine

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Names on a remote that folds them (vBoxx ignores case; a remote may also treat NFC and NFD spellings of a
// name as one). The local side tells them apart, so two local names can map to one remote object. The planner
// looks at the names of each folder through the remote's fold (remote.FoldName):
//   - two local names with one fold and nothing on the remote: the first in store order (bytewise smallest) is
//     synced, the other is a collision: reported every pass and recorded once for `tandem conflicts`, never
//     synced, never deleted. The choice depends only on the names, so it does not flip between passes.
//   - a local name whose fold is already synced under another spelling that still exists locally: a collision.
//     So is a synced folder the remote deleted and took again under another spelling, once a child in it must
//     stay (it would be re-created on the remote as "parent of a kept path"), whichever spelling comes first;
//     a collision loses every sync point in its subtree, which the remote cannot hold.
//   - a local name and a remote name with one fold and no sync point (a first sync, or a folder made on both
//     sides): one object spelt two ways; the remote one is renamed to the local spelling, in two steps because
//     the remote refuses a rename onto what it sees as the same name, and the next round merges the contents.
//   - a local rename that only changes case (report.txt to Report.txt): move detection pairs it as usual and the
//     executor renames the remote in two steps; an upload under the new spelling waits for the round after the
//     delete of the old one, which the remote would otherwise see as the same, taken name.
//
// A later spelling may settle the fate of an earlier one whose subtree is planned already, so each name holds
// what was planned at and below it, and a folder's names go to the folder's own list in their final form only
// when the folder leaves the walk's stack (flush), every spelling's fate settled (DESIGN: "How the planner walks").

// collision is a local path the remote cannot hold beside With.
type collision struct {
	Path, With remote.Path
}

// fate is what becomes of the actions planned for a name and below it.
type fate uint8

const (
	asPlanned fate = iota // they are planned as they are
	renamed               // the other spelling of a case move: none (the rename is the plan)
	collided              // a collision: only the forgets of its sync points
)

// foldSeen is a name as the planner met it (the root folder too), with what the walk planned there and below.
type foldSeen struct {
	path      remote.Path
	l, r      *state.Record
	b         *state.Base
	localOnly bool
	op        Op          // what the three records alone ask for (decide)
	with      remote.Path // shadowed only: the spelling the remote holds instead
	fate      fate
	acts      []Action             // planned at and below path (its names' final forms once flushed)
	late      []Action             // planned after its fate was settled, or a case move's rename: as they are
	kids      []*foldSeen          // a folder's names in store order, until the folder is flushed
	names     map[string]*foldSeen // a folder's names by folder and fold: the spelling a new name meets
}

// foldState is the planner's view of folded names; nil when the remote tells every name apart.
type foldState struct {
	fold       func(string) string
	root       *foldSeen
	skip       *foldSeen // a name whose subtree is left out of this plan (nil none)
	collisions []collision
	// afterDelete: uploads that wait for the delete of their other spelling (upload path -> delete path)
	afterDelete map[remote.Path]remote.Path
	// shadowed: folders missing on the remote whose name the remote holds in another spelling
	shadowed map[remote.Path]*foldSeen
}

func newFoldState(c remote.Capabilities) *foldState {
	f := remote.FoldName(c)
	if f == nil {
		return nil
	}
	return &foldState{fold: f, root: &foldSeen{}, afterDelete: map[remote.Path]remote.Path{},
		shadowed: map[remote.Path]*foldSeen{}}
}

// owner is the name whose list an action planned for p goes to: a name left out of the plan that holds p, else
// the innermost folder on the stack (or the root). nil on a remote that tells every name apart: the plan itself.
func (pl *planner) owner(p remote.Path) *foldSeen {
	if pl.fold == nil {
		return nil
	}
	if s := pl.fold.skip; s != nil && p.Within(s.path) {
		return s
	}
	for i := len(pl.stack) - 1; i >= 0; i-- {
		if s := pl.stack[i].seen; s != nil {
			return s
		}
	}
	return pl.fold.root
}

// emit plans acts: into s's list (fold.go), or into the plan when s is nil.
func (pl *planner) emit(s *foldSeen, acts ...Action) {
	if s == nil {
		pl.acts = append(pl.acts, acts...)
		return
	}
	s.acts = append(s.acts, acts...)
}

// aside plans acts for p, ignored or below a name left out of the plan, into the list of the name that holds
// p; as they are when that name's fate is settled already.
func (pl *planner) aside(p remote.Path, acts ...Action) {
	if s := pl.owner(p); s != nil && s.fate != asPlanned {
		s.late = append(s.late, acts...)
	} else {
		pl.emit(s, acts...)
	}
}

// flush gives the names of folder s, whose subtree is planned, to s's own list in their final form.
func (fs *foldState) flush(s *foldSeen) {
	for _, k := range s.kids {
		switch k.fate {
		case asPlanned:
			s.acts = append(s.acts, k.acts...)
		case collided:
			// Every sync point below k is forgotten (a base there would lack its remote record). With no
			// remote k, every base below k has an action (its remote record is gone), so none is missed.
			forgot := map[remote.Path]bool{}
			for _, a := range k.acts {
				if a.Base != nil && !forgot[a.Path] {
					forgot[a.Path] = true
					a.Op, a.Reason = Forget, collides
					s.acts = append(s.acts, a)
				}
			}
			if !forgot[k.path] {
				s.acts = append(s.acts, forgets(k.path, k.b, k.l, k.r)...)
			}
		}
		s.acts = append(s.acts, k.late...)
	}
	s.kids, s.names = nil, nil
}

// folded handles p's name against the names of its folder met before. It returns p's name, and whether the
// planner must leave p (and what is below it) out of this plan.
func (pl *planner) folded(p remote.Path, b *state.Base, l, r *state.Record) (*foldSeen, bool) {
	fs := pl.fold
	if s := fs.skip; s != nil && p.Within(s.path) {
		pl.aside(p, forgets(p, b, l, r)...)
		return nil, true
	}
	fs.skip = nil
	parent := pl.owner(p)
	me := &foldSeen{path: p, l: l, r: r, b: b, localOnly: l != nil && r == nil && b == nil,
		op: decide(p, b, l, r).Op}
	parent.kids = append(parent.kids, me)
	if parent.names == nil {
		parent.names = map[string]*foldSeen{}
	}
	names, k := parent.names, string(p.Dir())+"/"+fs.fold(p.Base())
	q, ok := names[k]
	if !ok {
		names[k] = me
		return me, false
	}
	remoteOnly := func(s *foldSeen) bool { return s.r != nil && s.l == nil && s.b == nil }
	wantsUp := func(s *foldSeen) bool { return s.l != nil && s.r == nil && (s.op == Upload || s.op == MkdirRemote) }
	// q's subtree is planned already: a folder the remote deleted is re-created there when a child of it is
	// kept ("parent of a kept path"), which wants the name on the remote as much as a new folder does.
	qWantsUp := wantsUp(q) || (q.l != nil && q.r == nil && q.has(MkdirRemote))
	switch {
	case me.localOnly && remoteOnly(q) && q.r.Dir == l.Dir:
		caseMove(q, me)
		names[k], fs.skip = me, me
		return me, true
	case q.localOnly && remoteOnly(me) && r.Dir == q.l.Dir:
		caseMove(q, me)
		fs.skip = me
		return me, true
	case wantsUp(me) && (q.r != nil || qWantsUp):
		if q.r != nil && q.l == nil {
			// The other spelling is gone locally: a rename that changes only case or normalisation, if the
			// remote one is deleted in this round.
			fs.link(q, me, me)
			return me, false
		}
		// The remote holds (or will hold) the other spelling, the first met.
		fs.collisions = append(fs.collisions, collision{Path: p, With: q.path})
		me.acts, fs.skip = forgets(p, b, l, r), me
		return me, true
	case qWantsUp && r != nil:
		if l == nil {
			fs.link(me, q, me)
			names[k] = me
			return me, false
		}
		// p is on the remote and still here: the earlier spelling is the one the remote cannot hold.
		q.fate = collided
		fs.collisions = append(fs.collisions, collision{Path: q.path, With: p})
		names[k] = me
		return me, false
	case l != nil && l.Dir && r == nil && ((q.r != nil && q.l != nil) || qWantsUp):
		// A folder the remote lacks while it keeps (or will hold) the other spelling: fine as long as nothing
		// asks for it there; a child that stays would (planner.keep), and then p is the collision. (An other
		// spelling deleted locally is deleted on the remote in this round, which frees the name for the next.)
		me.with = q.path
		fs.shadowed[p] = me
	}
	return me, false
}

// shadowedParent is called by planner.keep before it notes the remote folder dir for a child that stays. If
// the remote holds another spelling of dir, dir becomes a collision, the rest of its subtree left out, and it
// reports true (no folder is planned).
func (pl *planner) shadowedParent(dir remote.Path) bool {
	fs := pl.fold
	s := fs.shadowed[dir]
	if s == nil {
		return false
	}
	delete(fs.shadowed, dir)
	s.fate = collided
	fs.collisions = append(fs.collisions, collision{Path: dir, With: s.with})
	fs.skip = s
	return true
}

// has reports whether an action of one of ops is planned at s's own path, s being planned as it is.
func (s *foldSeen) has(ops ...Op) bool {
	return s.fate == asPlanned && findAct(s.acts, s.path, ops...) >= 0
}

// findAct is the index of the first action at path p with one of ops, or -1.
func findAct(acts []Action, p remote.Path, ops ...Op) int {
	return slices.IndexFunc(acts, func(a Action) bool { return a.Path == p && slices.Contains(ops, a.Op) })
}

// forgets drops the sync point, if any, of a path the remote cannot hold any more (a collision, or what is
// below one): what is synced there no longer is, and the local file stays as it is.
func forgets(p remote.Path, b *state.Base, l, r *state.Record) []Action {
	if b == nil {
		return nil
	}
	return []Action{{Op: Forget, Path: p, Local: l, Remote: r, Base: b, Reason: collides}}
}

const collides = "collides with another spelling on a remote that does not tell them apart"

// caseMove renames the remote spelling of an object to the local one (no sync point on either): first, met
// first, plans nothing now, and the rename is planned at second, which the walk leaves out.
func caseMove(first, second *foldSeen) {
	rem, loc := first, second
	if first.r == nil {
		rem, loc = second, first
	}
	first.fate = renamed
	second.late = append(second.late, Action{Op: MoveRemote, Path: rem.path, To: loc.path, Local: loc.l,
		Remote: rem.r, Reason: "the remote holds this name in another spelling (it ignores case or normalises names)"})
}

// link notes that the upload planned for loc must wait for the delete of gone, its other spelling, in this
// round (holdUploads drops it unless move detection paired the two); if no such delete is planned, loc is a
// collision. cur, one of the two, is the name met now, its decision its op (a folder's is planned only when it
// leaves the stack).
func (fs *foldState) link(gone, loc, cur *foldSeen) {
	has := func(s *foldSeen, ops ...Op) bool {
		return s == cur && slices.Contains(ops, s.op) || s != cur && s.has(ops...)
	}
	if !has(loc, Upload, MkdirRemote) {
		return
	}
	if has(gone, DeleteRemote) {
		fs.afterDelete[loc.path] = gone.path
		return
	}
	// The other spelling stays on the remote: this one cannot be added beside it.
	loc.fate = collided
	fs.collisions = append(fs.collisions, collision{Path: loc.path, With: gone.path})
	if loc == cur {
		fs.skip = loc // planned as a collision, with nothing below it
	}
}

// holdUploads is the final plan: plan (the decisions with move detection's moves) with the uploads dropped that
// wait for a delete of their other spelling in this round, unless move detection turned the pair into one
// move. It builds a new plan and leaves plan as it is; finish calls it after findMoves.
// Move detection may also have paired the delete with an upload elsewhere: the other spelling then holds the
// name until the move phase, after the folder creates, so the upload waits as well. A move into the waiting
// folder itself could never run (its new parent waits for the name it frees): it goes back to a delete now (to
// the trash; the file is still here) and an upload in the next round, once the folder is made (seed 5894); a
// folder's move that goes back so takes back the deletes of what is inside it (seed 6726, undeferDeletes).
// Every other move into a held folder waits with it.
func holdUploads(plan []Action, afterDelete map[remote.Path]remote.Path) []Action {
	acts := slices.Clone(plan)
	var undefer []remote.Path
	for upPath, delPath := range afterDelete {
		up, del := findAct(acts, upPath, Upload, MkdirRemote), findAct(acts, delPath, DeleteRemote)
		if del < 0 {
			del = findAct(acts, delPath, OpNone)
		}
		if up < 0 || del < 0 {
			continue
		}
		switch acts[del].Op {
		case DeleteRemote:
			// A move out of the other spelling into the held folder (the folder came back as a new one, not a
			// move, holding a file the base knew: seed 1708) would wait with it, and the delete of the other
			// spelling fail "folder not empty" on every pass: it goes back to a delete now (to the trash; the
			// file is still here) and an upload in the next round, once the folder is made.
			for i := range acts {
				m := &acts[i]
				if m.Op == MoveRemote && m.To.Within(acts[up].Path) && m.Path != acts[del].Path &&
					m.Path.Within(acts[del].Path) && undoMove(acts, m.Path) && m.Base.Dir {
					undefer = append(undefer, m.Path)
				}
			}
			holdSubtree(acts, up)
		case OpNone:
			for i := range acts {
				m := &acts[i]
				if m.Op != MoveRemote || m.Path != acts[del].Path {
					continue
				}
				if m.To.Within(acts[up].Path) {
					m.Op = OpNone
					acts[del].Op = DeleteRemote
					if m.Base.Dir {
						undefer = append(undefer, acts[del].Path)
					}
				}
				holdSubtree(acts, up)
			}
		}
	}
	for _, d := range undefer { // after every hold: a held move out of the folder leaves its source there
		undeferDeletes(acts, d)
	}
	return acts
}

// undoMove gives the source of a move that will not run its delete back (move detection had dropped it),
// as the plan without the move would have done; it reports whether it did.
func undoMove(acts []Action, src remote.Path) bool {
	for i := range acts {
		a := &acts[i]
		if a.Op != OpNone || a.Path != src || a.Base == nil || a.Local != nil || a.Remote == nil {
			continue
		}
		if d := decide(a.Path, a.Base, a.Local, a.Remote); d.Op == DeleteRemote {
			a.Op, a.Reason = d.Op, d.Reason
			for j := range acts {
				if acts[j].Op == MoveRemote && acts[j].Path == src {
					acts[j].Op = OpNone
				}
			}
			return true
		}
	}
	return false
}

// undeferDeletes gives back their deletes to what is inside a folder whose move went back to a delete: move
// detection left everything inside a moved folder for the next round, but the folder's delete does not take
// its children, so without their own deletes it would fail "folder not empty" on every pass (seed 6726). Only
// remote entries gone locally whose remote copy is as the base knew it are deleted (to the trash), as the plan
// without the move would have done; a file that moved elsewhere locally is uploaded there in the next round.
func undeferDeletes(acts []Action, dir remote.Path) {
	moving := map[remote.Path]bool{} // sources of moves that still run (out of the folder, before the delete)
	for _, a := range acts {
		if a.Op == MoveRemote {
			moving[a.Path] = true
		}
	}
	for i := range acts {
		a := &acts[i]
		if a.Op != OpNone || a.Path == dir || !a.Path.Within(dir) || a.Base == nil || a.Local != nil ||
			a.Remote == nil || moving[a.Path] {
			continue
		}
		if d := decide(a.Path, a.Base, a.Local, a.Remote); d.Op == DeleteRemote {
			a.Op, a.Reason = d.Op, d.Reason
		}
	}
}

// holdSubtree leaves the upload or folder create at acts[up] for the next round, with what it would create
// or move below it (it would find no parent; a held move is detected again in the next round).
func holdSubtree(acts []Action, up int) {
	p, dir := acts[up].Path, acts[up].Op == MkdirRemote
	acts[up].Op = OpNone
	if !dir {
		return
	}
	for i := range acts {
		a := &acts[i]
		if ((a.Op == Upload || a.Op == MkdirRemote) && a.Path.Within(p)) || (a.Op == MoveRemote && a.To.Within(p)) {
			a.Op = OpNone
		}
	}
}

// caseOnly reports whether a remote move only changes the spelling of one name, which a folding remote sees
// as a rename onto itself.
func (e *Engine) caseOnly(from, to remote.Path) bool {
	f := remote.FoldName(e.d.Remote.Capabilities())
	return f != nil && from != to && from.Dir() == to.Dir() && f(from.Base()) == f(to.Base())
}

// moveTwoSteps renames from to to through a temporary name next to it.
func (e *Engine) moveTwoSteps(ctx context.Context, r remote.Remote, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	tmp, err := from.Dir().Join(fmt.Sprintf("%s.case-%08x", to.Base(), e.d.Rand.Uint32()))
	if err != nil {
		return remote.Entry{}, err
	}
	if _, err := r.Move(ctx, from, tmp, pre); err != nil {
		return remote.Entry{}, err
	}
	e.noteRemoteWrite(ctx, tmp)
	ent, err := r.Move(ctx, tmp, to, remote.Precondition{})
	if err != nil {
		// Put the name back, so nothing is left under the temporary one.
		if _, berr := r.Move(ctx, tmp, from, remote.Precondition{}); berr != nil {
			e.lg.Warn("case-only rename: restoring the old name", zap.String("path", string(from)), zap.Error(berr))
		}
		return remote.Entry{}, err
	}
	return ent, nil
}

// reportCollisions reports this plan's collisions in the pass and records each once per process for
// `tandem conflicts`.
func (e *Engine) reportCollisions(rep *Report, cs []collision) error {
	for _, c := range cs {
		why := fmt.Sprintf("name collides with %s on a remote that does not tell them apart (case or Unicode "+
			"normalisation); only %s is synced: rename one of them", c.With.Quoted(), c.With.Quoted())
		if !rep.hasConflict(c.Path) {
			rep.conflict(ConflictRec{Path: c.Path, Kept: "collision", Reason: why})
		}
		if e.o.DryRun || e.collided[c.Path] {
			continue
		}
		if err := e.d.Store.Update(func(tx state.Writer) error {
			return tx.AddConflict(state.Conflict{Path: c.Path, At: e.now(), Reason: why})
		}); err != nil {
			return fmt.Errorf("%w: record a collision: %w", errStore, err)
		}
		if e.collided == nil {
			e.collided = map[remote.Path]bool{}
		}
		e.collided[c.Path] = true
	}
	return nil
}
