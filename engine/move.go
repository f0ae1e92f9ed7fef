package engine

import (
	"context"
	"fmt"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

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
