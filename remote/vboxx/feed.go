package vboxx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// The change feed combines two mechanisms, because each alone is either incomplete or too expensive
// (reference section 8):
//
//   - modified_since reports new content revisions root-wide in one request, but never deletions, renames,
//     moves, lock changes, restores or folders. Its cursor is a time, and that time is the server's: the Date
//     header of the modified_since answer minus the request's duration, asked again with an overlap (default
//     120 s) so nothing is lost at the boundary. Local clocks are never used (they may be hours off), and
//     neither are the results' own times (files written by desktop agents can carry older times).
//   - the folder hash / 304 protocol finds everything else: a folder GET with the stored hash answers 304 when
//     nothing in its data changed, so an unchanged folder costs one bodyless request. A 200 is compared child by
//     child (by id) with the stored list; an id that left the list is looked up by id to tell a delete from a
//     move. The hash is not recursive, so every folder must be asked, which is why the sweep is budgeted (a
//     round robin of SweepBudget listings per poll) and modified_since covers edits in the folders the sweep
//     did not reach this time.
//
// Folders touched by the feed, folders this client just changed and the pair root come first in every sweep; a
// tree smaller than the budget is swept completely on every poll. Deletes and moves in a larger tree arrive
// within one full round of the sweep (ceil(folders / budget) polls).
//
// All of it lives in the cursor (see feedState): nothing is kept in the client between polls except the
// "dirty" hint of our own writes, which only changes the order of the sweep.

// Head returns a cursor for "now": the server time, taken before a walk of the whole pair root that records
// every folder's hash and every file's revision. A change made during the walk is seen again, never missed.
func (c *Client) Head(ctx context.Context) (remote.Cursor, error) {
	t0, err := c.serverTime(ctx)
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", c.spec, err)
	}
	baseID, _, err := c.statBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", c.spec, err)
	}
	st := newState(c.rootID, baseID)
	st.since = t0.Unix()
	if st.used, err = c.spaceUsed(ctx); err != nil {
		return nil, fmt.Errorf("head %s: %w", c.spec, err)
	}
	p := c.newPoll(st, true)
	p.enqueue(baseID)
	if err := p.drain(ctx); err != nil {
		return nil, fmt.Errorf("head %s: %w", c.spec, err)
	}
	return st.encode(), nil
}

// serverTime is the server's clock from a Date header (GET /api/2/version: no auth, tiny answer).
func (c *Client) serverTime(ctx context.Context) (time.Time, error) {
	var t time.Time
	start := c.clk.Now()
	err := c.call(ctx, "version", http.MethodGet, "/api/2/version", nil, true, func(resp *http.Response) error {
		t = dateOf(resp, c.clk.Since(start))
		return nil
	})
	if err == nil && t.IsZero() {
		err = errors.New("the server sent no Date header: its clock cannot be read")
	}
	return t, err
}

// dateOf is the response's Date minus the request's duration, rounded down to whole seconds (the precision of
// the API's times): an instant no later than when the server answered.
func dateOf(resp *http.Response, took time.Duration) time.Time {
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return d.Add(-took).Truncate(time.Second).UTC()
}

// Changes reports what changed after cur: one modified_since call, then the hash sweep.
func (c *Client) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	st, err := decodeCursor(cur)
	if err != nil {
		return remote.Batch{}, err
	}
	if st.rootID != c.rootID {
		return remote.Batch{}, fmt.Errorf("%s: the cursor belongs to root %d, not %d: %w", c.spec, st.rootID, c.rootID,
			remote.ErrOutOfSync)
	}
	prev := time.Unix(st.since, 0).UTC()
	since := prev.Add(-c.cfg.Overlap)
	results, t0, err := c.modifiedSince(ctx, since)
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes of %s: %w", c.spec, err)
	}
	full := false
	switch {
	case t0.IsZero(): // no Date header: keep the old cursor rather than guess
		t0 = prev
	case t0.Before(prev.Add(-c.cfg.Overlap / 2)):
		// The server clock went back by more than the overlap covers: revisions stored since then carry
		// times before the cursor. A full conditional sweep finds them (a new revision changes its folder's
		// hash), and the cursor follows the server's clock back.
		c.lg.Warn("server clock went backwards; sweeping every folder", zap.Time("cursor", prev), zap.Time("server", t0))
		full = true
	case t0.Before(prev):
		t0 = prev // rounding: never move the cursor back by less than the overlap
	}
	if t0.Sub(prev) > c.cfg.MaxCursorAge {
		full = true // long gap: do not trust the feed alone
	}
	used, err := c.spaceUsed(ctx)
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes of %s: %w", c.spec, err)
	}
	p := c.newPoll(st, full)
	p.enqueue(st.baseID)
	if len(results) > c.cfg.MaxFeed {
		p.full = true
	} else if err := p.applyFeed(results); err != nil {
		return remote.Batch{}, err
	}
	if used >= 0 && st.used >= 0 && used != st.used && p.fresh == 0 && !p.full {
		// The root's size moved and modified_since names no new revision: a file it cannot see (a desktop
		// agent's old date under the reading that filters on `modified`, a delete, a restore). Every folder is
		// asked this poll (conditional GETs, 304 where nothing changed), so such a file arrives now, not only
		// when the round robin reaches its folder.
		c.lg.Debug("root size changed without a feed entry; sweeping every folder", zap.Int64("was", st.used),
			zap.Int64("now", used))
		p.full = true
	}
	st.used = used
	c.mu.Lock()
	for id := range c.dirty {
		p.enqueue(id)
	}
	clear(c.dirty)
	c.mu.Unlock()
	if err := p.drain(ctx); err != nil {
		return remote.Batch{}, fmt.Errorf("changes of %s: %w", c.spec, err)
	}
	st.since = t0.Unix()
	c.lg.Debug("poll", zap.Int("listings", p.listings), zap.Int("lookups", p.lookups),
		zap.Int("changes", len(p.out)), zap.Bool("full", p.full))
	return remote.Batch{Changes: p.out, Next: st.encode()}, nil
}

// spaceUsed is the vBoxx root's space_used (one small GET without children), or -1 when the server does not
// report it.
func (c *Client) spaceUsed(ctx context.Context) (int64, error) {
	var o object
	err := c.call(ctx, "root usage", http.MethodGet, c.rootPath(""), url.Values{"include_children": {"false"},
		"include_permissions": {"false"}}, true, c.decode(&o))
	if err != nil {
		return 0, err
	}
	if o.SpaceUsed == nil {
		return -1, nil
	}
	return int64(*o.SpaceUsed), nil
}

// modifiedSince returns the files with a revision at or after since, and the server time of the answer. The
// emulator does not page; a server that sends total/offset is paged with offset until total is reached.
func (c *Client) modifiedSince(ctx context.Context, since time.Time) ([]object, time.Time, error) {
	var all []object
	var t0 time.Time
	for page := 0; page < 10000; page++ {
		q := url.Values{"since": {since.UTC().Format(timeLayout)}}
		if len(all) > 0 {
			q.Set("offset", strconv.Itoa(len(all)))
		}
		var res resultList
		start := c.clk.Now()
		err := c.call(ctx, "modified_since", http.MethodGet, c.rootPath("/modified_since"), q, true,
			func(resp *http.Response) error {
				if page == 0 {
					t0 = dateOf(resp, c.clk.Since(start))
				}
				return c.hx.DecodeJSON(resp, &res)
			})
		if err != nil {
			return nil, time.Time{}, err
		}
		all = append(all, res.Results...)
		if res.Total == nil || len(res.Results) == 0 || int64(len(all)) >= int64(*res.Total) {
			break
		}
	}
	return all, t0, nil
}

type itemKey struct {
	dir bool
	id  int64
}

// poll is one sweep over a feedState.
type poll struct {
	c        *Client
	st       *feedState
	full     bool // ignore the budget: list every folder
	out      []remote.Change
	queue    []int64
	queued   map[int64]bool
	listed   map[int64]int
	seen     map[itemKey]bool
	pending  map[itemKey]remote.Path // left their folder for one not known yet: resolved later in this poll
	byPath   map[remote.Path]int64   // folder index, rebuilt after a structural change
	rrOrder  []int64
	rrPos    int
	rrLeft   int
	listings int
	lookups  int
	fresh    int // feed entries that were not repeats of the overlap window
}

func (c *Client) newPoll(st *feedState, full bool) *poll {
	return &poll{c: c, st: st, full: full, queued: map[int64]bool{}, listed: map[int64]int{},
		seen: map[itemKey]bool{}, pending: map[itemKey]remote.Path{}, rrPos: -1}
}

func (p *poll) enqueue(id int64) {
	if _, ok := p.st.dirs[id]; !ok || p.queued[id] || p.listed[id] >= 2 {
		return
	}
	p.queued[id] = true
	p.queue = append(p.queue, id)
}

// dirByPath finds a known folder by pair path.
func (p *poll) dirByPath(rel remote.Path) (int64, bool) {
	if p.byPath == nil {
		p.byPath = make(map[remote.Path]int64, len(p.st.dirs))
		for id := range p.st.dirs {
			p.byPath[p.st.dirPath(id)] = id
		}
	}
	id, ok := p.byPath[rel]
	return id, ok
}

// nearestKnown is the deepest known folder at or above rel.
func (p *poll) nearestKnown(rel remote.Path) int64 {
	for {
		if id, ok := p.dirByPath(rel); ok {
			return id
		}
		if rel == remote.Root {
			return p.st.baseID
		}
		rel = rel.Dir()
	}
}

func (p *poll) structureChanged() { p.byPath = nil }

// drain lists queued folders, then continues the round robin until the budget is spent (or, when full, until
// every known folder was listed).
func (p *poll) drain(ctx context.Context) error {
	// Every folder is listed at most twice per poll (enqueue), so this bound is never reached by a sane server;
	// it is the backstop that turns any answer sequence that would not settle into an error instead of a loop.
	for {
		for len(p.queue) > 0 {
			if limit := 3*(len(p.st.dirs)+len(p.st.files)) + p.c.cfg.SweepBudget + 100; p.listings+p.lookups > limit {
				return fmt.Errorf("changes of %s: the server's answers did not settle after %d requests; the next "+
					"poll tries again", p.c.spec, p.listings+p.lookups)
			}
			id := p.queue[0]
			p.queue = p.queue[1:]
			delete(p.queued, id)
			if err := p.visit(ctx, id); err != nil {
				return err
			}
		}
		if !p.full && p.listings >= p.c.cfg.SweepBudget {
			break
		}
		next, ok := p.nextRoundRobin()
		if !ok {
			break
		}
		p.enqueue(next)
	}
	for k, old := range p.pending {
		if p.seen[k] {
			continue
		}
		// Moved into a folder this poll never found: report it gone here; the listing that finds it later
		// reports it as new. Nothing is lost, only the move is seen as delete + create.
		p.emitDelete(old, k)
	}
	return nil
}

// nextRoundRobin walks the known folders in id order, starting after the one swept last in the previous poll,
// once around.
func (p *poll) nextRoundRobin() (int64, bool) {
	if p.rrPos < 0 {
		p.rrOrder = make([]int64, 0, len(p.st.dirs))
		for id := range p.st.dirs {
			p.rrOrder = append(p.rrOrder, id)
		}
		slices.Sort(p.rrOrder)
		p.rrPos, _ = slices.BinarySearch(p.rrOrder, p.st.rr+1)
		p.rrLeft = len(p.rrOrder)
	}
	for p.rrLeft > 0 {
		p.rrLeft--
		if p.rrPos >= len(p.rrOrder) {
			p.rrPos = 0
		}
		id := p.rrOrder[p.rrPos]
		p.rrPos++
		if _, ok := p.st.dirs[id]; ok && p.listed[id] == 0 {
			p.st.rr = id
			return id, true
		}
	}
	return 0, false
}

// visit lists one known folder with its stored hash and reconciles a changed answer.
func (p *poll) visit(ctx context.Context, id int64) error {
	d := p.st.dirs[id]
	if d == nil {
		return nil
	}
	p.listed[id]++
	p.listings++
	lst, notModified, err := p.c.list(ctx, id, d.hash)
	gone := errors.Is(err, remote.ErrNotFound) || (err == nil && !notModified && bool(lst.IsDeleted))
	if id == p.st.baseID {
		if gone || (err == nil && !notModified && lst.Path != p.c.basePath) {
			return p.baseMoved(ctx)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case gone:
		p.enqueue(d.parent) // its parent's listing finds it missing and looks it up
		return nil
	case err != nil:
		return err
	case notModified:
		return nil
	}
	if rel := p.st.dirPath(id); lst.Path != p.c.abs(rel) {
		// The folder itself moved. Its old and new parents report the move; list it again after them, once:
		// a path its parents never confirm (a name with "/" that no listing can hold) must not be asked for
		// again and again. The parents' reconcile has then decided what it is.
		p.enqueue(d.parent)
		if np, ok := p.c.rel(parentAbs(lst.Path)); ok {
			p.enqueue(p.nearestKnown(np))
		}
		if p.listed[id] < 2 && !p.queued[id] {
			p.queue = append(p.queue, id)
			p.queued[id] = true
		}
		return nil
	}
	if err := p.reconcile(ctx, id, &lst); err != nil {
		return err
	}
	if d := p.st.dirs[id]; d != nil {
		d.hash = lst.Hash
	}
	return nil
}

// baseMoved handles a pair root that is no longer where it was: gone → ErrRootMissing (the pair stops, nothing
// is deleted); replaced by another folder of the same path (a restore, a migration) → ErrOutOfSync, because
// the ids in the cursor no longer describe it.
func (p *poll) baseMoved(ctx context.Context) error {
	p.c.forgetDirs(p.c.basePath)
	id, _, err := p.c.listDir(ctx, p.c.basePath)
	switch {
	case errors.Is(err, remote.ErrNotFound):
		return fmt.Errorf("%s: %w: the folder is gone", p.c.spec, remote.ErrRootMissing)
	case err != nil:
		return err
	case id != p.st.baseID:
		return fmt.Errorf("%s: the folder was replaced (id %d, was %d): %w", p.c.spec, id, p.st.baseID, remote.ErrOutOfSync)
	}
	return nil
}

// reconcile compares a changed listing with the stored children of folder id.
func (p *poll) reconcile(ctx context.Context, id int64, lst *object) error {
	d := p.st.dirs[id]
	rel := p.st.dirPath(id)
	presentF, presentD := map[int64]bool{}, map[int64]bool{}
	for _, ch := range lst.Children {
		if ch.isFolder() {
			presentD[int64(ch.ID)] = true
		} else {
			presentF[int64(ch.ID)] = true
		}
	}
	// Children renamed here to a name tandem cannot hold stay where the cursor has them (a rename back to the
	// old name is then no change); the engine hears of them as skips from their old path, never as deletes.
	for _, sc := range lst.unholdable {
		k := itemKey{sc.obj.isFolder(), int64(sc.obj.ID)}
		var from remote.Path
		_, knownD := d.dirs[k.id]
		_, knownF := d.files[k.id]
		switch {
		case k.dir && knownD:
			presentD[k.id] = true
			from = p.st.dirPath(k.id)
		case !k.dir && knownF:
			presentF[k.id] = true
			from = p.st.filePath(k.id)
		}
		if from != "" {
			p.seen[k] = true
		}
		p.emit(remote.Change{Entry: skipEntry(rel, lst.Path, sc), From: from})
	}
	// Gone from here first, so a name they freed can be taken by what the listing shows.
	for _, f := range sortedKeys(d.files) {
		if !presentF[f] {
			if err := p.missing(ctx, itemKey{false, f}); err != nil {
				return err
			}
		}
	}
	for _, sub := range sortedKeys(d.dirs) {
		if !presentD[sub] {
			if err := p.missing(ctx, itemKey{true, sub}); err != nil {
				return err
			}
		}
	}
	// Known ids before new ones: a rename frees its old name before a new item takes it.
	kids := slices.Clone(lst.Children)
	known := func(o *object) bool {
		if o.isFolder() {
			return p.st.dirs[int64(o.ID)] != nil
		}
		return p.st.files[int64(o.ID)] != nil
	}
	slices.SortStableFunc(kids, func(a, b object) int {
		ka, kb := known(&a), known(&b)
		switch {
		case ka && !kb:
			return -1
		case kb && !ka:
			return 1
		}
		return 0
	})
	for i := range kids {
		ch := &kids[i]
		path, err := rel.Join(ch.name())
		if err != nil {
			continue
		}
		p.place(id, path, ch)
	}
	return nil
}

// place records that ch now lives in folder parent at path, and reports what that means.
func (p *poll) place(parent int64, path remote.Path, ch *object) {
	cid, name := int64(ch.ID), ch.name()
	key := itemKey{ch.isFolder(), cid}
	p.seen[key] = true
	if key.dir {
		if rec := p.st.dirs[cid]; rec != nil {
			if rec.parent == parent && rec.name == name {
				return
			}
			if p.st.isAncestor(cid, parent) {
				return // cannot be: a folder inside itself; the next poll sees a settled tree
			}
			from := p.st.dirPath(cid)
			p.clear(parent, name, key)
			p.st.reparentDir(cid, parent, name)
			p.structureChanged()
			p.emit(remote.Change{Entry: entryOf(ch, path), From: from})
			return
		}
		p.clear(parent, name, key)
		p.st.addDir(cid, parent, name)
		p.structureChanged()
		p.emit(remote.Change{Entry: entryOf(ch, path)})
		p.enqueue(cid) // new: listed now, budget or not, so its contents arrive with it
		return
	}
	rec := p.st.files[cid]
	switch {
	case rec == nil:
		p.clear(parent, name, key)
		p.st.addFile(cid, parent, name, int64(ch.RevisionID))
		p.emit(remote.Change{Entry: entryOf(ch, path)})
	case rec.parent != parent || rec.name != name:
		from := p.st.filePath(cid)
		p.clear(parent, name, key)
		p.st.reparentFile(cid, parent, name)
		rec.rev = int64(ch.RevisionID)
		p.emit(remote.Change{Entry: entryOf(ch, path), From: from})
	case rec.rev != int64(ch.RevisionID):
		rec.rev = int64(ch.RevisionID)
		p.emit(remote.Change{Entry: entryOf(ch, path)})
	}
}

// clear makes room at (parent, name) for key: another known item stored under that name is reported deleted
// first (a swap or a replace; if it still exists elsewhere, the listing that finds it reports it as new).
func (p *poll) clear(parent int64, name string, key itemKey) {
	d := p.st.dirs[parent]
	for f := range d.files {
		if r := p.st.files[f]; r.name == name && (key.dir || f != key.id) {
			p.emitDelete(p.st.filePath(f), itemKey{false, f})
		}
	}
	for sub := range d.dirs {
		if r := p.st.dirs[sub]; r.name == name && (!key.dir || sub != key.id) {
			p.emitDelete(p.st.dirPath(sub), itemKey{true, sub})
		}
	}
}

func (p *poll) emit(c remote.Change) { p.out = append(p.out, c) }

// emitDelete reports the item at path gone and forgets it (a folder with everything below it).
func (p *poll) emitDelete(path remote.Path, k itemKey) {
	if k.dir {
		if _, ok := p.st.dirs[k.id]; !ok {
			return
		}
		p.st.removeDir(k.id)
		p.structureChanged()
	} else {
		if _, ok := p.st.files[k.id]; !ok {
			return
		}
		p.st.removeFile(k.id)
	}
	p.emit(remote.Change{Entry: remote.Entry{Path: path, Dir: k.dir}, Deleted: true})
}

// missing handles a known child absent from its folder's new listing: looked up by id, it is deleted (404 or
// is_deleted), moved out of the pair root (reported deleted), or moved inside it (reported as a move).
func (p *poll) missing(ctx context.Context, k itemKey) error {
	if p.seen[k] {
		return nil // already found in its new place during this poll
	}
	var old remote.Path
	if k.dir {
		old = p.st.dirPath(k.id)
	} else {
		old = p.st.filePath(k.id)
	}
	route := "/" + strconv.FormatInt(k.id, 10)
	if k.dir {
		route = folderPath(k.id)
	}
	var o object
	p.lookups++
	err := p.c.call(ctx, "lookup", http.MethodGet, p.c.rootPath(route),
		url.Values{"include_children": {"false"}, "include_permissions": {"false"}}, true, p.c.decode(&o))
	if errors.Is(err, remote.ErrNotFound) || (err == nil && (bool(o.IsDeleted) || o.isFolder() != k.dir)) {
		p.emitDelete(old, k)
		return nil
	}
	if err != nil {
		return err
	}
	now, inside := p.c.rel(o.Path)
	if !inside || now == remote.Root {
		p.emitDelete(old, k)
		return nil
	}
	if np, ok := p.dirByPath(now.Dir()); ok {
		if np == p.parentOf(k) && now.Base() == p.nameOf(k) {
			return nil // back where it was: the listing was older than the lookup
		}
		if k.dir && p.st.isAncestor(k.id, np) {
			return nil
		}
		p.place(np, now, &o)
		p.enqueue(np) // its hash changed too
		return nil
	}
	// Moved into a folder not known yet: list the nearest known ancestor, whose new subfolders are listed
	// recursively; the item turns up there. If it does not, drain reports it deleted.
	p.pending[k] = old
	p.enqueue(p.nearestKnown(now.Dir()))
	return nil
}

func (p *poll) parentOf(k itemKey) int64 {
	if k.dir {
		return p.st.dirs[k.id].parent
	}
	return p.st.files[k.id].parent
}

func (p *poll) nameOf(k itemKey) string {
	if k.dir {
		return p.st.dirs[k.id].name
	}
	return p.st.files[k.id].name
}

// applyFeed folds modified_since results in: new files and new revisions in known folders are reported at once
// (and their folders listed this poll, so the stored hash follows); anything else only directs the sweep.
// Repeats from the overlap window carry a stored (id, revision) and are skipped.
func (p *poll) applyFeed(results []object) error {
	for i := range results {
		o := &results[i]
		if o.Type != "file" || o.ID <= 0 {
			continue
		}
		id := int64(o.ID)
		rec := p.st.files[id]
		rel, inside := p.c.rel(o.Path)
		if !inside || rel == remote.Root {
			if rec != nil {
				p.enqueue(rec.parent) // moved out (or renamed to a name tandem cannot hold): the sweep decides
			}
			continue
		}
		if o.IsDeleted {
			if rec != nil {
				p.enqueue(rec.parent)
			}
			continue
		}
		if rec != nil && rec.rev == int64(o.RevisionID) && p.st.filePath(id) == rel {
			continue
		}
		p.fresh++
		parent, ok := p.dirByPath(rel.Dir())
		if !ok {
			p.enqueue(p.nearestKnown(rel.Dir()))
			if rec != nil {
				p.enqueue(rec.parent)
			}
			continue
		}
		if rec != nil {
			p.enqueue(rec.parent)
		}
		p.place(parent, rel, o)
		p.enqueue(parent)
	}
	return nil
}

func sortedKeys(m map[int64]struct{}) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
