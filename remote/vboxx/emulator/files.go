package emulator

import (
	"archive/zip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serveFiles routes /api/2/files/{r}/... (parts starts at {r}). The paths of 5.1-5.3 overlap in ways Go's
// ServeMux patterns cannot express ({f}/download against folder/{d}), so the routing is by hand.
func (e *Emulator) serveFiles(w http.ResponseWriter, r *http.Request, parts []string) error {
	n := len(parts)
	switch {
	case n == 1:
		if err := need(r, http.MethodGet); err != nil {
			return err
		}
		return e.serveListing(w, r, parts[0], "")
	case n == 2 && parts[1] == "modified_since":
		if err := need(r, http.MethodGet); err != nil {
			return err
		}
		return e.serveModifiedSince(w, r, parts[0])
	case n == 2 && parts[1] == "search":
		if err := need(r, http.MethodGet); err != nil {
			return err
		}
		return e.serveSearch(w, r, parts[0])
	case n == 2 && (parts[1] == "upload" || parts[1] == "create_folder" || parts[1] == "lock" || parts[1] == "unlock"):
		if err := need(r, http.MethodPost); err != nil {
			return err
		}
		switch parts[1] {
		case "upload":
			return e.serveUpload(w, r, parts[0], "0")
		case "create_folder":
			return e.serveCreateFolder(w, r, parts[0], "0")
		}
		return e.serveRootLock(w, parts[0], parts[1] == "lock")
	case n == 2:
		if err := need(r, http.MethodGet); err != nil {
			return err
		}
		return e.serveGetFile(w, r, parts[0], parts[1])
	case n == 3 && parts[1] == "folder":
		if err := need(r, http.MethodGet); err != nil {
			return err
		}
		return e.serveListing(w, r, parts[0], parts[2])
	case n == 3:
		return e.serveItemAction(w, r, parts[0], parts[1], parts[2], false)
	case n == 4 && parts[1] == "folder":
		return e.serveItemAction(w, r, parts[0], parts[2], parts[3], true)
	}
	return errNotFound
}

func (e *Emulator) serveItemAction(w http.ResponseWriter, r *http.Request, rootS, idS, action string, folder bool) error {
	switch action {
	case "download":
		if err := need(r, http.MethodGet); err != nil {
			return err
		}
		if folder {
			return e.serveFolderZip(w, rootS, idS)
		}
		return e.serveDownload(w, rootS, idS)
	case "upload", "create_folder":
		if !folder {
			return errNotFound
		}
		if err := need(r, http.MethodPost); err != nil {
			return err
		}
		if action == "upload" {
			return e.serveUpload(w, r, rootS, idS)
		}
		return e.serveCreateFolder(w, r, rootS, idS)
	case "rename", "move", "lock", "unlock", "delete":
		if err := need(r, http.MethodPost); err != nil {
			return err
		}
		return e.serveMutate(w, r, rootS, idS, action, folder)
	}
	return errNotFound
}

// serveListing answers a root GET (folderS "") or a folder GET, with children and the hash / 304 protocol.
func (e *Emulator) serveListing(w http.ResponseWriter, r *http.Request, rootS, folderS string) error {
	f, err := parseFlags(r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	var obj map[string]any
	var folder int64
	var base string
	switch folderS {
	case "":
		obj, base = e.rootObj(rt, f), "/"
	case "0": // the top level, addressed as a folder (Observed in a public client)
		obj, base = map[string]any{"id": 0, "is_deleted": false, "is_locked": rt.LockedBy != 0, "path": "/",
			"root_id": rt.ID, "type": "folder"}, "/"
		if f.permissions {
			obj["permissions"] = permissions(!e.v.readonlyRoot)
		}
	default:
		it, err := e.itemByID(rt, folderS, true, true)
		if err != nil {
			e.mu.Unlock()
			return err
		}
		folder, base = it.ID, e.itemPath(it)
		obj = e.obj(it, base, f)
	}
	var kids []*item
	if f.children {
		for _, id := range e.kids[parentKey{rt.ID, folder}] {
			kids = append(kids, e.items[id])
		}
		if f.deleted {
			for _, it := range e.items {
				if it.Deleted && it.Root == rt.ID && it.Parent == folder {
					kids = append(kids, it)
				}
			}
		}
	}
	children := make([]map[string]any, 0, len(kids))
	for _, it := range kids {
		children = append(children, e.obj(it, joinPath(base, it.Name), f))
	}
	e.mu.Unlock()
	if !f.children {
		writeJSON(w, http.StatusOK, obj)
		return nil
	}
	// The hash covers the canonical body: keys sorted (encoding/json sorts map keys), children by id.
	slices.SortFunc(children, func(a, b map[string]any) int { return int(a["id"].(int64) - b["id"].(int64)) })
	obj["children"] = children
	canon, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	sum := sha1.Sum(canon)
	hash := hex.EncodeToString(sum[:])
	if r.FormValue("hash") == hash {
		if e.v.notModifiedBody {
			writeNotModifiedBody(w)
			return nil
		}
		w.WriteHeader(http.StatusNotModified) // no body: HTTP forbids one on 304
		return nil
	}
	// Shown folders first, then by path (project decision; the order is unspecified on real servers).
	slices.SortStableFunc(children, func(a, b map[string]any) int {
		fa, fb := a["type"] == "folder", b["type"] == "folder"
		if fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return strings.Compare(a["path"].(string), b["path"].(string))
	})
	obj["hash"] = hash
	writeJSON(w, http.StatusOK, obj)
	return nil
}

// writeNotModifiedBody sends 304 with the body the reference prints. net/http writes no body on 304, so the
// connection is taken over after the header, the body written, and the connection closed (Connection: close),
// which is the only way such a body can be delimited once net/http has dropped its Content-Length.
func writeNotModifiedBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusNotModified)
	conn, bw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = bw.WriteString(`{"status": "not_modified"}`)
	_ = bw.Flush()
}

func (e *Emulator) serveGetFile(w http.ResponseWriter, r *http.Request, rootS, idS string) error {
	f, err := parseFlags(r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		return err
	}
	it, err := e.itemByID(rt, idS, false, true) // a deleted file answers 200 with is_deleted: true
	if err != nil {
		return err
	}
	e.writeItem(w, it, f)
	return nil
}

// blobID names a revision's content blob. A revision's content never changes.
func blobID(rev int64) string { return strconv.FormatInt(rev, 10) }

func (e *Emulator) serveDownload(w http.ResponseWriter, rootS, idS string) error {
	e.mu.Lock()
	rt, err := e.rootByID(rootS)
	var it *item
	if err == nil {
		it, err = e.itemByID(rt, idS, false, false)
	}
	var rev, size int64
	var name string
	if err == nil {
		rev, size, name = it.Rev, it.Size, it.Name
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	// A revision's content file never changes, so it is read without the lock.
	f, err := e.content.Open(blobID(rev))
	if err != nil {
		return errf(http.StatusInternalServerError, "unknown", "")
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
	return nil
}

func (e *Emulator) serveFolderZip(w http.ResponseWriter, rootS, idS string) error {
	type entry struct {
		name string
		rev  int64
	}
	e.mu.Lock()
	rt, err := e.rootByID(rootS)
	var files []entry
	var dir string
	if err == nil {
		var it *item
		if it, err = e.itemByID(rt, idS, true, false); err == nil {
			dir = e.itemPath(it)
			for _, x := range e.subtree(it)[1:] {
				if !x.Folder {
					files = append(files, entry{strings.TrimPrefix(e.itemPath(x), dir+"/"), x.Rev})
				}
			}
		}
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.WriteHeader(http.StatusOK)
	zw := zip.NewWriter(w)
	for _, f := range files {
		dst, err := zw.Create(f.name)
		if err != nil {
			return nil
		}
		src, err := e.content.Open(blobID(f.rev))
		if err != nil {
			return nil
		}
		_, _ = io.Copy(dst, src)
		src.Close()
	}
	_ = zw.Close()
	return nil
}

func (e *Emulator) serveModifiedSince(w http.ResponseWriter, r *http.Request, rootS string) error {
	raw := r.FormValue("since")
	if raw == "" {
		return missingParam("since")
	}
	since, err := time.Parse(timeFmt, raw)
	// Strict: Go's parser accepts nothing but the layout, and the round trip rejects anything it normalized.
	if err != nil || since.Format(timeFmt) != raw {
		return errf(http.StatusBadRequest, "invalid_datetime_format",
			"Invalid datetime format. The expected format is: YYYY-MM-DDTHH:MM:SS")
	}
	f, err := parseFlags(r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		return err
	}
	type hit struct {
		at int64
		it *item
	}
	var hits []hit
	s := since.Unix()
	for _, it := range e.items {
		if it.Folder || it.Root != rt.ID {
			continue
		}
		at := it.Stored // documented only as "modified since": the default reads it as the upload time
		if at == 0 || e.v.sinceModified {
			at = it.Modified // variant: the file's own time, which a desktop agent may keep old
		}
		switch {
		case !it.Deleted && at >= s:
			hits = append(hits, hit{at, it})
		case it.Deleted && e.o.FeedDeletions && it.DeletedAt >= s:
			hits = append(hits, hit{it.DeletedAt, it})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return int(a.it.ID - b.it.ID)
	})
	its := make([]*item, 0, len(hits))
	for _, h := range hits {
		its = append(its, h.it)
	}
	e.writeResults(w, its, f)
	return nil
}

func (e *Emulator) serveSearch(w http.ResponseWriter, r *http.Request, rootS string) error {
	q := fold(r.FormValue("q"))
	f, err := parseFlags(r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		return err
	}
	var hits []*item
	for _, it := range e.items {
		if it.Root == rt.ID && !it.Deleted && strings.Contains(fold(it.Name), q) {
			hits = append(hits, it)
		}
	}
	slices.SortFunc(hits, func(a, b *item) int { return int(a.ID - b.ID) })
	e.writeResults(w, hits, f)
	return nil
}

// writeItem answers 200 with it as an object at its path.
func (e *Emulator) writeItem(w http.ResponseWriter, it *item, f flags) {
	writeJSON(w, http.StatusOK, e.obj(it, e.itemPath(it), f))
}

// writeResults answers 200 with {"results": [...]}, its in the order given, each at its path.
func (e *Emulator) writeResults(w http.ResponseWriter, its []*item, f flags) {
	results := make([]map[string]any, 0, len(its))
	for _, it := range its {
		results = append(results, e.obj(it, e.itemPath(it), f))
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// parentFolder resolves the {d} of an upload or create_folder: "0" is the top level.
func (e *Emulator) parentFolder(rt *rootRec, idS string) (int64, error) {
	if idS == "0" {
		return 0, nil
	}
	it, err := e.itemByID(rt, idS, true, false)
	if err != nil {
		return 0, err
	}
	return it.ID, nil
}

func (e *Emulator) serveCreateFolder(w http.ResponseWriter, r *http.Request, rootS, parentS string) error {
	name := r.FormValue("name")
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		return err
	}
	parent, err := e.parentFolder(rt, parentS)
	if err != nil {
		return err
	}
	if !e.writable(parent) {
		return errForbidden
	}
	it, err := e.createFolder(rt, parent, name)
	if err != nil {
		return err
	}
	e.writeItem(w, it, flags{permissions: true})
	return nil
}

func (e *Emulator) createFolder(rt *rootRec, parent int64, name string) (*item, error) {
	if e.lockedByOther(rt, parent) {
		return nil, errLocked
	}
	if err := e.checkName(name, true); err != nil {
		return nil, err
	}
	if e.sibling(rt.ID, parent, name) != nil {
		return nil, errConflict
	}
	it := &item{ID: e.newID(), Root: rt.ID, Parent: parent, Folder: true, Name: name}
	e.items[it.ID] = it
	e.addKid(it)
	ch := newChange()
	ch.put(it)
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		return nil, err
	}
	return it, nil
}

func (e *Emulator) serveRootLock(w http.ResponseWriter, rootS string, lock bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		return err
	}
	if e.v.readonlyRoot {
		return errForbidden
	}
	if rt.LockedBy != 0 && rt.LockedBy != personID {
		return errLocked
	}
	if lock {
		rt.LockedBy, rt.LockedAt = personID, e.nowLocked().Unix()
	} else {
		rt.LockedBy, rt.LockedAt = 0, 0
	}
	ch := newChange()
	ch.roots[rt.ID] = rt
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, okBody())
	return nil
}

// serveMutate is rename, move, lock, unlock and delete of a file or folder.
func (e *Emulator) serveMutate(w http.ResponseWriter, r *http.Request, rootS, idS, action string, folder bool) error {
	name, hasName := r.FormValue("name"), r.Form.Has("name")
	to, hasTo := r.FormValue("to_folder_id"), r.Form.Has("to_folder_id")
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, err := e.rootByID(rootS)
	if err != nil {
		return err
	}
	it, err := e.itemByID(rt, idS, folder, false)
	if err != nil {
		return err
	}
	if !e.itemWritable(it) {
		return errForbidden
	}
	ch := newChange()
	switch action {
	case "rename":
		if !hasName {
			return missingParam("name")
		}
		if err := e.rename(rt, it, name, ch); err != nil {
			return err
		}
	case "move":
		if !hasTo {
			return missingParam("to_folder_id")
		}
		if err := e.move(rt, it, to, ch); err != nil {
			return err
		}
	case "lock", "unlock":
		if e.itemLockedByOther(rt, it) {
			return errLocked
		}
		if action == "lock" {
			it.LockedBy, it.LockedAt = personID, e.nowLocked().Unix()
		} else {
			it.LockedBy, it.LockedAt = 0, 0
		}
		ch.put(it)
	case "delete":
		if e.lockedByOther(rt, it.Parent) || e.subtreeLockedByOther(it) {
			return errLocked
		}
		e.softDelete(it, e.nowLocked().Unix(), ch)
	}
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		return err
	}
	if action == "rename" || action == "move" {
		e.writeItem(w, it, flags{permissions: true})
	} else {
		writeJSON(w, http.StatusOK, okBody())
	}
	return nil
}

func (e *Emulator) rename(rt *rootRec, it *item, name string, ch *change) error {
	if e.itemLockedByOther(rt, it) {
		return errLocked
	}
	if err := e.checkName(name, it.Folder); err != nil {
		return err
	}
	if s := e.sibling(rt.ID, it.Parent, name); s != nil && s.ID != it.ID {
		return errConflict
	}
	e.dropKid(it)
	it.Name = name
	e.addKid(it)
	ch.put(it)
	return nil
}

func (e *Emulator) move(rt *rootRec, it *item, to string, ch *change) error {
	var dest int64
	if to != "" {
		id, err := strconv.ParseInt(to, 10, 64)
		if err != nil || id <= 0 {
			return badParam("to_folder_id")
		}
		d := e.items[id]
		switch {
		case d == nil || !d.Folder:
			return errNotFound
		case d.Root != rt.ID:
			return badParam("to_folder_id") // across roots is impossible
		case d.Deleted:
			return errNotFound
		}
		dest = id
	}
	if it.Folder && e.isBelow(dest, it.ID) {
		return badParam("to_folder_id")
	}
	if !e.writable(dest) {
		return errForbidden
	}
	if e.itemLockedByOther(rt, it) || e.subtreeLockedByOther(it) || e.lockedByOther(rt, dest) {
		return errLocked
	}
	if s := e.sibling(rt.ID, dest, it.Name); s != nil && s.ID != it.ID {
		return errConflict
	}
	e.dropKid(it)
	it.Parent = dest
	e.addKid(it)
	ch.put(it)
	return nil
}

// serveUpload stores the multipart part `file` as a new file or, with overwrite=true, a new revision. Name checks
// come before the body is stored (invalid_name, invalid_extension, name_conflict), then the size checks. The body
// may arrive chunked: the client streams it.
func (e *Emulator) serveUpload(w http.ResponseWriter, r *http.Request, rootS, parentS string) error {
	if r.ContentLength < 0 && !e.v.chunked {
		// Default: a stack that needs the length up front (many WSGI/CGI servers) refuses a chunked body.
		return errf(http.StatusLengthRequired, "invalid_request", "Length Required")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return errf(http.StatusBadRequest, "no_file_received", "Missing required file: file")
	}
	fields := r.URL.Query()
	var part io.Reader
	var name string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errf(http.StatusBadRequest, "invalid_request", "")
		}
		// The raw parameter, not Part.FileName(): that strips directories and would hide an invalid name.
		cd := p.Header.Get("Content-Disposition")
		if !e.v.filenameStar {
			// Default: RFC 7578 forbids filename* in form-data, and stacks that follow it never read one.
			cd = filenameStar.ReplaceAllString(cd, "")
		}
		_, params, _ := mime.ParseMediaType(cd)
		if params["name"] == "file" {
			if _, ok := params["filename"]; ok {
				part, name = p, params["filename"]
				break
			}
			// A part without a file name is a plain form field to such stacks: no file was received.
		}
		v, _ := io.ReadAll(io.LimitReader(p, 64<<10))
		fields.Add(params["name"], string(v))
	}
	if part == nil {
		return errf(http.StatusBadRequest, "no_file_received", "Missing required file: file")
	}
	overwrite := false
	switch fields.Get("overwrite") {
	case "", "false":
	case "true":
		overwrite = true
	default:
		return badParam("overwrite")
	}
	if !e.v.overwrite {
		overwrite = false // default: the reference has no such switch; an unknown field is ignored
	}

	e.mu.Lock()
	rt, err := e.rootByID(rootS)
	var parent int64
	if err == nil {
		parent, err = e.parentFolder(rt, parentS)
	}
	if err == nil && !e.writable(parent) {
		err = errForbidden
	}
	if err == nil {
		err = e.uploadCheck(rt, parent, name, overwrite)
	}
	maxSize := e.policy.maxSize
	e.mu.Unlock()
	if err != nil {
		drainPart(part)
		return err
	}

	tmp, err := e.content.CreateTemp("up-*")
	if err != nil {
		return errf(http.StatusInternalServerError, "unknown", "")
	}
	defer os.Remove(tmp.Name())
	src := part
	if maxSize > 0 {
		src = io.LimitReader(part, maxSize+1)
	}
	size, err := io.Copy(tmp, src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errf(http.StatusBadRequest, "invalid_request", "")
	}
	if maxSize > 0 && size > maxSize {
		drainPart(part)
		return errf(http.StatusConflict, "policy_error", "File exceeds the maximum file size.")
	}
	for { // anything after the file part is read and ignored
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		drainPart(p)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	it, err := e.storeFile(rt, parent, name, overwrite, tmp.Name(), size)
	if err != nil {
		return err
	}
	e.writeItem(w, it, flags{permissions: true})
	return nil
}

// filenameStar matches an RFC 2231 filename*= parameter of a Content-Disposition.
var filenameStar = regexp.MustCompile(`(?i);\s*filename\*\s*=\s*("[^"]*"|[^;]*)`)

// drainPart reads what is left of a refused body (up to a bound), so the client's request finishes and it sees
// the error answer rather than a reset.
func drainPart(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 256<<20)) }

func (e *Emulator) uploadCheck(rt *rootRec, parent int64, name string, overwrite bool) error {
	if rt.Deleted {
		return errRootGone
	}
	if parent != 0 {
		if p := e.items[parent]; p == nil || p.Deleted {
			return errNotFound
		}
	}
	if e.lockedByOther(rt, parent) {
		return errLocked
	}
	if err := e.checkName(name, false); err != nil {
		return err
	}
	if s := e.sibling(rt.ID, parent, name); s != nil {
		if s.Folder || !overwrite {
			return errConflict
		}
		if s.LockedBy != 0 && s.LockedBy != personID {
			return errLocked
		}
	}
	return nil
}

// storeFile commits an upload whose body is in tmp, re-checking what may have changed while it streamed.
func (e *Emulator) storeFile(rt *rootRec, parent int64, name string, overwrite bool, tmp string, size int64) (*item, error) {
	if err := e.uploadCheck(rt, parent, name, overwrite); err != nil {
		return nil, err
	}
	old := e.sibling(rt.ID, parent, name)
	if q := e.policy.quota; q > 0 {
		used := e.used(0) + size
		if old != nil {
			used -= old.Size
		}
		if used > q {
			return nil, errf(http.StatusConflict, "policy_error", "Space quota exceeded.")
		}
	}
	rev := e.newRev()
	if err := e.content.Put(tmp, blobID(rev)); err != nil {
		return nil, errf(http.StatusInternalServerError, "unknown", "")
	}
	now := e.nowLocked().Unix()
	it := old
	if it == nil {
		it = &item{ID: e.newID(), Root: rt.ID, Parent: parent, Name: name, Created: now}
		e.items[it.ID] = it
		e.addKid(it)
	}
	it.Rev, it.Size, it.Modified, it.Stored = rev, size, now, now
	ch := newChange()
	ch.put(it)
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		return nil, err
	}
	return it, nil
}

func (e *Emulator) servePerson(w http.ResponseWriter, _ *http.Request, who []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(who) == 1 && who[0] != strconv.Itoa(personID) && !strings.EqualFold(who[0], e.o.Email) {
		return errNotFound
	}
	var roots []map[string]any
	ids := make([]int64, 0, len(e.roots))
	for id := range e.roots {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rt := e.roots[id]
		if !rt.Deleted {
			roots = append(roots, map[string]any{"id": rt.ID, "name": rt.Name, "root_type": rt.Type, "type": "root"})
		}
	}
	exts := make([]string, len(e.policy.exts))
	copy(exts, e.policy.exts)
	used := e.used(0)
	maxSize := e.policy.maxSize
	if e.v.maxSizeMB {
		maxSize >>= 20 // variant: the blank unit read as MB; the limit itself stays in bytes
	}
	first, last, _ := strings.Cut(e.o.DisplayName, " ")
	var rootID any
	if sr := e.roots[e.cnt.SyncID]; sr != nil && !sr.Deleted {
		rootID = sr.ID
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"can_share": true, "company_id": companyID,
		"company_policy": map[string]any{"excluded_extensions": strings.Join(exts, ","),
			"max_file_size": maxSize, "type": "policy"},
		"display_name": e.o.DisplayName, "email": e.o.Email, "first_name": first, "last_name": last,
		"id": personID, "root_id": rootID, "roots": roots,
		"space_quota": e.policy.quota, "space_quota_formatted": formatSize(e.policy.quota),
		"space_usage": used, "space_usage_formatted": formatSize(used), "type": "person", "username": e.o.Username,
	})
	return nil
}
