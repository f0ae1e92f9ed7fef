package pcloud

import (
	"github.com/tandemsync/tandem/remote"
)

// tree is what the client knows of the folder ids, file ids, parents and names below the sync root. pCloud
// addresses everything by id (the reference's project decision: never by path) and its change feed reports
// only the state *after* each event, so both the path resolver and the feed need a map from ids to places:
//
//   - the client's index (Client.ix) is filled lazily, one listed folder at a time, and kept current by
//     replaying `diff` before every operation;
//   - the feed's tree is complete for the subtree and travels in the cursor (feed.go), because the From of a
//     move is the item's place *before* the event, which no later listing can tell.
//
// A folder is "listed" when all its children are known. An item whose parent is not listed is not kept: it is
// outside the subtree, or in a part of it nobody asked about yet. Not safe for concurrent use.
type tree struct {
	root  uint64
	dirs  map[uint64]*node
	files map[uint64]*node
}

type node struct {
	id, parent uint64
	name       string
	dir        bool
	listed     bool              // dirs: kids are complete
	kids       map[string]uint64 // listed dirs: child folders by name
	kidFiles   map[string]uint64 // listed dirs: child files by name
	// size, hash and mtime describe a file's content (the index keeps them for Stat and preconditions; the
	// feed's tree leaves them zero, events carry them).
	size  int64
	hash  uint64
	mtime int64
}

func newTree(root uint64) *tree {
	t := &tree{root: root, dirs: map[uint64]*node{}, files: map[uint64]*node{}}
	t.dirs[root] = &node{id: root, dir: true}
	return t
}

func (t *tree) size() int { return len(t.dirs) + len(t.files) }

func (t *tree) get(dir bool, id uint64) *node {
	if dir {
		return t.dirs[id]
	}
	return t.files[id]
}

// listedDir returns the folder id if it is known and its children are complete.
func (t *tree) listedDir(id uint64) *node {
	if d := t.dirs[id]; d != nil && d.listed {
		return d
	}
	return nil
}

func (t *tree) link(n *node) {
	p := t.listedDir(n.parent)
	if p == nil {
		return
	}
	if n.dir {
		p.kids[n.name] = n.id
	} else {
		p.kidFiles[n.name] = n.id
	}
}

func (t *tree) unlink(n *node) {
	p := t.dirs[n.parent]
	if p == nil || !p.listed {
		return
	}
	m := p.kidFiles
	if n.dir {
		m = p.kids
	}
	if m[n.name] == n.id {
		delete(m, n.name)
	}
}

// remove forgets an item and, for a folder, everything known below it.
func (t *tree) remove(n *node) {
	if n.dir && n.id == t.root {
		return
	}
	t.unlink(n)
	t.drop(n)
}

func (t *tree) drop(n *node) {
	if n.dir {
		for _, id := range n.kidFiles {
			delete(t.files, id)
		}
		for _, id := range n.kids {
			if k := t.dirs[id]; k != nil && k.parent == n.id {
				t.drop(k)
			}
		}
		delete(t.dirs, n.id)
		return
	}
	delete(t.files, n.id)
}

// setListed marks a known folder as complete with no children yet (its children are added with set).
func (t *tree) setListed(d *node) {
	if d.listed {
		for _, id := range d.kidFiles {
			delete(t.files, id)
		}
		for _, id := range d.kids {
			if k := t.dirs[id]; k != nil && k.parent == d.id {
				t.drop(k)
			}
		}
	}
	d.listed = true
	d.kids = map[string]uint64{}
	d.kidFiles = map[string]uint64{}
}

// set records an item's current state from pCloud metadata and returns its node, or nil when the item lies
// outside what the tree knows (its parent is not listed: then it is forgotten if it was known). The root's own
// metadata only refreshes nothing: its place outside the subtree is not the tree's business.
func (t *tree) set(m *meta) *node {
	id := m.id()
	if m.IsFolder && id == t.root {
		return t.dirs[id]
	}
	parent, hasParent := m.parent()
	n := t.get(m.IsFolder, id)
	if !hasParent || t.listedDir(parent) == nil {
		if n != nil {
			t.remove(n)
		}
		return nil
	}
	if n != nil && n.dir && t.under(parent, id) {
		// A folder placed inside itself (a hostile or broken answer): it cannot be anywhere, so forget it
		// rather than build a parent loop.
		t.remove(n)
		return nil
	}
	if n == nil {
		n = &node{id: id, dir: m.IsFolder}
		if n.dir {
			t.dirs[id] = n
		} else {
			t.files[id] = n
		}
	} else {
		t.unlink(n)
	}
	n.parent, n.name = parent, m.Name
	if !n.dir {
		n.size, n.hash, n.mtime = clampSize(m.Size), m.Hash, int64(m.Modified)
	} else {
		n.mtime = int64(m.Modified)
	}
	// A same-name sibling of the same kind that the tree still holds is stale (its delete or move was folded
	// into this event, e.g. renamefile's atomic replace): drop it so two ids never claim one name.
	if p := t.listedDir(parent); p != nil {
		byName := p.kidFiles
		if n.dir {
			byName = p.kids
		}
		if other, ok := byName[n.name]; ok && other != id {
			if o := t.get(n.dir, other); o != nil {
				t.remove(o)
			}
		}
	}
	t.link(n)
	return n
}

// under reports whether folder id lies in the subtree of folder top (itself included).
func (t *tree) under(id, top uint64) bool {
	for steps := 0; steps <= len(t.dirs); steps++ {
		if id == top {
			return true
		}
		d := t.dirs[id]
		if d == nil || id == t.root {
			return false
		}
		id = d.parent
	}
	return true // a loop already: treat as inside
}

// setListing records a listfolder answer: the folder itself and its contents. A folder whose answer carries
// `contents` becomes listed (complete); nested contents of a recursive listing make the subfolders listed too.
func (t *tree) setListing(m *meta) { t.listing(m, false, false) }

// takeListing is setListing for a listing nobody reads afterwards: each item is let go as soon as it is in the
// tree, so a big listing and the tree built from it are not both held whole (Head of 500,000 items).
func (t *tree) takeListing(m *meta) { t.listing(m, true, false) }

// takeNewFolder is takeListing for a folder that is new to the tree, listed while the feed replays an older
// event. The listing shows the folder as it is now: an item the tree already knows at another place was moved in
// by a later event, which will move it with its From. Taking the listing's place for it now would move it
// silently, and the engine would keep it at the old path for good (the torture's phantom, seed 561752). Such
// items, and what they hold, stay where the tree has them.
func (t *tree) takeNewFolder(m *meta) { t.listing(m, true, true) }

func (t *tree) listing(m *meta, take, keepKnown bool) {
	var d *node
	if m.FolderID == t.root {
		d = t.dirs[t.root]
	} else {
		d = t.set(m)
	}
	if d == nil || m.Contents == nil || m.incomplete {
		return
	}
	t.setListed(d)
	pid := d.id
	for i, k := range m.Contents {
		if take {
			m.Contents[i] = nil
		}
		if k == nil || k.IsDeleted {
			continue
		}
		kid := *k
		if keepKnown {
			if n := t.get(kid.IsFolder, kid.id()); n != nil && n.parent != pid {
				continue
			}
		}
		kid.ParentFolderID = &pid // a listing is authoritative for where its children are
		if kid.IsFolder {
			t.listing(&kid, take, keepKnown)
		} else {
			t.set(&kid)
		}
	}
	if take {
		m.Contents = nil
	}
}

// del records that an item is gone.
func (t *tree) del(dir bool, id uint64) {
	if n := t.get(dir, id); n != nil {
		t.remove(n)
	}
}

// path rebuilds an item's path below the root. ok is false when the item is not below the root, or when a name
// on the way cannot be a Path (an invalid name hides its whole subtree), or when a file shares its name with a
// sibling folder (pCloud allows that; tandem reports the folder).
func (t *tree) path(n *node) (remote.Path, bool) {
	if n.dir && n.id == t.root {
		return remote.Root, true
	}
	var names []string
	for cur := n; ; {
		if remote.ValidName(cur.name) != nil {
			return "", false
		}
		if !cur.dir {
			if p := t.dirs[cur.parent]; p != nil && p.listed {
				if _, clash := p.kids[cur.name]; clash {
					return "", false
				}
			}
		}
		names = append(names, cur.name)
		if len(names) > remote.MaxPathBytes/2 {
			return "", false // a parent loop from a hostile server
		}
		p := t.dirs[cur.parent]
		if p == nil {
			return "", false
		}
		if p.id == t.root {
			break
		}
		cur = p
	}
	s := ""
	for i := len(names) - 1; i >= 0; i-- {
		if s != "" {
			s += "/"
		}
		s += names[i]
	}
	p, err := remote.ParsePath(s)
	if err != nil {
		return "", false
	}
	return p, true
}

// lookupKid finds a child of a listed folder: a folder wins over a file of the same name.
func (t *tree) lookupKid(d *node, name string) *node {
	if id, ok := d.kids[name]; ok {
		return t.dirs[id]
	}
	if id, ok := d.kidFiles[name]; ok {
		return t.files[id]
	}
	return nil
}

// descendants calls fn for every known item below folder d, parents before children.
func (t *tree) descendants(d *node, fn func(*node)) {
	if !d.listed {
		return
	}
	for _, id := range d.kids {
		if k := t.dirs[id]; k != nil {
			fn(k)
			t.descendants(k, fn)
		}
	}
	for _, id := range d.kidFiles {
		if k := t.files[id]; k != nil {
			fn(k)
		}
	}
}

func clampSize(s uint64) int64 {
	if s > 1<<62 {
		return 1 << 62
	}
	return int64(s)
}
