package pcloud

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// ---- Remote ----

// Stat implements remote.Remote.
func (c *Client) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Entry{}, err
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("stat %w", err)
	}
	return c.entry(f), nil
}

// parentOf resolves the folder that will hold p.
func (c *Client) parentOf(ctx context.Context, p remote.Path) (found, error) {
	d, err := c.lookup(ctx, p.Dir())
	if err != nil {
		return found{}, err
	}
	if !d.n.dir {
		return found{}, fmt.Errorf("%s is a file: %w", p.Dir().Quoted(), remote.ErrNotFound)
	}
	return d, nil
}

// Mkdir implements remote.Remote with createfolderifnotexists, which is idempotent: a retry after a lost answer
// finds the folder and reports it.
func (c *Client) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return c.Stat(ctx, p)
	}
	parent, err := c.parentOf(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %w", err)
	}
	if cur, err := c.lookup(ctx, p); err == nil && !cur.n.dir {
		// pCloud would make a folder beside the file; tandem keeps one item per name.
		return remote.Entry{}, fmt.Errorf("mkdir %s: a file has that name: %w", p.Quoted(), remote.ErrConflict)
	}
	q := idParam("folderid", parent.n.id)
	q.Set("name", p.Base())
	a, err := call[metaAnswer](ctx, c, "createfolderifnotexists", q, true)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	if a.Metadata == nil || !a.Metadata.IsFolder {
		return remote.Entry{}, fmt.Errorf("mkdir %s: answer without folder metadata", p.Quoted())
	}
	if err := c.stored("mkdir", p, parent.n.id, a.Metadata); err != nil {
		return remote.Entry{}, err
	}
	return c.entryOf(p, a.Metadata), nil
}

// Move implements remote.Remote with renamefile/renamefolder. pCloud's renamefile replaces an existing target
// atomically, so the target is checked just before (and a folder target is refused by pCloud itself, 2004);
// a file created at the target by someone else between that check and the rename would be replaced, and
// survives only as a revision of the moved file: the window the reference leaves (no compare-and-swap).
func (c *Client) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if err := validPath(from); err != nil {
		return remote.Entry{}, err
	}
	if err := validPath(to); err != nil {
		return remote.Entry{}, err
	}
	if from == remote.Root || to == remote.Root || to.Within(from) {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	src, err := c.lookup(ctx, from)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %w", err)
	}
	if pre.Rev != "" && !src.n.dir && strconv.FormatUint(src.n.hash, 10) != pre.Rev {
		return remote.Entry{}, fmt.Errorf("move %s: %w", from.Quoted(), remote.ErrConflict)
	}
	dst, err := c.parentOf(ctx, to)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s: target %w", from.Quoted(), err)
	}
	targetFree := func(ctx context.Context) error {
		cur, err := c.lookup(ctx, to)
		switch {
		case err == nil && !(cur.n.id == src.n.id && cur.n.dir == src.n.dir):
			return fmt.Errorf("move %s: %s exists: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
		case err != nil && !errors.Is(err, remote.ErrNotFound):
			return err
		}
		return nil
	}
	method, idName := "renamefile", "fileid"
	if src.n.dir {
		method, idName = "renamefolder", "folderid"
	}
	q := idParam(idName, src.n.id)
	q.Set("tofolderid", strconv.FormatUint(dst.n.id, 10))
	q.Set("toname", to.Base())
	var out *meta
	err = c.mutate(ctx, "move "+from.Quoted(), func(ctx context.Context) error {
		if err := targetFree(ctx); err != nil {
			return err
		}
		a, err := call[metaAnswer](ctx, c, method, q, false)
		if err != nil {
			return err
		}
		out = a.Metadata
		return nil
	}, func(ctx context.Context) (bool, error) {
		m, err := c.statID(ctx, src.n.dir, src.n.id)
		if err != nil {
			return false, err
		}
		if m.IsDeleted {
			return false, fmt.Errorf("%s was deleted meanwhile: %w", from.Quoted(), remote.ErrNotFound)
		}
		if pid, ok := m.parent(); ok && pid == dst.n.id && (m.Name == to.Base() || m.Name == c.foldedName(to.Base())) {
			out = m
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
	}
	if out == nil {
		return remote.Entry{}, fmt.Errorf("move %s: answer without metadata", from.Quoted())
	}
	if err := c.stored("move "+from.Quoted()+" to", to, dst.n.id, out); err != nil {
		return remote.Entry{}, err
	}
	return c.entryOf(to, out), nil
}

// stored checks that the server kept the item where and under the name it was asked to (§4.3: pCloud may fold
// names, e.g. U+FF3C to a backslash, unverified). Trust what the server stored: when it differs, the item is
// reported as renamed on pCloud, and the operation fails as "temporarily refused" (the engine lists it as
// skipped with this reason and retries next pass) instead of recording a path that does not exist there.
func (c *Client) stored(op string, p remote.Path, parent uint64, m *meta) error {
	pid, hasParent := m.parent()
	if m.Name == p.Base() && (!hasParent || pid == parent) {
		return nil
	}
	where := remote.Escape(m.Name)
	if q, err := p.Dir().Join(m.Name); err == nil && (!hasParent || pid == parent) {
		where = q.Quoted()
	}
	c.lg.Warn("pcloud stored another name than asked", zap.String("asked", p.Quoted()), zap.String("stored", where))
	return fmt.Errorf("%s %s: pCloud stored it as %s (renamed by the server): %w", op, p.Quoted(), where,
		remote.ErrUnavailable)
}

// foldedName is name as a server that folds U+FF3C to a backslash stores it: a lost answer's check accepts it.
func (c *Client) foldedName(name string) string { return strings.ReplaceAll(name, "\uFF3C", `\`) }

// statID reads an item's current metadata by id: stat for a file, a folders-only listfolder for a folder (the
// reference documents stat for files only).
func (c *Client) statID(ctx context.Context, dir bool, id uint64) (*meta, error) {
	var a *metaAnswer
	var err error
	if dir {
		q := idParam("folderid", id)
		q.Set("nofiles", "1")
		a, err = c.listfolder(ctx, q)
	} else {
		a, err = call[metaAnswer](ctx, c, "stat", idParam("fileid", id), true)
	}
	if err != nil {
		return nil, err
	}
	if a.Metadata == nil {
		return nil, fmt.Errorf("pcloud: answer without metadata")
	}
	return a.Metadata, nil
}

// Delete implements remote.Remote: deletefile (to pCloud's trash) for a file, the non-recursive deletefolder for
// a folder (never deletefolderrecursive: a folder may hold files tandem has not seen). The Rev is compared just
// before; there is no compare-and-swap, so a write in between is the remaining window (it stays in the trash).
func (c *Client) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	if err := validPath(p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("delete the root: %w", remote.ErrConflict)
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	if pre.Rev != "" && !f.n.dir && strconv.FormatUint(f.n.hash, 10) != pre.Rev {
		return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrConflict)
	}
	method, idName := "deletefile", "fileid"
	if f.n.dir {
		method, idName = "deletefolder", "folderid"
	}
	err = c.mutate(ctx, "delete "+p.Quoted(), func(ctx context.Context) error {
		_, err := call[metaAnswer](ctx, c, method, idParam(idName, f.n.id), false)
		return err
	}, func(ctx context.Context) (bool, error) {
		m, err := c.statID(ctx, f.n.dir, f.n.id)
		if errors.Is(err, remote.ErrNotFound) {
			return true, nil // gone: the lost answer was a success
		}
		if err == nil && m.IsDeleted {
			return true, nil // in the trash: stat may still describe a deleted item, flagged isdeleted (§4.1)
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	return nil
}

// HashOf implements remote.Hasher through checksumfile: sha1 in both regions, sha256 in the EU, md5 in the US.
func (c *Client) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %w", err)
	}
	if f.n.dir {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: is a folder", p.Quoted())
	}
	sum, m, err := c.checksum(ctx, f.n.id)
	if err != nil {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: %w", p.Quoted(), err)
	}
	hex := map[string]string{"sha1": sum.sha1, "sha256": sum.sha256, "md5": sum.md5}[algo]
	if hex == "" {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: pcloud offers no %q digest here", p.Quoted(), algo)
	}
	return remote.Hash{Algo: algo, Hex: hex}, c.entryOf(p, m), nil
}

// checksum asks checksumfile and remembers the digests for the content `hash` they belong to.
func (c *Client) checksum(ctx context.Context, fileID uint64) (fileSum, *meta, error) {
	a, err := call[checksumAnswer](ctx, c, "checksumfile", idParam("fileid", fileID), true)
	if err != nil {
		return fileSum{}, nil, err
	}
	if a.Metadata == nil || a.Metadata.IsFolder || a.Metadata.FileID != fileID || !isHex(a.SHA1, 40) {
		return fileSum{}, nil, fmt.Errorf("pcloud checksumfile: malformed answer")
	}
	s := fileSum{hash: a.Metadata.Hash, sha1: strings.ToLower(a.SHA1)}
	if isHex(a.SHA256, 64) {
		s.sha256 = strings.ToLower(a.SHA256)
	}
	if isHex(a.MD5, 32) {
		s.md5 = strings.ToLower(a.MD5)
	}
	c.rememberSum(fileID, s)
	return s, a.Metadata, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// CheckRoot implements remote.RootChecker: the root folder must still exist under its path and be the folder
// this client started with (a deleted and re-created /Sync is not the folder the base describes).
func (c *Client) CheckRoot(ctx context.Context) error {
	id, err := c.resolveRoot(ctx)
	if errors.Is(err, remote.ErrNotFound) {
		c.forgetRoot()
		return fmt.Errorf("%s: %w: %w", c, remote.ErrRootMissing, err)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", c, err)
	}
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.rootKnown && c.rootID != id {
		return fmt.Errorf("%s: %w: the folder was replaced by another one (folderid %d, was %d)", c,
			remote.ErrRootMissing, id, c.rootID)
	}
	if !c.rootKnown {
		c.rootID, c.rootKnown = id, true
		c.ixMu.Lock()
		c.ix, c.ixInit = newTree(id), false
		c.ixMu.Unlock()
	}
	return nil
}

// InitRoot implements remote.RootChecker: it creates the root folder and its parents with
// createfolderifnotexists (idempotent, so safely retried).
func (c *Client) InitRoot(ctx context.Context) error {
	cur := uint64(0)
	for _, name := range c.rootNames {
		q := idParam("folderid", cur)
		q.Set("name", name)
		a, err := call[metaAnswer](ctx, c, "createfolderifnotexists", q, true)
		if err != nil {
			return fmt.Errorf("create %s: %w", c.rootSpec, err)
		}
		if a.Metadata == nil || !a.Metadata.IsFolder {
			return fmt.Errorf("create %s: answer without folder metadata", c.rootSpec)
		}
		cur = a.Metadata.FolderID
	}
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if !c.rootKnown || c.rootID != cur {
		c.rootID, c.rootKnown = cur, true
		c.ixMu.Lock()
		c.ix, c.ixInit = newTree(cur), false
		c.ixMu.Unlock()
	}
	return nil
}

// Quota reports the account's used and total bytes (userinfo), for status. used may exceed total.
func (c *Client) Quota(ctx context.Context) (used, total int64, err error) {
	a, err := call[userinfoAnswer](ctx, c, "userinfo", nil, true)
	if err != nil {
		return 0, 0, fmt.Errorf("quota: %w", err)
	}
	return a.UsedQuota, a.Quota, nil
}

var (
	_ remote.Remote      = (*Client)(nil)
	_ remote.Hasher      = (*Client)(nil)
	_ remote.RootChecker = (*Client)(nil)
)
