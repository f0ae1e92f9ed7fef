package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// errReplan: the side changed after it was observed; the action is dropped and the next pass plans the path anew.
var errReplan = errors.New("changed since it was scanned; it will be synced on the next pass")

// execute runs one round's plan phase by phase. Moves, renames, folder creates and deletes run one at a time in
// plan order (parents before children, children before parents for deletes, chains in order); transfers run
// through the Executor. It reports whether any action succeeded.
func (e *Engine) execute(ctx context.Context, acts []Action, rep *Report) (bool, error) {
	// Everything this round acts on was observed before now: a side may count a folder fsync it makes from now
	// on for all of them (remote.SyncEpocher).
	for _, side := range []remote.Remote{e.d.Local, e.d.Remote} {
		if s, ok := side.(remote.SyncEpocher); ok {
			s.NewSyncEpoch()
		}
	}
	var progressed atomic.Bool
	run := func(a Action) Task {
		return func(ctx context.Context) error {
			if e.o.PathBackoff > 0 {
				if skip, until, err := e.backoff.held(a.Path, e.d.Clock.Now()); err != nil {
					if skip {
						rep.skip(a.skipSide(), a.Path, err.Error())
					} else {
						rep.heldBack(a, until, err) // still to do: the daemon's retry comes back for it then
					}
					return nil
				}
			}
			e.progress(Event{Action: a})
			ctx = withWrites(e.histStart(ctx, a))
			n, err := e.do(ctx, a, rep)
			foundGone := errors.Is(err, errFoundGone)
			if foundGone {
				err = nil
			}
			e.histEnd(ctx, err)
			e.progress(Event{Action: a, Done: true, Err: err})
			if err == nil {
				progressed.Store(true)
				e.created(a)
				if !foundGone {
					e.deleted(a)
				}
				rep.done(a, n)
				// -v: every file, one line each (the report lists them too, but only at the end).
				if ce := e.lg.Check(zap.DebugLevel, a.Op.String()); ce != nil {
					fields := []zap.Field{zap.String("path", remote.Escape(string(a.Path)))}
					if a.To != "" {
						fields = append(fields, zap.String("to", remote.Escape(string(a.To))))
					}
					if n > 0 {
						fields = append(fields, zap.Int64("bytes", n))
					}
					ce.Write(fields...)
				}
				if e.o.PathBackoff > 0 {
					e.backoff.ok(a.Path)
				}
				return nil
			}
			if errors.Is(err, errKept) {
				return nil // reported as kept: not a failure, and not a delete
			}
			if !errors.Is(err, remote.ErrConflict) && !errors.Is(err, errReplan) {
				// A delete whose answer failed (a lost ack, a failed fsync after the move to the trash, a
				// crash) may have happened: the budget counts it, so the guard never under-counts.
				e.deleted(a)
			}
			if isFatal(err) {
				return err
			}
			if errors.Is(err, remote.ErrConflict) {
				e.relearnRemote(ctx, a)
			}
			if errors.Is(err, remote.ErrNotFound) {
				e.relearnParents(ctx, a)
			}
			if e.o.PathBackoff > 0 {
				skip := ""
				if errors.Is(err, remote.ErrUnavailable) {
					skip = err.Error()
				}
				e.backoff.failed(a.Path, e.d.Clock.Now(), e.o.PathBackoff, skip)
			}
			e.pass.failures.Add(1)
			switch {
			case errors.Is(err, remote.ErrUnavailable):
				rep.skip(a.skipSide(), a.Path, err.Error())
			default:
				rep.problem(a, err)
			}
			// Info, not Warn: the report lists the failure (or the skip) already, and `tandem once` shows
			// warnings on the terminal beside it; the daemon's log keeps Info.
			e.lg.Info("action failed", zap.String("op", a.Op.String()), zap.String("path", remote.Escape(string(a.Path))), zap.Error(err))
			return nil
		}
	}
	for _, a := range acts {
		if a.Op == Upload || a.Op == Download || a.Op == Compare || a.Op == Conflict {
			// Temp files are named in the journal before any is created (journal.go).
			if err := e.openTempSession(); err != nil {
				return false, err
			}
			break
		}
	}
	for phase := 0; phase < numPhases; phase++ {
		var tasks []Task
		var mkdirs []leveled // the folder creates, which run a level at a time
		for _, a := range acts {
			if a.phase() == phase {
				tasks = append(tasks, run(a))
				if phase == phaseMkdir {
					mkdirs = append(mkdirs, leveled{a.Path.Depth(), tasks[len(tasks)-1]})
				}
			}
		}
		if len(tasks) == 0 {
			continue
		}
		var err error
		switch phase {
		case phaseTransfer:
			err = e.runBatch(ctx, tasks)
		case phaseMkdir:
			// Folders of one depth do not depend on each other (their parents are a level up): each level at
			// once, so their commits share transactions (a first sync made 500 folders one after the other).
			slices.SortStableFunc(mkdirs, func(a, b leveled) int { return a.depth - b.depth })
			for lo := 0; lo < len(mkdirs) && err == nil; {
				var level []Task
				hi := lo
				for ; hi < len(mkdirs) && mkdirs[hi].depth == mkdirs[lo].depth; hi++ {
					level = append(level, mkdirs[hi].task)
				}
				err, lo = e.runBatch(ctx, level), hi
			}
		default:
			err = Serial{}.Run(ctx, tasks)
		}
		if err != nil {
			return progressed.Load(), err
		}
	}
	return progressed.Load(), nil
}

// runBatch runs tasks that may run at once (a round's transfers, one level of folder creates) on the executor;
// a side that writes cheaper in a batch hears how many run (remote.Batcher: a local folder shares one syncfs
// between them instead of an fsync each; a first sync of 20,000 files made 800 folder fsyncs for its mkdirs).
func (e *Engine) runBatch(ctx context.Context, tasks []Task) error {
	var ends []func()
	for _, side := range []remote.Remote{e.d.Local, e.d.Remote} {
		if b, ok := side.(remote.Batcher); ok {
			ends = append(ends, b.BeginBatch(len(tasks)))
		}
	}
	err := e.d.Exec.Run(ctx, tasks)
	for _, end := range ends {
		end()
	}
	return err
}

// leveled is a folder create and the depth of its path.
type leveled struct {
	depth int
	task  Task
}

func (e *Engine) progress(ev Event) {
	if e.o.Progress != nil {
		e.o.Progress(ev)
	}
}

// commit records a finished action, grouped with the actions finishing at the same time (commit.go): a lone
// action commits at once, and those that finish while a commit runs share the next one (bbolt's Batch waited
// out a 10 ms timer and then grouped few: a first sync of 2,000 files made 2,545 fdatasync calls). The
// action's history entry (history.go) is written in the same transaction.
func (e *Engine) commit(ctx context.Context, fn func(tx state.Writer) error) error {
	if err := failpoint.Hit("commit.before"); err != nil {
		return err
	}
	group := func(f func(state.Writer) error) error { return e.pass.commits.run(e.d.Store, f) }
	if err := e.histCommit(ctx, group, e.notedCommit(ctx, fn)); err != nil {
		return fmt.Errorf("%w: commit: %w", errStore, err)
	}
	return failpoint.Hit("commit.after")
}

func (e *Engine) now() int64 { return e.d.Clock.Now().UnixNano() }

// rec is the stored record of ent. A side whose revision is a stat fingerprint (localdir: the local side, a
// dir: remote) also stores its inode and ctime, which the scanner's fast check compares.
func rec(ent remote.Entry, hashedAt int64) state.Record {
	r := state.Record{Entry: ent, HashedAt: hashedAt}
	if fp, ok := remote.ParseFingerprint(ent.Rev); ok && !ent.Dir {
		r.Inode, r.CTime = fp.Inode, fp.CTime
	}
	return r
}

// sameFingerprint: the file ent describes still has the stat fingerprint stored in r (size, mtime in ns, ctime,
// inode), so its content is taken as unchanged without reading it. A side without fingerprints compares its
// revisions. The scanner and the executor's re-checks before overwriting or deleting a local file both use it.
func sameFingerprint(r *state.Record, ent remote.Entry) bool {
	if r.Rev != ent.Rev {
		return false
	}
	fp, ok := remote.ParseFingerprint(ent.Rev)
	if !ok {
		return true
	}
	return r.Inode == fp.Inode && r.CTime == fp.CTime && r.Size == fp.Size && r.ModTime.UnixNano() == fp.MTime
}

func revOf(r *state.Record) remote.Precondition {
	if r == nil {
		return remote.Precondition{Absent: true}
	}
	if r.Dir {
		return remote.Precondition{}
	}
	return remote.Precondition{Rev: r.Rev}
}

// uncleanCompare is download a as it runs after an unclean end: a download that would replace a local file
// compares the two instead (ok). A power loss may have undone the user's last local changes (a rename, a write)
// after tandem sent them: the local file then looks unchanged since its sync point while the remote holds
// tandem's own upload of what the power loss took, which replaced the remote copy of the version now only here
// (simulation seed 642701: mv b a; write b; upload of b; power loss). Nothing stored tells that upload from
// another client's edit, so the two are compared and, if they differ, both kept as a conflict, until a full
// pass has completed. A dry run shows its plan through it too.
func uncleanCompare(a Action) (Action, bool) {
	if a.Op != Download || a.Local == nil || a.Local.Dir {
		return a, false
	}
	a.Op, a.Reason = Compare, "the last run did not end cleanly: compare before replacing the local file"
	return a, true
}

// do performs one action and commits it. It returns the bytes transferred.
func (e *Engine) do(ctx context.Context, a Action, rep *Report) (int64, error) {
	switch a.Op {
	case Upload:
		return e.upload(ctx, a, revOf(a.Remote))
	case Download:
		if err := e.recheckRacy(ctx, a.Path, a.Local); err != nil {
			return 0, err
		}
		if e.pass.afterUnclean {
			if c, ok := uncleanCompare(a); ok {
				return e.reconcile(ctx, c, rep)
			}
		}
		return e.download(ctx, a.Path, revOf(a.Local))
	case MkdirRemote, MkdirLocal:
		return 0, e.mkdir(ctx, a)
	case DeleteRemote, DeleteLocal:
		if a.Op == DeleteLocal {
			if err := e.recheckRacy(ctx, a.Path, a.Local); err != nil {
				return 0, err
			}
		}
		return 0, e.delete(ctx, a)
	case MoveRemote, MoveLocal:
		return 0, e.move(ctx, a)
	case Record:
		return 0, e.recordBase(ctx, a.Path, a.Local, a.Remote)
	case ChmodRemote, ChmodLocal:
		return 0, e.chmod(ctx, a)
	case Compare:
		return e.reconcile(ctx, a, rep)
	case Conflict:
		return e.resolve(ctx, a, rep)
	case TypeConflict:
		return 0, e.typeConflict(ctx, a, rep)
	case Forget:
		return 0, e.commit(ctx, func(tx state.Writer) error {
			return errors.Join(tx.Delete(state.Local, a.Path), tx.Delete(state.Remote, a.Path), tx.DeleteBase(a.Path))
		})
	}
	return 0, fmt.Errorf("unknown action %v", a.Op)
}

// recheckRacy re-digests a racily clean local file just before it is overwritten or deleted: its fingerprint
// cannot tell a same-size rewrite within the timestamps' resolution, so the precondition alone would let the
// action take an unseen edit.
func (e *Engine) recheckRacy(ctx context.Context, p remote.Path, l *state.Record) error {
	if l == nil || l.Dir || !e.racy(state.Local, l) {
		return nil
	}
	h, ok := e.d.Local.(remote.Hasher)
	if !ok {
		return nil
	}
	got, ent, err := h.HashOf(ctx, p, e.algo)
	if err != nil {
		return fmt.Errorf("re-check %s: %w", p.Quoted(), err)
	}
	if got != l.Hash || !sameFingerprint(l, ent) {
		return fmt.Errorf("re-check %s: %w", p.Quoted(), errReplan)
	}
	return nil
}

// recordBase records that both sides hold what l and r describe. The local bytes are made durable first and
// checked to be still the ones observed: a base recorded over bytes only in the page cache would, after a power
// loss, make the stale or empty file left on disk look like a new local edit that overwrites the good copy.
func (e *Engine) recordBase(ctx context.Context, p remote.Path, l, r *state.Record) error {
	if l == nil || r == nil {
		return fmt.Errorf("record %s: a side is missing", p.Quoted())
	}
	if err := e.syncLocal(ctx, p, l); err != nil {
		return fmt.Errorf("record %s: %w", p.Quoted(), err)
	}
	return e.commit(ctx, func(tx state.Writer) error {
		return tx.PutBase(state.Base{Path: p, Dir: l.Dir, Hash: l.Hash, Local: *l, Remote: *r})
	})
}

// syncLocal makes the local file at p and its name durable, then checks that it is still what l describes:
// bytes that changed meanwhile were not the ones compared, so the path is planned again.
func (e *Engine) syncLocal(ctx context.Context, p remote.Path, l *state.Record) error {
	s, ok := e.d.Local.(remote.Syncer)
	if !ok || l.Dir {
		// A folder's sync point holds no content; the files in it make their own names (and so the folder's)
		// durable before theirs are recorded.
		return nil
	}
	if err := s.Sync(ctx, p); err != nil {
		return fmt.Errorf("make the local copy durable: %w", err)
	}
	now, err := e.d.Local.Stat(ctx, p)
	if err != nil {
		return fmt.Errorf("re-check: %w", err)
	}
	if now.Dir != l.Dir || now.Rev != l.Rev {
		return errReplan
	}
	return nil
}

func (e *Engine) mkdir(ctx context.Context, a Action) error {
	s := a.direction()
	side, other, r := s.this, s.other, e.sideRemote(s.this)
	ent, err := r.Mkdir(ctx, a.Path)
	if err != nil {
		return fmt.Errorf("create folder %s: %w", a.Path.Quoted(), err)
	}
	if src := on(other, a.Local, a.Remote); src != nil {
		if ent, err = carryMode(ctx, r, ent, src.Mode); err != nil {
			return fmt.Errorf("create folder %s: %w", a.Path.Quoted(), err)
		}
	}
	if side == state.Remote {
		e.noteRemoteWrite(ctx, a.Path)
	}
	now := e.now()
	return e.commit(ctx, func(tx state.Writer) error {
		mine := rec(ent, now)
		if side == state.Remote {
			if err := folderID(tx, &mine); err != nil {
				return err
			}
		}
		if err := tx.Put(side, mine); err != nil {
			return err
		}
		// A folder kept for ignored files that now gets synced content is an ordinary folder again.
		if err := tx.SetMeta(keptKey(other, a.Path), nil); err != nil {
			return err
		}
		theirs, ok, err := tx.Get(other, a.Path)
		if err != nil || !ok || !theirs.Dir {
			return err
		}
		l, r := s.pair(&mine, &theirs)
		return tx.PutBase(state.Base{Path: a.Path, Dir: true, Local: *l, Remote: *r})
	})
}

// relearnRemote follows a remote write whose precondition failed: the stored remote record of the path is not
// what the server holds. Usually the feed tells the next observation what changed, but a feed of differences
// between two states (vBoxx, Verizon) cannot name what tandem wrote after its cursor if tandem died before
// reading the feed past it (a file tandem renamed or uploaded, then renamed or deleted by another client): the
// stale record would fail the same precondition on every pass. So the paths are looked at now and what is there
// is recorded; the next round plans from it (a conflict if both sides changed). Errors only leave the record as
// it was: the failure is reported already.
func (e *Engine) relearnRemote(ctx context.Context, a Action) {
	switch a.Op {
	case Upload, DeleteRemote, MoveRemote, MkdirRemote:
	default:
		return
	}
	for _, p := range []remote.Path{a.Path, a.To} {
		if p == "" || p == remote.Root {
			continue
		}
		if err := e.relearn(ctx, p); err != nil && ctx.Err() == nil {
			e.lg.Info("could not look at a path whose precondition failed", zap.String("path", remote.Escape(string(p))),
				zap.Error(err))
		}
	}
}

// relearnParents runs after a remote write failed with ErrNotFound: the folder it wrote into may be one the
// stored view holds and the remote no longer has. A feed that compares listings cannot name such a folder when
// the cursor's listing never held it (Verizon torture seed 365366: every pass failed with "folder ... not
// found"), so without this look every later pass would fail the same way. A folder found gone leaves the
// stored view with what was below it, and the next pass plans it again from the local side.
func (e *Engine) relearnParents(ctx context.Context, a Action) {
	var target remote.Path
	switch a.Op {
	case Upload, MkdirRemote:
		target = a.Path
	case MoveRemote:
		target = a.To
	default:
		return
	}
	d := target.Dir()
	if target == "" || d == remote.Root {
		return
	}
	if err := e.dropGoneDirs(ctx, []remote.Path{d}); err != nil && ctx.Err() == nil {
		e.lg.Info("could not look at the folders above a path the remote did not find", zap.String("path",
			remote.Escape(string(target))), zap.Error(err))
	}
}

func (e *Engine) relearn(ctx context.Context, p remote.Path) error {
	ent, err := e.d.Remote.Stat(ctx, p)
	switch {
	case errors.Is(err, remote.ErrNotFound):
		return e.d.Store.Update(func(tx state.Writer) error { return tx.DeleteTree(state.Remote, p) })
	case err != nil:
		return err
	case ent.Skip != "" || ent.Path != p || e.ignored(p, ent.Dir):
		return nil
	}
	old, err := e.stored(state.Remote, p)
	if err != nil || (old != nil && old.Dir && ent.Dir) {
		return err // a known folder: its contents come with the feed
	}
	ents := []remote.Entry{ent}
	if ent.Dir {
		// A folder the store did not know: what is inside comes with it (a walk-based side lists it again
		// anyway; a feed that never saw the folder would not report its contents).
		ents = ents[:0]
		if err := e.d.Remote.Walk(ctx, p, func(x remote.Entry) error {
			if x.Skip == "" && !e.ignored(x.Path, x.Dir) {
				ents = append(ents, x)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	now := e.d.Clock.Now().UnixNano()
	return e.d.Store.Update(func(tx state.Writer) error {
		recs := make([]state.Record, len(ents))
		for i, x := range ents {
			recs[i] = state.Record{Entry: x, HashedAt: now}
			if _, _, err := keepKnown(tx, &recs[i]); err != nil {
				return err
			}
			if recs[i].Dir {
				recs[i].Rev = ""
			}
		}
		// A file where a folder was (or the reverse): what was stored below it is not there.
		if err := tx.DeleteTree(state.Remote, p); err != nil {
			return err
		}
		for _, rec := range recs {
			if err := tx.Put(state.Remote, rec); err != nil {
				return err
			}
		}
		return nil
	})
}
