package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// delete sends a file to its side's trash, or removes an emptied folder, only if the side still holds what the
// plan saw (the provider checks the revision, localdir the stat fingerprint).
func (e *Engine) delete(ctx context.Context, a Action) error {
	side, r, seen, err := e.acted(a, "delete")
	if err != nil {
		return err
	}
	forget := func(tx state.Writer) error {
		if err := tx.Delete(side, a.Path); err != nil {
			return err
		}
		if seen.Dir {
			if err := tx.SetMeta(keptKey(side, a.Path), nil); err != nil {
				return err
			}
		}
		return tx.DeleteBase(a.Path)
	}
	if seen.Dir {
		// A folder's precondition carries no revision: check right before that a folder is still what is there
		// (seed 31700: a file written in its place after a lost answer was deleted with the folder's zero
		// precondition). Providers' non-recursive folder deletes refuse a folder that gained children.
		st, err := r.Stat(ctx, a.Path)
		switch {
		case errors.Is(err, remote.ErrNotFound):
			return e.commit(ctx, forget)
		case err != nil:
			return fmt.Errorf("delete %s: %w", a.Path.Quoted(), err)
		case !st.Dir:
			return fmt.Errorf("delete %s: %w: a file took the folder's place", a.Path.Quoted(), remote.ErrConflict)
		}
	}
	err = failpoint.Hit("delete.beforeCall")
	if err == nil {
		err = r.Delete(ctx, a.Path, revOf(seen))
	}
	if seen.Dir && errors.Is(err, remote.ErrNotEmpty) {
		err = e.clearFolder(ctx, a, side, r, err)
		if errors.Is(err, errKept) {
			return err
		}
	}
	gone := errors.Is(err, remote.ErrNotFound)
	if gone {
		err = nil // already gone (a retried delete whose answer was lost, or the user's own rm): the goal holds
	}
	if err == nil {
		err = failpoint.Hit("delete.afterCall")
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", a.Path.Quoted(), err)
	}
	if err = e.commit(ctx, forget); err == nil && gone {
		return errFoundGone
	}
	return err
}

// errFoundGone: a delete found nothing to delete. It succeeded, but it is no delete of tandem's: the big-delete
// guard does not book it (a retried delete was booked by its first try, and a file the user removed on both
// sides is not counted when the pass sees both deletes first either; booked, it would swell the pair's file
// count and let more of the other side's deletes through: sim seed 93584).
var errFoundGone = errors.New("already gone")

// errKept: a folder delete left the folder in place because it holds files the user chose to ignore; it was
// reported as kept, which is not a failure.
var errKept = errors.New("kept: it holds ignored files")

type junkTrasher interface {
	TrashJunk(ctx context.Context, p remote.Path, junk func(name string) bool) ([]remote.Entry, error)
}

// keptKey is the store's mark of a folder kept on side for ignored files; its value is the folder's ID there,
// so that a folder made anew at that path later is synced as usual.
func keptKey(side state.Side, p remote.Path) string {
	return "kept-" + side.String() + "\x00" + string(p)
}

// clearFolder handles a folder delete that found the folder not empty although every synced child is gone:
// default-ignored junk (.DS_Store, editor droppings) goes to the trash and the delete is tried again; a folder
// that still holds only what the user chose to ignore is kept, reported once, and remembered so that no later
// pass re-creates it on the other side or tries again. Anything else (a new file, not yet seen) stays a problem
// for the next pass to plan.
func (e *Engine) clearFolder(ctx context.Context, a Action, side state.Side, r remote.Remote, cause error) error {
	jt, ok := r.(junkTrasher)
	if !ok {
		return cause
	}
	left, err := jt.TrashJunk(ctx, a.Path, e.o.Junk)
	if err != nil {
		return err
	}
	if len(left) == 0 {
		return r.Delete(ctx, a.Path, remote.Precondition{})
	}
	names := make([]string, 0, len(left))
	for _, c := range left {
		if !e.ignored(c.Path, c.Dir) {
			return cause
		}
		names = append(names, remote.Escape(c.Path.Base()))
	}
	seen := on(side, a.Local, a.Remote)
	if err := e.commit(ctx, func(tx state.Writer) error {
		if err := tx.DeleteBase(a.Path); err != nil {
			return err
		}
		return tx.SetMeta(keptKey(side, a.Path), []byte(seen.ID+"\x00"))
	}); err != nil {
		return err
	}
	if len(names) > 3 {
		names = append(names[:3], "...")
	}
	e.pass.rep.skipOnce(side.String(), a.Path, fmt.Sprintf("kept: deleted on the %s side, but it holds files you "+
		"chose to ignore (%s)", a.direction().other, strings.Join(names, ", ")))
	return errKept
}

// dropKept removes the plan's re-creation of a folder kept for ignored files (see clearFolder): a "new" folder
// on one side that is the very folder kept there, with nothing else to sync inside it. Once that folder holds
// nothing the user chose to ignore (they removed it, or a power loss took files never flushed: seed 9545),
// nothing keeps it: the other side's delete is finished instead.
func (e *Engine) dropKept(ctx context.Context, acts []Action) ([]Action, error) {
	var cand []int
	for i, a := range acts {
		if _, _, ok := created(a, true); ok {
			cand = append(cand, i)
		}
	}
	if len(cand) == 0 {
		return acts, nil
	}
	drop := map[int]bool{}
	err := e.d.Store.View(func(r state.Reader) error {
		for _, i := range cand {
			a := acts[i]
			s, rec, _ := created(a, true)
			v, err := r.Meta(keptKey(s.other, a.Path))
			if err != nil {
				return err
			}
			if v == nil || string(v) != rec.ID+"\x00" {
				continue
			}
			inside := false
			for _, b := range acts {
				if (b.Path != a.Path && b.Path.Within(a.Path)) || (b.To != "" && b.To != a.Path && b.To.Within(a.Path)) {
					inside = true
					break
				}
			}
			if !inside {
				drop[i] = true
			}
		}
		return nil
	})
	if err != nil || len(drop) == 0 {
		return acts, err
	}
	out := acts[:0]
	for i, a := range acts {
		if !drop[i] {
			out = append(out, a)
			continue
		}
		s, _, _ := created(a, true)
		del := Action{Op: sideOps[s.other].del, Path: a.Path, Local: a.Local, Remote: a.Remote}
		if e.keptEmptied(ctx, s.other, a.Path) {
			del.Reason = "kept for ignored files, which are gone; deleted on the other side"
			out = append(out, del)
		}
	}
	return out, nil
}

// folderLister lists a folder with what Walk leaves out (the user's ignored files), changing nothing.
type folderLister interface {
	Entries(ctx context.Context, p remote.Path) ([]remote.Entry, error)
}

// keptEmptied reports whether folder p, kept on side for ignored files, now holds at most default junk (which
// its delete sends to the trash, see clearFolder). A read decides, not a delete attempt, so that passes over a
// folder still kept change nothing; any doubt (a side that cannot list, a failed listing, a symlink) keeps it.
func (e *Engine) keptEmptied(ctx context.Context, side state.Side, p remote.Path) bool {
	fl, ok := e.sideRemote(side).(folderLister)
	if !ok {
		return false
	}
	ents, err := fl.Entries(ctx, p)
	if err != nil {
		e.lg.Debug("list a folder kept for ignored files", zap.String("path", string(p)), zap.Error(err))
		return false
	}
	for _, c := range ents {
		if c.Dir || c.Skip != "" || e.o.Junk == nil || !e.o.Junk(c.Path.Base()) {
			return false
		}
	}
	return true
}

// move replays a move of one side on the other, then re-keys all three trees below the old path, so that what
// was inside a moved folder needs no transfer.
func (e *Engine) move(ctx context.Context, a Action) error {
	side, r, seen, err := e.acted(a, "move")
	if err != nil {
		return err
	}
	if side == state.Remote {
		// The sync point about to be recorded at the new path vouches for the local name there: a user's rename
		// that is still only in the page cache would, after a power loss, put the file back at the old path (or
		// nowhere, once the old folder's removal is durable: seed 782 under -sim.lazydisk), and the base at the
		// new path would read as a local delete of a version the other side no longer holds anywhere else.
		if s, ok := e.d.Local.(remote.Syncer); ok {
			if err := s.Sync(ctx, a.To); err != nil {
				return fmt.Errorf("move %s to %s: make the local name durable: %w", a.Path.Quoted(), a.To.Quoted(), err)
			}
			if seen.Dir {
				if err := e.syncRewrittenBelow(ctx, s, a.Path, a.To); err != nil {
					return fmt.Errorf("move %s to %s: %w", a.Path.Quoted(), a.To.Quoted(), err)
				}
			}
		}
	}
	var ent remote.Entry
	if side == state.Remote && e.caseOnly(a.Path, a.To) {
		// The remote sees the new spelling as the name it already holds: rename through a temporary name.
		ent, err = e.moveTwoSteps(ctx, r, a.Path, a.To, revOf(seen))
	} else {
		ent, err = r.Move(ctx, a.Path, a.To, revOf(seen))
	}
	if err == nil {
		err = failpoint.Hit("move.afterCall")
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", a.Path.Quoted(), a.To.Quoted(), err)
	}
	if side == state.Remote {
		e.noteRemoteWrite(ctx, a.To)
	}
	now := e.now()
	moved := rec(ent, now)
	if !moved.Dir && moved.Hash.IsZero() {
		moved.Hash = seen.Hash
	}
	return e.commit(ctx, func(tx state.Writer) error {
		if err := tx.MoveTree(a.Path, a.To); err != nil {
			return err
		}
		if side == state.Remote {
			if err := folderID(tx, &moved); err != nil {
				return err
			}
		}
		if err := tx.Put(side, moved); err != nil {
			return err
		}
		l, lok, err := tx.Get(state.Local, a.To)
		if err != nil {
			return err
		}
		rr, rok, err := tx.Get(state.Remote, a.To)
		if err != nil {
			return err
		}
		if lok && rok && a.Base != nil { // without a sync point (a spelling fixed) the next round compares
			return tx.PutBase(state.Base{Path: a.To, Dir: l.Dir, Hash: a.Base.Hash, Local: l, Remote: rr})
		}
		return nil
	})
}

// syncRewrittenBelow makes durable the files below a local folder moved from old to to whose fingerprint is not the
// one their sync point recorded: written again since. The move carries each sync point to the new path; where the
// rewrite kept the content, nothing will transfer those bytes, yet the sync point now stands on them, and the
// folder's fsync covers its name, not its files' data. (The scan's own rule for the same content in new bytes
// finds no sync point at the new path, so it cannot see this case.) Files that kept their fingerprint cost
// nothing. Seed 170389 under -sim.lazydisk: a synced file written again with its own content, its folder moved;
// the power loss kept the rename and tore the rewrite, and the empty file went up as an edit over the only copy.
func (e *Engine) syncRewrittenBelow(ctx context.Context, s remote.Syncer, old, to remote.Path) error {
	var paths []remote.Path
	err := e.d.Store.View(func(r state.Reader) error {
		return r.EachBase(old, func(b state.Base) error {
			if b.Dir || b.Path == old {
				return nil
			}
			p := b.Path.Rebase(old, to)
			l, ok, err := r.Get(state.Local, p)
			if err != nil || !ok || l.Dir {
				return err
			}
			if l.Rev != b.Local.Rev {
				paths = append(paths, p)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read the sync points below %s: %w", old.Quoted(), err)
	}
	for _, p := range paths {
		if err := s.Sync(ctx, p); err != nil {
			return fmt.Errorf("make %s durable: %w", p.Quoted(), err)
		}
	}
	return nil
}

// acted returns the side action a changes, that side's remote and what the plan saw there (an error when it
// saw nothing: a delete or move of nothing is a planner bug, never an action).
func (e *Engine) acted(a Action, op string) (state.Side, remote.Remote, *state.Record, error) {
	side := a.direction().this
	seen := on(side, a.Local, a.Remote)
	if seen == nil {
		return side, nil, nil, fmt.Errorf("%s %s: nothing was seen there", op, a.Path.Quoted())
	}
	return side, e.sideRemote(side), seen, nil
}
