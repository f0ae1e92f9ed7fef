package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// observeFeed applies the remote's change feed from the stored cursor. Each batch and the cursor that follows it
// commit in one transaction, so the cursor is never ahead of what was recorded. A dead cursor (or none) means a
// full listing.
func (e *Engine) observeFeed(ctx context.Context, rep *Report) error {
	cur, err := viewOne(e.d.Store, state.Reader.Cursor)
	if err != nil {
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
			if err := e.applyBatch(tx, b.Changes); err != nil {
				return err
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

// applyBatch applies one batch of the feed's changes in order, leaving out those a later change of the batch
// overtook (overtaken).
func (e *Engine) applyBatch(tx state.Writer, cs []remote.Change) error {
	later := overtaken(cs)
	for i, c := range cs {
		e.lg.Debug("remote change", zap.String("path", string(c.Entry.Path)), zap.String("from", string(c.From)),
			zap.Bool("deleted", c.Deleted), zap.Bool("dir", c.Entry.Dir), zap.String("id", c.Entry.ID),
			zap.String("rev", c.Entry.Rev), zap.String("skip", c.Entry.Skip), zap.Bool("overtaken", later[i]))
		if t := e.pass.touched; t != nil {
			t[c.Entry.Path] = true
			if c.From != "" {
				t[c.From] = true
			}
		}
		if later[i] {
			continue
		}
		if err := e.applyChange(tx, c); err != nil {
			return err
		}
	}
	return nil
}

// overtaken marks the changes that only say where an object is (no move, no delete) while a later change of
// the same batch names the same object: an event feed's history, of which the later event carries the object's
// latest state. Applied, such a stale event is taken for the object's present place by followID, which clears
// that path's stored subtree first: seed 343536 under -sim.lazydisk, where another client's write to a file was
// reported before tandem's own rename of it aside, and the path then held a folder tandem had made, with a folder
// it had moved in; one file of that folder was reported by no later event and was taken for deleted. A feed of
// differences between two states names each object once per batch, so nothing of it is marked.
func overtaken(cs []remote.Change) []bool {
	last := map[string]int{}
	for i, c := range cs {
		if c.Entry.ID != "" {
			last[c.Entry.ID] = i
		}
	}
	marks := make([]bool, len(cs))
	for i, c := range cs {
		marks[i] = c.From == "" && !c.Deleted && c.Entry.Skip == "" && c.Entry.ID != "" && last[c.Entry.ID] > i
	}
	return marks
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
			if err := moveSide(tx, state.Remote, c.From, p, e.wroteWithin(c.From)); err != nil {
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
	rec := state.Record{Entry: c.Entry, HashedAt: e.d.Clock.Now().UnixNano()}
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

// wroteWithin reports, for a path below from (or from itself), whether tandem wrote it or one of its folders up
// to from in this pass: a folder tandem moved there brought its whole subtree, of which only the folder is noted
// (seed 284825 under -sim.lazydisk: the late echo of renaming a file aside carried the children of a folder tandem
// had just moved to the freed name into the copy, and the planner chased them there for good).
func (e *Engine) wroteWithin(from remote.Path) func(remote.Path) bool {
	return func(q remote.Path) bool {
		for ; q.Within(from); q = q.Dir() {
			if e.wroteInPass(q) {
				return true
			}
			if q == from {
				break
			}
		}
		return false
	}
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
			rec, err := e.stored(state.Remote, a)
			if err != nil {
				return err
			}
			if rec == nil || !rec.Dir {
				break
			}
			_, err = e.d.Remote.Stat(ctx, a)
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
	rep := e.pass.rep
	rep.skipOnce("remote", c.Entry.Path, c.Entry.Skip)
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
