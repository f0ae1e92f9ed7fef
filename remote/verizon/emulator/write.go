package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

var hexSum = regexp.MustCompile(`^[0-9a-f]{64}$`)

const intentTTL = 24 * time.Hour

// ---- upload intent (§9.1) ----

func (e *Emulator) intent(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	parent, err := cleanPath(q.Get("path"))
	if err != nil {
		return err
	}
	name := q.Get("name")
	if err := checkName(name); err != nil {
		return err
	}
	size, err := strconv.ParseInt(q.Get("size"), 10, 64)
	if err != nil || size < 0 {
		return badRequest("size must be a byte count")
	}
	sum := q.Get("checksum")
	if !hexSum.MatchString(sum) {
		return badRequest("checksum must be 64 lowercase hex characters")
	}
	chunked, err := boolParam(q, "chunk")
	if err != nil {
		return err
	}
	// safe, version and modificationDate are not documented (§9.1): ignored by default, enforced or refused by
	// a variant.
	if e.v.is(VariantIntentReject) {
		for k := range q {
			switch k {
			case "path", "name", "size", "checksum", "chunk":
			default:
				return badRequest("unknown parameter %s", k)
			}
		}
	}
	var safe bool
	var version *int
	var mod int64
	if e.v.is(VariantIntentEnforce) {
		if safe, err = boolParam(q, "safe"); err != nil {
			return err
		}
		if v := q.Get("version"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return badRequest("version must be a positive integer")
			}
			version = &n
		}
		if v := q.Get("modificationDate"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return badRequest("modificationDate must be ISO-8601")
			}
			mod = t.UnixMilli()
		}
	}
	if !chunked && size > e.o.MaxSimple {
		return badRequest("a file over %d bytes needs chunk=true", e.o.MaxSimple)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if parent == "/" || isVirtualFolder(parent) {
		return fail(http.StatusBadRequest, "virtual_folder", "cannot upload into a virtual folder root")
	}
	if err := e.checkTarget(parent, name, safe, version); err != nil {
		return err
	}
	if size > e.o.Quota-e.used {
		return fail(http.StatusRequestEntityTooLarge, "quota_exceeded", "not enough free space")
	}
	in := &intent{ID: "up_" + emukit.RandomHex(8), Parent: parent, Name: name, Size: size, Checksum: sum,
		Chunked: chunked, Safe: safe, Version: version, ModDate: mod, Created: e.nowMS()}
	e.uploads[in.ID] = in
	ch := newChange()
	ch.uploads[in.ID] = in
	e.gcUploads(ch)
	if err := e.commit(ch); err != nil {
		return err
	}
	base := baseURL(r)
	urls := map[string]string{"uploadurl": base + "/upload/" + in.ID + "?chunk=" + strconv.FormatBool(chunked)}
	if chunked {
		urls["commiturl"] = base + "/commit/" + in.ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploadurls": urls})
	return nil
}

// checkTarget applies the intent preconditions (§9.1); it runs at intent time and again at creation.
func (e *Emulator) checkTarget(parent, name string, safe bool, version *int) error {
	pn := e.live[parent]
	if pn == nil || !pn.Folder {
		return fail(http.StatusNotFound, "not_found", "folder %s not found", parent)
	}
	cur := e.live[join(parent, name)]
	switch {
	case cur != nil && cur.Folder:
		return fail(http.StatusConflict, "conflict", "%s is a folder", join(parent, name))
	case safe && cur != nil:
		return fail(http.StatusConflict, "conflict", "%s already exists", join(parent, name))
	case version != nil && (cur == nil || cur.Version != *version):
		return fail(http.StatusConflict, "conflict", "%s is not at version %d", join(parent, name), *version)
	case cur == nil && e.filesIn(parent) >= e.o.MaxPerFolder:
		return fail(http.StatusBadRequest, "folder_full", "%s holds the maximum number of files", parent)
	}
	return nil
}

// gcUploads forgets intents older than a day, with their chunks.
func (e *Emulator) gcUploads(ch *change) {
	cut := e.nowMS() - intentTTL.Milliseconds()
	for id, in := range e.uploads {
		if in.Created < cut {
			delete(e.uploads, id)
			ch.uploads[id] = nil
			_ = os.RemoveAll(filepath.Join(e.store.Dir, "uploads", id))
		}
	}
}

func (e *Emulator) liveIntent(id string) (*intent, error) {
	in := e.uploads[id]
	switch {
	case in == nil:
		return nil, notFound("upload " + id)
	case in.Done || e.nowMS()-in.Created > intentTTL.Milliseconds():
		return nil, fail(http.StatusBadRequest, "upload_expired", "upload %s is finished or expired", id)
	}
	return in, nil
}

// spool copies a request body to a temp file in the data dir while hashing it.
func (e *Emulator) spool(r io.Reader) (string, string, int64, error) {
	h := sha256.New()
	tmp, n, err := e.blobs.Spool(r, "up-*", h)
	if err != nil {
		return "", "", 0, err
	}
	return tmp, hex.EncodeToString(h.Sum(nil)), n, nil
}

// ---- upload (§9.2) ----

func (e *Emulator) upload(w http.ResponseWriter, r *http.Request, id string) error {
	q := r.URL.Query()
	if r.ContentLength < 0 {
		return fail(http.StatusLengthRequired, "invalid_request", "Content-Length is required")
	}
	// The SDK omits the checksum on the upload request: it is optional, and verified when given.
	sum := q.Get("checksum")
	if sum != "" && !hexSum.MatchString(strings.ToLower(sum)) {
		return fail(http.StatusBadRequest, "checksum_mismatch", "checksum must be 64 hex characters")
	}
	sum = strings.ToLower(sum)
	e.mu.Lock()
	in, err := e.liveIntent(id)
	var chunked bool
	var whole string
	if in != nil {
		chunked, whole = in.Chunked, in.Checksum
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	if r.ContentLength > e.o.MaxSimple {
		return fail(http.StatusBadRequest, "chunk_too_large", "a request body may hold at most %d bytes", e.o.MaxSimple)
	}
	seq := 0
	if chunked {
		if seq, err = strconv.Atoi(q.Get("offset")); err != nil || seq < 1 {
			return badRequest("offset must be the 1-based chunk number")
		}
	}
	tmp, got, n, err := e.spool(http.MaxBytesReader(w, r.Body, e.o.MaxSimple))
	if err != nil {
		return badRequest("read body: %v", err)
	}
	defer os.Remove(tmp)
	switch {
	case chunked && e.v.is(VariantChunkChecksumWhole):
		// variant: every chunk carries the whole file's checksum; the assembled file is checked at commit
		if sum != "" && sum != whole {
			return fail(http.StatusBadRequest, "checksum_mismatch", "chunk checksum %s is not the file's %s", sum, whole)
		}
	case sum != "" && got != sum:
		return fail(http.StatusBadRequest, "checksum_mismatch", "body checksum %s, parameter says %s", got, sum)
	}
	if chunked {
		dir := filepath.Join(e.store.Dir, "uploads", id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, strconv.Itoa(seq))); err != nil {
			return err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if in, err = e.liveIntent(id); err != nil {
			return err
		}
		if in.Chunks == nil {
			in.Chunks, in.Sums = map[int]int64{}, map[int]string{}
		}
		in.Chunks[seq], in.Sums[seq] = n, got // a re-sent chunk number replaces the earlier copy
		var received int64
		for _, c := range in.Chunks {
			received += c
		}
		ch := newChange()
		ch.uploads[id] = in
		if err := e.commit(ch); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"uploadid": id, "offset": seq, "received": received})
		return nil
	}
	if n != in.Size {
		return fail(http.StatusBadRequest, "size_mismatch", "body has %d bytes, the intent said %d", n, in.Size)
	}
	if got != in.Checksum {
		return fail(http.StatusBadRequest, "checksum_mismatch", "body checksum differs from the intent's")
	}
	return e.finish(w, r, id, tmp)
}

// finish stores a complete upload and answers 201 with the file.
func (e *Emulator) finish(w http.ResponseWriter, r *http.Request, id, tmp string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, err := e.liveIntent(id)
	if err != nil {
		return err
	}
	ch := newChange()
	n, err := e.storeFile(ch, in.Parent, in.Name, tmp, in.Size, in.Checksum, in.ModDate, in.Safe, in.Version)
	if err != nil {
		return err
	}
	in.Done = true
	ch.uploads[id] = in
	_ = os.RemoveAll(filepath.Join(e.store.Dir, "uploads", id))
	if err := e.commit(ch); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"file": toFile(baseURL(r), n)})
	return nil
}

// storeFile creates or replaces the file parent/name with the content in tmp (moved into the blob store).
// Callers hold e.mu.
func (e *Emulator) storeFile(ch *change, parent, name, tmp string, size int64, sum string, mod int64, safe bool, version *int) (*node, error) {
	if err := e.checkTarget(parent, name, safe, version); err != nil {
		return nil, err
	}
	if size > e.o.Quota-e.used {
		return nil, fail(http.StatusRequestEntityTooLarge, "quota_exceeded", "not enough free space")
	}
	if e.blobRefs[sum] == 0 {
		if err := e.blobs.Put(tmp, sum); err != nil {
			return nil, fmt.Errorf("store content: %w", err)
		}
	}
	p := join(parent, name)
	now := e.nowMS()
	if mod == 0 {
		mod = now
	}
	e.touch(ch, p)
	// The new claim on the blob comes before the old one is dropped: the same content stored again must not
	// remove the blob it shares with itself.
	e.blobRefs[sum]++
	e.used += size
	n := e.live[p]
	if n == nil {
		n = &node{ID: e.newID(), Parent: parent, Name: name, Created: now, Version: 0}
		e.link(n)
		e.byID[n.ID] = n
	} else {
		e.unref(n)
	}
	n.Size, n.Checksum, n.ContentToken, n.Version = size, sum, newContentToken(), n.Version+1
	n.VersionCreated, n.Modified, n.Mime = now, mod, mimeOf(name)
	ch.put(n)
	return n, nil
}

// unref drops a file's claim on its blob and removes the blob when nobody uses it any more.
func (e *Emulator) unref(n *node) {
	if n.Folder || n.Checksum == "" {
		return
	}
	e.used -= n.Size
	if e.blobRefs[n.Checksum]--; e.blobRefs[n.Checksum] <= 0 {
		delete(e.blobRefs, n.Checksum)
		_ = e.blobs.Remove(n.Checksum)
	}
}

// ---- commit (§9.3) ----

func (e *Emulator) commitUpload(w http.ResponseWriter, r *http.Request, id string) error {
	e.mu.Lock()
	in, err := e.liveIntent(id)
	var chunks map[int]int64
	if in != nil {
		chunks = in.Chunks
		if !in.Chunked {
			err = badRequest("upload %s is not chunked", id)
		}
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	var total int64
	for i := 1; i <= len(chunks); i++ {
		sz, ok := chunks[i]
		if !ok {
			return fail(http.StatusBadRequest, "size_mismatch", "chunk %d is missing", i)
		}
		total += sz
	}
	if total != in.Size {
		return fail(http.StatusBadRequest, "size_mismatch", "chunks hold %d bytes, the intent said %d", total, in.Size)
	}
	dir := filepath.Join(e.store.Dir, "uploads", id)
	pr, pw := io.Pipe()
	go func() {
		for i := 1; i <= len(chunks); i++ {
			f, err := os.Open(filepath.Join(dir, strconv.Itoa(i)))
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			_, err = io.Copy(pw, f)
			f.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	tmp, sum, _, err := e.spool(pr)
	pr.Close()
	if err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	defer os.Remove(tmp)
	if sum != in.Checksum {
		return fail(http.StatusBadRequest, "checksum_mismatch", "assembled content has checksum %s, the intent said %s", sum, in.Checksum)
	}
	return e.finish(w, r, id, tmp)
}

// ---- folders and file operations (§10) ----

type createFolderReq struct {
	Path     string `json:"path"`
	Name     string `json:"name"`
	Override string `json:"override"`
}

func (e *Emulator) createFolder(w http.ResponseWriter, r *http.Request) error {
	var req createFolderReq
	if err := readJSON(r, &req); err != nil {
		return err
	}
	parent, err := cleanPath(req.Path)
	if err != nil {
		return err
	}
	if err := checkName(req.Name); err != nil {
		return err
	}
	req.Override = strings.ToLower(req.Override)
	if req.Override != "" && req.Override != "overwrite" && req.Override != "modify" {
		return badRequest("override must be overwrite or modify")
	}
	if parent == "/" {
		return fail(http.StatusBadRequest, "virtual_folder", "virtual folders are managed with /virtualfolder")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	pn := e.live[parent]
	if pn == nil || !pn.Folder {
		return fail(http.StatusNotFound, "not_found", "folder %s not found", parent)
	}
	p := join(parent, req.Name)
	ch := newChange()
	if cur := e.live[p]; cur != nil {
		switch {
		case !cur.Folder || req.Override == "":
			return fail(http.StatusConflict, "conflict", "%s already exists", p)
		case req.Override == "modify" && e.v.is(VariantMkdirModifyRenames):
			// variant (default): "modify" resolves the clash by making the folder under a free name
			n := e.mkdir(ch, parent, e.freeName(parent, req.Name))
			if err := e.commit(ch); err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, map[string]any{"folder": toFolder(baseURL(r), n)})
			return nil
		case req.Override == "overwrite":
			for _, k := range e.subtree(cur)[1:] {
				if k.Parent == p {
					e.toTrash(ch, k)
				}
			}
		}
		if err := e.commit(ch); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"folder": toFolder(baseURL(r), cur)})
		return nil
	}
	n := e.mkdir(ch, parent, req.Name)
	if err := e.commit(ch); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"folder": toFolder(baseURL(r), n)})
	return nil
}

func (e *Emulator) mkdir(ch *change, parent, name string) *node {
	p := join(parent, name)
	e.touch(ch, p)
	now := e.nowMS()
	n := &node{ID: e.newID(), Parent: parent, Name: name, Folder: true, VersionCreated: now, Created: now}
	e.link(n)
	e.byID[n.ID] = n
	ch.put(n)
	return n
}

// toTrash moves a live item with its subtree to the trash of its virtual folder.
func (e *Emulator) toTrash(ch *change, top *node) {
	now := e.nowMS()
	sub := e.subtree(top)
	for i := len(sub) - 1; i >= 0; i-- { // children first, so the journal sees leaves before their folder
		n := sub[i]
		p := n.path()
		e.touch(ch, p)
		e.unlink(n)
		n.Trashed, n.TrashedAt, n.TrashGroup = true, now, top.ID
		e.trash[p] = append(e.trash[p], n)
		ch.put(n)
	}
}

// purge deletes a live or trashed item for good.
func (e *Emulator) purge(ch *change, n *node) {
	p := n.path()
	if n.Trashed {
		list := e.trash[p]
		for i, t := range list {
			if t == n {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(e.trash, p)
		} else {
			e.trash[p] = list
		}
	} else {
		e.touch(ch, p)
		e.unlink(n)
	}
	e.unref(n)
	delete(e.byID, n.ID)
	ch.drop(n)
}

func (e *Emulator) deleteItem(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := cleanPath(q.Get("path"))
	if err != nil {
		return err
	}
	purgeIt, err := boolParam(q, "purge")
	if err != nil {
		return err
	}
	if p == "/" || isVirtualFolder(p) {
		return fail(http.StatusBadRequest, "virtual_folder", "cannot delete a virtual folder here")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.live[p]
	if n == nil {
		return e.missing(p)
	}
	ch := newChange()
	if purgeIt {
		sub := e.subtree(n)
		for i := len(sub) - 1; i >= 0; i-- {
			e.purge(ch, sub[i])
		}
	} else {
		e.toTrash(ch, n)
	}
	if err := e.commit(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type relocateReq struct {
	Src           string `json:"src"`
	Target        string `json:"target"`
	Safe          *bool  `json:"safe"`
	ConflictSolve string `json:"conflictsolve"`
	Override      string `json:"override"`
}

// freeName finds "name (1).ext", "name (2).ext", … (first free) in parent.
func (e *Emulator) freeName(parent, name string) string {
	ext := ""
	if x := extOf(name); x != "" {
		ext = name[len(name)-len(x)-1:]
	}
	stem := strings.TrimSuffix(name, ext)
	for i := 1; ; i++ {
		c := fmt.Sprintf("%s (%d)%s", stem, i, ext)
		if e.live[join(parent, c)] == nil {
			return c
		}
	}
}

func (e *Emulator) relocate(w http.ResponseWriter, r *http.Request, op string) error {
	var req relocateReq
	if err := readJSON(r, &req); err != nil {
		return err
	}
	src, err := cleanPath(req.Src)
	if err != nil {
		return err
	}
	target, err := cleanPath(req.Target)
	if err != nil {
		return err
	}
	safe := req.Safe != nil && *req.Safe
	if req.ConflictSolve != "" && req.ConflictSolve != "copy" {
		return badRequest("conflictsolve must be copy")
	}
	if src == "/" || target == "/" || isVirtualFolder(src) || isVirtualFolder(target) {
		return fail(http.StatusBadRequest, "virtual_folder", "virtual folders cannot be copied, moved or renamed")
	}
	sp, sname := parentOf(src)
	tp, tname := parentOf(target)
	if op == "move" && e.v.is(VariantMoveTargetFolder) {
		// variant (default): the target is the folder the item goes into; its name stays
		tp, tname = target, sname
		target = join(tp, tname)
	}
	if op == "rename" && sp != tp {
		return badRequest("rename keeps the parent folder; use move")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.live[src]
	if n == nil {
		return notFound(src)
	}
	if pn := e.live[tp]; pn == nil || !pn.Folder {
		return fail(http.StatusNotFound, "not_found", "folder %s not found", tp)
	}
	if n.Folder && (target == src || strings.HasPrefix(target, src+"/")) {
		if target == src && op != "copy" {
			writeJSON(w, http.StatusOK, map[string]any{"folder": toFolder(baseURL(r), n)})
			return nil
		}
		return badRequest("cannot put a folder into itself")
	}
	if target == src && op != "copy" {
		writeJSON(w, http.StatusOK, map[string]any{"file": toFile(baseURL(r), n)})
		return nil
	}
	if target == src && !(safe && req.ConflictSolve == "copy") {
		return fail(http.StatusConflict, "conflict", "%s already exists", target)
	}
	ch := newChange()
	if cur := e.live[target]; cur != nil {
		switch {
		case cur.Folder != n.Folder:
			return fail(http.StatusConflict, "conflict", "%s exists and is of another kind", target)
		case safe && req.ConflictSolve == "copy":
			tname = e.freeName(tp, tname)
		case safe:
			return fail(http.StatusConflict, "conflict", "%s already exists", target)
		default:
			e.toTrash(ch, cur) // never silently lost
		}
	}
	if !n.Folder && e.filesIn(tp) >= e.o.MaxPerFolder && (op == "copy" || sp != tp) {
		return fail(http.StatusBadRequest, "folder_full", "%s holds the maximum number of files", tp)
	}
	var out *node
	if op == "copy" {
		out = e.copyTree(ch, n, tp, tname)
	} else {
		out = e.moveTree(ch, n, tp, tname)
	}
	if err := e.commit(ch); err != nil {
		return err
	}
	if out.Folder {
		writeJSON(w, http.StatusOK, map[string]any{"folder": toFolder(baseURL(r), out)})
	} else {
		writeJSON(w, http.StatusOK, map[string]any{"file": toFile(baseURL(r), out)})
	}
	return nil
}

// moveTree re-parents n and its subtree; versions, checksums and content tokens stay (§5.1).
func (e *Emulator) moveTree(ch *change, n *node, parent, name string) *node {
	oldTop := n.path()
	newTop := join(parent, name)
	sub := e.subtree(n)
	for i := len(sub) - 1; i >= 0; i-- {
		e.touchAs(ch, sub[i].path(), true)
		e.unlink(sub[i])
	}
	for _, k := range sub {
		if k == n {
			k.Parent, k.Name = parent, name
		} else {
			k.Parent = newTop + strings.TrimPrefix(k.Parent, oldTop)
		}
		e.touch(ch, k.path())
		e.link(k)
		ch.put(k)
	}
	return n
}

// copyTree duplicates n below parent as name: new items, files at version 1 with new content tokens.
func (e *Emulator) copyTree(ch *change, n *node, parent, name string) *node {
	oldTop := n.path()
	newTop := join(parent, name)
	now := e.nowMS()
	var top *node
	for _, k := range e.subtree(n) {
		c := *k
		c.ID = e.newID()
		if k == n {
			c.Parent, c.Name = parent, name
		} else {
			c.Parent = newTop + strings.TrimPrefix(k.Parent, oldTop)
		}
		c.VersionCreated, c.Created = now, now
		if !c.Folder {
			c.Version, c.ContentToken = 1, newContentToken()
			e.blobRefs[c.Checksum]++
			e.used += c.Size
		}
		e.touch(ch, c.path())
		e.link(&c)
		e.byID[c.ID] = &c
		ch.put(&c)
		if k == n {
			top = &c
		}
	}
	return top
}

func (e *Emulator) restore(w http.ResponseWriter, r *http.Request) error {
	var req deletedPaths
	if err := readJSON(r, &req); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	for _, raw := range req.Path {
		p, err := cleanPath(raw)
		if err != nil {
			return err
		}
		var top *node
		for _, t := range e.trash[p] {
			if t.TrashGroup == t.ID && (top == nil || t.TrashedAt >= top.TrashedAt) {
				top = t // the most recently deleted
			}
		}
		if top == nil {
			return notFound(p + " in the trash")
		}
		if e.live[p] != nil {
			return fail(http.StatusConflict, "conflict", "%s exists", p)
		}
		e.mkdirAll(ch, top.Parent)
		var group []*node
		for _, list := range e.trash {
			for _, t := range list {
				if t.TrashGroup == top.ID && t.TrashedAt == top.TrashedAt {
					group = append(group, t)
				}
			}
		}
		// Parents first: shorter paths first is enough within one deleted subtree.
		sortByDepth(group)
		for _, t := range group {
			tp := t.path()
			if e.live[tp] != nil {
				continue // cannot happen below a free top path; kept in the trash rather than orphaned
			}
			list := e.trash[tp]
			for i, x := range list {
				if x == t {
					list = append(list[:i], list[i+1:]...)
					break
				}
			}
			if len(list) == 0 {
				delete(e.trash, tp)
			} else {
				e.trash[tp] = list
			}
			t.Trashed, t.TrashedAt, t.TrashGroup = false, 0, 0
			e.touch(ch, tp)
			e.link(t)
			ch.put(t)
		}
	}
	if err := e.commit(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func sortByDepth(ns []*node) {
	for i := 1; i < len(ns); i++ {
		for j := i; j > 0 && strings.Count(ns[j].path(), "/") < strings.Count(ns[j-1].path(), "/"); j-- {
			ns[j], ns[j-1] = ns[j-1], ns[j]
		}
	}
}

// mkdirAll creates the missing folders of p (restore recreates missing parents).
func (e *Emulator) mkdirAll(ch *change, p string) {
	if p == "/" || e.live[p] != nil {
		return
	}
	parent, name := parentOf(p)
	e.mkdirAll(ch, parent)
	e.mkdir(ch, parent, name)
}

func (e *Emulator) emptyTrash(w http.ResponseWriter, r *http.Request) error {
	vf := r.URL.Query().Get("virtualfolder")
	if vf == "" {
		vf = "VZMOBILE"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live["/"+vf] == nil || !isVirtualFolder("/"+vf) {
		return notFound("/" + vf)
	}
	ch := newChange()
	var doomed []*node
	for p, list := range e.trash {
		if vfOf(p) == vf {
			doomed = append(doomed, list...)
		}
	}
	for _, n := range doomed {
		e.purge(ch, n)
	}
	if err := e.commit(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// ---- direct access for tests, benchmarks and `tandem emulate --seed` ----

// PutFile stores data at the absolute path p (its folders are created), as an upload without preconditions
// would. It bypasses HTTP, so a benchmark can fill the account quickly.
func (e *Emulator) PutFile(p string, data []byte, mtime time.Time) error {
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	parent, name := parentOf(p)
	if isVirtualFolder(parent) || parent == "/" {
		return errors.New("files cannot live in a virtual folder root")
	}
	tmp, sum, n, err := e.spool(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	e.mkdirAll(ch, parent)
	var mod int64
	if !mtime.IsZero() {
		mod = mtime.UnixMilli()
	}
	if _, err := e.storeFile(ch, parent, name, tmp, n, sum, mod, false, nil); err != nil {
		return err
	}
	return e.commit(ch)
}

// PutHostile stores a file whose name breaks every rule (`..`, `a/b`, NUL …) below the existing folder parent,
// the way a hostile or buggy server would serve it. For SEC-01-style tests only.
func (e *Emulator) PutHostile(parent, name string, data []byte) error {
	tmp, sum, n, err := e.spool(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	e.mu.Lock()
	defer e.mu.Unlock()
	if pn := e.live[parent]; pn == nil || !pn.Folder {
		return fmt.Errorf("parent %s: not a folder", parent)
	}
	if e.blobRefs[sum] == 0 {
		if err := e.blobs.Put(tmp, sum); err != nil {
			return err
		}
	}
	ch := newChange()
	now := e.nowMS()
	nd := &node{ID: e.newID(), Parent: parent, Name: name, Size: n, Checksum: sum, ContentToken: newContentToken(),
		Version: 1, VersionCreated: now, Created: now, Modified: now, Mime: "application/octet-stream"}
	e.touch(ch, nd.path())
	e.link(nd)
	e.byID[nd.ID] = nd
	e.blobRefs[sum]++
	e.used += n
	ch.put(nd)
	return e.commit(ch)
}

// SnapEntry is one live item in a Snapshot.
type SnapEntry struct {
	Folder       bool
	Size         int64
	Checksum     string
	Version      int
	ContentToken string
}

// Snapshot lists the live items by absolute path (virtual folders included).
func (e *Emulator) Snapshot() map[string]SnapEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]SnapEntry, len(e.live))
	for p, n := range e.live {
		out[p] = SnapEntry{Folder: n.Folder, Size: n.Size, Checksum: n.Checksum, Version: n.Version,
			ContentToken: n.ContentToken}
	}
	return out
}

// Trashed lists the original paths of the items in the trash.
func (e *Emulator) Trashed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for p, list := range e.trash {
		for range list {
			out = append(out, p)
		}
	}
	return out
}
