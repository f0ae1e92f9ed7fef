package verizon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// Wire types of the API reference §5-§10 (summarised in PROVIDER.md). Optional fields are pointers or tolerate absence; unknown
// fields are ignored.

// Numbers and times are decoded leniently (flexInt, flexTime): the documentation shows JSON numbers and ISO
// strings, but does not promise them, and one item in another encoding must not cost the whole listing.
type cloudFile struct {
	ParentPath       string   `json:"parentPath"`
	Name             string   `json:"name"`
	Size             flexInt  `json:"size"`
	Checksum         string   `json:"checksum"`
	ContentToken     string   `json:"contentToken"`
	VersionCreated   flexTime `json:"versionCreated"`
	Version          flexInt  `json:"version"`
	ModificationDate flexTime `json:"modificationDate"`
}

type cloudFolder struct {
	ParentPath     string   `json:"parentPath"`
	Name           string   `json:"name"`
	VersionCreated flexTime `json:"versionCreated"`
}

// flexInt is an integer sent as a JSON number (12, 12.0) or a string ("12").
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return fmt.Errorf("not an integer: %s", remote.Escape(string(b)))
	}
	*n = flexInt(int64(f))
	return nil
}

// flexTime is a time sent as an ISO-8601 string or as epoch milliseconds or seconds (number or string). It keeps
// the RFC 3339 text; "" when absent.
type flexTime string

func (t *flexTime) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*t = ""
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		var tm time.Time
		if n > 1e11 { // milliseconds (1e11 s is the year 5138)
			tm = time.UnixMilli(int64(n))
		} else {
			tm = time.Unix(int64(n), 0)
		}
		*t = flexTime(tm.UTC().Format(time.RFC3339Nano))
		return nil
	}
	*t = flexTime(s)
	return nil
}

// folderBody is a folder as /metadata answers it: its own fields plus direct children.
type folderBody struct {
	cloudFolder
	File   []cloudFile   `json:"file"`
	Folder []cloudFolder `json:"folder"`
}

type metadataAnswer struct {
	File   *cloudFile  `json:"file"`
	Folder *folderBody `json:"folder"`
}

type intentAnswer struct {
	URLs struct {
		UploadURL string `json:"uploadurl"`
		CommitURL string `json:"commiturl"`
	} `json:"uploadurls"`
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// APIError is a refused API call. It keeps Verizon's detail and matches a remote sentinel through Unwrap.
type APIError struct {
	Op     string // "metadata", "fops/move", …
	Status int
	Code   string // the error code of the body, for messages only: decisions use Status (§4)
	Msg    string
	kind   error
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("verizon %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	return msg
}

// Unwrap returns remote.ErrNotFound, remote.ErrConflict, … or nil.
func (e *APIError) Unwrap() error { return e.kind }

// kindOf maps the status table of §4 to tandem's sentinels.
func kindOf(status int) error {
	switch status {
	case http.StatusNotFound, http.StatusGone:
		return remote.ErrNotFound
	case http.StatusConflict, http.StatusPreconditionFailed:
		return remote.ErrConflict
	case http.StatusUnauthorized:
		return remote.ErrUnauthorized
	case http.StatusRequestEntityTooLarge, http.StatusForbidden, http.StatusTooManyRequests:
		return remote.ErrUnavailable
	}
	if status >= 500 {
		return remote.ErrUnavailable
	}
	return nil
}

// apiError turns httpx's status error into an APIError, keeping whatever wraps it (a "gave up after n
// attempts" or the ErrUnauthorized after the refresh).
func apiError(op string, err error) error {
	var se *httpx.StatusError
	if !errors.As(err, &se) {
		return err
	}
	ae := &APIError{Op: op, Status: se.Status, Msg: se.Body, kind: kindOf(se.Status)}
	var eb errorBody
	if json.Unmarshal([]byte(se.Body), &eb) == nil && eb.Error != "" {
		ae.Code, ae.Msg = remote.Escape(eb.Error), remote.Escape(eb.Description)
	}
	if errors.Is(err, remote.ErrUnauthorized) && ae.kind != remote.ErrUnauthorized {
		return fmt.Errorf("%w: %w", remote.ErrUnauthorized, ae)
	}
	return ae
}

// ---- paths ----

// escapePath percent-encodes each segment of an absolute path and keeps the separators (§1).
func escapePath(p string) string {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/" + strings.Join(segs, "/")
}

// absPath is p below root.
func absPath(root string, p remote.Path) string {
	if p == remote.Root {
		return root
	}
	return root + "/" + string(p)
}

// relPath turns a server path into a Path below root. ok is false for a path outside root (not ours: it is
// ignored); err is set for a path inside root that cannot be a Path (a hostile or broken name: skipped and
// reported, never returned).
func relPath(root, abs string) (remote.Path, bool, error) {
	if abs == root {
		return remote.Root, true, nil
	}
	if !strings.HasPrefix(abs, root+"/") {
		return "", false, nil
	}
	p, err := remote.ParsePath(abs[len(root)+1:])
	return p, true, err
}

// itemPath joins a parentPath and a name the way the server sent them, refusing a name that would change the
// parent (a "/" in it) or step out of it ("..", "."), before relPath validates the rest.
func itemPath(root, parent, name string) (remote.Path, bool, error) {
	abs := parent + "/" + name
	if parent == "/" {
		abs = "/" + name
	}
	p, ours, err := relPath(root, abs)
	if !ours && (parent == root || strings.HasPrefix(parent, root+"/")) {
		ours = true // a parent of ours with a name that leaves it
	}
	if ours && err == nil {
		if verr := remote.ValidName(name); verr != nil {
			err = verr
		}
	}
	if ours && err != nil {
		return "", true, fmt.Errorf("%w (server name %s in %s)", err, remote.Escape(name), remote.Escape(parent))
	}
	return p, ours, err
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// rev is what preconditions compare: the version the server checks plus the content token that tells a
// re-created file (which restarts at version 1) from the one the plan saw.
func rev(version int64, token string) string { return strconv.FormatInt(version, 10) + ":" + token }

func parseRev(r string) (int64, string, bool) {
	v, tok, ok := strings.Cut(r, ":")
	n, err := strconv.ParseInt(v, 10, 64)
	return n, tok, ok && err == nil && n > 0
}

// fileEntry leaves ModTime zero: Verizon's versionCreated and modificationDate are the time of the upload (the
// intent's modificationDate is not documented, and the service most likely ignores it), never the user's mtime.
// A download then gets the download time, and newer-wins has no remote time to compare (it keeps both).
func fileEntry(p remote.Path, f *cloudFile) remote.Entry {
	e := remote.Entry{Path: p, Size: int64(f.Size), ID: f.ContentToken, Rev: rev(int64(f.Version), f.ContentToken)}
	if hexSHA256.MatchString(f.Checksum) {
		e.Hash = remote.Hash{Algo: "sha256", Hex: f.Checksum}
	}
	return e
}

// Folders have no server id and no version (§5.2): ID stays empty so that no folder is ever taken for another.
func folderEntry(p remote.Path, _ *cloudFolder) remote.Entry {
	return remote.Entry{Path: p, Dir: true}
}

// sane reports what a listed file is missing that tandem needs; "" when it is usable.
func sane(f *cloudFile) string {
	switch {
	case f.Size < 0:
		return "negative size"
	case f.ContentToken == "":
		return "no contentToken"
	case f.Version < 1:
		return "no version"
	case !hexSHA256.MatchString(f.Checksum):
		return "no SHA-256 checksum"
	}
	return ""
}

// ---- listings (fullview) ----

// listing is a decoded fullview answer restricted to one root: files and folders below it by Path, the
// deleted Paths, and the names that were skipped.
type listing struct {
	entries  map[remote.Path]remote.Entry
	deleted  []remote.Path
	rootSeen bool // the root itself is listed or implied: it exists
	rootGone bool // the root or one of its ancestors is in deleted
	skipped  []string
	// skips are the items below root whose names tandem cannot hold, as entries with Skip set and a printable
	// Path (a file keeps its contentToken as ID): Walk and Changes emit them, so the engine keeps what it
	// stored for them (a synced file renamed on the server to such a name is not a delete) and reports them.
	skips []remote.Entry
}

// skipItem records an item of ours whose name cannot be a Path.
func (l *listing) skipItem(root, parent, name string, id string, dir bool, err error) {
	l.skip(remote.Escape(parent+"/"+name), err)
	abs := parent + "/" + name
	rel := strings.TrimPrefix(abs, root+"/")
	if rel == abs {
		rel = name // a parent of ours with a name that leaves it
	}
	if len(l.skips) < 1000 {
		l.skips = append(l.skips, remote.Entry{Path: remote.Path(remote.Escape(rel)), Dir: dir, ID: id,
			Skip: "invalid name: " + err.Error()})
	}
}

func (l *listing) skip(what string, err error) {
	if len(l.skipped) < 1000 {
		l.skipped = append(l.skipped, fmt.Sprintf("%s: %v", what, err))
	}
}

// add records an entry and the folders its path implies.
func (l *listing) add(e remote.Entry) {
	if e.Path == remote.Root {
		l.rootSeen = l.rootSeen || e.Dir
		return
	}
	if old, dup := l.entries[e.Path]; dup && (old.Dir != e.Dir || !old.Dir) {
		l.skip(e.Path.Quoted(), errors.New("listed twice; the first listing is kept"))
		return
	}
	l.entries[e.Path] = e
	l.rootSeen = true
	for d := e.Path.Dir(); d != remote.Root; d = d.Dir() {
		if old, ok := l.entries[d]; ok {
			if !old.Dir {
				// A file cannot have children: the listing contradicts itself. Keep the file, drop the child.
				delete(l.entries, e.Path)
				l.skip(e.Path.Quoted(), errors.New("listed below a file"))
			}
			return
		}
		l.entries[d] = remote.Entry{Path: d, Dir: true}
	}
}

// decodeFullview parses a fullview body into a listing below root. It never fails on a bad item: each item is
// decoded on its own, and one that cannot be understood is skipped and reported; only a body that is not the
// expected JSON is an error.
func decodeFullview(body []byte, root string) (*listing, error) {
	var fa struct {
		Data *struct {
			File    []json.RawMessage `json:"file"`
			Folder  []json.RawMessage `json:"folder"`
			Deleted json.RawMessage   `json:"deleted"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &fa); err != nil {
		return nil, fmt.Errorf("fullview: malformed answer: %w", err)
	}
	if fa.Data == nil {
		return nil, errors.New("fullview: answer without data")
	}
	l := &listing{entries: map[remote.Path]remote.Entry{}}
	var deleted struct {
		Path []string `json:"path"`
	}
	if len(fa.Data.Deleted) > 0 && string(fa.Data.Deleted) != "null" {
		if err := json.Unmarshal(fa.Data.Deleted, &deleted); err != nil {
			// Deletes that cannot be read cannot be applied: the caller must list everything.
			return nil, fmt.Errorf("fullview: unreadable deleted list: %w", err)
		}
	}
	for _, abs := range deleted.Path {
		if abs == root || strings.HasPrefix(root, abs+"/") {
			l.rootGone = true
			continue
		}
		p, ours, err := relPath(root, abs)
		switch {
		case !ours:
		case err != nil:
			l.skip(remote.Escape(abs), err)
		default:
			l.deleted = append(l.deleted, p)
		}
	}
	for i, raw := range fa.Data.Folder {
		var f cloudFolder
		if err := json.Unmarshal(raw, &f); err != nil {
			l.skip(fmt.Sprintf("folder #%d", i+1), fmt.Errorf("cannot be understood: %w", err))
			continue
		}
		p, ours, err := itemPath(root, f.ParentPath, f.Name)
		switch {
		case !ours:
		case err != nil:
			l.skipItem(root, f.ParentPath, f.Name, "", true, err)
		default:
			l.add(folderEntry(p, &f))
		}
	}
	for i, raw := range fa.Data.File {
		var f cloudFile
		if err := json.Unmarshal(raw, &f); err != nil {
			l.skip(fmt.Sprintf("file #%d", i+1), fmt.Errorf("cannot be understood: %w", err))
			continue
		}
		p, ours, err := itemPath(root, f.ParentPath, f.Name)
		switch {
		case !ours:
		case err != nil:
			l.skipItem(root, f.ParentPath, f.Name, f.ContentToken, false, err)
		case p == remote.Root:
			l.skip(remote.Escape(root), errors.New("the sync root is listed as a file"))
			l.rootGone = true
		default:
			if why := sane(&f); why != "" {
				l.skip(p.Quoted(), errors.New(why))
				continue
			}
			l.add(fileEntry(p, &f))
		}
	}
	return l, nil
}

// less orders paths parents first: component by component, so "a/b" comes right after "a", before "a b".
// That is byte order with '/' below every other byte (names hold no NUL), so no splitting is needed.
func less(a, b remote.Path) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		switch {
		case x == y:
			continue
		case x == '/':
			return true
		case y == '/':
			return false
		}
		return x < y
	}
	return len(a) < len(b)
}

// sorted lists the entries at or below dir (dir itself excluded), parents first.
func (l *listing) sorted(dir remote.Path) []remote.Entry {
	out := make([]remote.Entry, 0, len(l.entries))
	for p, e := range l.entries {
		if p != dir && p.Within(dir) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Path, out[j].Path) })
	return out
}

// changes turns a delta listing (computed by diff from the previous listing old) into the engine's changes (§7
// delta semantics): deletes first (each takes its subtree), then folder moves paired back from "deleted subtree
// + the same subtree elsewhere", then upserts parents first. A folder is paired only with one that is new and
// holds the same names with the same files (contentTokens), so an existing folder that happens to receive the
// same names is never taken for the moved one.
func (l *listing) changes(old *view) []remote.Change {
	dels := append([]remote.Path(nil), l.deleted...)
	sort.Slice(dels, func(i, j int) bool { return less(dels[i], dels[j]) })
	// Keep only the topmost deleted paths; remember what each one held below it.
	var tops []remote.Path
	below := map[remote.Path]map[string]bool{}
	for _, d := range dels {
		if n := len(tops); n > 0 && d.Within(tops[n-1]) {
			if d != tops[n-1] {
				below[tops[n-1]][string(d)[len(tops[n-1])+1:]] = true
			}
			continue
		}
		tops = append(tops, d)
		below[d] = map[string]bool{}
	}
	// What every folder holds below it, relative to it: listed entries and the folders they imply (fullview
	// lists only empty folders; a non-empty one exists through the parentPath of what is inside it, and the
	// deleted list names folders too, so both sides of the comparison must count them).
	underSet := map[remote.Path]map[string]bool{}
	note := func(d remote.Path, rel string) {
		if underSet[d] == nil {
			underSet[d] = map[string]bool{}
		}
		underSet[d][rel] = true
	}
	for p := range l.entries {
		for q := p; q != remote.Root; q = q.Dir() {
			for d := q.Dir(); d != remote.Root; d = d.Dir() {
				note(d, string(q)[len(d)+1:])
			}
		}
	}
	under := map[remote.Path][]string{}
	for d, rels := range underSet {
		for r := range rels {
			under[d] = append(under[d], r)
		}
	}
	var out []remote.Change
	used := map[remote.Path]bool{}
	for _, d := range tops {
		from := below[d]
		var to remote.Path
		if len(from) > 0 {
			for f, rels := range under {
				if e, listed := l.entries[f]; used[f] || len(rels) != len(from) || f.Within(d) || d.Within(f) || (listed && !e.Dir) {
					continue
				}
				if _, existed := old.entries[f]; existed {
					continue
				}
				same := true
				for _, r := range rels {
					same = same && from[r] && sameItem(old, remote.Path(string(d)+"/"+r), l, remote.Path(string(f)+"/"+r))
				}
				// The first match in path order, so the answer does not depend on map order.
				if same && (to == "" || less(f, to)) {
					to = f
				}
			}
		}
		if to == "" {
			out = append(out, remote.Change{Entry: remote.Entry{Path: d}, Deleted: true})
			continue
		}
		used[to] = true
		ent, listed := l.entries[to]
		if !listed {
			ent = remote.Entry{Path: to, Dir: true} // implied by what is inside it
		}
		out = append(out, remote.Change{Entry: ent, From: d})
	}
	for _, e := range l.sorted(remote.Root) {
		out = append(out, remote.Change{Entry: e})
	}
	return out
}

// sameItem: the item old had at a and the one l lists at b are of one kind, and files hold the same content
// token (a folder that was renamed carries its files unchanged).
func sameItem(old *view, a remote.Path, l *listing, b remote.Path) bool {
	o, ok := old.entries[a]
	e, ok2 := l.entries[b]
	if !ok || !ok2 || o.dir != e.Dir {
		return false
	}
	_, tok, _ := parseRev(o.rev)
	return o.dir || tok == e.ID
}
