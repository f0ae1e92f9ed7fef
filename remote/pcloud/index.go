package pcloud

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// ---- root and index ----

// root resolves the sync root's folderid once (listing each component from the account root).
func (c *Client) root(ctx context.Context) (uint64, error) {
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.rootKnown {
		return c.rootID, nil
	}
	id, err := c.resolveRoot(ctx)
	if err != nil {
		return 0, err
	}
	c.rootID, c.rootKnown = id, true
	c.ixMu.Lock()
	c.ix, c.ixInit = newTree(id), false
	c.ixMu.Unlock()
	return id, nil
}

func (c *Client) resolveRoot(ctx context.Context) (uint64, error) {
	cur := uint64(0)
	for i, name := range c.rootNames {
		q := idParam("folderid", cur)
		q.Set("nofiles", "1")
		a, err := c.listfolder(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("find %s: %w", c.rootSpec, err)
		}
		next, found := uint64(0), false
		if a.Metadata != nil {
			for _, k := range a.Metadata.Contents {
				if k != nil && k.IsFolder && !k.IsDeleted && k.Name == name {
					next, found = k.FolderID, true
				}
			}
		}
		if !found {
			return 0, fmt.Errorf("find %s: folder /%s: %w", c.rootSpec, strings.Join(c.rootNames[:i+1], "/"), remote.ErrNotFound)
		}
		cur = next
	}
	return cur, nil
}

// forgetRoot drops the cached root id (the root was deleted): the next call resolves it again.
func (c *Client) forgetRoot() {
	c.rootMu.Lock()
	c.rootKnown = false
	c.rootMu.Unlock()
}

// sync brings the index up to the newest diffid. Callers that arrive while a sync runs wait for it and then
// run their own, unless one that began after they asked has finished meanwhile: a check made after sync
// returns sees every change that happened before sync was called.
func (c *Client) sync(ctx context.Context) error {
	if _, err := c.root(ctx); err != nil {
		return err
	}
	ticket := c.syncTicket.Add(1)
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.syncStarted >= ticket {
		return nil
	}
	start := c.syncTicket.Load()
	limit := c.o.DiffLimit
	for {
		c.ixMu.Lock()
		init, from := c.ixInit, c.ixDiff
		c.ixMu.Unlock()
		q := url.Values{}
		if !init {
			q.Set("last", "0") // no entries, only the current diffid: the index starts empty and fills lazily
		} else {
			q.Set("diffid", strconv.FormatUint(from, 10))
			q.Set("limit", strconv.Itoa(limit))
		}
		a, err := c.diff(ctx, c.api, q) // temporary refusals are retried there, without limit
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.kind != remote.ErrUnauthorized && init {
				// The server refuses this diffid for good: start over (§6.6 step 3).
				c.resetIndex()
				continue
			}
			return fmt.Errorf("read changes: %w", err)
		}
		if !init {
			c.ixMu.Lock()
			c.ixDiff, c.ixInit = a.DiffID, true
			c.ixMu.Unlock()
			break
		}
		reset, rootGone := c.applyIndex(from, a)
		if rootGone {
			c.forgetRoot()
			return fmt.Errorf("read changes: %s was deleted: %w", c, remote.ErrNotFound)
		}
		if reset {
			continue
		}
		// A short reply does not prove the end (cancelling events are dropped): only an empty one that did not
		// move the diffid does.
		if len(a.Entries) == 0 && a.DiffID <= from {
			break
		}
	}
	c.syncStarted = start
	return nil
}

func (c *Client) resetIndex() {
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix != nil {
		c.ix = newTree(c.ix.root)
	}
	c.ixInit = false
}

// applyIndex folds one diff answer into the index. reset: the index was dropped (a `reset` event) and must be
// rebuilt; rootGone: the root folder itself was deleted.
func (c *Client) applyIndex(from uint64, a *diffAnswer) (reset, rootGone bool) {
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix == nil {
		return false, false
	}
	for _, e := range a.Entries {
		if e.Event == "reset" {
			c.ix, c.ixInit = newTree(c.ix.root), false
			return true, false
		}
		m := e.Metadata
		if m == nil {
			continue
		}
		switch e.Event {
		case "createfolder", "modifyfolder", "createfile", "modifyfile":
			if m.DeletedFileID != 0 {
				c.ix.del(false, m.DeletedFileID)
			}
			if m.IsDeleted {
				c.ix.del(m.IsFolder, m.id())
			} else {
				c.ix.set(m)
			}
		case "deletefolder", "deletefile":
			if m.IsFolder && m.FolderID == c.ix.root {
				c.ix, c.ixInit = newTree(c.ix.root), false
				return true, true
			}
			c.ix.del(m.IsFolder, m.id())
		}
	}
	if c.ix.size() > c.o.MaxIndex {
		c.ix = newTree(c.ix.root) // consistent (nothing listed) and rebuilt lazily
	}
	// A listing inserted meanwhile rewound ixDiff so its older events are replayed: keep the lower value.
	if c.ixDiff == from {
		c.ixDiff = a.DiffID
	}
	return false, false
}

// listInto lists folder id (non-recursively) into the index. ixDiff is rewound to what it was before the request,
// so the next sync replays every event the listing may or may not reflect: events carry post-states, and
// replaying them in order ends at the newest state whatever the listing said.
func (c *Client) listInto(ctx context.Context, id uint64) error {
	c.ixMu.Lock()
	before := c.ixDiff
	c.ixMu.Unlock()
	a, err := c.listfolder(ctx, idParam("folderid", id))
	if err != nil {
		return err
	}
	if a.Metadata == nil || !a.Metadata.IsFolder || a.Metadata.FolderID != id {
		return fmt.Errorf("pcloud listfolder: answer without the folder's metadata")
	}
	if a.Metadata.Contents == nil {
		a.Metadata.Contents = []*meta{}
	}
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix.dirs[id] == nil {
		return nil // forgotten meanwhile (moved or deleted): the caller looks again
	}
	c.ix.setListing(a.Metadata)
	c.ixDiff = min(c.ixDiff, before)
	return nil
}

// found is a resolved item: a copy of its node (never the live one) and its path.
type found struct {
	n node
	p remote.Path
}

// lookup resolves p to an item after a sync, listing folders on the way that the index does not know yet.
func (c *Client) lookup(ctx context.Context, p remote.Path) (found, error) {
	if err := c.sync(ctx); err != nil {
		return found{}, err
	}
	var names []string
	if p != remote.Root {
		names = strings.Split(string(p), "/")
	}
	for attempt := 0; ; attempt++ {
		c.ixMu.Lock()
		cur := c.ix.dirs[c.ix.root]
		var need uint64
		needList := false
		for i, name := range names {
			if !cur.listed {
				need, needList = cur.id, true
				break
			}
			k := c.ix.lookupKid(cur, name)
			if k == nil || (i < len(names)-1 && !k.dir) {
				c.ixMu.Unlock()
				return found{}, fmt.Errorf("%s: %w", p.Quoted(), remote.ErrNotFound)
			}
			cur = k
		}
		if !needList {
			f := found{n: *cur, p: p}
			f.n.kids, f.n.kidFiles = nil, nil
			c.ixMu.Unlock()
			return f, nil
		}
		c.ixMu.Unlock()
		if attempt > 64 {
			return found{}, fmt.Errorf("%s: the folder tree keeps changing while it is resolved", p.Quoted())
		}
		if err := c.listInto(ctx, need); err != nil && !errors.Is(err, remote.ErrNotFound) {
			return found{}, fmt.Errorf("%s: %w", p.Quoted(), err)
		}
		if err := c.sync(ctx); err != nil {
			return found{}, err
		}
	}
}

// validPath re-checks a Path handed in by a caller: Path is a string type, so a hostile or buggy caller can pass
// anything, and nothing outside the root may ever be touched.
func validPath(p remote.Path) error {
	if _, err := remote.ParsePath(string(p)); err != nil {
		return err
	}
	return nil
}

// entry builds the remote.Entry of a resolved item.
func (c *Client) entry(f found) remote.Entry {
	n := f.n
	e := remote.Entry{Path: f.p, Dir: n.dir, ModTime: time.Unix(n.mtime, 0).UTC(), ID: entryID(n.dir, n.id)}
	if !n.dir {
		e.Size, e.Rev = n.size, strconv.FormatUint(n.hash, 10)
		e.Hash = c.knownSHA1(n.id, n.hash)
	}
	return e
}

// entryOf builds the Entry of an item from an API answer's metadata.
func (c *Client) entryOf(p remote.Path, m *meta) remote.Entry {
	e := remote.Entry{Path: p, Dir: m.IsFolder, ModTime: m.Modified.Time(), ID: entryID(m.IsFolder, m.id()), Rev: m.rev()}
	if !m.IsFolder {
		e.Size = clampSize(m.Size)
		e.Hash = c.knownSHA1(m.FileID, m.Hash)
	}
	return e
}

func (c *Client) knownSHA1(id, hash uint64) remote.Hash {
	c.sumMu.Lock()
	defer c.sumMu.Unlock()
	if s, ok := c.sums[id]; ok && s.hash == hash && s.sha1 != "" {
		return remote.Hash{Algo: "sha1", Hex: s.sha1}
	}
	return remote.Hash{}
}

func (c *Client) rememberSum(id uint64, s fileSum) {
	c.sumMu.Lock()
	defer c.sumMu.Unlock()
	if len(c.sums) > c.o.MaxIndex {
		clear(c.sums)
	}
	c.sums[id] = s
}
