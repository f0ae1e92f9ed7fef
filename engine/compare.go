package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tandemsync/tandem/conflict"
	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// remoteDigest learns the remote file's digest in the pair's algorithm: from the provider where it offers one,
// else by reading the bytes (vBoxx has no digest: comparing content means downloading it).
func (e *Engine) remoteDigest(ctx context.Context, p remote.Path) (remote.Hash, remote.Entry, error) {
	if h, ok := e.d.Remote.(remote.Hasher); ok {
		if slices.Contains(e.d.Remote.Capabilities().Hashes, e.algo) {
			return h.HashOf(ctx, p, e.algo)
		}
	}
	body, ent, err := e.d.Remote.Open(ctx, p)
	if err != nil {
		return remote.Hash{}, ent, err
	}
	defer body.Close()
	sum, _, err := remote.HashReader(e.algo, body)
	return sum, ent, err
}

// reconcile decides "same content?" for two files whose digests could not be compared from the listings.
func (e *Engine) reconcile(ctx context.Context, a Action, rep *Report) (int64, error) {
	h, ent, err := e.remoteDigest(ctx, a.Path)
	if err != nil {
		return 0, fmt.Errorf("compare %s: %w", a.Path.Quoted(), err)
	}
	if a.Remote == nil || ent.Rev != a.Remote.Rev {
		return 0, fmt.Errorf("compare %s: %w", a.Path.Quoted(), errReplan)
	}
	r := *a.Remote
	r.Hash = h
	if a.Local.Hash.IsZero() {
		// A new local file the scan did not digest (digestLater): digested now, at the revision planned.
		lh, le, err := e.localHash(ctx, a.Path)
		if err != nil {
			return 0, fmt.Errorf("compare %s: %w", a.Path.Quoted(), err)
		}
		if le.Rev != a.Local.Rev {
			return 0, fmt.Errorf("compare %s: %w", a.Path.Quoted(), errReplan)
		}
		l := rec(le, e.now())
		l.Path, l.Hash = a.Path, lh
		a.Local = &l
		histDigest(ctx, lh)
		// Stored at once: the outcomes below record a base (against which an undigested record would read as a
		// local change) or rename the file aside, and a failure of either must not cost this read again.
		if err := e.commit(ctx, func(tx state.Writer) error { return tx.Put(state.Local, l) }); err != nil {
			return 0, fmt.Errorf("compare %s: %w", a.Path.Quoted(), err)
		}
	}
	if h == a.Local.Hash {
		return 0, e.recordBase(ctx, a.Path, a.Local, &r)
	}
	a.Remote = &r
	a.Op, a.Reason = Conflict, "both sides changed differently"
	return e.resolve(ctx, a, rep)
}

// taken reports whether a name is in use on either side (for conflict names).
func (e *Engine) taken(ctx context.Context) func(remote.Path) bool {
	return func(p remote.Path) bool {
		for _, r := range []remote.Remote{e.d.Local, e.d.Remote} {
			if _, err := r.Stat(ctx, p); !errors.Is(err, remote.ErrNotFound) {
				return true
			}
		}
		return false
	}
}

// resolve applies the conflict policy to two different versions of a file. Keep-both renames the local version
// aside (its precondition re-checked), then brings the remote version to the name; the copy is uploaded by the
// next round like any new file. The other policies send the losing version to its side's trash.
func (e *Engine) resolve(ctx context.Context, a Action, rep *Report) (int64, error) {
	l, r := a.Local, a.Remote
	caps := e.d.Remote.Capabilities()
	w := conflict.Decide(e.o.Policy, l.Entry, r.Entry, caps.Trash, max(caps.MTimeStep, e.d.Local.Capabilities().MTimeStep))
	// Each step commits what it did before the next starts, so an interruption anywhere leaves a consistent
	// state that the next pass re-plans: no journal entry is needed.
	now := e.d.Clock.Now()
	cr := ConflictRec{Path: a.Path, Reason: a.Reason}
	switch w {
	case conflict.Both:
		c, err := e.renameAside(ctx, a, state.Local, now, state.Conflict{LocalHash: l.Hash, RemoteHash: r.Hash})
		if err != nil {
			return 0, err
		}
		cr.Copy, cr.Kept = c, "both"
	case conflict.Remote:
		if err := e.trashLoser(ctx, state.Local, a.Path, l); err != nil {
			return 0, err
		}
		cr.Kept = "remote"
	case conflict.Local:
		if err := e.trashLoser(ctx, state.Remote, a.Path, r); err != nil {
			return 0, err
		}
		cr.Kept = "local"
		rep.conflict(cr)
		return e.upload(ctx, a, remote.Precondition{Absent: true})
	}
	rep.conflict(cr)
	return e.download(ctx, a.Path, remote.Precondition{Absent: true})
}

// typeConflict renames the file side aside; the next round creates the folder there and syncs the copy.
func (e *Engine) typeConflict(ctx context.Context, a Action, rep *Report) error {
	side := state.Local
	if a.Local.Dir {
		side = state.Remote
	}
	c, err := e.renameAside(ctx, a, side, e.d.Clock.Now(), state.Conflict{})
	if err == nil {
		rep.conflict(ConflictRec{Path: a.Path, Copy: c, Kept: "both", Reason: a.Reason})
	}
	return err
}

// renameAside renames the version on side at a.Path to a conflict copy's name, its precondition re-checked,
// and records the conflict c (its path, copy, time and reason filled in here); it returns the copy's name.
func (e *Engine) renameAside(ctx context.Context, a Action, side state.Side, now time.Time, c state.Conflict) (remote.Path, error) {
	seen := on(side, a.Local, a.Remote)
	c.Path, c.At, c.Reason = a.Path, now.UnixNano(), a.Reason
	c.Copy = conflict.Name(a.Path, e.o.Host, now, e.taken(ctx))
	// A local file is made durable before it moves aside: the conflict was decided on the bytes the scan read,
	// which the user's program may not have fsynced. A power loss that kept the rename but dropped those bytes
	// would leave a copy holding an older version, possibly the very one brought in beside it (a junk copy and
	// the user's edit gone). Seed 281115 under -sim.lazydisk.
	if s, ok := e.d.Local.(remote.Syncer); ok && side == state.Local && !seen.Dir {
		if err := s.Sync(ctx, a.Path); err != nil {
			return "", fmt.Errorf("make %s durable before renaming it aside: %w", a.Path.Quoted(), err)
		}
	}
	ent, err := e.sideRemote(side).Move(ctx, a.Path, c.Copy, revOf(seen))
	if err == nil && a.Op == Conflict {
		err = failpoint.Hit("conflict.afterRename") // renamed aside, the other version not yet brought
	}
	if err != nil {
		return "", fmt.Errorf("rename %s aside: %w", a.Path.Quoted(), err)
	}
	if side == state.Remote {
		e.noteRemoteWrite(ctx, c.Copy)
	}
	moved := rec(ent, now.UnixNano())
	moved.Hash = seen.Hash
	return c.Copy, e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Delete(side, a.Path); err != nil {
			return err
		}
		if err := tx.Put(side, moved); err != nil {
			return err
		}
		return tx.AddConflict(c)
	})
}

// trashLoser sends the version a conflict policy let lose on side to that side's trash and forgets it there.
func (e *Engine) trashLoser(ctx context.Context, side state.Side, p remote.Path, seen *state.Record) error {
	if err := e.sideRemote(side).Delete(ctx, p, revOf(seen)); err != nil {
		return fmt.Errorf("move the %s version of %s to the trash: %w", side, p.Quoted(), err)
	}
	return e.commit(ctx, func(tx state.Writer) error { return tx.Delete(side, p) })
}
