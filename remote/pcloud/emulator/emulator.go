// Package emulator is a pCloud API server that follows the API reference (see ../PROVIDER.md): the methods a sync client and
// rclone's pCloud backend use, with pCloud's parameter names, JSON fields, numeric result codes (errors are
// HTTP 200 with a non-zero `result`), the `diff` change feed with long polling, content links served by the same
// server, OAuth stand-ins, and fault injection through emukit.
//
// Files and metadata persist in Options.DataDir (a bbolt db plus one content file per fileid).
package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// Region selects which digests checksumfile and uploads report, as pCloud does per region.
type Region int

const (
	// RegionUS reports sha1 + md5 (api.pcloud.com). rclone asks for md5+sha1 from any host but eapi.pcloud.com.
	RegionUS Region = iota
	// RegionEU reports sha1 + sha256 (eapi.pcloud.com).
	RegionEU
)

// Options configures an emulator. The zero value is a valid default that behaves like today's US service.
type Options struct {
	DataDir string // "" = a temp dir removed by Close
	// Token is a preset access token. "" = the data dir's default token (generated once). Tokens minted by
	// oauth2_token are accepted too.
	Token string
	// AllowRootRecursive serves a recursive listfolder of folder 0. By default it is refused with result 1101, as
	// pCloud does since 2026; rclone 1.60 still lists that way, so its interop test sets this. (Inverted from
	// "RefuseRootRecursive" so that the zero Options emulate today's service.)
	AllowRootRecursive bool
	Clock              clockwork.Clock // times the emulator reports; default real
	// HistoryLimit compacts the diff log when it holds more events (0 = never on its own).
	HistoryLimit int
	// Hostname is what getfilelink's `hosts` and the OAuth redirect's `hostname` hand out. "" = the Host the
	// request came to, which is the emulator's own host:port.
	Hostname string
	Region   Region
	Quota    int64 // bytes; default 10 GiB
	// MaxBody limits non-upload request bodies (forms); default 1 MiB.
	MaxBody int64
	// MaxRecursiveItems makes a recursive listfolder bigger than this fail with 5000, as pCloud does for huge
	// trees (0 = no limit).
	MaxRecursiveItems int
	// DiffBlockTimeout is how long diff?block=1 waits before an empty answer (default 60 s).
	DiffBlockTimeout time.Duration
	// TooOldResult: a diffid older than the compacted history is answered with this result code. 0 (default)
	// answers with a single `reset` entry instead, the documented "start over" event.
	TooOldResult int
	// LinkTTL is the lifetime of getfilelink links (default 1 h; rclone refuses links expiring within 30 s).
	LinkTTL time.Duration
	// BindLinksToIP makes content links answer 410 to other client IPs, as pCloud's do.
	BindLinksToIP bool
	// AllowChunked accepts uploads without a Content-Length; pCloud does not (rclone forces identity encoding).
	AllowChunked bool
	Email        string // userinfo email; default "emulator@example.com"
	LogSize      int    // emukit request log size
	// Variants picks other readings of what the docs leave open (variants.go; default: the least helpful).
	Variants []string

	variant map[string]bool
}

// Emulator is one pCloud account. Safe for concurrent use.
type Emulator struct {
	lg      *zap.Logger
	o       Options
	clk     clockwork.Clock
	kit     *emukit.Kit
	store   *emukit.Store // data dir and db
	content emukit.Blobs  // one file per fileid (blobID)
	handler http.Handler

	mu         sync.Mutex
	cnt        counters
	folders    map[uint64]*node
	files      map[uint64]*node
	folderKids map[uint64]map[string]uint64 // live folders by parent and name
	fileKids   map[uint64]map[string]uint64 // live files by parent and name
	used       int64
	events     []event
	tokens     map[string]*tokenState // by emukit.TokenKey
	uploads    map[uint64]*uploadState
	links      map[string]link
	codes      map[string]bool // OAuth codes handed out by /oauth2/authorize, single use
	changed    chan struct{}   // closed and replaced on every new event: wakes long polls
	closed     chan struct{}
	closeOnce  sync.Once
	pad        string // VariantFatListing: added to every listed item
}

type link struct {
	fileID  uint64
	expires int64
	ip      string
}

// New opens (or creates) the account in o.DataDir.
func New(lg *zap.Logger, o Options) (*Emulator, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Quota == 0 {
		o.Quota = 10 << 30
	}
	if o.MaxBody == 0 {
		o.MaxBody = 1 << 20
	}
	if o.DiffBlockTimeout == 0 {
		o.DiffBlockTimeout = 60 * time.Second
	}
	if o.LinkTTL == 0 {
		o.LinkTTL = time.Hour
	}
	if o.Email == "" {
		o.Email = "emulator@example.com"
	}
	if err := o.applyVariants(); err != nil {
		return nil, err
	}
	e := &Emulator{lg: lg.Named("pcloud-emu"), o: o, clk: o.Clock, links: map[string]link{},
		codes: map[string]bool{}, changed: make(chan struct{}), closed: make(chan struct{}),
		folderKids: map[uint64]map[string]uint64{}, fileKids: map[uint64]map[string]uint64{}}
	st, err := openStore(o.DataDir)
	if err != nil {
		return nil, err
	}
	e.store, e.content = st, emukit.NewBlobs(st.Dir, "content")
	if err := e.loadState(); err != nil {
		st.Close()
		return nil, err
	}
	e.kit = emukit.New(emukit.Options{Logger: e.lg, Clock: e.clk, LogSize: o.LogSize, Op: opName})
	e.kit.SetTrash(e.trashSums)
	if e.is(VariantFatListing) {
		e.pad = strings.Repeat("x", 4096)
	}
	e.registerHooks()
	e.kit.SetInjector(e)
	e.handler = e.kit.Wrap(http.HandlerFunc(e.serveHTTP))
	return e, nil
}

func opName(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, contentPrefix) {
		return "content"
	}
	return strings.TrimPrefix(r.URL.Path, "/")
}

func (e *Emulator) loadState() error {
	l, err := load(e.store.DB)
	if err != nil {
		return err
	}
	e.cnt, e.folders, e.files, e.events, e.tokens, e.uploads = l.cnt, l.folders, l.files, l.events, l.tokens, l.uploads
	ch := &change{tokens: map[string]*tokenState{}}
	if l.fresh {
		now := e.clk.Now().Unix()
		e.cnt = counters{NextFolderID: 1, NextFileID: 1, NextUploadID: 1, UserID: 7000001, Token: emukit.RandomHex(20), Created: now}
		root := &node{ID: 0, Folder: true, Name: "/", Created: now, Modified: now}
		e.folders[0] = root
		ch.put(root)
		e.appendEvent(ch, "modifyuserinfo", nil, 0) // a full history always holds one
	}
	if _, ok := e.tokens[emukit.TokenKey(e.cnt.Token)]; !ok {
		ch.tokens[emukit.TokenKey(e.cnt.Token)] = &tokenState{}
	}
	if e.o.Token != "" {
		// A preset token is valid again on every start, even if a test revoked it in an earlier run.
		ch.tokens[emukit.TokenKey(e.o.Token)] = &tokenState{}
	}
	for k, t := range ch.tokens {
		e.tokens[k] = t
	}
	for _, n := range e.folders {
		if !n.Deleted && n.ID != 0 {
			e.link(n)
		}
	}
	for _, n := range e.files {
		if !n.Deleted {
			e.link(n)
			e.used += n.Size
		}
	}
	return writeChange(e.store.DB, ch, e.cnt, nil)
}

// Handler serves the API, the content links and the OAuth stand-ins, behind the fault plan and request log.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Kit is the emulator's fault plan and request log.
func (e *Emulator) Kit() *emukit.Kit { return e.kit }

// Token is the access token that works without a login: Options.Token, or the data dir's default token.
func (e *Emulator) Token() string {
	if e.o.Token != "" {
		return e.o.Token
	}
	return e.cnt.Token
}

// DataDir is where files and metadata live.
func (e *Emulator) DataDir() string { return e.store.Dir }

// Close wakes long polls, closes the db and removes a temporary data dir. Stop the HTTP server first.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.closed)
		e.kit.Close()
		e.mu.Lock()
		err = e.store.Close()
		e.mu.Unlock()
	})
	return err
}

// ---- tree helpers (all under e.mu) ----

func (e *Emulator) link(n *node) {
	idx := e.fileKids
	if n.Folder {
		idx = e.folderKids
	}
	m := idx[n.Parent]
	if m == nil {
		m = map[string]uint64{}
		idx[n.Parent] = m
	}
	m[n.Name] = n.ID
}

func (e *Emulator) unlink(n *node) {
	idx := e.fileKids
	if n.Folder {
		idx = e.folderKids
	}
	if m := idx[n.Parent]; m != nil && m[n.Name] == n.ID {
		delete(m, n.Name)
	}
}

func (e *Emulator) childFolder(parent uint64, name string) *node {
	if id, ok := e.folderKids[parent][name]; ok {
		return e.folders[id]
	}
	return nil
}

func (e *Emulator) childFile(parent uint64, name string) *node {
	if id, ok := e.fileKids[parent][name]; ok {
		return e.files[id]
	}
	return nil
}

func (e *Emulator) liveFolder(id uint64) *node {
	if n := e.folders[id]; n != nil && !n.Deleted {
		return n
	}
	return nil
}

func (e *Emulator) liveFile(id uint64) *node {
	if n := e.files[id]; n != nil && !n.Deleted {
		return n
	}
	return nil
}

// pathOf rebuilds an item's path from parent ids ("/a/b"); the root is "/".
func (e *Emulator) pathOf(n *node) string {
	if n.Folder && n.ID == 0 {
		return "/"
	}
	var parts []string
	for cur := n; ; {
		parts = append(parts, cur.Name)
		p := e.folders[cur.Parent]
		if p == nil || p.ID == 0 {
			break
		}
		cur = p
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/")
		b.WriteString(parts[i])
	}
	return b.String()
}

// isUnder reports whether folder id lies in the subtree of folder top (itself included).
func (e *Emulator) isUnder(id, top uint64) bool {
	for {
		if id == top {
			return true
		}
		n := e.folders[id]
		if n == nil || id == 0 {
			return false
		}
		id = n.Parent
	}
}

// appendEvent records an event with a copy of the item's current state.
func (e *Emulator) appendEvent(ch *change, kind string, n *node, deletedFileID uint64) {
	e.cnt.DiffID++
	ev := event{DiffID: e.cnt.DiffID, Event: kind, Time: e.clk.Now().Unix(), DeletedFileID: deletedFileID}
	if n != nil {
		cp := *n
		ev.Node = &cp
	}
	e.events = append(e.events, ev)
	ch.events = append(ch.events, ev)
}

// commit persists a change and wakes long polls. Called with e.mu held.
func (e *Emulator) commit(ch *change) error {
	var rewrite []event
	if e.o.HistoryLimit > 0 && len(e.events) > e.o.HistoryLimit {
		e.compactLocked()
		rewrite, ch.events = e.events, nil
	}
	if err := writeChange(e.store.DB, ch, e.cnt, rewrite); err != nil {
		e.lg.Error("persist", zap.Error(err))
		return err
	}
	if len(ch.events) > 0 || rewrite != nil {
		close(e.changed)
		e.changed = make(chan struct{})
	}
	return nil
}

// compactLocked compacts the whole history as pCloud may (§6.4). By default (documented: history is compacted,
// no signal is documented) every surviving event keeps its diffid and no cursor is refused: an item's events
// collapse into one create event carrying its latest state and its last diffid, and items that were deleted
// vanish with all their events, so a client reading on from an old cursor silently misses those deletes.
// VariantResetOnCompaction instead marks every diffid before now as too old (Floor), answered with `reset`.
func (e *Emulator) compactLocked() {
	type key struct {
		folder bool
		id     uint64
	}
	last := map[key]event{}
	var order []key
	var user *event
	for _, ev := range e.events {
		if ev.Event == "modifyuserinfo" && user == nil {
			cp := ev
			user = &cp
		}
		if ev.Node == nil {
			continue
		}
		k := key{ev.Node.Folder, ev.Node.ID}
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = ev
	}
	var evs []event
	if user != nil {
		evs = append(evs, *user)
	}
	for _, k := range order {
		ev := last[k]
		live := e.liveFile(k.id)
		if k.folder {
			live = e.liveFolder(k.id)
		}
		if live == nil || ev.Event == "deletefolder" || ev.Event == "deletefile" || ev.Node.Deleted {
			continue
		}
		if k.folder {
			ev.Event = "createfolder"
		} else {
			ev.Event = "createfile"
		}
		ev.DeletedFileID = 0
		evs = append(evs, ev)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].DiffID < evs[j].DiffID })
	e.events = evs
	if e.is(VariantResetOnCompaction) {
		e.cnt.Floor, e.cnt.Kept = e.cnt.DiffID, nil
	}
}

func (e *Emulator) sortedKids(parent uint64, folders bool) []*node {
	idx, all := e.fileKids[parent], e.files
	if folders {
		idx, all = e.folderKids[parent], e.folders
	}
	out := make([]*node, 0, len(idx))
	for _, id := range idx {
		out = append(out, all[id])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DropHistory makes every diffid issued before now "too old" (compaction of the whole history).
func (e *Emulator) DropHistory() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.compactLocked()
	ch := &change{}
	if err := writeChange(e.store.DB, ch, e.cnt, e.events); err != nil {
		e.lg.Error("persist", zap.Error(err))
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// RevokeToken makes tok answer 2095 ("Revoked 'access_token'"), as when the user removes the app.
func (e *Emulator) RevokeToken(tok string) { e.setToken(tok, &tokenState{Revoked: true}) }

// ForgetToken makes tok unknown: it then answers 2094 ("Invalid 'access_token'").
func (e *Emulator) ForgetToken(tok string) { e.setToken(tok, nil) }

func (e *Emulator) setToken(tok string, st *tokenState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := emukit.TokenKey(tok)
	if st == nil {
		delete(e.tokens, k)
	} else {
		e.tokens[k] = st
	}
	_ = e.commit(&change{tokens: map[string]*tokenState{k: st}})
}

// SnapEntry is one live item in a Snapshot.
type SnapEntry struct {
	Folder   bool
	ID       uint64 // folderid or fileid
	Size     int64
	SHA1     string
	Modified time.Time
}

// Snapshot returns every live item by path ("/a/b.txt"; the root itself is left out), for test assertions.
func (e *Emulator) Snapshot() map[string]SnapEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]SnapEntry{}
	for _, n := range e.folders {
		if !n.Deleted && n.ID != 0 {
			out[e.pathOf(n)] = SnapEntry{Folder: true, ID: n.ID, Modified: time.Unix(n.Modified, 0).UTC()}
		}
	}
	for _, n := range e.files {
		if !n.Deleted {
			out[e.pathOf(n)] = SnapEntry{ID: n.ID, Size: n.Size, SHA1: n.SHA1, Modified: time.Unix(n.Modified, 0).UTC()}
		}
	}
	return out
}

// ReadFile returns the content of the live file at path p, for test assertions.
func (e *Emulator) ReadFile(p string) ([]byte, error) {
	e.mu.Lock()
	n, err := e.resolveFile(p)
	e.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	data, err := e.content.ReadFile(blobID(n.ID))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return data, nil
}

// blobID names a file's content blob: its fileid. Overwriting a file keeps its fileid, so the new content
// replaces the old blob.
func blobID(fileID uint64) string { return strconv.FormatUint(fileID, 10) }

// ---- request plumbing ----

// apiError is a pCloud error reply: HTTP 200 with a non-zero result.
type apiError struct {
	code int
	msg  string
}

func (a *apiError) Error() string { return fmt.Sprintf("%d %s", a.code, a.msg) }

// messages are the texts pCloud sends with each code (§7.2; clients key on the number only).
var messages = map[int]string{
	1000: "Log in required.",
	1001: "No full path or name/folderid provided.",
	1002: "No full path or folderid provided.",
	1004: "No fileid or path provided.",
	1013: "Date/time format not understood.",
	1016: "No full topath or toname/tofolderid provided.",
	1017: "Invalid 'folderid' provided.",
	1018: "Invalid 'fileid' provided.",
	1029: "Please provide 'fileid'.",
	1037: "Please provide at least one of 'topath', 'tofolderid' or 'toname'.",
	1101: "Recursive listing of the root folder is not allowed.",
	1900: "Upload not found.",
	2000: "Log in failed.",
	2001: "Invalid file/folder name.",
	2002: "A component of parent directory does not exist.",
	2003: "Access denied. You do not have permissions to perform this operation.",
	2004: "File or folder already exists.",
	2005: "Directory does not exist.",
	2006: "Folder is not empty.",
	2007: "Cannot delete the root folder.",
	2008: "User is over quota.",
	2009: "File not found.",
	2010: "Invalid path.",
	2012: "Invalid 'code' provided.",
	2041: "Connection broken.",
	2042: "Cannot rename the root folder.",
	2043: "Cannot move a folder to a subfolder of itself.",
	2094: "Invalid 'access_token' provided.",
	2095: "Revoked 'access_token' provided, you need to re-authorize the application.",
	4000: "Too many login tries from this IP address.",
	5000: "Internal error. Try again later.",
	5001: "Internal upload error.",
	5002: "Internal error, no servers available. Try again later.",
}

func fail(code int) *apiError {
	msg, ok := messages[code]
	if !ok {
		msg = "Error " + strconv.Itoa(code) + "."
	}
	return &apiError{code: code, msg: msg}
}

// call is one API request being served.
type call struct {
	e         *Emulator
	w         http.ResponseWriter
	r         *http.Request
	p         url.Values
	timestamp bool // timeformat=timestamp
	oauth     bool // authenticated with an OAuth access token (not `auth`)
	token     string
}

// t renders a time as the request asked: RFC 1123 with numeric zone (31 bytes, UTC) or Unix seconds.
func (c *call) t(unix int64) any {
	if c.timestamp {
		return unix
	}
	return time.Unix(unix, 0).UTC().Format(time.RFC1123Z)
}

type method struct {
	fn     func(c *call) (any, error)
	noAuth bool
}

func (e *Emulator) methods() map[string]method {
	return map[string]method{
		"userinfo":                {fn: (*call).userinfo},
		"listfolder":              {fn: (*call).listfolder},
		"stat":                    {fn: (*call).stat},
		"createfolder":            {fn: func(c *call) (any, error) { return c.createfolder(false) }},
		"createfolderifnotexists": {fn: func(c *call) (any, error) { return c.createfolder(true) }},
		"renamefolder":            {fn: (*call).renamefolder},
		"renamefile":              {fn: (*call).renamefile},
		"deletefile":              {fn: (*call).deletefile},
		"deletefolder":            {fn: (*call).deletefolder},
		"deletefolderrecursive":   {fn: (*call).deletefolderrecursive},
		"copyfile":                {fn: (*call).copyfile},
		"checksumfile":            {fn: (*call).checksumfile},
		"uploadfile":              {fn: (*call).uploadfile},
		"upload_create":           {fn: (*call).uploadCreate},
		"upload_write":            {fn: (*call).uploadWrite},
		"upload_info":             {fn: (*call).uploadInfo},
		"upload_save":             {fn: (*call).uploadSave},
		"upload_delete":           {fn: (*call).uploadDelete},
		"getfilelink":             {fn: (*call).getfilelink},
		"diff":                    {fn: (*call).diff},
		"oauth2_token":            {fn: (*call).oauth2Token, noAuth: true},
		"currentserver":           {fn: (*call).currentserver, noAuth: true},
		"getapiserver":            {fn: (*call).getapiserver, noAuth: true},
		"trash_list":              {fn: (*call).trash},
		"trash_restore":           {fn: (*call).trash},
		"trash_restorepath":       {fn: (*call).trash},
		"trash_clear":             {fn: (*call).trash},
	}
}

const contentPrefix = "/dl/"

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, contentPrefix):
		e.serveContent(w, r)
		return
	case r.URL.Path == "/oauth2/authorize":
		e.authorize(w, r)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	m, ok := e.methods()[name]
	if !ok {
		// Not documented; a 404 with the JSON error shape keeps rclone-style error decoding working.
		e.reply(w, r, http.StatusNotFound, map[string]any{"result": 404, "error": "Unknown method " + name + "."})
		return
	}
	p, err := e.params(r, name)
	if err != nil {
		e.replyErr(w, r, nil, err)
		return
	}
	c := &call{e: e, w: w, r: r, p: p, timestamp: p.Get("timeformat") == "timestamp"}
	if !m.noAuth {
		if err := c.authenticate(); err != nil {
			// uploadfile may carry its credentials as multipart fields, which are read while streaming.
			var ae *apiError
			if !(name == "uploadfile" && errors.As(err, &ae) && ae.code == 1000 && isMultipart(r)) {
				e.replyErr(w, r, p, err)
				return
			}
		}
	}
	out, err := m.fn(c)
	if err != nil {
		e.replyErr(w, r, p, err)
		return
	}
	if out == nil {
		return // the method wrote its own response
	}
	e.reply(w, r, http.StatusOK, out, p)
}

func isMultipart(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "multipart/form-data"
}

// params merges the query, a urlencoded or multipart POST body and cookies; a later source wins (§1.2). For PUT
// the body is data, so only the query counts; uploadfile's multipart body is streamed by the method itself.
func (e *Emulator) params(r *http.Request, name string) (url.Values, error) {
	p := url.Values{}
	for k, v := range r.URL.Query() {
		p[k] = v
	}
	if r.Method == http.MethodPost && name != "uploadfile" {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch ct {
		case "application/x-www-form-urlencoded":
			r.Body = http.MaxBytesReader(nil, r.Body, e.o.MaxBody)
			// A broken or oversized form leaves its parameters out; the method then reports what is missing.
			_ = r.ParseForm()
			for k, v := range r.PostForm {
				p[k] = v
			}
		case "multipart/form-data":
			if err := r.ParseMultipartForm(e.o.MaxBody); err == nil {
				for k, v := range r.MultipartForm.Value {
					p[k] = v
				}
			}
		}
	}
	for _, ck := range r.Cookies() {
		p.Set(ck.Name, ck.Value)
	}
	return p, nil
}

// authenticate accepts `access_token`, `Authorization: Bearer` or `auth` (§1.5) and answers with pCloud's codes:
// 1000 none given, 2094 unknown OAuth token, 2095 revoked OAuth token, 2000 bad `auth`.
func (c *call) authenticate() error {
	tok := c.p.Get("access_token")
	if tok == "" {
		if h := c.r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			tok = strings.TrimSpace(h[7:])
		}
	}
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if tok != "" {
		st, ok := c.e.tokens[emukit.TokenKey(tok)]
		switch {
		case !ok:
			return fail(2094)
		case st.Revoked:
			return fail(2095)
		}
		c.oauth, c.token = true, tok
		return nil
	}
	if a := c.p.Get("auth"); a != "" {
		if st, ok := c.e.tokens[emukit.TokenKey(a)]; !ok || st.Revoked {
			return fail(2000)
		}
		c.token = a
		return nil
	}
	return fail(1000)
}

func (e *Emulator) replyErr(w http.ResponseWriter, r *http.Request, p url.Values, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		e.lg.Error("internal", zap.String("op", opName(r)), zap.Error(err))
		ae = fail(5000)
	}
	// The 2014 spec adds X-Error; harmless if today's service does not.
	w.Header().Set("X-Error", strconv.Itoa(ae.code))
	st := http.StatusOK // every public trace shows errors with HTTP 200
	if e.is(VariantHTTPErrorStatus) {
		st = errorStatus(ae.code)
	}
	e.reply(w, r, st, map[string]any{"result": ae.code, "error": ae.msg}, p)
}

func (e *Emulator) reply(w http.ResponseWriter, r *http.Request, status int, v any, p ...url.Values) {
	if len(p) > 0 && p[0] != nil && p[0].Get("id") != "" {
		// The global `id` parameter is echoed back; go through a map so any reply type can carry it.
		raw, _ := json.Marshal(v)
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber() // keep uint64 hashes exact
		if dec.Decode(&m) == nil {
			m["id"] = p[0].Get("id")
			v = m
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		e.lg.Error("encode reply", zap.Error(err))
		status, data = http.StatusInternalServerError, []byte(`{"result":5000,"error":"Internal error. Try again later."}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Server", "CloudHTTPd-API v1.1")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
