package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/conflict"
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
	var progressed atomic.Bool
	run := func(a Action) Task {
		return func(ctx context.Context) error {
			if e.o.PathBackoff > 0 {
				if skip, err := e.backoff.held(a.Path, e.d.Clock.Now()); err != nil {
					if skip {
						rep.skip(a.skipSide(), a.Path, err.Error())
					} else {
						rep.problem(a, err) // still to do: the daemon's retry comes back for it
					}
					return nil
				}
			}
			e.progress(Event{Action: a})
			ctx = withWrites(e.histStart(ctx, a))
			n, err := e.do(ctx, a, rep)
			e.histEnd(ctx, err)
			e.progress(Event{Action: a, Done: true, Err: err})
			if err == nil {
				progressed.Store(true)
				e.deleted(a)
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
			e.failures.Add(1)
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
		for _, a := range acts {
			if a.phase() == phase {
				tasks = append(tasks, run(a))
			}
		}
		if len(tasks) == 0 {
			continue
		}
		var err error
		if phase == phaseTransfer {
			err = e.d.Exec.Run(ctx, tasks)
		} else {
			err = Serial{}.Run(ctx, tasks)
		}
		if err != nil {
			return progressed.Load(), err
		}
	}
	return progressed.Load(), nil
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
	group := func(f func(state.Writer) error) error { return e.commits.run(e.d.Store, f) }
	if err := e.histCommit(ctx, group, e.notedCommit(ctx, fn)); err != nil {
		return fmt.Errorf("%w: commit: %w", errStore, err)
	}
	return failpoint.Hit("commit.after")
}

func (e *Engine) now() int64 { return e.d.Clock.Now().UnixNano() }

// rec is the stored record of ent. A side whose revision is a stat fingerprint (localdir: the local side, a
// dir: remote) also stores its inode and ctime, which the scanner's fast check compares.
func rec(ent remote.Entry, scanned int64) state.Record {
	r := state.Record{Entry: ent, Scanned: scanned}
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

// do performs one action and commits it. It returns the bytes transferred.
func (e *Engine) do(ctx context.Context, a Action, rep *Report) (int64, error) {
	switch a.Op {
	case Upload:
		return e.upload(ctx, a, revOf(a.Remote))
	case Download:
		if err := e.recheckRacy(ctx, a.Path, a.Local); err != nil {
			return 0, err
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
			if err := tx.Delete(state.Local, a.Path); err != nil {
				return err
			}
			if err := tx.Delete(state.Remote, a.Path); err != nil {
				return err
			}
			return tx.DeleteBase(a.Path)
		})
	}
	return 0, fmt.Errorf("unknown action %v", a.Op)
}

// recheckRacy re-digests a racily clean local file just before it is overwritten or deleted: its fingerprint
// cannot tell a same-size rewrite within the timestamps' resolution, so the precondition alone would let the
// action take an unseen edit.
func (e *Engine) recheckRacy(ctx context.Context, p remote.Path, l *state.Record) error {
	if l == nil || l.Dir || !e.racy(l) {
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

// upload streams the local file to the remote while digesting it. If the file changed while it was read, the
// base records the remote as holding what was sent (tandem's own write, not a user's version) and the local
// record is marked for re-hashing, so the next pass uploads the final content over it instead of calling it a
// conflict.
func (e *Engine) upload(ctx context.Context, a Action, pre remote.Precondition) (int64, error) {
	p := a.Path
	body, le, err := e.d.Local.Open(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	defer body.Close()
	if a.Local == nil {
		return 0, fmt.Errorf("upload %s: %w", p.Quoted(), errReplan)
	}
	observed := a.Local.Hash
	if le.Rev != a.Local.Rev {
		// The file changed since the pass looked at it (a database or a log written all the time, or a pass
		// slower than the writer). Failing here would fail every pass that takes longer than the writer's
		// pauses, so the file would never sync: take a stable snapshot instead, a fresh digest read whole
		// while the file stayed at the revision just opened, and send that version; the body below must
		// hash to it, so the two reads agree on one version someone wrote.
		h, he, herr := e.localHash(ctx, p)
		if herr != nil || he.Rev != le.Rev {
			return 0, fmt.Errorf("upload %s: %w", p.Quoted(), errReplan)
		}
		observed = h
	}
	// The body must be a version someone wrote: read to its end, it must hash to what was observed and the file
	// must still be what was opened; otherwise (a rewrite in place during the transfer reads as a mixture of
	// two versions) the body fails at its end and the provider discards it.
	var want remote.Hash
	if observed.Algo == e.algo {
		want = observed
	}
	src := &stableSource{r: body, stat: func() error {
		now, err := e.d.Local.Stat(ctx, p)
		if err == nil && now.Rev != le.Rev {
			err = errReplan
		}
		return err
	}}
	v := remote.NewVerifier(e.counted(a, e.limit(ctx, src)), want, le.Size, e.algo)
	re, err := e.d.Remote.Put(ctx, p, v, le.Size, le.ModTime, pre)
	if err != nil && errors.Is(err, remote.ErrCorrupt) && !want.IsZero() && v.Sum() != want {
		err = fmt.Errorf("%w (it was rewritten during the transfer)", errReplan)
		// The bytes read are not the ones the record's digest describes. Either they changed during the
		// transfer (the next scan sees a new fingerprint) or the cached digest was stale under an unchanged
		// fingerprint (a power loss took a same-size rewrite made in the same clock tick as the bytes it brought
		// back: lazydisk seed 223): the next scan must digest the file again, or every pass fails this way.
		l := *a.Local
		l.Scanned = 0
		if cerr := e.commit(ctx, func(tx state.Writer) error { return tx.Put(state.Local, l) }); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	if err != nil {
		return v.N(), fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	e.noteRemoteWrite(ctx, p)
	if err := failpoint.Hit("upload.afterPut"); err != nil {
		return v.N(), fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	sent := v.Sum()
	if re, err = carryMode(ctx, e.d.Remote, re, le.Mode); err != nil {
		return v.N(), fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	if re.Hash.IsZero() || re.Hash.Algo != e.algo {
		re.Hash = sent // the digest of exactly the bytes stored at this revision
	}
	after, serr := e.d.Local.Stat(ctx, p)
	torn := serr != nil || after.Rev != le.Rev || sent != observed
	if s, ok := e.d.Local.(remote.Syncer); ok && serr == nil {
		// The sync point must not outlive the local bytes it describes (a power loss after an editor's
		// unsynced write would bring back older bytes that then look like a new local edit). A torn upload
		// syncs too: the remote now holds the only copy of what was sent, and older bytes coming back after a
		// power loss would be uploaded over it.
		if err := s.Sync(ctx, p); err != nil {
			return le.Size, fmt.Errorf("upload %s: make the local copy durable: %w", p.Quoted(), err)
		}
	}
	now := e.now()
	lrec := rec(le, now)
	lrec.Hash = sent
	err = e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Put(state.Remote, rec(re, now)); err != nil {
			return err
		}
		if torn {
			l := *a.Local
			l.Scanned = 0 // racy: hash again next scan
			if err := tx.Put(state.Local, l); err != nil {
				return err
			}
		} else if err := tx.Put(state.Local, lrec); err != nil {
			return err
		}
		return tx.PutBase(state.Base{Path: p, Hash: sent, Local: lrec, Remote: rec(re, now)})
	})
	if err == nil && torn {
		e.lg.Info("file changed during upload; sending it again next pass", zap.String("path", string(p)))
	}
	return le.Size, err
}

// localHash digests the local file p with the pass's algorithm.
func (e *Engine) localHash(ctx context.Context, p remote.Path) (remote.Hash, remote.Entry, error) {
	hasher, ok := e.d.Local.(remote.Hasher)
	if !ok {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("%s: cannot hash files", e.d.Local)
	}
	return hasher.HashOf(ctx, p, e.algo)
}

// carryMode gives what was just written at ent.Path on side dst the permission bits of its source (mode), where
// both sides keep modes (two local folders: a 0600 file stays 0600, an executable stays executable). A cloud
// side keeps none (mode 0 or no ModeSetter): the written file keeps what Put gave it, which never widens a
// replaced file's mode.
func carryMode(ctx context.Context, dst remote.Remote, ent remote.Entry, mode fs.FileMode) (remote.Entry, error) {
	ms, ok := dst.(remote.ModeSetter)
	if !ok || mode == 0 || ent.Mode == 0 || ent.Mode == mode.Perm() {
		return ent, nil
	}
	got, err := ms.Chmod(ctx, ent.Path, mode, remote.Precondition{Rev: ent.Rev})
	if err != nil {
		return ent, fmt.Errorf("set permissions %o: %w", mode.Perm(), err)
	}
	got.Hash = ent.Hash // same bytes
	return got, nil
}

// chmod carries a permission change alone: the content is as recorded on both sides, so only the bits move.
func (e *Engine) chmod(ctx context.Context, a Action) error {
	if a.Base == nil || a.Local == nil || a.Remote == nil {
		return fmt.Errorf("chmod %s: a side or the sync point is missing", a.Path.Quoted())
	}
	dst, side, src, seen := e.d.Remote, state.Remote, a.Local, a.Remote
	if a.Op == ChmodLocal {
		dst, side, src, seen = e.d.Local, state.Local, a.Remote, a.Local
	}
	ms, ok := dst.(remote.ModeSetter)
	if !ok {
		return fmt.Errorf("chmod %s: %s keeps no permissions", a.Path.Quoted(), dst)
	}
	ent, err := ms.Chmod(ctx, a.Path, src.Mode, revOf(seen))
	if err != nil {
		return fmt.Errorf("chmod %s: %w", a.Path.Quoted(), err)
	}
	if side == state.Remote {
		e.noteRemoteWrite(ctx, a.Path)
	}
	now := e.now()
	mine := rec(ent, now)
	mine.Hash = seen.Hash
	return e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Put(side, mine); err != nil {
			return err
		}
		b := state.Base{Path: a.Path, Hash: a.Base.Hash, Local: *a.Local, Remote: mine}
		if side == state.Local {
			b.Local, b.Remote = mine, *a.Remote
		}
		return tx.PutBase(b)
	})
}

// stableSource reads an upload's local source and, at its end, checks that the file did not change while it
// was read (stat): a change fails the read, so the upload is never committed.
type stableSource struct {
	r    io.Reader
	stat func() error
}

func (s *stableSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		if serr := s.stat(); serr != nil {
			return n, fmt.Errorf("%w: the local file changed while it was sent: %w", remote.ErrCorrupt, serr)
		}
	}
	return n, err
}

// download writes the remote file through the local side's durable write protocol (temp file, verify, fsync,
// precondition re-check, rename). The body is verified against the remote's digest where it offers one.
func (e *Engine) download(ctx context.Context, p remote.Path, pre remote.Precondition) (int64, error) {
	body, re, err := e.d.Remote.Open(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	defer body.Close()
	var want remote.Hash
	if _, err := remote.NewDigest(re.Hash.Algo); err == nil {
		want = re.Hash
	}
	outer := remote.NewVerifier(e.counted(Action{Op: Download, Path: p, Remote: &state.Record{Entry: re}},
		e.limit(ctx, body)), want, re.Size, "")
	inner := remote.NewVerifier(outer, remote.Hash{}, -1, e.algo)
	if err := failpoint.Hit("download.beforePut"); err != nil {
		return 0, fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	le, err := e.d.Local.Put(ctx, p, inner, re.Size, re.ModTime, pre)
	if err != nil {
		e.tempLeft.Store(true)
		return inner.N(), fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	if err := failpoint.Hit("download.afterPut"); err != nil {
		return inner.N(), fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	got := inner.Sum()
	if le, err = carryMode(ctx, e.d.Local, le, re.Mode); err != nil {
		return inner.N(), fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	if re.Hash.IsZero() {
		re.Hash = got
	}
	now := e.now()
	lrec := rec(le, now)
	lrec.Hash = got
	rrec := rec(re, now)
	return re.Size, e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Put(state.Local, lrec); err != nil {
			return err
		}
		if err := tx.Put(state.Remote, rrec); err != nil {
			return err
		}
		return tx.PutBase(state.Base{Path: p, Hash: got, Local: lrec, Remote: rrec})
	})
}

func (e *Engine) mkdir(ctx context.Context, a Action) error {
	side, other, r := state.Remote, state.Local, e.d.Remote
	if a.Op == MkdirLocal {
		side, other, r = state.Local, state.Remote, e.d.Local
	}
	ent, err := r.Mkdir(ctx, a.Path)
	if err != nil {
		return fmt.Errorf("create folder %s: %w", a.Path.Quoted(), err)
	}
	src := a.Local
	if a.Op == MkdirLocal {
		src = a.Remote
	}
	if src != nil {
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
		b := state.Base{Path: a.Path, Dir: true, Local: mine, Remote: theirs}
		if side == state.Remote {
			b.Local, b.Remote = theirs, mine
		}
		return tx.PutBase(b)
	})
}

// delete sends a file to its side's trash, or removes an emptied folder, only if the side still holds what the
// plan saw (the provider checks the revision, localdir the stat fingerprint).
func (e *Engine) delete(ctx context.Context, a Action) error {
	side, r, seen := state.Remote, e.d.Remote, a.Remote
	if a.Op == DeleteLocal {
		side, r, seen = state.Local, e.d.Local, a.Local
	}
	if seen == nil {
		return fmt.Errorf("delete %s: nothing was seen there", a.Path.Quoted())
	}
	if seen.Dir {
		// A folder's precondition carries no revision: check right before that a folder is still what is there
		// (seed 31700: a file written in its place after a lost answer was deleted with the folder's zero
		// precondition). Providers' non-recursive folder deletes refuse a folder that gained children.
		st, err := r.Stat(ctx, a.Path)
		switch {
		case errors.Is(err, remote.ErrNotFound):
			return e.commit(ctx, func(tx state.Writer) error {
				if err := tx.Delete(side, a.Path); err != nil {
					return err
				}
				if err := tx.SetMeta(keptKey(side, a.Path), nil); err != nil {
					return err
				}
				return tx.DeleteBase(a.Path)
			})
		case err != nil:
			return fmt.Errorf("delete %s: %w", a.Path.Quoted(), err)
		case !st.Dir:
			return fmt.Errorf("delete %s: %w: a file took the folder's place", a.Path.Quoted(), remote.ErrConflict)
		}
	}
	err := failpoint.Hit("delete.beforeCall")
	if err == nil {
		err = r.Delete(ctx, a.Path, revOf(seen))
	}
	if seen.Dir && errors.Is(err, remote.ErrNotEmpty) {
		err = e.clearFolder(ctx, a, side, r, err)
		if errors.Is(err, errKept) {
			return err
		}
	}
	if errors.Is(err, remote.ErrNotFound) {
		err = nil // already gone (a retried delete whose answer was lost): the goal holds
	}
	if err == nil {
		err = failpoint.Hit("delete.afterCall")
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", a.Path.Quoted(), err)
	}
	return e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Delete(side, a.Path); err != nil {
			return err
		}
		if seen.Dir {
			if err := tx.SetMeta(keptKey(side, a.Path), nil); err != nil {
				return err
			}
		}
		return tx.DeleteBase(a.Path)
	})
}

// errKept: a folder delete left the folder in place because it holds files the user chose to ignore; it was
// reported as kept, which is not a failure.
var errKept = errors.New("kept: it holds ignored files")

type junkTrasher interface {
	TrashJunk(ctx context.Context, p remote.Path, junk func(name string) bool) ([]remote.Entry, error)
}

// keptKey is the store's mark of a folder kept on side for ignored files; its value is the folder's ID there,
// so that a folder made anew at that path later is synced as usual.
func keptKey(side state.Side, p remote.Path) string {
	return "kept-" + sideName(side) + "\x00" + string(p)
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
	seen := a.Local
	if side == state.Remote {
		seen = a.Remote
	}
	if err := e.commit(ctx, func(tx state.Writer) error {
		if err := tx.DeleteBase(a.Path); err != nil {
			return err
		}
		return tx.SetMeta(keptKey(side, a.Path), []byte(seen.ID+"\x00"))
	}); err != nil {
		return err
	}
	other := "remote"
	if side == state.Remote {
		other = "local"
	}
	if len(names) > 3 {
		names = append(names[:3], "...")
	}
	e.pass.rep.skipOnce(sideName(side), a.Path, fmt.Sprintf("kept: deleted on the %s side, but it holds files you "+
		"chose to ignore (%s)", other, strings.Join(names, ", ")))
	return errKept
}

// dropKept removes the plan's re-creation of a folder kept for ignored files (see clearFolder): a "new" folder
// on one side that is the very folder kept there, with nothing else to sync inside it. Once that folder holds
// nothing the user chose to ignore (they removed it, or a power loss took files never flushed: seed 9545),
// nothing keeps it: the other side's delete is finished instead.
func (e *Engine) dropKept(ctx context.Context, acts []Action) ([]Action, error) {
	var cand []int
	for i, a := range acts {
		if (a.Op == MkdirRemote && a.Local != nil && a.Base == nil && a.Remote == nil) ||
			(a.Op == MkdirLocal && a.Remote != nil && a.Base == nil && a.Local == nil) {
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
			side, rec := state.Local, a.Local
			if a.Op == MkdirLocal {
				side, rec = state.Remote, a.Remote
			}
			v, err := r.Meta(keptKey(side, a.Path))
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
		side, del := state.Local, Action{Op: DeleteLocal, Path: a.Path, Local: a.Local}
		if a.Op == MkdirLocal {
			side, del = state.Remote, Action{Op: DeleteRemote, Path: a.Path, Remote: a.Remote}
		}
		if e.keptEmptied(ctx, side, a.Path) {
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
	r := e.d.Local
	if side == state.Remote {
		r = e.d.Remote
	}
	fl, ok := r.(folderLister)
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
	side, r, seen := state.Remote, e.d.Remote, a.Remote
	if a.Op == MoveLocal {
		side, r, seen = state.Local, e.d.Local, a.Local
	}
	if seen == nil {
		return fmt.Errorf("move %s: nothing was seen there", a.Path.Quoted())
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
	var err error
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

// remoteDigest learns the remote file's digest in the pair's algorithm: from the provider where it offers one,
// else by reading the bytes (vBoxx has no digest: comparing content means downloading it).
func (e *Engine) remoteDigest(ctx context.Context, p remote.Path) (remote.Hash, remote.Entry, error) {
	if h, ok := e.d.Remote.(remote.Hasher); ok {
		for _, algo := range e.d.Remote.Capabilities().Hashes {
			if algo == e.algo {
				return h.HashOf(ctx, p, e.algo)
			}
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
		c := conflict.Name(a.Path, e.o.Host, now, e.taken(ctx))
		ent, err := e.d.Local.Move(ctx, a.Path, c, revOf(l))
		if err == nil {
			err = failpoint.Hit("conflict.afterRename")
		}
		if err != nil {
			return 0, fmt.Errorf("rename %s aside: %w", a.Path.Quoted(), err)
		}
		moved := rec(ent, now.UnixNano())
		moved.Hash = l.Hash
		if err := e.commit(ctx, func(tx state.Writer) error {
			if err := tx.Delete(state.Local, a.Path); err != nil {
				return err
			}
			if err := tx.Put(state.Local, moved); err != nil {
				return err
			}
			return tx.AddConflict(state.Conflict{Path: a.Path, Copy: c, At: now.UnixNano(), Reason: a.Reason,
				LocalHash: l.Hash, RemoteHash: r.Hash})
		}); err != nil {
			return 0, err
		}
		cr.Copy, cr.Kept = c, "both"
	case conflict.Remote:
		if err := e.d.Local.Delete(ctx, a.Path, revOf(l)); err != nil {
			return 0, fmt.Errorf("move the local version of %s to the trash: %w", a.Path.Quoted(), err)
		}
		if err := e.commit(ctx, func(tx state.Writer) error { return tx.Delete(state.Local, a.Path) }); err != nil {
			return 0, err
		}
		cr.Kept = "remote"
	case conflict.Local:
		if err := e.d.Remote.Delete(ctx, a.Path, revOf(r)); err != nil {
			return 0, fmt.Errorf("move the remote version of %s to the trash: %w", a.Path.Quoted(), err)
		}
		if err := e.commit(ctx, func(tx state.Writer) error { return tx.Delete(state.Remote, a.Path) }); err != nil {
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
	side, r, seen := state.Local, e.d.Local, a.Local
	if a.Local.Dir {
		side, r, seen = state.Remote, e.d.Remote, a.Remote
	}
	now := e.d.Clock.Now()
	c := conflict.Name(a.Path, e.o.Host, now, e.taken(ctx))
	ent, err := r.Move(ctx, a.Path, c, revOf(seen))
	if err != nil {
		return fmt.Errorf("rename %s aside: %w", a.Path.Quoted(), err)
	}
	if side == state.Remote {
		e.noteRemoteWrite(ctx, c)
	}
	moved := rec(ent, now.UnixNano())
	moved.Hash = seen.Hash
	err = e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Delete(side, a.Path); err != nil {
			return err
		}
		if err := tx.Put(side, moved); err != nil {
			return err
		}
		return tx.AddConflict(state.Conflict{Path: a.Path, Copy: c, At: now.UnixNano(), Reason: a.Reason})
	})
	if err == nil {
		rep.conflict(ConflictRec{Path: a.Path, Copy: c, Kept: "both", Reason: a.Reason})
	}
	return err
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
	var known bool
	if err := e.d.Store.View(func(r state.Reader) error {
		old, ok, err := r.Get(state.Remote, p)
		known = ok && old.Dir && ent.Dir
		return err
	}); err != nil || known {
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
			recs[i] = state.Record{Entry: x, Scanned: now}
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
