package pcloud

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// The change feed is pCloud's `diff`. Its events carry an item's state *after* the event only: a move is a
// modifyfile/modifyfolder whose parentfolderid or name differ from what the client knew. To report the From of a
// move the feed needs the place every item had at the cursor, so the cursor carries it: the root's folderid, the
// diffid, and the (id, parent, name) of every folder and file below the root, varint-encoded and deflated.
// Choice and cost: the cursor grows with the tree (about 10 bytes per item after compression), and the engine
// rewrites it once per batch. Re-deriving the map by listing was rejected: a listing shows the state *now*, so
// an item moved between the cursor and the listing would be reported without its From, and the engine would
// keep a stale copy at the old path. Replaying the whole history from diffid 0 (pclsync's way) is exact but
// costs years of events on every start.

const (
	cursorMagic   = 'P'
	cursorVersion = 2 // 2: the time of the last successful read follows the diffid
	// maxCursorAge: pCloud compacts history older than about 6 months and sends no signal (§6.4), so a cursor
	// not read for longer than this is not trusted: the engine lists again and reconciles against the base.
	maxCursorAge = 150 * 24 * time.Hour
)

// Head implements remote.Remote: diff?last=0 gives the current diffid; the root's subtree is listed and the
// events after that diffid are folded in, so the cursor describes the tree at its own diffid.
func (c *Client) Head(ctx context.Context) (remote.Cursor, error) {
	rootID, err := c.root(ctx)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	a, err := c.diff(ctx, c.api, url.Values{"last": {"0"}})
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	readAt := c.now()
	m, err := c.listTree(ctx, rootID, true)
	if err != nil {
		return nil, fmt.Errorf("head: list %s: %w", c, err)
	}
	f := &feed{c: c, ctx: ctx, t: newTree(rootID), diffid: a.DiffID, readAt: readAt}
	f.t.takeListing(m)
	// Replay what happened since diffid: the listing may be newer than some of it, and replaying post-states in
	// order ends at the newest state either way. The changes are discarded: the caller walks next.
	for {
		end, err := f.step(false)
		if err != nil {
			return nil, fmt.Errorf("head: %w", err)
		}
		if end {
			break
		}
	}
	return c.keep(f), nil
}

// keep encodes the feed's tree as the next cursor and remembers both, so the next Changes from this cursor
// skips decoding.
func (c *Client) keep(f *feed) remote.Cursor {
	cur := encodeCursor(f.t, f.diffid, f.readAt)
	c.feedMu.Lock()
	c.feedNext, c.feedTree = cur, f.t
	c.feedMu.Unlock()
	return cur
}

// Changes implements remote.Remote. It answers at once unless remote.LongPollAllowed(ctx), in which case it waits
// (diff?block=1, PollTimeout at a time) until something below the root changed or ctx ends. A diffid pCloud no
// longer honours (a `reset` event or an error result) gives remote.ErrOutOfSync.
func (c *Client) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	rootID, err := c.root(ctx)
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes: %w", err)
	}
	var t *tree
	var diffid uint64
	var readAt time.Time
	c.feedMu.Lock()
	if c.feedTree != nil && bytes.Equal(cur, c.feedNext) {
		t, c.feedTree, c.feedNext = c.feedTree, nil, nil // taken: it is about to change
	}
	c.feedMu.Unlock()
	if t != nil {
		diffid, readAt, err = cursorHead(cur)
	} else {
		t, diffid, readAt, err = decodeCursor(cur)
	}
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes: %w: %w", remote.ErrOutOfSync, err)
	}
	if age := c.now().Sub(readAt); age > maxCursorAge {
		return remote.Batch{}, fmt.Errorf("changes: %w: the change cursor was last read %s ago; pCloud compacts "+
			"history older than about 6 months without a signal, so the folder is listed again", remote.ErrOutOfSync,
			age.Round(time.Hour))
	}
	if t.root != rootID {
		return remote.Batch{}, fmt.Errorf("changes: %w: the cursor belongs to another root folder", remote.ErrOutOfSync)
	}
	f := &feed{c: c, ctx: ctx, t: t, diffid: diffid, readAt: readAt, block: remote.LongPollAllowed(ctx)}
	for {
		end, err := f.step(true)
		if err != nil {
			return remote.Batch{}, fmt.Errorf("changes: %w", err)
		}
		// Events about other parts of the account make no Changes: read on (until the end of the feed; a long
		// poll waits for news below the root), so an empty Batch really means "nothing".
		if len(f.out) > 0 || f.timedOut || (!f.block && end) {
			break
		}
	}
	return remote.Batch{Changes: f.out, Next: c.keep(f)}, nil
}

// feed applies diff answers to a complete tree of the root's subtree and collects the changes they mean.
type feed struct {
	c        *Client
	ctx      context.Context
	t        *tree
	diffid   uint64
	readAt   time.Time // when the feed was last read to its end (or at least successfully): the cursor's age
	block    bool
	timedOut bool
	out      []remote.Change
}

// step reads one diff answer after f.diffid and applies it. end: the answer had no entries and did not move the
// diffid, so nothing more is waiting. A reply shorter than the limit does not prove the end: pCloud drops events
// that cancel each other inside one reply (§6.6 4b).
func (f *feed) step(emit bool) (end bool, err error) {
	c := f.c
	q := url.Values{"diffid": {strconv.FormatUint(f.diffid, 10)}, "limit": {strconv.Itoa(c.o.DiffLimit)}}
	var a *diffAnswer
	if f.block {
		q.Set("block", "1")
		pctx, cancel := context.WithTimeout(f.ctx, c.o.PollTimeout)
		a, err = c.diff(pctx, c.poll, q)
		cancel()
		if err != nil && f.ctx.Err() == nil && pctx.Err() != nil {
			f.timedOut = true // the server kept quiet for a whole poll: "no news" (§6.5)
			return true, nil
		}
	} else {
		a, err = c.diff(f.ctx, c.api, q)
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.kind != remote.ErrUnauthorized {
		// Not a temporary refusal (those are retried by diff): the server refuses this diffid for good.
		return false, fmt.Errorf("%w: %w", remote.ErrOutOfSync, err)
	}
	if err != nil {
		return false, err
	}
	f.readAt = c.now()
	for _, e := range a.Entries {
		if e.Event == "reset" {
			return false, fmt.Errorf("%w: pcloud sent a reset event", remote.ErrOutOfSync)
		}
		if err := f.apply(e, emit); err != nil {
			return false, err
		}
	}
	moved := a.DiffID > f.diffid
	if moved {
		f.diffid = a.DiffID
	}
	return len(a.Entries) == 0 && !moved, nil
}

// diff runs one diff request. Rate limiting (4xxx), temporary trouble (5xxx, 19xx, HTTP 5xx/429) and transport
// errors are retried on the same diffid with backoff and no limit but ctx, as pclsync does (§6.6 step 3): a
// throttling episode is not a lost cursor, and answering it with a full listing would make it worse.
func (c *Client) diff(ctx context.Context, hc *httpx.Client, q url.Values) (*diffAnswer, error) {
	for i := 1; ; i++ {
		a, err := callWith[diffAnswer](ctx, c, hc, "diff", q, true)
		if err == nil || ctx.Err() != nil || !transient(err) {
			return a, err
		}
		wait := c.backoff(min(i, 16))
		log := c.lg.Info
		if i >= 3 {
			log = c.lg.Warn // a pass waiting on pCloud says so (tandem once shows warnings)
		}
		log("pcloud refuses the change feed for now; retrying with the same cursor", zap.Int("attempt", i),
			zap.Duration("wait", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pcloud diff: %w (last error: %v)", ctx.Err(), err)
		case <-c.clk.After(wait):
		}
	}
}

// transient reports a failure that says nothing about the request itself: a lost or cut answer, an HTTP
// 429/5xx, or a result code of the 19xx, 4xxx or 5xxx classes (§7.1).
func transient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		c := ae.Code
		return c >= 1900 && c < 2000 || c >= 4000 && c < 6000
	}
	if errors.Is(err, remote.ErrUnauthorized) {
		return false
	}
	return ambiguous(err)
}

func timeOf(unix int64) time.Time { return time.Unix(unix, 0).UTC() }

// visible is an item's path if the engine may see it (below the root, every name valid, not shadowed).
func (f *feed) visible(n *node) (remote.Path, bool) {
	if n == nil {
		return "", false
	}
	return f.t.path(n)
}

// apply folds one event into the tree and records what it means as Changes.
func (f *feed) apply(e diffEntry, emit bool) error {
	m := e.Metadata
	if m == nil {
		return nil // account, share and unknown events carry no item
	}
	switch e.Event {
	case "createfolder", "modifyfolder", "createfile", "modifyfile", "deletefolder", "deletefile":
	default:
		return nil // unknown events are ignored, not errors (§6.2)
	}
	if m.IsFolder && m.FolderID == f.t.root {
		if e.Event == "deletefolder" || m.IsDeleted {
			return fmt.Errorf("%s: %w", f.c, remote.ErrRootMissing)
		}
		return nil // the root renamed or moved: paths below it do not change
	}
	if m.DeletedFileID != 0 && m.DeletedFileID != m.FileID {
		if old := f.t.get(false, m.DeletedFileID); old != nil {
			if p, ok := f.visible(old); ok && emit {
				f.out = append(f.out, remote.Change{Entry: remote.Entry{Path: p}, Deleted: true})
			}
			f.t.remove(old)
		}
	}
	before := f.t.get(m.IsFolder, m.id())
	oldPath, wasVisible := f.visible(before)
	var shadowed []remote.Path
	if m.IsFolder && before == nil {
		// A new folder may hide a same-name file the engine knows (tandem reports the folder): that file goes.
		if p := f.t.listedDir(parentOr(m)); p != nil {
			if id, ok := p.kidFiles[m.Name]; ok {
				if fp, ok := f.visible(f.t.files[id]); ok {
					shadowed = append(shadowed, fp)
				}
			}
		}
	}
	var after *node
	if e.Event == "deletefolder" || e.Event == "deletefile" || m.IsDeleted {
		if before != nil {
			f.t.remove(before)
		}
	} else {
		after = f.t.set(m)
	}
	newPath, isVisible := f.visible(after)
	if !emit {
		if after != nil && after.dir && before == nil {
			return f.fill(after, false)
		}
		return nil
	}
	for _, p := range shadowed {
		f.out = append(f.out, remote.Change{Entry: remote.Entry{Path: p}, Deleted: true})
	}
	switch {
	case wasVisible && !isVisible:
		if after != nil && remote.ValidName(m.Name) != nil {
			if sp, ok := f.skipPath(after); ok {
				// Renamed in place to a name tandem cannot hold: no delete, so the local copy stays. The skip names
				// the old path (and the id), where the engine keeps what it has stored (RELIABILITY I4).
				ent := f.c.entryOf(sp, m)
				ent.Skip = "renamed on pCloud from " + oldPath.Quoted() + " to a name tandem cannot hold: " +
					remote.ValidName(m.Name).Error()
				f.c.lg.Warn("remote entry skipped", zap.String("path", string(sp)), zap.String("reason", ent.Skip))
				f.out = append(f.out, remote.Change{Entry: ent, From: oldPath})
				return nil
			}
		}
		f.out = append(f.out, remote.Change{Entry: remote.Entry{Path: oldPath, Dir: before.dir}, Deleted: true})
	case isVisible && wasVisible:
		ch := remote.Change{Entry: f.c.entryOf(newPath, m)}
		if oldPath != newPath {
			ch.From = oldPath
		}
		f.out = append(f.out, ch)
	case isVisible:
		f.out = append(f.out, remote.Change{Entry: f.c.entryOf(newPath, m)})
		if after.dir {
			// Moved in from outside, restored from the trash, renamed from an invalid name, or new: whatever is
			// inside has to be reported too.
			if before == nil {
				return f.fill(after, true)
			}
			f.emitBelow(after)
		}
	case after != nil && remote.ValidName(m.Name) != nil:
		f.skipName(after, "invalid name")
	}
	if after != nil && after.dir && before == nil && !isVisible {
		return f.fill(after, false)
	}
	return nil
}

// skipPath is the printable path of an item whose own name tandem cannot hold, in a folder it can (false: the
// folder is itself hidden or outside the root). It is escaped and is no valid Path: Entry.Skip carries it.
func (f *feed) skipPath(n *node) (remote.Path, bool) {
	p := f.t.dirs[n.parent]
	if p == nil {
		return "", false
	}
	dir, ok := f.t.path(p)
	if !ok {
		return "", false
	}
	if dir == remote.Root {
		return remote.Path(remote.Escape(n.name)), true
	}
	return remote.Path(remote.Escape(string(dir) + "/" + n.name)), true
}

// skipName reports an item below the root whose own name tandem cannot hold (remote.OpenOptions.OnSkip). Items
// in a folder that is itself hidden are not reported again.
func (f *feed) skipName(n *node, why string) {
	p := f.t.dirs[n.parent]
	if p == nil {
		return
	}
	dir, ok := f.t.path(p)
	if !ok {
		return
	}
	if err := remote.ValidName(n.name); err != nil {
		why += ": " + err.Error()
	}
	f.c.skipped(string(dir), n.name, why)
}

// fill lists a folder the tree did not know (so its contents are known below it) and reports what it holds.
func (f *feed) fill(d *node, emit bool) error {
	m, err := f.c.listTree(f.ctx, d.id, true)
	if errors.Is(err, remote.ErrNotFound) {
		return nil // gone again; its delete event follows
	}
	if err != nil {
		return fmt.Errorf("list new folder %d: %w", d.id, err)
	}
	// The listing shows the folder as it is now, but its own name and place must stay what the event being
	// applied says: a later event of the same reply (a rename) moves it, and reports that move with its From.
	// Taking the listing's name here would report the folder at its old name and then, silently, again at the
	// new one: two paths for one folder id (issue 10 item 6, the "phantom" folder).
	m.Name = d.name
	parent := d.parent
	m.ParentFolderID = &parent
	f.t.takeNewFolder(m)
	if emit {
		f.emitBelow(d)
	}
	return nil
}

// emitBelow reports every visible item below folder d as a create, parents first.
func (f *feed) emitBelow(d *node) {
	f.t.descendants(d, func(n *node) {
		if p, ok := f.visible(n); ok {
			e := remote.Entry{Path: p, Dir: n.dir, ID: entryID(n.dir, n.id)}
			if !n.dir {
				e.Size, e.Rev = n.size, strconv.FormatUint(n.hash, 10)
			}
			e.ModTime = timeOf(n.mtime)
			f.out = append(f.out, remote.Change{Entry: e})
		}
	})
}

// ---- cursor encoding ----

// encodeCursor writes magic, version, then a deflated body: root, diffid, the Unix time of the last successful
// read, the folders (parents before children
// is not required: decode links in a second pass) and the files, each as id, parent, name.
func encodeCursor(t *tree, diffid uint64, readAt time.Time) remote.Cursor {
	var raw bytes.Buffer
	var tmp [binary.MaxVarintLen64]byte
	uv := func(v uint64) { raw.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	item := func(n *node) {
		uv(n.id)
		uv(n.parent)
		uv(uint64(len(n.name)))
		raw.WriteString(n.name)
	}
	uv(t.root)
	uv(diffid)
	uv(uint64(max(readAt.Unix(), 0)))
	dirs := sortedIDs(t.dirs)
	uv(uint64(len(dirs) - 1))
	for _, id := range dirs {
		if id != t.root {
			item(t.dirs[id])
		}
	}
	files := sortedIDs(t.files)
	uv(uint64(len(files)))
	for _, id := range files {
		item(t.files[id])
	}
	var out bytes.Buffer
	out.WriteByte(cursorMagic)
	out.WriteByte(cursorVersion)
	w, _ := flate.NewWriter(&out, flate.BestSpeed)
	_, _ = w.Write(raw.Bytes())
	_ = w.Close()
	return out.Bytes()
}

func sortedIDs(m map[uint64]*node) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// maxCursorBody bounds what a cursor may inflate to (a damaged or hostile cursor must not exhaust memory).
const maxCursorBody = 1 << 30

func cursorBody(cur remote.Cursor) (*bytes.Reader, error) {
	if len(cur) < 2 || cur[0] != cursorMagic {
		return nil, errors.New("not a pcloud cursor")
	}
	if cur[1] != cursorVersion {
		// Version 1 did not record when it was last read: its age is unknown, so it is not trusted (§6.4).
		return nil, fmt.Errorf("pcloud cursor version %d, want %d", cur[1], cursorVersion)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(cur[2:])), maxCursorBody))
	if err != nil {
		return nil, fmt.Errorf("damaged pcloud cursor: %w", err)
	}
	return bytes.NewReader(raw), nil
}

// cursorHead reads a cursor's diffid and time without decoding its tree.
func cursorHead(cur remote.Cursor) (uint64, time.Time, error) {
	r, err := cursorBody(cur)
	if err != nil {
		return 0, time.Time{}, err
	}
	var v [3]uint64
	for i := range v {
		if v[i], err = binary.ReadUvarint(r); err != nil {
			return 0, time.Time{}, fmt.Errorf("damaged pcloud cursor: %w", err)
		}
	}
	return v[1], time.Unix(int64(min(v[2], 1<<40)), 0), nil
}

// decodeCursor rebuilds the tree a cursor describes. Any inconsistency (an item whose parent is unknown, a
// duplicate, trailing bytes) is an error: the caller answers ErrOutOfSync and the engine lists again.
func decodeCursor(cur remote.Cursor) (*tree, uint64, time.Time, error) {
	r, err := cursorBody(cur)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	bad := func(why string) (*tree, uint64, time.Time, error) {
		return nil, 0, time.Time{}, fmt.Errorf("damaged pcloud cursor: %s", why)
	}
	rd := func() (uint64, bool) {
		v, err := binary.ReadUvarint(r)
		return v, err == nil
	}
	root, ok1 := rd()
	diffid, ok2 := rd()
	at, ok3 := rd()
	if !ok1 || !ok2 || !ok3 {
		return bad("header")
	}
	t := newTree(root)
	t.setListed(t.dirs[root])
	var all []*node
	for _, dir := range []bool{true, false} {
		n, ok := rd()
		if !ok || n > uint64(r.Len()) {
			return bad("count")
		}
		for i := uint64(0); i < n; i++ {
			id, ok1 := rd()
			parent, ok2 := rd()
			l, ok3 := rd()
			if !ok1 || !ok2 || !ok3 || l > uint64(r.Len()) {
				return bad("item")
			}
			name := make([]byte, l)
			if _, err := io.ReadFull(r, name); err != nil {
				return bad("name")
			}
			nd := &node{id: id, parent: parent, name: string(name), dir: dir}
			if dir {
				if t.dirs[id] != nil {
					return bad("duplicate folder")
				}
				t.setListed(nd)
				t.dirs[id] = nd
			} else {
				if t.files[id] != nil {
					return bad("duplicate file")
				}
				t.files[id] = nd
			}
			all = append(all, nd)
		}
	}
	if r.Len() != 0 {
		return bad("trailing bytes")
	}
	for _, n := range all {
		p := t.dirs[n.parent]
		if p == nil || (n.dir && n.id == n.parent) {
			return bad("item outside the tree")
		}
		t.link(n)
	}
	// A parent loop would make path() spin: every folder must reach the root.
	for _, n := range all {
		if !n.dir {
			continue
		}
		steps, cur := 0, n
		for cur.id != root {
			cur = t.dirs[cur.parent]
			if steps++; steps > len(all) {
				return bad("parent loop")
			}
		}
	}
	return t, diffid, time.Unix(int64(min(at, 1<<40)), 0), nil
}
