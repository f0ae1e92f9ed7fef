package vboxx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tandemsync/tandem/remote"
)

func joinAbs(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func parentAbs(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// abs is p's absolute path inside the vBoxx root.
func (c *Client) abs(p remote.Path) string {
	if p == remote.Root {
		return c.basePath
	}
	return joinAbs(c.basePath, string(p))
}

// rel is the pair path of an absolute server path; false when it lies outside the pair root or cannot be a
// tandem path.
func (c *Client) rel(abs string) (remote.Path, bool) {
	var rest string
	switch {
	case abs == c.basePath:
		return remote.Root, true
	case c.basePath == "/":
		rest = strings.TrimPrefix(abs, "/")
	case strings.HasPrefix(abs, c.basePath+"/"):
		rest = abs[len(c.basePath)+1:]
	default:
		return "", false
	}
	p, err := remote.ParsePath(rest)
	return p, err == nil
}

// checkPath refuses a Path that did not come from ParsePath ("../x", reserved names).
func checkPath(op string, p remote.Path) error {
	if _, err := remote.ParsePath(string(p)); err != nil {
		return fmt.Errorf("vboxx %s: %w", op, err)
	}
	return nil
}

func (c *Client) cachedDir(abs string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.dirs[abs]
	return id, ok
}

func (c *Client) cacheDir(abs string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirs[abs] = id
}

// forgetDirs drops the cached ids at and below abs (after a move or delete of a folder).
func (c *Client) forgetDirs(abs string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.dirs {
		if p == abs || strings.HasPrefix(p, abs+"/") || abs == "/" {
			delete(c.dirs, p)
		}
	}
}

func (c *Client) markDirty(folders ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range folders {
		c.dirty[f] = true
	}
}

// listDir lists the folder at an absolute path. A cached id is used only if the answer still says that path, so
// a folder another client renamed is never mistaken for the one that now has its old name.
func (c *Client) listDir(ctx context.Context, abs string) (int64, object, error) {
	if abs == "/" {
		obj, _, err := c.list(ctx, 0, "")
		return 0, obj, err
	}
	if id, ok := c.cachedDir(abs); ok {
		obj, _, err := c.list(ctx, id, "")
		if err == nil && c.samePath(obj.Path, abs) && !bool(obj.IsDeleted) {
			return id, obj, nil
		}
		if err != nil && !errors.Is(err, remote.ErrNotFound) {
			return 0, object{}, err
		}
		c.forgetDirs(abs)
	}
	_, parent, err := c.listDir(ctx, parentAbs(abs))
	if err != nil {
		return 0, object{}, err
	}
	name := abs[strings.LastIndexByte(abs, '/')+1:]
	if ch := c.findChild(parent.Children, name); ch != nil {
		if ch.Type != "folder" {
			return 0, object{}, fmt.Errorf("vboxx: %s is a file, not a folder: %w", remote.Escape(abs), remote.ErrNotFound)
		}
		obj, _, err := c.list(ctx, int64(ch.ID), "")
		if err != nil {
			return 0, object{}, err
		}
		if !c.samePath(obj.Path, abs) || bool(obj.IsDeleted) {
			return 0, object{}, fmt.Errorf("vboxx: %s changed while being read: %w", remote.Escape(abs), remote.ErrNotFound)
		}
		c.cacheDir(abs, int64(ch.ID))
		return int64(ch.ID), obj, nil
	}
	return 0, object{}, fmt.Errorf("vboxx: no folder %s: %w", remote.Escape(abs), remote.ErrNotFound)
}

// lookup lists p's parent and finds p in it (child nil when absent), case-insensitively where the server folds
// case (the name it would take for p). The parent missing is ErrNotFound.
func (c *Client) lookup(ctx context.Context, p remote.Path) (parent int64, child *object, err error) {
	return c.lookupName(ctx, p.Dir(), p.Base())
}

func (c *Client) lookupName(ctx context.Context, dir remote.Path, name string) (int64, *object, error) {
	parent, lst, err := c.listDir(ctx, c.abs(dir))
	if err != nil {
		return 0, nil, err
	}
	if ownTemp(name) {
		return parent, c.findChild(lst.temps, name), nil // our own temp upload, after a lost answer
	}
	return parent, c.findChild(lst.Children, name), nil
}

func itemID(o *object) string {
	if o.isFolder() {
		// Folder ids get a prefix: the reference does not promise that file and folder ids never collide, and
		// the engine's move detection keys on Entry.ID.
		return "d" + strconv.FormatInt(int64(o.ID), 10)
	}
	return strconv.FormatInt(int64(o.ID), 10)
}

func entryOf(o *object, p remote.Path) remote.Entry {
	if o.isFolder() {
		return remote.Entry{Path: p, Dir: true, ID: itemID(o)}
	}
	return remote.Entry{Path: p, Size: int64(o.Size), ModTime: o.modTime(), ID: itemID(o),
		Rev: strconv.FormatInt(int64(o.RevisionID), 10)}
}
