package pcloud

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// listTree lists folder id with all its descendants: one recursive listfolder where pCloud allows it. Folder 0
// (a pair rooted at the account root) is refused with 1101 since 2026, and very big or deep trees fail with
// 5000 (§8): then the folder is listed flat and each subfolder recursively, down to per-folder listings where a
// subtree still fails. A subfolder that cannot be read (2003) is kept with Incomplete contents (marked by
// meta.incomplete) instead of failing the whole walk; one that vanished meanwhile (2005) is left out.
func (c *Client) listTree(ctx context.Context, id uint64, recursive bool) (*meta, error) {
	q := idParam("folderid", id)
	if recursive {
		q.Set("recursive", "1")
	}
	a, err := c.listfolder(ctx, q)
	if recursive && err != nil && ctx.Err() == nil && !errors.Is(err, remote.ErrUnauthorized) &&
		!errors.Is(err, remote.ErrNotFound) && !hasCode(err, codeAccessDenied) {
		// Refused (1101 on the account root, 5000 for a tree too big or deep) or any other trouble with a big
		// answer (cut off, malformed, too slow): the folder listed flat and each subfolder on its own is smaller.
		c.lg.Debug("recursive listing failed; listing folder by folder", zap.Uint64("folderid", id), zap.Error(err))
		return c.listTree(ctx, id, false)
	}
	if err != nil {
		return nil, err
	}
	m := a.Metadata
	if m == nil || !m.IsFolder || m.FolderID != id {
		return nil, fmt.Errorf("pcloud listfolder: answer without the folder's metadata")
	}
	if m.Contents == nil {
		m.Contents = []*meta{}
	}
	if recursive {
		fillContents(m)
		return m, nil
	}
	// Flat listing: descend into each subfolder, recursively first.
	kept := m.Contents[:0]
	for _, k := range m.Contents {
		if k == nil || !k.IsFolder || k.IsDeleted {
			kept = append(kept, k)
			continue
		}
		sub, err := c.listTree(ctx, k.FolderID, true)
		switch {
		case errors.Is(err, remote.ErrNotFound):
			continue
		case hasCode(err, codeAccessDenied):
			c.lg.Warn("folder cannot be listed; its contents are kept as they were", zap.Uint64("folderid", k.FolderID),
				zap.Error(err))
			k.Contents, k.incomplete = []*meta{}, true
		case err != nil:
			return nil, err
		default:
			k.Contents = sub.Contents
			if k.Contents == nil {
				k.Contents = []*meta{}
			}
		}
		kept = append(kept, k)
	}
	m.Contents = kept
	return m, nil
}

// Walk implements remote.Remote: one listing of dir's subtree (listTree), reported parents first. Names that
// cannot be a Path are skipped with their subtree and logged once (escaped), never returned; a file that shares
// its name with a sibling folder (pCloud allows it) is skipped and logged, the folder is reported.
func (c *Client) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	if err := validPath(dir); err != nil {
		return err
	}
	d, err := c.lookup(ctx, dir)
	if err != nil {
		return fmt.Errorf("walk %w", err)
	}
	if !d.n.dir {
		return fmt.Errorf("walk %s: not a folder", dir.Quoted())
	}
	c.ixMu.Lock()
	before := c.ixDiff
	c.ixMu.Unlock()
	m, err := c.listTree(ctx, d.n.id, true)
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir.Quoted(), err)
	}
	c.remember(m, before)
	return c.emit(dir, m, fn)
}

// remember puts a listing into the index (when it is small enough to keep), rewinding the diffid so events the
// listing may predate are replayed (see listInto).
func (c *Client) remember(m *meta, before uint64) {
	n := 0
	countItems(m, &n)
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix == nil || c.ix.size()+n > c.o.MaxIndex || (m.FolderID != c.ix.root && c.ix.listedDir(parentOr(m)) == nil) {
		return
	}
	c.ix.setListing(m)
	c.ixDiff = min(c.ixDiff, before)
}

// fillContents gives every folder of a recursive listing a contents list: an empty folder is listed too.
func fillContents(m *meta) {
	if m.Contents == nil {
		m.Contents = []*meta{}
	}
	for _, k := range m.Contents {
		if k != nil && k.IsFolder {
			fillContents(k)
		}
	}
}

func parentOr(m *meta) uint64 {
	p, _ := m.parent()
	return p
}

func countItems(m *meta, n *int) {
	for _, k := range m.Contents {
		if k != nil {
			*n++
			countItems(k, n)
		}
	}
}

// emit reports the contents of listed folder m (at path dir) to fn, parents first.
func (c *Client) emit(dir remote.Path, m *meta, fn func(remote.Entry) error) error {
	folders := map[string]bool{}
	for _, k := range m.Contents {
		if k != nil && k.IsFolder && !k.IsDeleted {
			folders[k.Name] = true
		}
	}
	for _, k := range m.Contents {
		if k == nil || k.IsDeleted {
			continue
		}
		p, err := dir.Join(k.Name)
		if err != nil {
			// Emitted with Skip and its id, never left out: the engine keeps what it stored for this object
			// (e.g. a synced folder renamed to this name on pCloud), so the local copy is never deleted for it.
			sp := remote.Path(remote.Escape(string(dir) + "/" + k.Name))
			if dir == remote.Root {
				sp = remote.Path(remote.Escape(k.Name))
			}
			e := c.entryOf(sp, k)
			e.Skip = "invalid name: " + err.Error()
			c.lg.Warn("remote entry skipped", zap.String("path", string(sp)), zap.String("reason", e.Skip))
			if err := fn(e); err != nil {
				return err
			}
			continue
		}
		if !k.IsFolder && folders[k.Name] {
			c.skipped(string(dir), k.Name, "a folder has the same name on pCloud (tandem keeps the folder)")
			continue
		}
		e := c.entryOf(p, k)
		e.Incomplete = k.incomplete
		if err := fn(e); err != nil {
			return err
		}
		if k.IsFolder && !k.incomplete {
			if err := c.emit(p, k, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
