package emulator

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Driver methods: a test (or the benchmark) acting on the sync root directly, as another client or an
// administrator would, without HTTP. Paths are absolute inside the root ("/a/b.txt"). They go through the same
// checks and persistence as the API.

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// lookup resolves an absolute path in the sync root to its folder id (0 = top level) or item.
func (e *Emulator) lookup(p string) (*rootRec, *item, error) {
	rt := e.roots[e.cnt.SyncID]
	if rt == nil || rt.Deleted {
		return nil, nil, errRootGone
	}
	var cur *item
	var parent int64
	for _, name := range splitPath(p) {
		cur = e.sibling(rt.ID, parent, name)
		if cur == nil {
			return rt, nil, fmt.Errorf("%s: %w", p, errNotFound)
		}
		parent = cur.ID
	}
	return rt, cur, nil
}

func folderOf(it *item) int64 {
	if it == nil {
		return 0
	}
	return it.ID
}

// MkdirAll creates the folder p and its missing parents; it returns the folder id.
func (e *Emulator) MkdirAll(p string) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, _, err := e.lookup("/")
	if err != nil {
		return 0, err
	}
	var parent int64
	for _, name := range splitPath(p) {
		it := e.sibling(rt.ID, parent, name)
		if it == nil {
			if it, err = e.createFolder(rt, parent, name); err != nil {
				return 0, fmt.Errorf("mkdir %s: %w", p, err)
			}
		} else if !it.Folder {
			return 0, fmt.Errorf("mkdir %s: %w", p, errConflict)
		}
		parent = it.ID
	}
	return parent, nil
}

// WriteFile stores data at p (a new revision when the file exists); the parent folder must exist.
func (e *Emulator) WriteFile(p string, data []byte) (id int64, err error) {
	tmp, _, err := e.content.Spool(bytes.NewReader(data), "drv-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	e.mu.Lock()
	defer e.mu.Unlock()
	dir, name := filepath.Split(strings.TrimSuffix(p, "/"))
	rt, parent, err := e.lookup(dir)
	if err != nil {
		return 0, err
	}
	it, err := e.storeFile(rt, folderOf(parent), name, true, tmp, int64(len(data)))
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", p, err)
	}
	return it.ID, nil
}

// WriteFileAt is WriteFile by a desktop agent that keeps the file's own time: `modified` says mtime, while the
// server stored the revision now (what the since-modified variant's modified_since cannot see).
func (e *Emulator) WriteFileAt(p string, data []byte, mtime time.Time) (int64, error) {
	id, err := e.WriteFile(p, data)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	it := e.items[id]
	it.Modified = mtime.Unix()
	ch := newChange()
	ch.put(it)
	return id, writeChange(e.store.DB, ch, e.cnt)
}

// RenameItem gives the item at p the name name in its folder, through the same rule as the API's rename (so a
// name with "/" needs the slash-names variant).
func (e *Emulator) RenameItem(p, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, it, err := e.lookup(p)
	if err == nil && it == nil {
		err = fmt.Errorf("rename %s: the root", p)
	}
	if err != nil {
		return err
	}
	ch := newChange()
	if err := e.rename(rt, it, name, ch); err != nil {
		return fmt.Errorf("rename %s: %w", p, err)
	}
	return writeChange(e.store.DB, ch, e.cnt)
}

// ReadFile returns the current content of the file at p.
func (e *Emulator) ReadFile(p string) ([]byte, error) {
	e.mu.Lock()
	_, it, err := e.lookup(p)
	var rev int64
	if err == nil && (it == nil || it.Folder) {
		err = fmt.Errorf("%s: not a file", p)
	} else if err == nil {
		rev = it.Rev
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return e.content.ReadFile(blobID(rev))
}

// Remove deletes the file or folder at p (to the trash, recursively, as the API does).
func (e *Emulator) Remove(p string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, it, err := e.lookup(p)
	if err == nil && it == nil {
		err = fmt.Errorf("remove %s: the root", p)
	}
	if err != nil {
		return err
	}
	ch := newChange()
	e.softDelete(it, e.nowLocked().Unix(), ch)
	return writeChange(e.store.DB, ch, e.cnt)
}

// Rename moves and/or renames the item at from to the path to (its parent must exist).
func (e *Emulator) Rename(from, to string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, it, err := e.lookup(from)
	if err == nil && it == nil {
		err = fmt.Errorf("rename %s: the root", from)
	}
	if err != nil {
		return err
	}
	dir, name := filepath.Split(strings.TrimSuffix(to, "/"))
	_, parent, err := e.lookup(dir)
	if err != nil {
		return err
	}
	ch := newChange()
	dest := folderOf(parent)
	doMove := func() error {
		if dest == it.Parent {
			return nil
		}
		to := ""
		if dest != 0 {
			to = fmt.Sprint(dest)
		}
		if err := e.move(rt, it, to, ch); err != nil {
			return fmt.Errorf("move %s: %w", from, err)
		}
		return nil
	}
	doRename := func() error {
		if name == it.Name {
			return nil
		}
		if err := e.rename(rt, it, name, ch); err != nil {
			return fmt.Errorf("rename %s: %w", from, err)
		}
		return nil
	}
	// Rename first when the new name is free where the item is, so neither step meets a name it does not keep.
	steps := []func() error{doMove, doRename}
	if s := e.sibling(rt.ID, it.Parent, name); s == nil || s.ID == it.ID {
		steps = []func() error{doRename, doMove}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return writeChange(e.store.DB, ch, e.cnt)
}

// LockAsOther locks the item at p ("/" = the root) as another user: the caller's rename, move, delete,
// upload-over and unlock of it (and, for a folder, of everything inside) get 409 resource_locked.
func (e *Emulator) LockAsOther(p string) error { return e.setLock(p, otherPerson) }

// UnlockAsOther releases a LockAsOther lock.
func (e *Emulator) UnlockAsOther(p string) error { return e.setLock(p, 0) }

func (e *Emulator) setLock(p string, who int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, it, err := e.lookup(p)
	if err != nil {
		return err
	}
	at := e.nowLocked().Unix()
	if who == 0 {
		at = 0
	}
	ch := newChange()
	if it == nil {
		rt.LockedBy, rt.LockedAt = who, at
		ch.roots[rt.ID] = rt
	} else {
		it.LockedBy, it.LockedAt = who, at
		ch.put(it)
	}
	return writeChange(e.store.DB, ch, e.cnt)
}

// DeleteRoot deletes the sync root: every call on it answers 410 root_deleted from then on.
func (e *Emulator) DeleteRoot() {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt := e.roots[e.cnt.SyncID]
	if rt == nil {
		return
	}
	rt.Deleted = true
	ch := newChange()
	ch.roots[rt.ID] = rt
	_ = writeChange(e.store.DB, ch, e.cnt)
}

// Reimport replaces the folder at p and everything below it by copies with new ids, as a restore from backup or a
// migration does; the old items go to the trash. A client's change cursor that knows the old ids no longer
// describes the server: this is how the tests make a cursor unusable.
func (e *Emulator) Reimport(p string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, top, err := e.lookup(p)
	if err != nil {
		return err
	}
	if top == nil || !top.Folder {
		return fmt.Errorf("reimport %s: not a folder below the root", p)
	}
	ch := newChange()
	old := e.subtree(top)
	now := e.nowLocked().Unix()
	newID := map[int64]int64{}
	var fresh []*item
	for _, it := range old { // parents first
		c := *it
		c.ID = e.newID()
		newID[it.ID] = c.ID
		if np, ok := newID[it.Parent]; ok {
			c.Parent = np
		}
		fresh = append(fresh, &c)
	}
	e.softDelete(top, now, ch)
	for _, c := range fresh {
		e.items[c.ID] = c
		e.addKid(c)
		ch.put(c)
	}
	return writeChange(e.store.DB, ch, e.cnt)
}

// Paths lists the live items of the sync root by absolute path, folders with a trailing "/", sorted.
func (e *Emulator) Paths() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, it := range e.items {
		if it.Deleted || it.Root != e.cnt.SyncID {
			continue
		}
		p := e.itemPath(it)
		if it.Folder {
			p += "/"
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// DeletedFiles maps the content of every deleted file of the sync root (its last revision) to the path it had:
// what the server keeps of deleted files, for tests that check nothing was lost.
func (e *Emulator) DeletedFiles() (map[string]string, error) {
	e.mu.Lock()
	type del struct {
		path string
		rev  int64
	}
	var dels []del
	for _, it := range e.items {
		if it.Deleted && !it.Folder && it.Root == e.cnt.SyncID {
			dels = append(dels, del{e.itemPath(it), it.Rev})
		}
	}
	e.mu.Unlock()
	out := map[string]string{}
	for _, d := range dels {
		b, err := e.content.ReadFile(blobID(d.rev))
		if err != nil {
			return nil, err
		}
		out[string(b)] = d.path
	}
	return out, nil
}
