package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// The journal names the temp files tandem creates, so that the sweep after a crash removes those and nothing
// else (a user may keep a file called .tandem-notes.part; it is not tandem's to delete). A side that writes
// through temp files (localdir: the local side and dir: remotes) names them after a session; the engine opens a
// session, journals it, and only then starts transfers. The entry is removed at the end of a pass that left no
// temp file behind; an entry that is still there at the start of a pass (a crash, a failed removal) makes the
// engine sweep that session's files on every side, then remove it.
//
// Nothing else is journaled: every other multi-step action (a delete, a move, a conflict's rename aside and
// download) commits each step before the next, and the next pass re-observes both sides, so an interrupted one
// is re-planned from what is there.

// journalTemp is the journal op of a temp session; Intent.Temp holds the session name.
const journalTemp = "temp"

// tempSide is a side whose Put writes through temp files named after a session.
type tempSide interface {
	SetTempSession(session string)
	CleanTemp(ctx context.Context, session string) (int, error)
	// TempLeft: a failed Put's temp file may still be there, or come back in a power loss (its removal is not
	// yet durable); CleanTemp settles it
	TempLeft() bool
}

func (e *Engine) tempSides() []tempSide {
	var out []tempSide
	for _, side := range []remote.Remote{e.d.Local, e.d.Remote} {
		if t, ok := side.(tempSide); ok {
			out = append(out, t)
		}
	}
	return out
}

// openTempSession journals a new temp session before the first transfer of a pass (no-op when one is open or
// no side writes through temp files).
func (e *Engine) openTempSession() error {
	sides := e.tempSides()
	if e.tempID != 0 || len(sides) == 0 || e.o.DryRun {
		return nil
	}
	session := fmt.Sprintf("%016x", e.d.Rand.Uint64())
	var id uint64
	if err := e.d.Store.Update(func(tx state.Writer) error {
		var err error
		id, err = tx.BeginIntent(state.Intent{Op: journalTemp, Temp: session, At: e.now()})
		return err
	}); err != nil {
		return fmt.Errorf("%w: journal: %w", errStore, err)
	}
	if err := failpoint.Hit("journal.begin.afterCommit"); err != nil {
		return err
	}
	e.tempID, e.tempSession = id, session
	for _, s := range sides {
		s.SetTempSession(session)
	}
	return nil
}

// closeTempSession ends the pass's temp session when no temp file can be left: every Put removed its temp
// durably or renamed it into place. Otherwise the entry stays and the next pass sweeps (an upload to a dir:
// remote included, which the engine's tempLeft does not see: the side says so).
func (e *Engine) closeTempSession() {
	if e.tempID == 0 || e.tempLeft.Load() {
		return
	}
	for _, s := range e.tempSides() {
		if s.TempLeft() {
			return
		}
	}
	if err := failpoint.Hit("journal.end.before"); err != nil {
		e.lg.Warn("closing the temp journal entry", zap.Error(err))
		return
	}
	if err := e.d.Store.Update(func(tx state.Writer) error { return tx.EndIntent(e.tempID) }); err != nil {
		e.lg.Warn("closing the temp journal entry", zap.Error(err))
		return // the next pass sweeps the session and removes the entry
	}
	e.endSession()
}

func (e *Engine) endSession() {
	e.tempID, e.tempSession = 0, ""
	for _, s := range e.tempSides() {
		s.SetTempSession("")
	}
}

// recover removes what a crashed or failed pass left: the temp files of every session the journal names, and
// entries of older versions (which journaled deletes and moves; those are re-planned from what is observed).
// Old trash is purged once per process.
func (e *Engine) recover(ctx context.Context, rep *Report) error {
	var ins []state.Intent
	if err := e.d.Store.View(func(r state.Reader) error {
		return r.Intents(func(in state.Intent) error {
			ins = append(ins, in)
			return nil
		})
	}); err != nil {
		return err
	}
	var done []uint64
	for _, in := range ins {
		if in.Op != journalTemp || in.Temp == "" {
			e.lg.Info("dropping a journal entry of an older version; the path is observed again",
				zap.String("op", in.Op), zap.String("path", string(in.Path)))
			done = append(done, in.ID)
			continue
		}
		clean := true
		for _, s := range e.tempSides() {
			n, err := s.CleanTemp(ctx, in.Temp)
			if err != nil && !errors.Is(err, remote.ErrNotFound) {
				// Keep the entry: the next pass tries again (seed 41079: the removal met a full disk).
				e.lg.Warn("removing temp files", zap.Error(err))
				clean = false
				continue
			}
			if err := failpoint.Hit("sweep.afterClean"); err != nil { // temp files gone, entry still there
				return err
			}
			if n > 0 {
				rep.Recovered += n
				e.lg.Info("removed temp files of an interrupted pass", zap.Int("count", n))
			}
		}
		if clean {
			done = append(done, in.ID)
		}
	}
	if len(done) > 0 {
		if err := e.d.Store.Update(func(w state.Writer) error {
			for _, id := range done {
				if err := w.EndIntent(id); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := failpoint.Hit("sweep.afterEnd"); err != nil {
			return err
		}
		for _, id := range done {
			if id == e.tempID {
				e.endSession()
				e.tempLeft.Store(false)
			}
		}
	}
	type purger interface {
		PurgeTrash(ctx context.Context, olderThan time.Time) (int, error)
	}
	if p, ok := e.d.Local.(purger); ok && !e.purged {
		e.purged = true
		if err := failpoint.Hit("trash.purge.before"); err != nil {
			return err
		}
		if _, err := p.PurgeTrash(ctx, e.d.Clock.Now().AddDate(0, 0, -e.o.TrashDays)); err != nil && !errors.Is(err, remote.ErrNotFound) {
			e.lg.Warn("purging the trash", zap.Error(err))
		}
	}
	return nil
}

// metaPending stores remote paths whose changes a pass read into the store but did not plan.
const metaPending = "pending-remote"

// maxPending bounds the stored list; beyond it the next pass plans the whole tree.
const maxPending = 10000

// savePending adds paths to the stored pending list.
func (e *Engine) savePending(paths []remote.Path) error {
	return e.d.Store.Update(func(tx state.Writer) error {
		v, err := tx.Meta(metaPending)
		if err != nil {
			return err
		}
		old := splitPending(v)
		if len(v) > 0 && len(old) == 0 {
			return nil // overflowed already
		}
		if len(old)+len(paths) > maxPending || slices.Contains(paths, remote.Root) {
			// The marker of an overflowed list plans everything, as the root does.
			return tx.SetMeta(metaPending, []byte("\x00"))
		}
		return tx.SetMeta(metaPending, joinPaths(v, paths))
	})
}

// takePending moves the stored pending paths into the running pass's scope (a full pass plans everything
// anyway) and clears the list: if this pass fails in turn, the daemon's next pass is a full one.
func (e *Engine) takePending() error {
	v, err := viewOne(e.d.Store, func(r state.Reader) ([]byte, error) { return r.Meta(metaPending) })
	if err != nil || v == nil {
		return err
	}
	paths := splitPending(v)
	if len(paths) == 0 { // the list overflowed: plan everything
		e.scopeAdd(remote.Root)
	}
	for _, p := range paths {
		e.scopeAdd(p)
	}
	if err := failpoint.Hit("pending.take.before"); err != nil { // in scope, not yet cleared
		return err
	}
	return e.d.Store.Update(func(tx state.Writer) error { return tx.SetMeta(metaPending, nil) })
}

// splitPending reads a list of NUL-terminated paths (joinPaths).
func splitPending(v []byte) []remote.Path {
	var out []remote.Path
	for _, p := range bytes.Split(v, []byte{0}) {
		if len(p) > 0 {
			out = append(out, remote.Path(p))
		}
	}
	return out
}

// joinPaths appends paths to v, each NUL-terminated.
func joinPaths(v []byte, paths []remote.Path) []byte {
	for _, p := range paths {
		v = append(append(v, p...), 0)
	}
	return v
}
