package vboxx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// Mkdir creates the folder p; an existing folder is success (so is one a lost answer already created).
func (c *Client) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := checkPath("mkdir", p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return c.Stat(ctx, p)
	}
	if c.readOnly() {
		return remote.Entry{}, c.errReadOnly("mkdir", p)
	}
	parent, old, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	if old != nil {
		if !old.isFolder() {
			return remote.Entry{}, fmt.Errorf("mkdir %s: a file has that name: %w", p.Quoted(), remote.ErrConflict)
		}
		return entryOf(old, p), nil
	}
	var out object
	err = c.call(ctx, "create_folder "+p.Quoted(), http.MethodPost, c.rootPath(folderPath(parent)+"/create_folder"),
		url.Values{"name": {p.Base()}}, true, c.decode(&out))
	c.markDirty(parent)
	if errors.Is(err, remote.ErrConflict) {
		// Taken meanwhile, or our own lost answer: adopt a folder, refuse a file.
		if _, now, lerr := c.lookup(ctx, p); lerr == nil && now != nil && now.isFolder() {
			c.cacheDir(c.abs(p), int64(now.ID))
			return entryOf(now, p), nil
		}
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	c.cacheDir(c.abs(p), int64(out.ID))
	return entryOf(&out, p), nil
}

// Move renames and/or moves from to to (a server-side move that keeps the id). The target must be free:
// rename and move refuse a taken name with name_conflict anyway, which is ErrConflict.
func (c *Client) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if err := checkPath("move", from); err != nil {
		return remote.Entry{}, err
	}
	if err := checkPath("move", to); err != nil {
		return remote.Entry{}, err
	}
	if from == remote.Root || to == remote.Root || to.Within(from) && from != to {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	if c.readOnly() {
		return remote.Entry{}, c.errReadOnly("move", from)
	}
	srcParent, src, err := c.lookup(ctx, from)
	if err == nil && src == nil {
		err = remote.ErrNotFound
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s: %w", from.Quoted(), err)
	}
	if pre.Rev != "" && (src.isFolder() || strconv.FormatInt(int64(src.RevisionID), 10) != pre.Rev) {
		return remote.Entry{}, fmt.Errorf("move %s: changed since revision %s: %w", from.Quoted(), pre.Rev, remote.ErrConflict)
	}
	dstParent, dst, err := c.lookup(ctx, to)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
	}
	if dst != nil && dst.ID != src.ID {
		return remote.Entry{}, fmt.Errorf("move %s: %s exists: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	kind := "/"
	if src.isFolder() {
		kind = "/folder/"
	}
	item := c.rootPath(kind + strconv.FormatInt(int64(src.ID), 10))
	defer c.markDirty(srcParent, dstParent)
	if src.isFolder() {
		defer c.forgetDirs(c.abs(from))
	}
	out := *src
	if srcParent != dstParent {
		dest := ""
		if dstParent != 0 {
			dest = strconv.FormatInt(dstParent, 10) // the top level is an empty to_folder_id, never 0
		}
		err := c.call(ctx, "move "+from.Quoted(), http.MethodPost, item+"/move", url.Values{"to_folder_id": {dest}},
			true, c.decode(&out))
		if err != nil {
			return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
		}
	}
	if to.Base() != from.Base() {
		err := c.call(ctx, "rename "+from.Quoted(), http.MethodPost, item+"/rename", url.Values{"name": {to.Base()}},
			true, c.decode(&out))
		if err != nil {
			if srcParent != dstParent { // put it back where it was, so a failed move leaves nothing half done
				back := ""
				if srcParent != 0 {
					back = strconv.FormatInt(srcParent, 10)
				}
				if berr := c.call(ctx, "move back", http.MethodPost, item+"/move", url.Values{"to_folder_id": {back}},
					true, nil); berr != nil {
					c.lg.Warn("could not undo a half-done move", zap.String("path", from.Quoted()), zap.Error(berr))
				}
			}
			return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
		}
	}
	return entryOf(&out, to), nil
}

// Delete moves p to the vBoxx trash. A folder must be empty: the server's folder delete is recursive, so
// emptiness is checked on a fresh listing first (the window between check and delete is one request).
func (c *Client) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	if err := checkPath("delete", p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("delete: refusing to delete the pair root %s", c.spec)
	}
	if c.readOnly() {
		return c.errReadOnly("delete", p)
	}
	parent, it, err := c.lookup(ctx, p)
	if err == nil && it == nil {
		err = remote.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	path := c.rootPath("/" + strconv.FormatInt(int64(it.ID), 10))
	if it.isFolder() {
		lst, _, err := c.list(ctx, int64(it.ID), "")
		if err != nil {
			return fmt.Errorf("delete %s: %w", p.Quoted(), err)
		}
		if len(lst.Children) > 0 {
			return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrNotEmpty)
		}
		path = c.rootPath(folderPath(int64(it.ID)))
		defer c.forgetDirs(c.abs(p))
	} else if pre.Rev != "" && strconv.FormatInt(int64(it.RevisionID), 10) != pre.Rev {
		return fmt.Errorf("delete %s: changed since revision %s: %w", p.Quoted(), pre.Rev, remote.ErrConflict)
	}
	err = c.call(ctx, "delete "+p.Quoted(), http.MethodPost, path+"/delete", nil, true, nil)
	c.markDirty(parent)
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	return nil
}

// CheckRoot reports a deleted vBoxx root (410 root_deleted), a lost root (403) or a missing pair folder as
// remote.ErrRootMissing: the pair stops and nothing is deleted locally.
func (c *Client) CheckRoot(ctx context.Context) error {
	_, _, err := c.statBase(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, remote.ErrRootMissing), errors.Is(err, remote.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", c.spec, remote.ErrRootMissing, err)
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return fmt.Errorf("%s: %w: access to the root was lost: %w", c.spec, remote.ErrRootMissing, err)
	}
	return err
}

// InitRoot creates the pair folder and its missing parents inside the vBoxx root. Roots themselves cannot be
// created through the API (an administrator makes them), so a missing root stays ErrRootMissing. No marker is
// written: a vanished cloud root shows as root_deleted or a missing folder, which CheckRoot reports.
func (c *Client) InitRoot(ctx context.Context) error {
	parent := int64(0)
	cur := "/"
	for _, name := range strings.Split(strings.Trim(c.basePath, "/"), "/") {
		if name == "" {
			break
		}
		next := joinAbs(cur, name)
		id, _, err := c.listDir(ctx, next)
		if errors.Is(err, remote.ErrNotFound) {
			var out object
			err = c.call(ctx, "create_folder "+remote.Escape(next), http.MethodPost,
				c.rootPath(folderPath(parent)+"/create_folder"), url.Values{"name": {name}}, true, c.decode(&out))
			if errors.Is(err, remote.ErrConflict) {
				id, _, err = c.listDir(ctx, next)
			} else if err == nil {
				id = int64(out.ID)
				c.cacheDir(next, id)
			}
		}
		if err != nil {
			if errors.Is(err, remote.ErrRootMissing) {
				return fmt.Errorf("%s: %w", c.spec, err)
			}
			return fmt.Errorf("create %s in %s: %w", remote.Escape(next), c.spec, err)
		}
		parent, cur = id, next
	}
	return nil
}
