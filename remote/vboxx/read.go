package vboxx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tandemsync/tandem/remote"
)

// Stat describes p.
func (c *Client) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := checkPath("stat", p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		id, _, err := c.statBase(ctx)
		if err != nil {
			return remote.Entry{}, fmt.Errorf("stat %s: %w", c.spec, err)
		}
		return remote.Entry{Path: remote.Root, Dir: true, ID: "d" + strconv.FormatInt(id, 10)}, nil
	}
	_, child, err := c.lookup(ctx, p)
	if err == nil && child == nil {
		err = remote.ErrNotFound
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("stat %s: %w", p.Quoted(), err)
	}
	return entryOf(child, p), nil
}

// statBase confirms the pair root exists: a root GET without children for "/", else the folder by its cached id
// (or by path). It returns the folder id (0 for the root's top level) and the object.
func (c *Client) statBase(ctx context.Context) (int64, object, error) {
	// Permissions come with it: a pair folder without FILE_WRITE syncs down only (checked on every pass).
	if c.basePath == "/" {
		var o object
		err := c.call(ctx, "stat root", http.MethodGet, c.rootPath(""), url.Values{"include_children": {"false"},
			"include_permissions": {"true"}}, true, c.decode(&o))
		if err == nil {
			c.setReadOnly(&o)
		}
		return 0, o, err
	}
	if id, ok := c.cachedDir(c.basePath); !ok {
		if _, _, err := c.listDir(ctx, c.basePath); err != nil {
			return 0, object{}, err
		}
	} else if !c.checkCached(ctx, id) {
		c.forgetDirs(c.basePath)
		if _, _, err := c.listDir(ctx, c.basePath); err != nil {
			return 0, object{}, err
		}
	}
	id, _ := c.cachedDir(c.basePath)
	var o object
	err := c.call(ctx, "stat folder", http.MethodGet, c.rootPath(folderPath(id)),
		url.Values{"include_children": {"false"}, "include_permissions": {"true"}}, true, c.decode(&o))
	if err != nil {
		return 0, object{}, err
	}
	if !c.samePath(o.Path, c.basePath) || bool(o.IsDeleted) {
		c.forgetDirs(c.basePath)
		return 0, object{}, fmt.Errorf("vboxx: %s changed while being read: %w", remote.Escape(c.basePath), remote.ErrNotFound)
	}
	c.setReadOnly(&o)
	return id, o, nil
}

// checkCached confirms a cached folder id still names the pair folder.
func (c *Client) checkCached(ctx context.Context, id int64) bool {
	var o object
	err := c.call(ctx, "stat folder", http.MethodGet, c.rootPath(folderPath(id)),
		url.Values{"include_children": {"false"}, "include_permissions": {"false"}}, true, c.decode(&o))
	return err == nil && c.samePath(o.Path, c.basePath) && !bool(o.IsDeleted)
}

// Walk lists everything below dir, breadth first (parents before children). Names tandem cannot hold are
// skipped and logged; their siblings are reported.
func (c *Client) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	if err := checkPath("walk", dir); err != nil {
		return err
	}
	_, first, err := c.listDir(ctx, c.abs(dir))
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir.Quoted(), err)
	}
	type job struct {
		id  int64
		rel remote.Path
	}
	queue := []job{}
	emit := func(lst object, rel remote.Path) error {
		for i := range lst.Children {
			ch := &lst.Children[i]
			p, err := rel.Join(ch.name())
			if err != nil {
				continue // decodeListing already skipped and logged such names
			}
			if err := fn(entryOf(ch, p)); err != nil {
				return err
			}
			if ch.isFolder() {
				queue = append(queue, job{int64(ch.ID), p})
			}
		}
		return nil
	}
	if err := emit(first, dir); err != nil {
		return err
	}
	emitSkips := func(lst object, rel remote.Path) error {
		for _, sc := range lst.unholdable {
			if err := fn(skipEntry(rel, lst.Path, sc)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := emitSkips(first, dir); err != nil {
		return err
	}
	// A folder id seen twice means the server's answers form a cycle: each folder is listed once, whatever they say.
	seen := map[int64]bool{}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		if seen[j.id] {
			return fmt.Errorf("walk %s: folder id %d listed twice (the server's tree has a cycle): %w", j.rel.Quoted(),
				j.id, remote.ErrNotFound)
		}
		seen[j.id] = true
		lst, _, err := c.list(ctx, j.id, "")
		if err != nil {
			return fmt.Errorf("walk %s: %w", j.rel.Quoted(), err)
		}
		if lst.Path != c.abs(j.rel) || bool(lst.IsDeleted) {
			// Moved or deleted during the walk: the walk is incomplete, and an incomplete listing must never
			// look like deletions.
			return fmt.Errorf("walk %s: folder changed during the walk: %w", j.rel.Quoted(), remote.ErrNotFound)
		}
		if err := emit(lst, j.rel); err != nil {
			return err
		}
		if err := emitSkips(lst, j.rel); err != nil {
			return err
		}
	}
	return nil
}

// skipEntry is the entry of a listed child whose name tandem cannot hold, emitted with Skip and its id so the
// engine keeps what it stored for that object (a synced folder renamed on the server to such a name keeps its
// local copy: RELIABILITY I4). Its path is for display: a name with "/" shows the server's absolute path, which
// can never be taken for a pair path.
func skipEntry(dir remote.Path, parentAbs string, sc skippedChild) remote.Entry {
	rest := strings.TrimPrefix(sc.path, strings.TrimSuffix(parentAbs, "/")+"/")
	p := remote.Escape(rest)
	if dir != remote.Root {
		p = string(dir) + "/" + p
	}
	if strings.Contains(rest, "/") {
		p = remote.Escape(sc.path)
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
	}
	e := entryOf(&sc.obj, remote.Path(p))
	e.Skip = "remote name left out: " + sc.why
	return e
}

// Open downloads p. The body fails with remote.ErrCorrupt unless exactly the listed size arrives: vBoxx has no
// digest, so the byte count is the only check the protocol allows.
func (c *Client) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := checkPath("open", p); err != nil {
		return nil, remote.Entry{}, err
	}
	_, child, err := c.lookup(ctx, p)
	if err == nil && (child == nil || child.isFolder()) {
		err = remote.ErrNotFound
	}
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), err)
	}
	e := entryOf(child, p)
	path := c.rootPath("/" + strconv.FormatInt(int64(child.ID), 10) + "/download")
	resp, err := c.hx.Stream(ctx, "download", func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	})
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), apiErr("download "+p.Quoted(), err))
	}
	if resp.ContentLength >= 0 && resp.ContentLength != e.Size {
		resp.Body.Close()
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w: server sends %d bytes, the listing says %d",
			p.Quoted(), remote.ErrCorrupt, resp.ContentLength, e.Size)
	}
	return &verifiedBody{Verifier: remote.NewVerifier(resp.Body, remote.Hash{}, e.Size, ""), c: resp.Body}, e, nil
}

type verifiedBody struct {
	*remote.Verifier
	c io.Closer
}

func (v *verifiedBody) Close() error { return v.c.Close() }
