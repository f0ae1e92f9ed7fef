package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
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

// writes buffers record updates and commits them in groups, so a walk costs one transaction per group.
type writes struct {
	st  *state.Store
	ops []func(state.Writer) error
}

func (w *writes) add(op func(state.Writer) error) error {
	w.ops = append(w.ops, op)
	if len(w.ops) >= pageSize {
		return w.flush()
	}
	return nil
}

func (w *writes) flush() error {
	if len(w.ops) == 0 {
		return nil
	}
	ops := w.ops
	w.ops = nil
	return w.st.Update(func(tx state.Writer) error {
		for _, op := range ops {
			if err := op(tx); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *Engine) sideRemote(s state.Side) remote.Remote {
	if s == state.Local {
		return e.d.Local
	}
	return e.d.Remote
}

func sideName(s state.Side) string {
	if s == state.Local {
		return "local"
	}
	return "remote"
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
	var it storedIter = newRecIter(e.d.Store, side)
	if dir != remote.Root {
		sub, err := e.storedBelow(side, dir)
		if err != nil {
			return err
		}
		it = sub
	}
	now := e.d.Clock.Now()
	var lastKey string
	var incomplete, skipped []remote.Path
	var skippedIDs []string
	first := true
	// Records the walk did not meet are gone, but only once the walk is over: a skipped entry met later (a
	// folder renamed to a name tandem cannot hold, found by its ID) keeps what was stored for it.
	var dels []remote.Path
	w := &writes{st: e.d.Store}

	underIncomplete := func(p remote.Path) bool {
		for _, d := range incomplete {
			if p != d && p.Within(d) {
				return true
			}
		}
		return false
	}
	gone := func(rec *state.Record) error {
		if !underIncomplete(rec.Path) { // unreadable is never deleted
			dels = append(dels, rec.Path)
		}
		return nil
	}
	// advance consumes the stored records before key k (gone) and returns the one at k, if any.
	advance := func(k string) (*state.Record, error) {
		for {
			s := it.peek()
			if it.failed() != nil {
				return nil, it.failed()
			}
			if s == nil || key(s.Path) > k {
				return nil, nil
			}
			if key(s.Path) == k {
				c := *s
				it.next()
				return &c, nil
			}
			if err := gone(s); err != nil {
				return nil, err
			}
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
			k := key(p)
			if !first && k <= lastKey {
				return nil
			}
			first, lastKey = false, k
			if _, err := advance(k); err != nil {
				return err
			}
			skipped = append(skipped, p)
			return nil
		}
		k := key(ent.Path)
		if !first && k <= lastKey {
			// The merge relies on the order; out of order would turn into false deletes.
			return fmt.Errorf("walk of %s out of order at %s", r, ent.Path.Quoted())
		}
		first, lastKey = false, k
		stored, err := advance(k)
		if err != nil {
			return err
		}
		if e.ignored(ent.Path, ent.Dir) {
			return nil // the planner forgets it; never hash or record ignored files
		}
		if ent.Incomplete {
			incomplete = append(incomplete, ent.Path)
			rep.skip(sideName(side), ent.Path, "folder could not be read completely; its contents are kept as they were")
		}
		rec := state.Record{Entry: ent, Scanned: now.UnixNano()}
		if ent.Dir {
			if stored != nil && stored.Dir && stored.ID == ent.ID && !ent.Incomplete {
				return nil
			}
			rec.Rev = ""
			return w.add(func(tx state.Writer) error { return tx.Put(side, rec) })
		}
		rec, changed, err := e.fileRecord(ctx, side, ent, stored, rep)
		if err != nil || !changed {
			return err
		}
		return w.add(func(tx state.Writer) error { return tx.Put(side, rec) })
	})
	if err != nil {
		// Nothing the walk did not reach may be taken as deleted: drop the pending deletes with the rest.
		w.ops = nil
		return fmt.Errorf("list %s side %s: %w", sideName(side), r, err)
	}
	for {
		s := it.peek()
		if it.failed() != nil {
			return it.failed()
		}
		if s == nil {
			break
		}
		if err := gone(s); err != nil {
			return err
		}
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
				return err
			}
		}
	}
	return w.flush()
}

// withinAny: p is at or below one of dirs.
func withinAny(p remote.Path, dirs []remote.Path) bool {
	for _, d := range dirs {
		if p == d || p.Within(d) {
			return true
		}
	}
	return false
}

// skippedByID finds the stored paths of objects that a listing now reports as skipped (a folder renamed to a
// name tandem cannot hold keeps its ID): what was stored there is kept, and the old path is skipped too.
func (e *Engine) skippedByID(side state.Side, ids []string, rep *Report) ([]remote.Path, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ix := state.IDLocal
	if side == state.Remote {
		ix = state.IDRemote
	}
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

// storedIter streams stored records in store order.
type storedIter interface {
	peek() *state.Record
	next()
	failed() error
}

// sliceIter is a storedIter over records read up front (a subtree: its size is what the watcher reported).
type sliceIter struct{ recs []state.Record }

func (it *sliceIter) peek() *state.Record {
	if len(it.recs) == 0 {
		return nil
	}
	return &it.recs[0]
}
func (it *sliceIter) next()         { it.recs = it.recs[1:] }
func (it *sliceIter) failed() error { return nil }

// storedBelow reads a side's records strictly below dir.
func (e *Engine) storedBelow(side state.Side, dir remote.Path) (*sliceIter, error) {
	it := &sliceIter{}
	err := e.d.Store.View(func(r state.Reader) error {
		return r.Each(side, dir, func(rec state.Record) error {
			if rec.Path != dir {
				it.recs = append(it.recs, rec)
			}
			return nil
		})
	})
	return it, err
}

// fileRecord is the per-file rule of every observation: the stat fast-check against the stored record (nil:
// none), else a fresh digest. changed is false when the stored record still holds, or when the file could not be
// hashed (changed while hashing, vanished, unreadable): then what is stored is kept and a later pass looks again.
func (e *Engine) fileRecord(ctx context.Context, side state.Side, ent remote.Entry, stored *state.Record, rep *Report) (state.Record, bool, error) {
	if stored != nil && !stored.Dir && sameFingerprint(stored, ent) && stored.ID == ent.ID && !stored.Hash.IsZero() &&
		stored.Hash.Algo == e.algo && !e.racy(stored) {
		if ent.Mode != 0 && stored.Mode != ent.Mode {
			// A record from before tandem kept modes (a chmod moves the ctime, so nothing else gets here): it
			// gains the bits without a digest.
			r := *stored
			r.Mode = ent.Mode
			return r, true, nil
		}
		return state.Record{}, false, nil
	}
	hasher, ok := e.sideRemote(side).(remote.Hasher)
	if !ok {
		return state.Record{}, false, fmt.Errorf("%s: cannot hash files", e.sideRemote(side))
	}
	h, he, err := hasher.HashOf(ctx, ent.Path, e.algo)
	if err != nil {
		if ctx.Err() != nil {
			return state.Record{}, false, ctx.Err()
		}
		rep.skip(sideName(side), ent.Path, fmt.Sprintf("%v (will retry)", err))
		e.lg.Debug("hash failed", zap.String("path", string(ent.Path)), zap.Error(err))
		return state.Record{}, false, nil
	}
	rec := rec(he, e.now())
	rec.Path, rec.Hash = ent.Path, h
	needSync := false
	// A racy record is re-hashed because a same-size rewrite may hide behind its unchanged fingerprint: those
	// bytes are as new as a changed fingerprint's, and re-recording them ends the racy window (seed 8624).
	newBytes := stored == nil || stored.Dir || !sameFingerprint(stored, he) || e.racy(stored)
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
			rep.skip(sideName(side), ent.Path, fmt.Sprintf("%v (will retry)", err))
			return state.Record{}, false, nil
		}
	}
	return rec, true, nil
}

// baseHolds: the sync point at p is a file with digest h, so a local file with that content needs no transfer.
func (e *Engine) baseHolds(p remote.Path, h remote.Hash) (bool, error) {
	var holds bool
	err := e.d.Store.View(func(r state.Reader) error {
		b, ok, err := r.GetBase(p)
		holds = ok && !b.Dir && b.Hash == h
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read the sync point of %s: %w", p.Quoted(), err)
	}
	return holds, nil
}

// racy: the file changed (mtime, or ctime: an mtime put back) so close to the scan that recorded it that a
// same-size rewrite within the timestamps' resolution could have followed unseen.
func (e *Engine) racy(r *state.Record) bool {
	t := max(r.ModTime.UnixNano(), r.CTime)
	return t >= r.Scanned-int64(racyWindow)
}

// observeFeed applies the remote's change feed from the stored cursor. Each batch and the cursor that follows it
// commit in one transaction, so the cursor is never ahead of what was recorded. A dead cursor (or none) means a
// full listing.
func (e *Engine) observeFeed(ctx context.Context, rep *Report) error {
	var cur remote.Cursor
	if err := e.d.Store.View(func(r state.Reader) error {
		var err error
		cur, err = r.Cursor()
		return err
	}); err != nil {
		return err
	}
	if cur == nil || (e.o.Resync && !e.resynced) || e.relist {
		// One complete listing per request: later looks in the pass use the feed again.
		e.resynced, e.relist = true, false
		return e.fullListing(ctx, rep)
	}
	for i := 0; ; i++ {
		b, err := e.d.Remote.Changes(ctx, cur)
		if errors.Is(err, remote.ErrOutOfSync) {
			rep.Resynced = true
			e.lg.Warn("change cursor out of sync: listing the remote completely", zap.Error(err))
			return e.fullListing(ctx, rep)
		}
		if err != nil {
			return fmt.Errorf("read changes of %s: %w", e.d.Remote, err)
		}
		if err := e.d.Store.Update(func(tx state.Writer) error {
			for _, c := range b.Changes {
				e.lg.Debug("remote change", zap.String("path", string(c.Entry.Path)), zap.String("from", string(c.From)),
					zap.Bool("deleted", c.Deleted), zap.Bool("dir", c.Entry.Dir), zap.String("id", c.Entry.ID),
					zap.String("rev", c.Entry.Rev), zap.String("skip", c.Entry.Skip))
				if e.touched != nil {
					e.touched[c.Entry.Path] = true
					if c.From != "" {
						e.touched[c.From] = true
					}
				}
				if err := e.applyChange(tx, c); err != nil {
					return err
				}
			}
			if err := failpoint.Hit("cursor.feed.beforeCommit"); err != nil { // changes applied, cursor not yet
				return err
			}
			return tx.SetCursor(b.Next)
		}); err != nil {
			return err
		}
		if err := failpoint.Hit("cursor.feed.afterCommit"); err != nil {
			return err
		}
		if len(b.Changes) == 0 || string(b.Next) == string(cur) || i > 100000 {
			if err := e.checkLeftDirs(ctx); err != nil {
				return err
			}
			return e.checkUnconfirmed(ctx, rep)
		}
		cur = b.Next
	}
}

func (e *Engine) applyChange(tx state.Writer, c remote.Change) error {
	if c.Entry.Skip != "" {
		return e.applySkip(tx, c)
	}
	if c.From != "" {
		if _, err := remote.ParsePath(string(c.From)); err != nil && c.Entry.ID != "" {
			// Moved back from a name tandem cannot hold: the records kept at its last valid path follow it.
			if p, ok, err := tx.PathOfID(state.IDRemote, c.Entry.ID); err != nil {
				return err
			} else if ok {
				c.From = p
			}
		}
	}
	p := c.Entry.Path
	moved, followed := false, false
	var from remote.Path
	// A feed can report events that tandem's own actions have already overtaken in the store (a re-observe in
	// the middle of a pass reads the echoes of the actions just taken, and whatever happened in between). A
	// move or delete is therefore applied to the stored subtree only while the stored record is still the object
	// the event names; otherwise the store already holds something newer at that path (seed 100306: the echo of
	// renaming a file aside carried away the children of the folder created in its place).
	if c.From != "" && c.From != p {
		old, ok, err := tx.Get(state.Remote, c.From)
		if err != nil {
			return err
		}
		// Absent: tandem moved the records already, but children reported since (a file created inside just
		// before the move) may still sit below the old path and must follow, unless tandem itself wrote them
		// after the move (seed 31445: a file renamed aside, then a folder created in its place whose own
		// creation answer was lost, then children written into it).
		switch {
		case ok && sameObject(old.ID, c.Entry.ID):
			moved = true
			if err := moveSide(tx, state.Remote, c.From, p, nil); err != nil {
				return err
			}
		case !ok:
			// The object itself may sit at another path: tandem's own move overtook this event (seed 50406: a
			// case-only rename goes through an intermediate name; the store holds the folder at the final one
			// when the echo of the first step comes). followID clears what is stale at p before it brings the
			// object there, so it goes first: run after, it deleted the children that had just followed.
			if !c.Deleted {
				if from, err = followID(tx, c.Entry); err != nil {
					return err
				}
				followed = true
			}
			if err := moveSide(tx, state.Remote, c.From, p, e.wroteInPass); err != nil {
				return err
			}
		}
	}
	if !c.Deleted && !moved {
		if !followed {
			var err error
			if from, err = followID(tx, c.Entry); err != nil {
				return err
			}
		}
		if d := from.Dir(); from != "" && d != p.Dir() && d != remote.Root {
			// The folder the object left may have gone with it (a renamed folder whose delta names only what
			// was inside: its own id is tandem's path id, which nothing follows). observeFeed looks.
			if e.leftDirs == nil {
				e.leftDirs = map[remote.Path]bool{}
			}
			e.leftDirs[d] = true
		}
	}
	if c.Deleted {
		old, ok, err := tx.Get(state.Remote, p)
		if err != nil || !ok || !sameObject(old.ID, c.Entry.ID) {
			return err
		}
		return tx.DeleteTree(state.Remote, p)
	}
	if e.ignored(p, c.Entry.Dir) {
		return nil
	}
	rec := state.Record{Entry: c.Entry, Scanned: e.d.Clock.Now().UnixNano()}
	old, ok, err := keepKnown(tx, &rec)
	if err != nil {
		return err
	}
	if !rec.Dir {
		if ok && old.Dir {
			// A folder became a file: what was below it is gone.
			if err := tx.DeleteTree(state.Remote, p); err != nil {
				return err
			}
		}
	}
	return tx.Put(state.Remote, rec)
}

// followID moves the stored records of the object ent names to ent's path when the store holds that object at
// another path: a provider id names one object, so the other path is stale. A feed of differences between two
// states reports where an object is now, not where the store last saw it: after tandem moved a file and died
// before its feed caught up, the feed's "from" is the name before tandem's move (vBoxx, torture seed 365366);
// Verizon's delta may leave a moved file's old path out altogether. An event feed replays every later event in
// order, so a path this moves too early is put right by the event that follows. Ids of tandem's own making
// ("path:", for providers without folder ids) name no object and are left alone.
// It returns the path the records were moved from ("" when none were).
func followID(tx state.Writer, ent remote.Entry) (remote.Path, error) {
	if ent.ID == "" || strings.HasPrefix(ent.ID, "path:") || ent.Path == remote.Root {
		return "", nil
	}
	q, ok, err := tx.PathOfID(state.IDRemote, ent.ID)
	if err != nil || !ok || q == ent.Path || q == remote.Root || ent.Path.Within(q) || q.Within(ent.Path) {
		return "", err
	}
	old, ok, err := tx.Get(state.Remote, q)
	if err != nil || !ok || old.ID != ent.ID || old.Dir != ent.Dir {
		return "", err
	}
	if err := tx.DeleteTree(state.Remote, ent.Path); err != nil {
		return "", err
	}
	return q, moveSide(tx, state.Remote, q, ent.Path, nil)
}

// checkLeftDirs looks at the folders followID moved objects out of, and drops from the stored view those the
// remote no longer has (with their topmost missing ancestor): a folder renamed on a provider that addresses
// folders by path leaves no id for the feed's change to follow, and its old path would stay for good.
func (e *Engine) checkLeftDirs(ctx context.Context) error {
	dirs := slices.Sorted(maps.Keys(e.leftDirs))
	e.leftDirs = nil
	return e.dropGoneDirs(ctx, dirs)
}

// dropGoneDirs looks at the stored remote folders dirs and their stored ancestors, topmost first, and drops the
// first one the remote no longer has, with everything stored below it.
func (e *Engine) dropGoneDirs(ctx context.Context, dirs []remote.Path) error {
	var gone []remote.Path
	for _, d := range dirs {
		if withinAny(d, gone) {
			continue
		}
		var chain []remote.Path // d and its ancestors, topmost first
		for a := d; a != remote.Root; a = a.Dir() {
			chain = append([]remote.Path{a}, chain...)
		}
		for _, a := range chain {
			var stored bool
			if err := e.d.Store.View(func(r state.Reader) error {
				rec, ok, err := r.Get(state.Remote, a)
				stored = ok && rec.Dir
				return err
			}); err != nil {
				return err
			}
			if !stored {
				break
			}
			_, err := e.d.Remote.Stat(ctx, a)
			if errors.Is(err, remote.ErrNotFound) {
				if err := e.d.Store.Update(func(tx state.Writer) error { return tx.DeleteTree(state.Remote, a) }); err != nil {
					return err
				}
				gone = append(gone, a)
				break
			}
			if err != nil {
				return fmt.Errorf("look at %s on %s: %w", a.Quoted(), e.d.Remote, err)
			}
		}
	}
	return nil
}

// applySkip handles a feed event about an entry tandem cannot hold (a name the local side cannot have, a
// special object): what the store holds for it stays as it is, at its path or, for a move to such a name, at
// the path it was moved from (matched by ID), so the local copy is never deleted for it; it is reported.
func (e *Engine) applySkip(tx state.Writer, c remote.Change) error {
	var rep *Report
	if e.pass != nil {
		rep = e.pass.rep
	}
	if rep != nil {
		rep.skipOnce("remote", c.Entry.Path, c.Entry.Skip)
	}
	var held []remote.Path
	if p, err := remote.ParsePath(string(c.Entry.Path)); err == nil && p == c.Entry.Path && p != remote.Root {
		held = append(held, p)
	}
	if c.From != "" {
		if p, err := remote.ParsePath(string(c.From)); err == nil && p != remote.Root {
			held = append(held, p)
		}
	}
	if c.Entry.ID != "" {
		if p, ok, err := tx.PathOfID(state.IDRemote, c.Entry.ID); err != nil {
			return err
		} else if ok {
			held = append(held, p)
		}
	}
	for _, p := range held {
		if _, ok, err := tx.Get(state.Remote, p); err != nil {
			return err
		} else if ok {
			e.markSkipped(state.Remote, p, "now at a name tandem cannot hold ("+c.Entry.Skip+"); the local copy is kept", rep)
		}
	}
	return nil
}

// keepKnown carries over what the store knows of a remote object that a listing or feed event does not repeat:
// a digest fetched earlier for the same revision, and the folder id of folderID. It returns the stored record.
func keepKnown(tx state.Writer, rec *state.Record) (state.Record, bool, error) {
	old, ok, err := tx.Get(state.Remote, rec.Path)
	if err != nil {
		return old, ok, err
	}
	if ok && old.Rev == rec.Rev && rec.Hash.IsZero() {
		rec.Hash = old.Hash
	}
	setFolderID(rec, old, ok)
	return old, ok, nil
}

// folderID is setFolderID against the record stored at rec's path.
func folderID(tx state.Writer, rec *state.Record) error {
	old, ok, err := tx.Get(state.Remote, rec.Path)
	if err != nil {
		return err
	}
	setFolderID(rec, old, ok)
	return nil
}

// setFolderID gives a remote folder that its provider reports without an id (Verizon addresses folders by path)
// a stable one of tandem's own: the id it already has in the store (moveSide carried it along when the feed
// reported the folder's move), else one made from the path where it was first seen. Move detection then pairs
// a folder renamed on the server into one local move, as it does for providers with folder ids.
func setFolderID(rec *state.Record, old state.Record, ok bool) {
	if !rec.Dir || rec.ID != "" {
		return
	}
	if ok && old.Dir && old.ID != "" {
		rec.ID = old.ID
		return
	}
	rec.ID = "path:" + string(rec.Path)
}

// sameObject: two ids name the same object, or one of them is unknown (providers without folder ids).
func sameObject(a, b string) bool { return a == "" || b == "" || a == b }

// moveSide re-keys one side's records below from to below to (a move reported by a feed: providers report the
// folder, not every child).
// keep, when set, names records that stay where they are.
func moveSide(tx state.Writer, side state.Side, from, to remote.Path, keep func(remote.Path) bool) error {
	var recs []state.Record
	if err := tx.Each(side, from, func(r state.Record) error {
		if keep == nil || !keep(r.Path) {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, r := range recs {
		if err := tx.Delete(side, r.Path); err != nil {
			return err
		}
	}
	for _, r := range recs {
		r.Path = r.Path.Rebase(from, to)
		if err := tx.Put(side, r); err != nil {
			return err
		}
	}
	return nil
}

// fullListing lists the remote completely and reconciles it with the stored view: the cursor is taken first, so
// a change during the listing is seen twice, never missed; every listed record is stamped with this listing's
// generation; afterwards records without the stamp are gone, except below folders the listing could not read.
// A listing that fails part way changes nothing that was not listed.
func (e *Engine) fullListing(ctx context.Context, rep *Report) error {
	rep.FullListing = true
	e.listings++
	at := e.d.Clock.Now() // before the cursor: the listing shows every change made before this
	cur, err := e.d.Remote.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the change cursor of %s: %w", e.d.Remote, err)
	}
	// The generation must differ from every stamp already stored: a record written at the same clock reading
	// (an upload just before, or the previous listing) would otherwise pass as listed and never be dropped.
	gen := e.d.Clock.Now().UnixNano() + 1
	if err := e.d.Store.View(func(r state.Reader) error {
		v, err := r.Meta(metaListingGen)
		if err == nil && len(v) == 8 {
			if last := int64(binary.BigEndian.Uint64(v)); last >= gen {
				gen = last + 1
			}
		}
		return err
	}); err != nil {
		return err
	}
	w := &writes{st: e.d.Store}
	var incomplete, skipped []remote.Path
	var skippedIDs []string
	err = e.d.Remote.Walk(ctx, remote.Root, func(ent remote.Entry) error {
		if ent.Skip != "" {
			e.noteSkip(state.Remote, ent, rep)
			if ent.ID != "" {
				skippedIDs = append(skippedIDs, ent.ID)
			}
			if p, perr := remote.ParsePath(string(ent.Path)); perr == nil && p == ent.Path {
				skipped = append(skipped, p)
			}
			return nil
		}
		if ent.Path == remote.Root || e.ignored(ent.Path, ent.Dir) {
			return nil
		}
		if ent.Incomplete {
			incomplete = append(incomplete, ent.Path)
			rep.skip("remote", ent.Path, "remote folder could not be listed completely; its contents are kept as they were")
		}
		rec := state.Record{Entry: ent, Scanned: gen}
		return w.add(func(tx state.Writer) error {
			if _, _, err := keepKnown(tx, &rec); err != nil {
				return err
			}
			return tx.Put(state.Remote, rec)
		})
	})
	if err != nil {
		w.ops = nil
		return fmt.Errorf("list %s: %w", e.d.Remote, err)
	}
	if err := w.flush(); err != nil {
		return err
	}
	more, err := e.skippedByID(state.Remote, skippedIDs, rep)
	if err != nil {
		return err
	}
	skipped = append(skipped, more...)
	it := newRecIter(e.d.Store, state.Remote)
	for {
		s := it.peek()
		if it.err != nil {
			return it.err
		}
		if s == nil {
			break
		}
		p, stale := s.Path, s.Scanned != gen
		it.next()
		if !stale {
			continue
		}
		keep := withinAny(p, skipped)
		for _, d := range incomplete {
			if p != d && p.Within(d) {
				keep = true
			}
		}
		if !keep {
			if err := w.add(func(tx state.Writer) error { return tx.Delete(state.Remote, p) }); err != nil {
				return err
			}
		}
	}
	if err := w.add(func(tx state.Writer) error {
		if err := tx.SetMeta(metaListingGen, binary.BigEndian.AppendUint64(nil, uint64(gen))); err != nil {
			return err
		}
		if err := tx.SetMeta(metaListedAt, binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))); err != nil {
			return err
		}
		if err := failpoint.Hit("cursor.listing.beforeCommit"); err != nil {
			return err
		}
		// The listing shows every write tandem made so far as it is now: none is left to confirm.
		if err := clearUnconfirmedTx(tx); err != nil {
			return err
		}
		return tx.SetCursor(cur)
	}); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	e.unconfirmedChecked = true
	return failpoint.Hit("cursor.listing.afterCommit")
}

// ListRemoteNext makes the next look at the remote's feed a complete listing of the remote instead, reconciled
// with the stored view as when the cursor is lost: the safety net for changes a feed never reports (the daemon
// asks for it every remote_relist_interval). Unlike Options.Resync it is used once, and it keeps the sync point
// whatever the roots' markers say. Call it between passes.
func (e *Engine) ListRemoteNext() { e.relist = true }

// LastListing is when the last complete listing of the remote began (its changes since come through the feed),
// as the state database says, so it survives restarts; zero if the remote was never listed completely.
func (e *Engine) LastListing() (time.Time, error) {
	var at time.Time
	err := e.d.Store.View(func(r state.Reader) error {
		v, err := r.Meta(metaListedAt)
		if err != nil {
			return err
		}
		if len(v) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
			return nil
		}
		// A database from before listed-at: the listing's generation is its clock reading plus one.
		if v, err = r.Meta(metaListingGen); err == nil && len(v) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(v))-1).UTC()
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read when the remote was last listed: %w", err)
	}
	return at, nil
}

// wroteInPass reports whether tandem wrote p on the remote in this pass.
func (e *Engine) wroteInPass(p remote.Path) bool {
	e.wroteMu.Lock()
	defer e.wroteMu.Unlock()
	return e.wrote[p]
}

// noteRemoteWrite remembers a remote path tandem wrote in this pass, for confirmWrites, and in the action's ctx,
// so that the action's commit notes it in the store as well (unconfirmed.go): a kill before confirmWrites
// would lose the memory.
func (e *Engine) noteRemoteWrite(ctx context.Context, p remote.Path) {
	if w, _ := ctx.Value(writesCtxKey{}).(*actionWrites); w != nil {
		w.mu.Lock()
		w.paths = append(w.paths, p)
		w.mu.Unlock()
	}
	e.wroteMu.Lock()
	defer e.wroteMu.Unlock()
	if e.wrote == nil {
		e.wrote = map[remote.Path]bool{}
	}
	e.wrote[p] = true
}

// confirmWrites moves the feed's cursor past tandem's own writes at the end of a pass, so that the cursor is not
// left before them. A feed that reports differences between two states (Verizon's fullview delta) never
// mentions a file that did not exist at the old cursor and no longer exists now: a file tandem uploaded and
// another client deleted soon after would stay in the stored view for ever. So the feed is read once more now,
// and every path tandem wrote that the feed did not mention is checked with Stat. Cost: one feed request per
// pass that wrote to the remote, plus a Stat per written path the feed stayed silent about.
//
// It returns the paths the feed reported that tandem did not write: changes other clients made meanwhile.
func (e *Engine) confirmWrites(ctx context.Context, rep *Report) ([]remote.Path, error) {
	e.wroteMu.Lock()
	wrote := e.wrote
	e.wrote = nil
	e.wroteMu.Unlock()
	if len(wrote) == 0 || !e.d.Remote.Capabilities().Feed || e.o.DryRun {
		return nil, nil
	}
	e.touched = map[remote.Path]bool{}
	defer func() { e.touched = nil }()
	confirmed := false
	defer func() {
		if !confirmed {
			// The writes stay noted in the store: the next feed read that reaches the end looks at them.
			e.unconfirmedChecked = false
		}
	}()
	listings := e.listings
	if err := e.observeFeed(ctx, rep); err != nil {
		return nil, err
	}
	if e.listings != listings {
		// The cursor was out of sync (the feed's history was compacted past it), so the remote was listed
		// completely: what other clients wrote meanwhile is in the store now, but no feed path names it, and
		// the next scoped pass would not look. Plan everything (sim seed 3392: a remote write during a pass
		// of 26 actions on a feed keeping 20 changes was never downloaded). The listing cleared the notes.
		confirmed = true
		return []remote.Path{remote.Root}, nil
	}
	var news []remote.Path
	for p := range e.touched {
		if !wrote[p] {
			news = append(news, p)
		}
	}
	slices.Sort(news)
	paths := make([]remote.Path, 0, len(wrote))
	for p := range wrote {
		if !e.touched[p] {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var unknown []remote.Path
	for _, p := range paths {
		if _, err := e.d.Remote.Stat(ctx, p); !errors.Is(err, remote.ErrNotFound) {
			if err != nil {
				unknown = append(unknown, p) // unknown now: it stays noted, the next feed read looks again
			}
			continue // still there
		}
		if err := e.d.Store.Update(func(tx state.Writer) error { return tx.DeleteTree(state.Remote, p) }); err != nil {
			return nil, err
		}
		news = append(news, p) // gone: another client deleted what tandem wrote
	}
	if err := e.clearUnconfirmed(unknown); err != nil {
		return nil, err
	}
	confirmed = len(unknown) == 0
	return news, nil
}
