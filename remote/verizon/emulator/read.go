package emulator

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Wire shapes of §5. The emulator always emits every field.

type cloudFile struct {
	ParentPath       string            `json:"parentPath"`
	Name             string            `json:"name"`
	Size             int64             `json:"size"`
	Checksum         string            `json:"checksum"`
	ContentToken     string            `json:"contentToken"`
	VersionCreated   string            `json:"versionCreated"`
	Version          int               `json:"version"`
	URI              string            `json:"uri"`
	Extension        string            `json:"extension"`
	Favorite         bool              `json:"favorite"`
	CreationDate     string            `json:"creationDate"`
	ModificationDate string            `json:"modificationDate"`
	SystemAttributes map[string]string `json:"systemAttributes"`
}

type cloudFolder struct {
	ParentPath     string `json:"parentPath"`
	Name           string `json:"name"`
	URI            string `json:"uri,omitempty"`
	VersionCreated string `json:"versionCreated,omitempty"`
}

// folderListing is a folder with its direct children (metadata answers).
type folderListing struct {
	cloudFolder
	File   []cloudFile   `json:"file"`
	Folder []cloudFolder `json:"folder"`
}

const isoMS = "2006-01-02T15:04:05.000Z"

func iso(ms int64) string { return time.UnixMilli(ms).UTC().Format(isoMS) }

// escapePath percent-encodes each segment and keeps the separators (§1).
func escapePath(p string) string {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/" + strings.Join(segs, "/")
}

func extOf(name string) string {
	ext := path.Ext(name)
	if ext == name { // ".bashrc" has no extension
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(ext, "."))
}

func mimeOf(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func toFile(base string, n *node) cloudFile {
	return cloudFile{ParentPath: n.Parent, Name: n.Name, Size: n.Size, Checksum: n.Checksum,
		ContentToken: n.ContentToken, VersionCreated: iso(n.VersionCreated), Version: n.Version,
		URI: base + "/files" + escapePath(n.path()), Extension: extOf(n.Name), Favorite: n.Favorite,
		CreationDate: iso(n.Created), ModificationDate: iso(n.Modified),
		SystemAttributes: map[string]string{"MimeType": n.Mime}}
}

func toFolder(base string, n *node) cloudFolder {
	return cloudFolder{ParentPath: n.Parent, Name: n.Name, URI: base + "/metadata" + escapePath(n.path()),
		VersionCreated: iso(n.VersionCreated)}
}

// sortNodes orders by a `field+asc|desc` spec (§6.2); unknown fields sort by name.
func sortNodes(ns []*node, spec string) {
	field, dir, _ := strings.Cut(spec, "+")
	if spec != "" && !strings.Contains(spec, "+") {
		field, dir, _ = strings.Cut(spec, " ") // a '+' that arrived unescaped in a query is a space
	}
	desc := dir == "desc"
	less := func(a, b *node) bool {
		switch field {
		case "versionCreated":
			if a.VersionCreated != b.VersionCreated {
				return a.VersionCreated < b.VersionCreated
			}
		case "size":
			if a.Size != b.Size {
				return a.Size < b.Size
			}
		case "extension":
			if x, y := extOf(a.Name), extOf(b.Name); x != y {
				return x < y
			}
		case "creationDate":
			if a.Created != b.Created {
				return a.Created < b.Created
			}
		case "modificationDate":
			if a.Modified != b.Modified {
				return a.Modified < b.Modified
			}
		case "favorite":
			if a.Favorite != b.Favorite {
				return !a.Favorite
			}
		}
		return a.Name < b.Name
	}
	sort.SliceStable(ns, func(i, j int) bool {
		if desc {
			return less(ns[j], ns[i])
		}
		return less(ns[i], ns[j])
	})
}

// page applies 1-based start (or page) and count; without count everything is returned.
func page(ns []*node, q url.Values, defCount, maxCount int) ([]*node, error) {
	startS := q.Get("start")
	if startS == "" {
		startS = q.Get("page")
	}
	countS := q.Get("count")
	if countS == "" && defCount == 0 {
		return ns, nil
	}
	start, count := 1, defCount
	var err error
	if startS != "" {
		if start, err = strconv.Atoi(startS); err != nil || start < 1 {
			return nil, badRequest("bad start %q", startS)
		}
	}
	if countS != "" {
		if count, err = strconv.Atoi(countS); err != nil || count < 1 {
			return nil, badRequest("bad count %q", countS)
		}
	}
	if maxCount > 0 && count > maxCount {
		count = maxCount
	}
	from := (start - 1) * count
	if from >= len(ns) {
		return nil, nil
	}
	return ns[from:min(from+count, len(ns))], nil
}

func boolParam(q url.Values, name string) (bool, error) {
	// Case-insensitive: Verizon's Python SDK sends Python's str(bool), "True"/"False".
	switch v := q.Get(name); strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, badRequest("%s must be true or false, not %q", name, v)
	}
}

// missing answers 410 for a path whose last occupant is in the trash, 404 otherwise.
func (e *Emulator) missing(p string) *apiError {
	if len(e.trash[p]) > 0 {
		return fail(http.StatusGone, "gone", "%s was deleted", p)
	}
	return notFound(p)
}

func (e *Emulator) account(w http.ResponseWriter, _ *http.Request) error {
	e.mu.Lock()
	used := e.used
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"usage": map[string]int64{"quota": e.o.Quota, "quotaUsed": used},
		"alias": e.o.Alias, "id": e.cnt.UserID,
	})
	return nil
}

func (e *Emulator) metadata(w http.ResponseWriter, r *http.Request, p string) error {
	q := r.URL.Query()
	base := baseURL(r)
	includeDeleted, err := boolParam(q, "includeDeleted")
	if err != nil {
		return err
	}
	filter := q.Get("filter")
	if filter != "" && filter != "file" && filter != "folder" {
		return badRequest("filter must be file or folder")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var self folderListing
	if p != "/" {
		n := e.live[p]
		if n == nil {
			return e.missing(p)
		}
		if !n.Folder {
			writeJSON(w, http.StatusOK, map[string]any{"file": toFile(base, n)})
			return nil
		}
		self.cloudFolder = toFolder(base, n)
	}
	var kids []*node
	for _, k := range e.kids[p] {
		kids = append(kids, k)
	}
	if includeDeleted {
		for _, list := range e.trash {
			for _, t := range list {
				if t.Parent == p && t.TrashGroup == t.ID {
					kids = append(kids, t)
				}
			}
		}
	}
	spec := q.Get("sort")
	if spec == "" {
		spec = "name+asc"
	}
	sortNodes(kids, spec)
	var filtered []*node
	for _, k := range kids {
		if (filter == "file" && k.Folder) || (filter == "folder" && !k.Folder) {
			continue
		}
		filtered = append(filtered, k)
	}
	if filtered, err = page(filtered, q, 0, 0); err != nil {
		return err
	}
	self.File, self.Folder = []cloudFile{}, []cloudFolder{}
	for _, k := range filtered {
		if k.Folder {
			f := toFolder(base, k)
			if p == "/" {
				f.VersionCreated = "" // the reference's root answer carries no times for virtual folders
			}
			self.Folder = append(self.Folder, f)
		} else {
			self.File = append(self.File, toFile(base, k))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"folder": self})
	return nil
}

// ---- fullview (§7) ----

type fullviewData struct {
	File    []cloudFile   `json:"file"`
	Folder  []cloudFolder `json:"folder"`
	Deleted *deletedPaths `json:"deleted,omitempty"`
}

type deletedPaths struct {
	Path []string `json:"path"`
}

// etag encodes the journal position; clients treat it as opaque.
func (e *Emulator) etag(vf string) string {
	ts := e.now().UTC().Format("20060102150405.000")
	ts = strings.Replace(ts, ".", "", 1)
	return fmt.Sprintf("01#%s#em:%s:%s:%012d:%d", ts, e.cnt.UserID, vf, e.cnt.Seq, e.cnt.Epoch)
}

// parseEtag returns the seq of an etag issued for this account, virtual folder and epoch.
func (e *Emulator) parseEtag(tag, vf string) (uint64, bool) {
	parts := strings.Split(tag, "#")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "em:") {
		return 0, false
	}
	f := strings.Split(strings.TrimPrefix(parts[2], "em:"), ":")
	if len(f) != 4 || f[0] != e.cnt.UserID || f[1] != vf || f[3] != strconv.FormatUint(e.cnt.Epoch, 10) {
		return 0, false
	}
	seq, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

func (e *Emulator) fullview(w http.ResponseWriter, r *http.Request) error {
	vf := r.URL.Query().Get("virtualfolder")
	if vf == "" {
		vf = "VZMOBILE"
	}
	base := baseURL(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	root := "/" + vf
	if n := e.live[root]; n == nil || !isVirtualFolder(root) {
		return notFound(root)
	}
	data := fullviewData{File: []cloudFile{}, Folder: []cloudFolder{}}
	tag := r.Header.Get("X-Header-ETag")
	if tag == "" {
		for _, n := range e.subtree(e.live[root])[1:] {
			if !n.Folder {
				data.File = append(data.File, toFile(base, n))
			} else if e.isEmpty(n.path()) {
				data.Folder = append(data.Folder, toFolder(base, n))
			}
		}
		w.Header().Set("X-Header-ETag", e.etag(vf))
		writeJSON(w, http.StatusOK, map[string]any{"data": data})
		return nil
	}
	since, ok := e.parseEtag(tag, vf)
	if !ok || since < e.cnt.Floor || since > e.cnt.Seq {
		return fail(http.StatusResetContent, "out_of_sync", "etag is too old; call fullview without X-Header-ETag")
	}
	// The first entry after since for each path holds what the path had in the etag's state.
	before := map[string]kind{}
	movedAway := map[string]bool{} // the first change since the etag was a move away
	var order []string
	i := sort.Search(len(e.journal), func(i int) bool { return e.journal[i].Seq > since })
	for _, j := range e.journal[i:] {
		if j.VF != vf {
			continue
		}
		if _, seen := before[j.Path]; !seen {
			before[j.Path] = j.Before
			movedAway[j.Path] = j.Move
			order = append(order, j.Path)
		}
	}
	if len(order) == 0 {
		w.Header().Set("X-Header-ETag", tag)
		return fail(http.StatusPreconditionFailed, "precondition_failed", "no changes since the etag")
	}
	sort.Strings(order)
	var deleted []string
	for _, p := range order {
		was, now := before[p], e.live[p]
		if was != kindNone && (now == nil || now.kind() != was) {
			deleted = append(deleted, p)
		}
		switch {
		case now == nil:
		case !now.Folder:
			data.File = append(data.File, toFile(base, now))
		case e.isEmpty(p):
			data.Folder = append(data.Folder, toFolder(base, now))
		}
	}
	deleted = e.deltaDeleted(deleted, movedAway)
	if len(deleted) > 0 {
		data.Deleted = &deletedPaths{Path: deleted}
	}
	w.Header().Set("X-Header-ETag", e.etag(vf))
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

// deltaDeleted applies the delta variant to the sorted deleted paths (§7 says only "added, changed or
// deleted"). delta-move-subtree lists everything; delta-move-folder only the topmost of each deleted subtree;
// delta-move-none (default) leaves out every path a move left, so a moved item shows only at its new path.
// Variant, not documented: under delta-move-none an item moved and then deleted since the etag is named nowhere
// (its old path was left by a move, its new one did not exist at the etag), and the delta is a 200 that may be
// empty; the reference's own delta rules (§7, a project decision) would list the old path.
func (e *Emulator) deltaDeleted(deleted []string, movedAway map[string]bool) []string {
	var out []string
	kept := map[string]bool{}
	below := func(p string) bool {
		for d, _ := parentOf(p); d != "/"; d, _ = parentOf(d) {
			if kept[d] {
				return true
			}
		}
		return false
	}
	for _, p := range deleted {
		switch {
		case e.v.is(VariantDeltaMoveNone) && movedAway[p]:
		case e.v.is(VariantDeltaMoveFolder) && below(p):
		default:
			out = append(out, p)
			kept[p] = true
		}
	}
	return out
}

// ---- download (§8) ----

func (e *Emulator) download(w http.ResponseWriter, r *http.Request, p string) error {
	e.mu.Lock()
	n := e.live[p]
	if n == nil {
		err := e.missing(p)
		e.mu.Unlock()
		return err
	}
	if n.Folder {
		e.mu.Unlock()
		return fail(http.StatusBadRequest, "not_a_file", "%s is a folder", p)
	}
	sum, mt := n.Checksum, n.Mime
	// Open under the lock: a blob is removed only when its last user is purged, which also takes the lock.
	f, err := e.blobs.Open(sum)
	e.mu.Unlock()
	if err != nil {
		return fail(http.StatusInternalServerError, "server_error", "content missing")
	}
	defer f.Close()
	w.Header().Set("Content-Type", mt)
	// ServeContent honours a single Range with 206 + Content-Range and sets Content-Length.
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// ---- search (§11.1, the emulator's subset) ----

type term struct{ field, value string }

func parseQuery(q string) ([]term, error) {
	if strings.TrimSpace(q) == "" {
		return nil, badRequest("query is required")
	}
	var terms []term
	for _, part := range strings.Split(q, " AND ") {
		field, value, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, badRequest("query term %q is not field:value", part)
		}
		var b strings.Builder
		for i := 0; i < len(value); i++ { // backslash escapes a special character
			if value[i] == '\\' && i+1 < len(value) {
				i++
			}
			b.WriteByte(value[i])
		}
		switch field {
		case "name", "extension", "file", "folder", "favorite", "parentPath":
		default:
			return nil, badRequest("unsupported search field %q", field)
		}
		terms = append(terms, term{field, b.String()})
	}
	return terms, nil
}

// wordPrefix: a value matches words of the name that begin with it, case-insensitively (at least 3 characters).
func wordPrefix(name, value string) bool {
	value = strings.ToLower(value)
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	})
	for _, w := range words {
		if strings.HasPrefix(w, value) {
			return true
		}
	}
	return false
}

func (t term) match(n *node) bool {
	switch t.field {
	case "name":
		return len(t.value) >= 3 && wordPrefix(n.Name, t.value)
	case "extension":
		return !n.Folder && strings.EqualFold(extOf(n.Name), t.value)
	case "file":
		return (t.value == "true") == !n.Folder
	case "folder":
		return (t.value == "true") == n.Folder
	case "favorite":
		return (t.value == "true") == n.Favorite
	case "parentPath":
		return n.Parent == t.value
	}
	return false
}

func (e *Emulator) search(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	terms, err := parseQuery(q.Get("query"))
	if err != nil {
		return err
	}
	vf := q.Get("virtualfolder")
	if vf == "" {
		vf = "VZMOBILE"
	}
	base := baseURL(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	var hits []*node
	for p, n := range e.live {
		if isVirtualFolder(p) || (vf != "*" && vfOf(p) != vf) {
			continue
		}
		ok := true
		for _, t := range terms {
			ok = ok && t.match(n)
		}
		if ok {
			hits = append(hits, n)
		}
	}
	sortNodes(hits, q.Get("sort"))
	if hits, err = page(hits, q, 20, 100); err != nil {
		return err
	}
	res := struct {
		File   []cloudFile   `json:"file"`
		Folder []cloudFolder `json:"folder"`
	}{[]cloudFile{}, []cloudFolder{}}
	for _, n := range hits {
		if n.Folder {
			res.Folder = append(res.Folder, toFolder(base, n))
		} else {
			res.File = append(res.File, toFile(base, n))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"searchResults": res})
	return nil
}

// ---- trash listing (§10.4) ----

func (e *Emulator) listTrash(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	vf := q.Get("virtualfolder")
	if vf == "" {
		vf = "VZMOBILE"
	}
	deep, err := boolParam(q, "deep")
	if err != nil {
		return err
	}
	filter := q.Get("filter")
	base := baseURL(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live["/"+vf] == nil || !isVirtualFolder("/"+vf) {
		return notFound("/" + vf)
	}
	var items []*node
	for p, list := range e.trash {
		if vfOf(p) != vf {
			continue
		}
		for _, n := range list {
			if !deep && n.TrashGroup != n.ID {
				continue
			}
			if (filter == "file" && n.Folder) || (filter == "folder" && !n.Folder) {
				continue
			}
			items = append(items, n)
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if a, b := items[i].path(), items[j].path(); a != b {
			return a < b
		}
		return items[i].TrashedAt < items[j].TrashedAt
	})
	if s := q.Get("sort"); s != "" {
		sortNodes(items, s)
	}
	if items, err = page(items, q, 20, 100); err != nil {
		return err
	}
	res := struct {
		File   []cloudFile   `json:"file"`
		Folder []cloudFolder `json:"folder"`
	}{[]cloudFile{}, []cloudFolder{}}
	for _, n := range items {
		if n.Folder {
			res.Folder = append(res.Folder, toFolder(base, n))
		} else {
			res.File = append(res.File, toFile(base, n))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"trashCan": res})
	return nil
}

// thumbnail answers 415 for every content token it knows (no image processing) and 404 otherwise (§11.3).
func (e *Emulator) thumbnail(_ *http.Request, token string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.byID {
		if n.ContentToken != "" && n.ContentToken == token {
			return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "no thumbnails for this file type")
		}
	}
	return notFound(token)
}

// trashSums is the admin endpoint's GET /trash: the sha256 of every trashed file's stored blob (hashed again,
// not taken from the node: the check is that the bytes are still there).
func (e *Emulator) trashSums() ([]string, error) {
	e.mu.Lock()
	var sums []string
	for _, list := range e.trash {
		for _, n := range list {
			if !n.Folder && n.Checksum != "" {
				sums = append(sums, n.Checksum)
			}
		}
	}
	e.mu.Unlock()
	var out []string
	for _, id := range sums {
		s, err := e.blobs.SHA256(id)
		if err != nil {
			return nil, fmt.Errorf("trashed blob %s: %w", id, err)
		}
		out = append(out, s)
	}
	return out, nil
}
