package emulator

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ---- argument helpers (callers hold e.mu) ----

func (e *Emulator) root() *node { return e.folders[0] }

// resolveParent splits an absolute path into its live parent folder and leaf name ("" for the root itself).
// Paths start with '/'; one trailing '/' is tolerated; empty components are invalid (2010).
func (e *Emulator) resolveParent(p string, missing int) (*node, string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, "", fail(2010)
	}
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return e.root(), "", nil
	}
	parts := strings.Split(p[1:], "/")
	cur := e.root()
	for _, part := range parts[:len(parts)-1] {
		if part == "" {
			return nil, "", fail(2010)
		}
		if cur = e.childFolder(cur.ID, part); cur == nil {
			return nil, "", fail(missing)
		}
	}
	leaf := parts[len(parts)-1]
	if leaf == "" {
		return nil, "", fail(2010)
	}
	return cur, leaf, nil
}

func (e *Emulator) resolveFolderPath(p string) (*node, error) {
	parent, leaf, err := e.resolveParent(p, 2005)
	if err != nil {
		return nil, err
	}
	if leaf == "" {
		return parent, nil
	}
	if f := e.childFolder(parent.ID, leaf); f != nil {
		return f, nil
	}
	return nil, fail(2005)
}

func (e *Emulator) resolveFile(p string) (*node, error) {
	parent, leaf, err := e.resolveParent(p, 2002)
	if err != nil {
		return nil, err
	}
	if f := e.childFile(parent.ID, leaf); f != nil {
		return f, nil
	}
	return nil, fail(2009)
}

func (c *call) flag(name string) bool { _, ok := c.p[name]; return ok }

// folderArg reads `folderid` | `path`; missing is the code for "neither given".
func (c *call) folderArg(missing int) (*node, bool, error) {
	if v := c.p.Get("folderid"); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, false, fail(1017)
		}
		if f := c.e.liveFolder(id); f != nil {
			return f, false, nil
		}
		return nil, false, fail(2005)
	}
	if v := c.p.Get("path"); v != "" {
		f, err := c.e.resolveFolderPath(v)
		return f, true, err
	}
	return nil, false, fail(missing)
}

// fileArg reads `fileid` | `path`.
func (c *call) fileArg() (*node, bool, error) {
	if v := c.p.Get("fileid"); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, false, fail(1018)
		}
		if f := c.e.liveFile(id); f != nil {
			return f, false, nil
		}
		return nil, false, fail(2009)
	}
	if v := c.p.Get("path"); v != "" {
		f, err := c.e.resolveFile(v)
		return f, true, err
	}
	return nil, false, fail(1004)
}

// target reads where a rename or copy goes: `topath` (a trailing '/' means "into this folder, keep the name"),
// or `tofolderid` and/or `toname` relative to the item's current place.
func (c *call) target(curParent uint64, curName string, missing, noFolder int) (*node, string, error) {
	e := c.e
	if tp := c.p.Get("topath"); tp != "" {
		if strings.HasSuffix(tp, "/") {
			f, err := e.resolveFolderPath(tp)
			if err != nil {
				return nil, "", fail(noFolder)
			}
			return f, curName, nil
		}
		parent, leaf, err := e.resolveParent(tp, noFolder)
		if err != nil {
			return nil, "", err
		}
		if leaf == "" {
			return nil, "", fail(2001)
		}
		return parent, leaf, nil
	}
	tf, tn := c.p.Get("tofolderid"), c.p.Get("toname")
	if tf == "" && tn == "" {
		return nil, "", fail(missing)
	}
	folder := e.folders[curParent]
	if tf != "" {
		id, err := strconv.ParseUint(tf, 10, 64)
		if err != nil {
			return nil, "", fail(1017)
		}
		if folder = e.liveFolder(id); folder == nil {
			return nil, "", fail(noFolder)
		}
	}
	name := curName
	if tn != "" {
		name = tn
	}
	if !validName(name) {
		return nil, "", fail(2001)
	}
	return folder, c.e.storedName(name), nil
}

// unixParam reads `mtime`/`ctime`: Unix seconds, possibly sent as the uint64 of a negative value (rclone does for
// pre-1970 times). pCloud ignores negative times and stores "now", so ok=false then.
func (c *call) unixParam(name string) (int64, bool, error) {
	v := c.p.Get(name)
	if v == "" {
		return 0, false, nil
	}
	u, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		i, err2 := strconv.ParseInt(v, 10, 64)
		if err2 != nil {
			return 0, false, fail(1013)
		}
		u = uint64(i)
	}
	if t := int64(u); t >= 0 {
		return t, true, nil
	}
	return 0, false, nil
}

func ok(kv ...any) map[string]any {
	m := map[string]any{"result": 0}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// touchParent sets a folder's modified time when something enters or leaves it, without a modifyfolder event
// (the docs ask clients to do the same from the events they get).
func (e *Emulator) touchParent(ch *change, id uint64, now int64) {
	if p := e.folders[id]; p != nil {
		p.Modified = now
		ch.put(p)
	}
}

// ---- account ----

func (c *call) userinfo() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	return c.userinfoFields(ok()), nil
}

func (c *call) userinfoFields(m map[string]any) map[string]any {
	e := c.e
	m["userid"] = e.cnt.UserID
	m["email"] = e.o.Email
	m["emailverified"] = true
	m["registered"] = c.t(e.cnt.Created)
	m["language"] = "en"
	m["premium"] = false
	m["premiumlifetime"] = false
	m["business"] = false
	m["plan"] = 0
	m["quota"] = e.o.Quota
	m["usedquota"] = e.used
	m["freequota"] = max(e.o.Quota-e.used, 0)
	m["publiclinkquota"] = 53687091200
	m["trashrevretentiondays"] = 15
	m["cryptosetup"] = false
	m["cryptosubscription"] = false
	m["cryptolifetime"] = false
	m["haspassword"] = true
	m["journey"] = map[string]any{"claimed": false, "steps": map[string]bool{"verifymail": true, "uploadfile": true,
		"autoupload": false, "downloadapp": false, "downloaddrive": false}}
	return m
}

func (c *call) currentserver() (any, error) {
	host := c.r.Host
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return ok("ip", strings.Trim(host, "[]"), "hostname", c.e.hostname(c.r)), nil
}

func (c *call) getapiserver() (any, error) {
	return ok("api", []string{c.e.hostname(c.r)}, "binapi", []string{}), nil
}

// trash answers OAuth callers with 1000, as pCloud does (§3.4); the trash itself is not browsable here.
func (c *call) trash() (any, error) {
	if c.e.is(VariantTrash) {
		return c.trashVariant()
	}
	if c.oauth {
		return nil, fail(1000) // re-tested 2026: the trash methods refuse OAuth tokens
	}
	return nil, fail(2003)
}

// ---- folders ----

func (c *call) listfolder() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f, byPath, err := c.folderArg(1002)
	if err != nil {
		return nil, err
	}
	recursive := c.flag("recursive")
	if recursive && f.ID == 0 && !e.o.AllowRootRecursive {
		return nil, fail(1101)
	}
	count := 0
	m := c.meta(f)
	if byPath {
		m.Path = e.pathOf(f)
	}
	m.Contents = c.contents(f, recursive, byPath, &count)
	if recursive && e.o.MaxRecursiveItems > 0 && count > e.o.MaxRecursiveItems {
		return nil, fail(5000)
	}
	return ok("metadata", m), nil
}

func (c *call) contents(f *node, recursive, withPath bool, count *int) *[]*metaOut {
	e := c.e
	kids := e.sortedKids(f.ID, true)
	if !c.flag("nofiles") {
		kids = append(kids, e.sortedKids(f.ID, false)...)
	}
	if c.flag("showdeleted") {
		var del []*node
		for _, all := range []map[uint64]*node{e.folders, e.files} {
			for _, n := range all {
				if n.Deleted && n.Parent == f.ID && (n.Folder || !c.flag("nofiles")) {
					del = append(del, n)
				}
			}
		}
		sort.Slice(del, func(i, j int) bool { return del[i].Name < del[j].Name })
		kids = append(kids, del...)
	}
	out := make([]*metaOut, 0, len(kids))
	for _, k := range kids {
		*count++
		m := c.meta(k)
		m.Padding = e.pad
		if withPath && !recursive {
			m.Path = e.pathOf(k)
		}
		if recursive && k.Folder && !k.Deleted {
			m.Contents = c.contents(k, true, false, count)
		}
		out = append(out, m)
	}
	return &out
}

func (c *call) createfolder(ifNotExists bool) (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	var parent *node
	var name string
	switch {
	case c.p.Get("path") != "":
		var err error
		if parent, name, err = e.resolveParent(c.p.Get("path"), 2002); err != nil {
			return nil, err
		}
		if name == "" { // the root
			if ifNotExists {
				return ok("metadata", c.meta(parent), "created", false), nil
			}
			return nil, fail(2004)
		}
	case c.p.Get("name") != "" && c.p.Get("folderid") != "":
		id, err := strconv.ParseUint(c.p.Get("folderid"), 10, 64)
		if err != nil {
			return nil, fail(1017)
		}
		if parent = e.liveFolder(id); parent == nil {
			return nil, fail(2002)
		}
		name = c.p.Get("name")
	default:
		return nil, fail(1001)
	}
	if !validName(name) {
		return nil, fail(2001)
	}
	name = e.storedName(name)
	if f := e.childFolder(parent.ID, name); f != nil {
		if ifNotExists {
			return ok("metadata", c.meta(f), "created", false), nil
		}
		return nil, fail(2004)
	}
	now := e.clk.Now().Unix()
	f := &node{ID: e.cnt.NextFolderID, Folder: true, Parent: parent.ID, Name: name, Created: now, Modified: now}
	e.cnt.NextFolderID++
	e.folders[f.ID] = f
	e.link(f)
	ch := &change{}
	ch.put(f)
	e.touchParent(ch, parent.ID, now)
	e.appendEvent(ch, "createfolder", f, 0)
	if err := e.commit(ch); err != nil {
		return nil, err
	}
	if ifNotExists {
		return ok("metadata", c.meta(f), "created", true), nil
	}
	return ok("metadata", c.meta(f)), nil
}

func (c *call) renamefolder() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	src, _, err := c.folderArg(1002)
	if err != nil {
		return nil, err
	}
	if src.ID == 0 {
		return nil, fail(2042)
	}
	dst, name, err := c.target(src.Parent, src.Name, 1037, 2005)
	if err != nil {
		return nil, err
	}
	if e.isUnder(dst.ID, src.ID) {
		return nil, fail(2043)
	}
	if other := e.childFolder(dst.ID, name); other != nil && other != src {
		return nil, fail(2004) // folders are never merged or overwritten
	}
	if dst.ID == src.Parent && name == src.Name {
		return ok("metadata", c.meta(src)), nil
	}
	ch := &change{}
	e.move(ch, src, dst.ID, name, e.clk.Now().Unix())
	e.appendEvent(ch, "modifyfolder", src, 0)
	return c.commitMeta(ch, src)
}

func (c *call) deletefolder() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := c.deletableFolder()
	if err != nil {
		return nil, err
	}
	if len(e.folderKids[f.ID]) > 0 || len(e.fileKids[f.ID]) > 0 {
		return nil, fail(2006)
	}
	return c.deleteOne(f)
}

func (c *call) deletefolderrecursive() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := c.deletableFolder()
	if err != nil {
		return nil, err
	}
	now := e.clk.Now().Unix()
	ch := &change{}
	files, folders := 0, 0
	// Children first, one event per item: a client that only knows part of the tree still sees every delete.
	var walk func(d *node)
	walk = func(d *node) {
		for _, sub := range e.sortedKids(d.ID, true) {
			walk(sub)
		}
		for _, file := range e.sortedKids(d.ID, false) {
			e.deleteNode(ch, file, now)
			files++
		}
		e.deleteNode(ch, d, now)
		folders++
	}
	walk(f)
	if err := e.commit(ch); err != nil {
		return nil, err
	}
	return ok("deletedfiles", files, "deletedfolders", folders), nil
}

// deleteNode moves an item to the (unbrowsable) trash: it keeps its id and parent, flagged deleted. File content
// stays, as in pCloud's trash (documented: deleted files are kept for the plan's trash retention), so a test can
// find a version tandem deleted (GET /trash on the admin endpoint).
func (e *Emulator) deleteNode(ch *change, n *node, now int64) {
	e.discard(n)
	e.touchParent(ch, n.Parent, now)
	ch.put(n)
	kind := "deletefile"
	if n.Folder {
		kind = "deletefolder"
	}
	e.appendEvent(ch, kind, n, 0)
}

// deletableFolder reads the folder argument of a folder delete: `folderid` | `path`, never the root (2007).
func (c *call) deletableFolder() (*node, error) {
	f, _, err := c.folderArg(1002)
	if err != nil {
		return nil, err
	}
	if f.ID == 0 {
		return nil, fail(2007)
	}
	return f, nil
}

// deleteOne trashes n alone and answers with its metadata.
func (c *call) deleteOne(n *node) (any, error) {
	ch := &change{}
	c.e.deleteNode(ch, n, c.e.clk.Now().Unix())
	return c.commitMeta(ch, n)
}

// discard unlinks n and flags it deleted; a file's quota goes at once, its content stays with it in the trash.
// No event, no parent touch.
func (e *Emulator) discard(n *node) {
	e.unlink(n)
	n.Deleted = true
	if !n.Folder {
		e.used -= n.Size
	}
}

// trashSums is the admin endpoint's GET /trash: the sha256 of every trashed file's stored content.
func (e *Emulator) trashSums() ([]string, error) {
	e.mu.Lock()
	var ids []uint64
	for _, n := range e.files {
		if n.Deleted && !n.Folder {
			ids = append(ids, n.ID)
		}
	}
	e.mu.Unlock()
	var out []string
	for _, id := range ids {
		s, err := e.content.SHA256(blobID(id))
		if err != nil {
			return nil, fmt.Errorf("trashed file %d: %w", id, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// move relinks n as name in folder dst, touching the folder it leaves and the one it enters, and records n in ch.
// The caller appends the event.
func (e *Emulator) move(ch *change, n *node, dst uint64, name string, now int64) {
	e.touchParent(ch, n.Parent, now)
	e.unlink(n)
	n.Parent, n.Name = dst, name
	e.link(n)
	e.touchParent(ch, dst, now)
	ch.put(n)
}

// commitMeta commits ch and answers with n's metadata, the reply of most single-item calls.
func (c *call) commitMeta(ch *change, n *node) (any, error) {
	if err := c.e.commit(ch); err != nil {
		return nil, err
	}
	return ok("metadata", c.meta(n)), nil
}

// ---- files ----

func (c *call) stat() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.p.Get("fileid") == "" && c.p.Get("folderid") != "" {
		f, _, err := c.folderArg(1004)
		if err != nil {
			return nil, err
		}
		return ok("metadata", c.meta(f)), nil
	}
	f, byPath, err := c.fileArg()
	if v := c.p.Get("fileid"); err != nil && v != "" && !e.is(VariantStatGone) {
		// Default: a trashed file is still described, flagged isdeleted (undocumented either way).
		if id, perr := strconv.ParseUint(v, 10, 64); perr == nil && e.files[id] != nil && e.files[id].Deleted {
			return ok("metadata", c.meta(e.files[id])), nil
		}
	}
	if err != nil {
		var ae *apiError
		if byPath || c.p.Get("path") == "" || !asAPI(err, &ae) || ae.code != 2009 {
			return nil, err
		}
		// A path naming a folder: answer with the folder, as listfolder would.
		d, derr := e.resolveFolderPath(c.p.Get("path"))
		if derr != nil {
			return nil, err
		}
		m := c.meta(d)
		m.Path = e.pathOf(d)
		return ok("metadata", m), nil
	}
	m := c.meta(f)
	if byPath {
		m.Path = e.pathOf(f)
	}
	return ok("metadata", m), nil
}

func asAPI(err error, target **apiError) bool {
	ae, isAPI := err.(*apiError)
	if isAPI {
		*target = ae
	}
	return isAPI
}

func (c *call) renamefile() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	src, _, err := c.fileArg()
	if err != nil {
		return nil, err
	}
	dst, name, err := c.target(src.Parent, src.Name, 1037, 2005)
	if err != nil {
		return nil, err
	}
	if dst.ID == src.Parent && name == src.Name {
		return ok("metadata", c.meta(src)), nil
	}
	now := e.clk.Now().Unix()
	ch := &change{}
	var replaced uint64
	if old := e.childFile(dst.ID, name); old != nil {
		// Atomic replace: the old file goes, its id is reported as deletedfileid on the reply and the event.
		e.discard(old)
		ch.put(old)
		replaced = old.ID
	}
	e.move(ch, src, dst.ID, name, now)
	e.appendEvent(ch, "modifyfile", src, replaced)
	if err := e.commit(ch); err != nil {
		return nil, err
	}
	m := c.meta(src)
	m.DeletedFileID = replaced
	return ok("metadata", m), nil
}

func (c *call) deletefile() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f, _, err := c.fileArg()
	if err != nil {
		return nil, err
	}
	return c.deleteOne(f)
}

func (c *call) checksumfile() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f, _, err := c.fileArg()
	if err != nil {
		return nil, err
	}
	out := ok("metadata", c.meta(f), "sha1", f.SHA1)
	k, v := e.regionHash(f.SHA256, f.MD5)
	out[k] = v
	return out, nil
}

func (c *call) copyfile() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	src, _, err := c.fileArg()
	if err != nil {
		return nil, err
	}
	if c.p.Get("topath") == "" && c.p.Get("tofolderid") == "" {
		return nil, fail(1016)
	}
	dst, name, err := c.target(src.Parent, src.Name, 1016, 2002)
	if err != nil {
		return nil, err
	}
	mtime, hasM, err := c.unixParam("mtime")
	if err != nil {
		return nil, err
	}
	ctime, hasC, err := c.unixParam("ctime")
	if err != nil {
		return nil, err
	}
	now := e.clk.Now().Unix()
	ch := &change{}
	existing := e.childFile(dst.ID, name)
	if existing == src {
		// Copy onto itself: how rclone sets only the mtime (§2.2).
		if hasM {
			src.Modified = mtime
			if hasC {
				src.Created = ctime
			}
		} else {
			src.Modified = now
		}
		ch.put(src)
		e.appendEvent(ch, "modifyfile", src, 0)
		return c.commitMeta(ch, src)
	}
	if existing != nil && c.flag("noover") {
		return nil, fail(2004)
	}
	grow := src.Size
	if existing != nil {
		grow -= existing.Size
	}
	if e.used+grow > e.o.Quota {
		return nil, fail(2008)
	}
	modified := src.Modified
	if hasM {
		modified = mtime
	}
	kind := "modifyfile"
	n := existing
	if n == nil {
		kind = "createfile"
		n = &node{ID: e.cnt.NextFileID, Parent: dst.ID, Name: name, Created: now}
		e.cnt.NextFileID++
	}
	if err := e.copyContent(src.ID, n.ID); err != nil {
		return nil, err
	}
	if hasM && hasC {
		n.Created = ctime
	}
	n.Modified, n.Size, n.Hash, n.ContentType = modified, src.Size, src.Hash, src.ContentType
	n.SHA1, n.MD5, n.SHA256 = src.SHA1, src.MD5, src.SHA256
	if existing == nil {
		e.files[n.ID] = n
		e.link(n)
	}
	e.used += grow
	e.touchParent(ch, dst.ID, now)
	ch.put(n)
	e.appendEvent(ch, kind, n, 0)
	return c.commitMeta(ch, n)
}

// copyContent gives dst the content of src. A hard link is enough: content files are only ever replaced by
// rename, never written in place.
func (e *Emulator) copyContent(src, dst uint64) error {
	tmp := e.content.TempPath()
	if err := os.Link(e.content.Path(blobID(src)), tmp); err != nil {
		data, rerr := e.content.ReadFile(blobID(src))
		if rerr != nil {
			return rerr
		}
		if werr := os.WriteFile(tmp, data, 0o600); werr != nil {
			return werr
		}
	}
	return e.content.Put(tmp, blobID(dst))
}
