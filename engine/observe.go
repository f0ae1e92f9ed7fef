package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// racyWindow: a file whose mtime lies this close to (or after) the scan that hashed it may have been rewritten
// within the timestamp's resolution without changing size or mtime, so it is hashed again (the racy-git rule).
const racyWindow = 2 * time.Second

// metaListingGen stores the stamp of the last full listing of the remote; metaListedAt the clock reading at its
// start (LastListing).
const (
	metaListingGen = "listing-gen"
	metaListedAt   = "listed-at"
)

// writes buffers record updates and commits them in groups, so a walk costs one transaction per group. A group's
// commit runs beside the walk, which collects the next group meanwhile (a first sync's walk of 10,000 files
// waited out twenty commits, a third of its time); at most one commit runs, so groups land in order. done
// commits what is left and waits for it; drop abandons what was not handed over yet and waits for the commit in
// flight, so that nothing runs on after the walk returns.
type writes struct {
	st      *state.Store
	ops     []func(state.Writer) error
	running chan error // the commit in flight; nil: none
}

// gatherMax is the most updates writes holds while the commit before them runs.
const gatherMax = 8 * pageSize

func (w *writes) add(op func(state.Writer) error) error {
	w.ops = append(w.ops, op)
	if len(w.ops) < pageSize {
		return nil
	}
	// While the previous group commits, the walk goes on gathering (up to gatherMax) rather than wait for it:
	// a first sync's walk lists faster than groups of one page commit, and waited out a quarter of its time.
	if len(w.ops) < gatherMax && w.committing() {
		return nil
	}
	return w.flush()
}

// committing: a commit is in flight and has not ended.
func (w *writes) committing() bool {
	return w.running != nil && len(w.running) == 0
}

// flush hands the buffered group to a commit of its own once the previous commit has ended, and returns the
// previous commit's outcome (a group's own is reported by the next flush, done or drop).
func (w *writes) flush() error {
	if len(w.ops) == 0 {
		return nil
	}
	if err := w.wait(); err != nil {
		w.ops = nil
		return err
	}
	ops := w.ops
	w.ops = nil
	done := make(chan error, 1)
	w.running = done
	go func() {
		done <- w.st.Update(func(tx state.Writer) error {
			for _, op := range ops {
				if err := op(tx); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	return nil
}

// wait waits for the commit in flight, if any.
func (w *writes) wait() error {
	if w.running == nil {
		return nil
	}
	err := <-w.running
	w.running = nil
	return err
}

// done commits every buffered update and waits until all are committed.
func (w *writes) done() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.wait()
}

// drop forgets the updates not handed over yet and waits for the commit in flight (its error, if any, is the
// caller's to ignore: the caller fails anyway).
func (w *writes) drop() error {
	w.ops = nil
	return w.wait()
}

func (e *Engine) sideRemote(s state.Side) remote.Remote {
	if s == state.Local {
		return e.d.Local
	}
	return e.d.Remote
}

// observeWalk brings one side's stored view up to date by walking it: the walk and the stored records come in
// the same order, so they are merge-joined and only differences are written. A file is hashed only when its
// stat fingerprint moved or it is racily clean. Anything the walk could not read is kept as stored.
func (e *Engine) observeWalk(ctx context.Context, side state.Side, rep *Report) error {
	return e.observeWalkUnder(ctx, side, remote.Root, rep)
}

// observeWalkUnder is observeWalk for the folder dir and what is below it (not dir's own record).
func (e *Engine) observeWalkUnder(ctx context.Context, side state.Side, dir remote.Path, rep *Report) error {
	r := e.sideRemote(side)
	it := newRecIter(e.d.Store, side)
	if dir != remote.Root {
		var err error
		if it, err = e.storedBelow(side, dir); err != nil {
			return err
		}
	}
	now := e.d.Clock.Now()
	var last remote.Path
	var incomplete, skipped []remote.Path
	var skippedIDs []string
	first := true
	// Records the walk did not meet are gone, but only once the walk is over: a skipped entry met later (a
	// folder renamed to a name tandem cannot hold, found by its ID) keeps what was stored for it.
	var dels []remote.Path
	w := &writes{st: e.d.Store}
	// Files whose fingerprint moved are digested in batches beside each other (a first sync digests every
	// file: one at a time, that was a quarter of a 10,000-file first sync). Each batch's records are added in
	// walk order once it is done; nothing else waits on them before the walk ends.
	var batch []hashJob
	digest := func() error {
		if len(batch) == 0 {
			return nil
		}
		jobs := batch
		batch = batch[:0:0]
		// Which files wait for their upload's digest (digestLater), all in one read of the store: one read each
		// was ten thousand transactions in a first sync's walk, beside its commits.
		later := make([]bool, len(jobs))
		if err := e.d.Store.View(func(r state.Reader) error {
			for i := range jobs {
				j := &jobs[i]
				if !e.mayDigestLater(side, j.ent, j.stored) {
					continue
				}
				claimed, err := claimedIn(r, j.ent)
				if err != nil {
					return fmt.Errorf("read the sync point of %s: %w", j.ent.Path.Quoted(), err)
				}
				later[i] = !claimed
			}
			return nil
		}); err != nil {
			return err
		}
		tasks := make([]Task, 0, len(jobs))
		for i := range jobs {
			j := &jobs[i]
			if later[i] {
				j.rec, j.changed = rec(j.ent, 0), true
				continue
			}
			tasks = append(tasks, func(ctx context.Context) error {
				j.rec, j.changed, j.err = e.digestRecord(ctx, side, j.ent, j.stored, rep)
				return j.err
			})
		}
		if err := e.hashExec.Run(ctx, tasks); err != nil {
			return err
		}
		for _, j := range jobs {
			if j.err != nil {
				return j.err
			}
			if j.changed {
				rec := j.rec
				if err := w.add(func(tx state.Writer) error { return tx.Put(side, rec) }); err != nil {
					return err
				}
			}
		}
		return nil
	}

	gone := func(rec *state.Record) {
		if !belowAny(rec.Path, incomplete) { // unreadable is never deleted
			dels = append(dels, rec.Path)
		}
	}
	// advance consumes the stored records before p (gone) and returns the one at p, if any.
	advance := func(p remote.Path) (*state.Record, error) {
		for {
			s := it.peek()
			if it.failed() != nil {
				return nil, it.failed()
			}
			if s == nil || state.Compare(s.Path, p) > 0 {
				return nil, nil
			}
			if s.Path == p {
				it.next() // s stays valid: each page is a slice of its own
				return s, nil
			}
			gone(s)
			it.next()
		}
	}

	err := r.Walk(ctx, dir, func(ent remote.Entry) error {
		if ent.Path == dir {
			return nil
		}
		if ent.Skip != "" {
			e.noteSkip(side, ent, rep)
			if ent.ID != "" {
				skippedIDs = append(skippedIDs, ent.ID)
			}
			p, perr := remote.ParsePath(string(ent.Path))
			if perr != nil || p != ent.Path || p == remote.Root {
				return nil // a name that is no Path has nothing stored; its ID may still name what was
			}
			if !first && state.Compare(p, last) <= 0 {
				return nil
			}
			first, last = false, p
			if _, err := advance(p); err != nil {
				return err
			}
			skipped = append(skipped, p)
			return nil
		}
		if !first && state.Compare(ent.Path, last) <= 0 {
			// The merge relies on the order; out of order would turn into false deletes.
			return fmt.Errorf("walk of %s out of order at %s", r, ent.Path.Quoted())
		}
		first, last = false, ent.Path
		stored, err := advance(ent.Path)
		if err != nil {
			return err
		}
		if e.ignored(ent.Path, ent.Dir) {
			return nil // the planner forgets it; never hash or record ignored files
		}
		if ent.Incomplete {
			incomplete = append(incomplete, ent.Path)
			rep.skip(side.String(), ent.Path, "folder could not be read completely; its contents are kept as they were")
		}
		if ent.Dir {
			if stored != nil && stored.Dir && stored.ID == ent.ID && !ent.Incomplete {
				return nil
			}
			rec := state.Record{Entry: ent, HashedAt: now.UnixNano()} // made here: the closure moves it to the heap
			rec.Rev = ""
			return w.add(func(tx state.Writer) error { return tx.Put(side, rec) })
		}
		if !e.unchanged(side, ent, stored) {
			batch = append(batch, hashJob{ent: ent, stored: stored})
			if len(batch) >= hashBatch {
				return digest()
			}
			return nil
		}
		if kept, changed := keptRecord(ent, stored); changed {
			rec := kept // declared where it is written: the closure moves it to the heap
			return w.add(func(tx state.Writer) error { return tx.Put(side, rec) })
		}
		return nil
	})
	if err == nil {
		err = digest()
	}
	if err != nil {
		// Nothing the walk did not reach may be taken as deleted: drop the pending deletes with the rest.
		_ = w.drop()
		return fmt.Errorf("list %s side %s: %w", side, r, err)
	}
	// What follows reads the store (skippedByID): the walk's own updates are committed first.
	if err := w.wait(); err != nil {
		_ = w.drop()
		return err
	}
	for {
		s := it.peek()
		if it.failed() != nil {
			return it.failed()
		}
		if s == nil {
			break
		}
		gone(s)
		it.next()
	}
	moreSkipped, err := e.skippedByID(side, skippedIDs, rep)
	if err != nil {
		return err
	}
	skipped = append(skipped, moreSkipped...)
	for _, p := range dels {
		if !withinAny(p, skipped) {
			if err := w.add(func(tx state.Writer) error { return tx.Delete(side, p) }); err != nil {
				_ = w.drop()
				return err
			}
		}
	}
	return w.done()
}

// withinAny: p is at or below one of dirs.
func withinAny(p remote.Path, dirs []remote.Path) bool {
	return slices.ContainsFunc(dirs, func(d remote.Path) bool { return p == d || p.Within(d) })
}

// belowAny: p is strictly below one of dirs.
func belowAny(p remote.Path, dirs []remote.Path) bool {
	return slices.ContainsFunc(dirs, func(d remote.Path) bool { return p != d && p.Within(d) })
}

// skippedByID finds the stored paths of objects that a listing now reports as skipped (a folder renamed to a
// name tandem cannot hold keeps its ID): what was stored there is kept, and the old path is skipped too.
func (e *Engine) skippedByID(side state.Side, ids []string, rep *Report) ([]remote.Path, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ix := sideOps[side].index
	var out []remote.Path
	err := e.d.Store.View(func(r state.Reader) error {
		for _, id := range ids {
			p, ok, err := r.PathOfID(ix, id)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, p)
			}
		}
		return nil
	})
	for _, p := range out {
		e.markSkipped(side, p, "renamed to a name tandem cannot hold; the other side keeps its copy", rep)
	}
	return out, err
}

// storedBelow reads a side's records strictly below dir up front (a subtree: its size is what the watcher
// reported).
func (e *Engine) storedBelow(side state.Side, dir remote.Path) (*recIter, error) {
	it := recsOf(nil)
	err := e.d.Store.View(func(r state.Reader) error {
		return r.Each(side, dir, func(rec state.Record) error {
			if rec.Path != dir {
				it.buf = append(it.buf, rec)
			}
			return nil
		})
	})
	return it, err
}

// hashBatch is how many files a walk digests at once (observeWalkUnder).
const hashBatch = 64

// hashJob is a file a walk digests, and the outcome (fileRecord's).
type hashJob struct {
	ent     remote.Entry
	stored  *state.Record
	rec     state.Record
	changed bool
	err     error
}

// unchanged: the stored record of a file still holds by its fingerprint (fileRecord's fast check), so no
// digest is needed.
func (e *Engine) unchanged(side state.Side, ent remote.Entry, stored *state.Record) bool {
	return stored != nil && !stored.Dir && sameFingerprint(stored, ent) && stored.ID == ent.ID && !stored.Hash.IsZero() &&
		stored.Hash.Algo == e.algo && !e.racy(side, stored)
}

// keptRecord is fileRecord's outcome for a file whose stored record still holds (unchanged): nothing, or
// the record with the mode bits a record from before tandem kept modes lacks (a chmod moves the ctime, so
// nothing else gets here), without a digest.
func keptRecord(ent remote.Entry, stored *state.Record) (state.Record, bool) {
	if ent.Mode != 0 && stored.Mode != ent.Mode {
		r := *stored
		r.Mode = ent.Mode
		return r, true
	}
	return state.Record{}, false
}

// fileRecord is the per-file rule of every observation: the stat fast-check against the stored record (nil:
// none), else a fresh digest. changed is false when the stored record still holds, or when the file could not be
// hashed (changed while hashing, vanished, unreadable): then what is stored is kept and a later pass looks again.
func (e *Engine) fileRecord(ctx context.Context, side state.Side, ent remote.Entry, stored *state.Record, rep *Report) (state.Record, bool, error) {
	if e.unchanged(side, ent, stored) {
		r, changed := keptRecord(ent, stored)
		return r, changed, nil
	}
	if later, err := e.digestLater(side, ent, stored); err != nil || later {
		return rec(ent, 0), err == nil, err
	}
	return e.digestRecord(ctx, side, ent, stored, rep)
}

// digestRecord is fileRecord for a file whose stored record does not hold and whose digest is taken now.
func (e *Engine) digestRecord(ctx context.Context, side state.Side, ent remote.Entry, stored *state.Record, rep *Report) (state.Record, bool, error) {
	hasher, ok := e.sideRemote(side).(remote.Hasher)
	if !ok {
		return state.Record{}, false, fmt.Errorf("%s: cannot hash files", e.sideRemote(side))
	}
	var h remote.Hash
	var he remote.Entry
	var err error
	if x, exact := hasher.(remote.ExactChanger); exact && ent.Size == 0 && !ent.Dir && x.ExactChange() {
		// An empty file's stat is its content: where every later change moves the ctime, the scan's stat vouches
		// for no bytes as a read between two stats would (an open, a read, two stats and a close each).
		h, err = emptyDigest(e.algo)
		he = ent
	} else {
		h, he, err = hasher.HashOf(ctx, ent.Path, e.algo)
	}
	if err != nil {
		if ctx.Err() != nil {
			return state.Record{}, false, ctx.Err()
		}
		rep.skip(side.String(), ent.Path, fmt.Sprintf("%v (will retry)", err))
		e.lg.Debug("hash failed", zap.String("path", string(ent.Path)), zap.Error(err))
		return state.Record{}, false, nil
	}
	rec := rec(he, e.now())
	rec.Path, rec.Hash = ent.Path, h
	needSync := false
	// A racy record is re-hashed because a same-size rewrite may hide behind its unchanged fingerprint: those
	// bytes are as new as a changed fingerprint's, and re-recording them ends the racy window (seed 8624).
	newBytes := stored == nil || stored.Dir || !sameFingerprint(stored, he) || e.racy(side, stored)
	if side == state.Local && newBytes {
		// Seed 10191: a racy re-hash under an unchanged fingerprint ends the racy window, and from then on
		// that fingerprint vouches for these bytes. A power loss that takes them puts older ones back under the
		// same fingerprint (a rewrite within the same clock tick moves nothing), so they must be durable first,
		// whatever their content.
		needSync = stored != nil && !stored.Dir && (stored.Hash == h || sameFingerprint(stored, he))
		if !needSync {
			if needSync, err = e.baseHolds(ent.Path, h); err != nil {
				return state.Record{}, false, err
			}
		}
	}
	if needSync {
		// The same content in new bytes (rewritten, re-created, moved in): nothing will transfer them, so the
		// sync point now stands on them. They are made durable first: a power loss would otherwise bring back
		// an empty or older file that then looks like a local edit and is uploaded over the good copy, or take
		// the file and leave the user's older delete, which would then be sent (seed 5099: deleted, re-created
		// with the base's content while the delete waited, so no local record was stored; the remote copy was
		// deleted after a power loss). Seed 8624: the user wrote the downloaded content again within the same
		// clock tick, the racy re-hash found the base's digest and re-recorded the file unsynced; the power loss
		// left it empty and that was uploaded over the remote copy.
		if err := e.syncLocal(ctx, ent.Path, &rec); err != nil {
			if ctx.Err() != nil {
				return state.Record{}, false, ctx.Err()
			}
			rep.skip(side.String(), ent.Path, fmt.Sprintf("%v (will retry)", err))
			return state.Record{}, false, nil
		}
	}
	return rec, true, nil
}

// digestLater: the local file ent is new to tandem (nothing recorded digested it, no sync point at its path, no
// sync point of its inode elsewhere), so no decision compares its digest before it is sent: the scan records it
// without one (Hash zero, HashedAt 0) and the upload digests it while reading it, one read of each byte instead
// of two (a first sync of large files spent a third of its CPU digesting in the scan). Whatever else meets the
// record compares it to a base or a remote file and digests it first (reconcile; localChanged takes a missing
// digest for a change), and the next scan that finds it unsent looks again. An empty file costs no read and keeps
// its digest (empty files prove nothing in move detection, but every other rule knows them by it).
//
// Only where every change moves the ctime (remote.ExactChanger): the upload then knows its one read is a version
// someone wrote when the stat after it matches the one before. On a coarse clock a rewrite in place during the
// read can leave both stats alike, and only a second read agreeing with the scan's digest tells a mixture of two
// versions from a version (the simulation's races at execute sent mixtures to the remote, I6).
func (e *Engine) digestLater(side state.Side, ent remote.Entry, stored *state.Record) (bool, error) {
	if !e.mayDigestLater(side, ent, stored) {
		return false, nil
	}
	claimed, err := viewOne(e.d.Store, func(r state.Reader) (bool, error) { return claimedIn(r, ent) })
	if err != nil {
		return false, fmt.Errorf("read the sync point of %s: %w", ent.Path.Quoted(), err)
	}
	return !claimed, nil
}

// mayDigestLater is digestLater short of its look at the store: a local file new to tandem on a side where every
// change moves the ctime.
func (e *Engine) mayDigestLater(side state.Side, ent remote.Entry, stored *state.Record) bool {
	if side != state.Local || ent.Dir || ent.Size == 0 || (stored != nil && !stored.Dir && !stored.Hash.IsZero()) {
		return false
	}
	x, ok := e.d.Local.(remote.ExactChanger)
	return ok && x.ExactChange()
}

// claimedIn is digestLater's look at the store: a sync point at ent's path, or one of its inode elsewhere.
func claimedIn(r state.Reader, ent remote.Entry) (bool, error) {
	if _, ok, err := r.GetBase(ent.Path); err != nil || ok {
		return ok, err
	}
	if ent.ID == "" {
		return false, nil
	}
	_, ok, err := r.PathOfID(sideOps[state.Local].baseIndex, ent.ID)
	return ok, err
}

// baseHolds: the sync point at p is a file with digest h, so a local file with that content needs no transfer.
func (e *Engine) baseHolds(p remote.Path, h remote.Hash) (bool, error) {
	b, err := viewOne(e.d.Store, func(r state.Reader) (*state.Base, error) { return found(r.GetBase(p)) })
	if err != nil {
		return false, fmt.Errorf("read the sync point of %s: %w", p.Quoted(), err)
	}
	return b != nil && !b.Dir && b.Hash == h, nil
}

// racy: the file changed (mtime, or ctime: an mtime put back) so close to the scan that recorded it that a
// same-size rewrite within the timestamps' resolution could have followed unseen. On a side whose ctime moves
// with every change made after a stat (remote.ExactChanger) no rewrite can follow unseen, however soon, and no
// clock is compared: a record is racy only when marked for a new digest (HashedAt 0). That holds because every
// file record's stat is read after its content was established (HashOf stats before reading and checks after,
// Put stats after its rename, an upload compares the stats around its read).
func (e *Engine) racy(side state.Side, r *state.Record) bool {
	if x, ok := e.sideRemote(side).(remote.ExactChanger); ok && x.ExactChange() {
		return r.HashedAt == 0
	}
	t := max(r.ModTime.UnixNano(), r.CTime)
	return t >= r.HashedAt-int64(racyWindow)
}

// emptyDigest is the digest of no bytes in algo.
func emptyDigest(algo string) (remote.Hash, error) {
	h, err := remote.NewDigest(algo)
	if err != nil {
		return remote.Hash{}, err
	}
	return remote.Sum(algo, h), nil
}
