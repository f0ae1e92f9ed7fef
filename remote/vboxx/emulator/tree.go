package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Everything in this file runs with e.mu held.

func (e *Emulator) addKid(it *item) {
	k := parentKey{it.Root, it.Parent}
	m := e.kids[k]
	if m == nil {
		m = map[string]int64{}
		e.kids[k] = m
	}
	m[e.key(it.Name)] = it.ID
}

func (e *Emulator) dropKid(it *item) {
	k := parentKey{it.Root, it.Parent}
	if m := e.kids[k]; m != nil && m[e.key(it.Name)] == it.ID {
		delete(m, e.key(it.Name))
		if len(m) == 0 {
			delete(e.kids, k)
		}
	}
}

// sibling is the live item named name (case-insensitively) in folder parent of root, or nil.
func (e *Emulator) sibling(root, parent int64, name string) *item {
	if id, ok := e.kids[parentKey{root, parent}][e.key(name)]; ok {
		return e.items[id]
	}
	return nil
}

// folderPath is the absolute path of a folder ("/" for the top level).
func (e *Emulator) folderPath(folder int64) string {
	if folder == 0 {
		return "/"
	}
	var names []string
	for id := folder; id != 0; {
		it := e.items[id]
		if it == nil {
			break
		}
		names = append(names, it.Name)
		id = it.Parent
	}
	slices.Reverse(names)
	return "/" + strings.Join(names, "/")
}

func (e *Emulator) itemPath(it *item) string { return joinPath(e.folderPath(it.Parent), it.Name) }

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// rootByID resolves the {r} of a route: unknown → 404, deleted → 410.
func (e *Emulator) rootByID(s string) (*rootRec, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, errNotFound
	}
	rt := e.roots[id]
	if rt == nil {
		return nil, errNotFound
	}
	if rt.Deleted {
		return nil, errRootGone
	}
	return rt, nil
}

// itemByID resolves an id of a route in root. withDeleted keeps soft-deleted items (GET by id shows them).
func (e *Emulator) itemByID(rt *rootRec, s string, folder, withDeleted bool) (*item, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, errNotFound
	}
	it := e.items[id]
	if it == nil || it.Root != rt.ID || it.Folder != folder || (it.Deleted && !withDeleted) {
		return nil, errNotFound
	}
	return it, nil
}

// lockedByOther reports whether the root, folder or any folder above it holds another user's lock: locking a
// folder or root blocks changes to everything inside it.
func (e *Emulator) lockedByOther(rt *rootRec, folder int64) bool {
	if rt.LockedBy != 0 && rt.LockedBy != personID {
		return true
	}
	for id := folder; id != 0; {
		it := e.items[id]
		if it == nil {
			return false
		}
		if it.LockedBy != 0 && it.LockedBy != personID {
			return true
		}
		id = it.Parent
	}
	return false
}

func (e *Emulator) itemLockedByOther(rt *rootRec, it *item) bool {
	if it.LockedBy != 0 && it.LockedBy != personID {
		return true
	}
	return e.lockedByOther(rt, it.Parent)
}

// subtreeLockedByOther: deleting or moving a folder would carry another user's locked item along.
func (e *Emulator) subtreeLockedByOther(it *item) bool {
	if it.LockedBy != 0 && it.LockedBy != personID {
		return true
	}
	if !it.Folder {
		return false
	}
	for _, id := range e.kids[parentKey{it.Root, it.ID}] {
		if e.subtreeLockedByOther(e.items[id]) {
			return true
		}
	}
	return false
}

// isBelow reports whether folder lies at or below top.
func (e *Emulator) isBelow(folder, top int64) bool {
	for id := folder; id != 0; {
		if id == top {
			return true
		}
		it := e.items[id]
		if it == nil {
			return false
		}
		id = it.Parent
	}
	return false
}

// checkName applies the reference's name rule (5.5) and, for files, the policy's excluded extensions.
func (e *Emulator) checkName(name string, folder bool) error {
	if e.rawNames {
		return nil
	}
	if name == "" || name == "." || name == ".." || strings.HasSuffix(name, " ") || strings.HasSuffix(name, ".") {
		return errBadName
	}
	bad := `/\:*?"<>|`
	if e.v.slashNames {
		bad = `:*?"<>|`
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(bad, r) {
			return errBadName
		}
	}
	if !utf8.ValidString(name) {
		return errBadName
	}
	if utf8.RuneCountInString(name) > 255 {
		if folder {
			return errLongName
		}
		return errBadName
	}
	if !folder && e.extExcluded(name) {
		return errBadExt
	}
	return nil
}

func (e *Emulator) extExcluded(name string) bool {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return false
	}
	return slices.Contains(e.policy.exts, strings.ToLower(name[i:]))
}

// used is the caller's live bytes over all roots: what space_usage and the quota count.
func (e *Emulator) used(root int64) int64 {
	var n int64
	for _, it := range e.items {
		if !it.Folder && !it.Deleted && (root == 0 || it.Root == root) {
			n += it.Size
		}
	}
	return n
}

// subtree lists it and every live item below it, parents first.
func (e *Emulator) subtree(it *item) []*item {
	out := []*item{it}
	if it.Folder {
		for _, id := range e.kids[parentKey{it.Root, it.ID}] {
			out = append(out, e.subtree(e.items[id])...)
		}
	}
	return out
}

// softDelete marks it and everything below it deleted (the reference's folder delete is recursive).
func (e *Emulator) softDelete(it *item, now int64, ch *change) {
	all := e.subtree(it)
	for i := len(all) - 1; i >= 0; i-- {
		x := all[i]
		e.dropKid(x)
		x.Deleted, x.DeletedAt = true, now
		ch.put(x)
	}
}

func (e *Emulator) newID() int64 {
	e.cnt.NextID++
	return e.cnt.NextID
}

func (e *Emulator) newRev() int64 {
	e.cnt.NextRev++
	return e.cnt.NextRev
}

// flags are the include_* switches of a listing or GET.
type flags struct {
	children, deleted, lockInfo, permissions bool
}

func parseFlags(r *http.Request) (flags, error) {
	var f flags
	var err error
	get := func(name string, def bool) bool {
		v := r.FormValue(name)
		switch v {
		case "":
			return def
		case "true":
			return true
		case "false":
			return false
		}
		err = badParam(name)
		return false
	}
	f.children = get("include_children", false)
	f.deleted = get("include_deleted", false)
	f.lockInfo = get("include_lock_info", false)
	f.permissions = get("include_permissions", true)
	return f, err
}

// permissions are the caller's rights: full, or without FILE_WRITE where the read-only variants say so.
func permissions(write bool) []any {
	if !write {
		return []any{"FILE_VIEW", "FILE_READ"}
	}
	return []any{"FILE_VIEW", "FILE_READ", "FILE_WRITE"}
}

// writable reports whether the caller may change what is inside folder (0 = the top level): not under the
// readonly-root variant, and no folder at or above it is read-only.
func (e *Emulator) writable(folder int64) bool {
	if e.v.readonlyRoot {
		return false
	}
	for id := folder; id != 0; {
		it := e.items[id]
		if it == nil {
			return true
		}
		if it.ReadOnly {
			return false
		}
		id = it.Parent
	}
	return true
}

// itemWritable: the caller may rename, move, delete or lock it.
func (e *Emulator) itemWritable(it *item) bool {
	return !it.ReadOnly && e.writable(it.Parent)
}

func (e *Emulator) obj(it *item, path string, f flags) map[string]any {
	m := map[string]any{
		"id": it.ID, "is_deleted": it.Deleted, "is_locked": it.LockedBy != 0, "path": path, "root_id": it.Root,
	}
	if f.permissions {
		m["permissions"] = permissions(e.itemWritable(it))
	}
	if f.lockInfo {
		locks := []any{}
		if it.LockedBy != 0 {
			locks = append(locks, map[string]any{"person_id": it.LockedBy, "created": fmtTime(it.LockedAt)})
		}
		m["locks"] = locks
	}
	if it.Folder {
		m["type"] = "folder"
		return m
	}
	m["type"] = "file"
	m["created"] = fmtTime(it.Created)
	m["modified"] = fmtTime(it.Modified)
	m["revision_id"] = it.Rev
	m["size"] = it.Size
	m["size_formatted"] = formatSize(it.Size)
	return m
}

func (e *Emulator) rootObj(rt *rootRec, f flags) map[string]any {
	used := e.used(rt.ID)
	m := map[string]any{
		"id": rt.ID, "name": rt.Name, "path": "/", "is_locked": rt.LockedBy != 0, "root_type": rt.Type,
		"space_used": used, "space_used_formatted": formatSize(used), "type": "root", "company_id": companyID,
	}
	if f.permissions {
		m["permissions"] = permissions(!e.v.readonlyRoot)
	}
	return m
}

// trashSums is the admin endpoint's GET /trash: the sha256 of the stored content of every deleted file (the
// server keeps deleted items; their last revision stays).
func (e *Emulator) trashSums() ([]string, error) {
	e.mu.Lock()
	var revs []int64
	for _, it := range e.items {
		if it.Deleted && !it.Folder {
			revs = append(revs, it.Rev)
		}
	}
	e.mu.Unlock()
	var out []string
	for _, rev := range revs {
		s, err := e.content.SHA256(blobID(rev))
		if err != nil {
			return nil, fmt.Errorf("deleted file revision %d: %w", rev, err)
		}
		out = append(out, s)
	}
	return out, nil
}
