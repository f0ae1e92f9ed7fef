// Package emulator is a Verizon Personal Cloud Storage API server that follows the API reference (see ../PROVIDER.md) to the
// letter, project decisions included: OAuth2 with short-lived access tokens and single-use refresh tokens per
// deviceid, account, metadata, fullview with etag deltas (412 when nothing changed, 205 OutOfSync
// when an etag predates the retained journal), downloads with Range, the intent/upload/commit flow with
// checksums, file operations with safe and conflictsolve, trash and search, all under /cloud/1. Faults come from
// emukit; forced OutOfSync, token expiry and clock skew are emulator controls outside /cloud/1. Where the
// documentation is silent, Options.Variants picks the reading (variants.go); the default is the least helpful.
//
// Files and metadata persist in Options.DataDir (a bbolt db plus content-addressed blobs).
package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// BasePath is where the API lives on the emulator's host, as on the real one.
const BasePath = "/cloud/1"

// Defaults of the OAuth client the emulator accepts. They match the client's built-in app key.
const (
	DefaultClientID     = "tandem-desktop"
	DefaultClientSecret = "tandem-desktop-secret"
)

// DefaultRedirectURL is the callback URL the emulator's app key is registered with when none is given.
const DefaultRedirectURL = "http://127.0.0.1:53682/callback"

// VirtualFolders are created empty on a fresh data dir (§2).
var virtualFolders = [...]string{"VZMOBILE", "VZWEB", "MyComputer"}

// Options configures an emulator. The zero value is a valid default.
type Options struct {
	DataDir string          // "" = a temp dir removed by Close
	Clock   clockwork.Clock // default real; ClockOffset skews what the server reports on top of it
	// AccessTTL is the access-token lifetime (default 3600 s); tests use seconds so refresh is exercised.
	AccessTTL time.Duration
	// RefreshTTL is the refresh-token lifetime (default 14 days).
	RefreshTTL   time.Duration
	ClientID     string // default DefaultClientID
	ClientSecret string // default DefaultClientSecret
	// RedirectURIs are the registered callbacks (default DefaultRedirectURL). Only they are accepted, exactly as
	// the documentation says (§3.1); the redirect-loopback variant accepts any loopback URL as well.
	RedirectURIs []string
	// Variants pick a reading where the documentation is silent (variants.go); empty means every default.
	Variants []string
	// HistoryLimit is how many journal entries fullview etags can reach back over (default 10,000), HistoryAge
	// how old they may be (default 30 days). Older etags answer 205.
	HistoryLimit int
	HistoryAge   time.Duration
	Quota        int64 // bytes; default 5 GiB
	// MaxPerFolder is the number of files a folder may hold (default 10,000; 400 folder_full beyond).
	MaxPerFolder int
	// MaxSimple is the largest non-chunked upload and the largest chunk (default 104,857,600).
	MaxSimple int64
	UserID    string // default "u-4be1c09a77f2"
	Alias     string // default "5550100123"
	LogSize   int    // emukit request log size
}

// Emulator is one Verizon account. Safe for concurrent use.
type Emulator struct {
	lg      *zap.Logger
	o       Options
	clk     clockwork.Clock
	kit     *emukit.Kit
	store   *emukit.Store // data dir and db
	blobs   emukit.Blobs  // content by sha256, shared by every node with that checksum (blobRefs)
	handler http.Handler
	v       variants

	mu       sync.Mutex
	offset   time.Duration // clock skew
	cnt      counters
	byID     map[uint64]*node
	live     map[string]*node            // by absolute path
	kids     map[string]map[string]*node // live children by parent path and name
	trash    map[string][]*node          // trashed items by their original path
	journal  []jentry
	uploads  map[string]*intent
	tokens   map[string]*tokenState
	codes    map[string]authCode
	blobRefs map[string]int // checksum -> number of nodes (live or trashed) using the blob
	used     int64

	closeOnce sync.Once
}

type authCode struct {
	redirect string
	device   string
	expires  time.Time
}

// New opens (or creates) the account in o.DataDir.
func New(lg *zap.Logger, o Options) (*Emulator, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = time.Hour
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 14 * 24 * time.Hour
	}
	if o.ClientID == "" {
		o.ClientID, o.ClientSecret = DefaultClientID, DefaultClientSecret
	}
	if len(o.RedirectURIs) == 0 {
		o.RedirectURIs = []string{DefaultRedirectURL}
	}
	v, err := parseVariants(o.Variants)
	if err != nil {
		return nil, err
	}
	if o.HistoryLimit == 0 {
		o.HistoryLimit = 10000
	}
	if o.HistoryAge == 0 {
		o.HistoryAge = 30 * 24 * time.Hour
	}
	if o.Quota == 0 {
		o.Quota = 5 << 30
	}
	if o.MaxPerFolder == 0 {
		o.MaxPerFolder = 10000
	}
	if o.MaxSimple == 0 {
		o.MaxSimple = 104857600
	}
	if o.UserID == "" {
		o.UserID = "u-4be1c09a77f2"
	}
	if o.Alias == "" {
		o.Alias = "5550100123"
	}
	e := &Emulator{lg: lg.Named("verizon-emu"), o: o, clk: o.Clock, byID: map[uint64]*node{},
		live: map[string]*node{}, kids: map[string]map[string]*node{}, trash: map[string][]*node{},
		uploads: map[string]*intent{}, tokens: map[string]*tokenState{}, codes: map[string]authCode{},
		blobRefs: map[string]int{}, v: v}
	st, err := openStore(o.DataDir)
	if err != nil {
		return nil, err
	}
	e.store, e.blobs = st, emukit.NewBlobs(st.Dir, "blobs")
	if err := e.loadState(); err != nil {
		st.Close()
		return nil, err
	}
	e.kit = emukit.New(emukit.Options{Logger: e.lg, Clock: e.clk, LogSize: o.LogSize, Op: opName})
	e.kit.SetTrash(e.trashSums)
	e.registerHooks()
	e.kit.SetInjector(e)
	e.handler = queryTokenToHeader(e.kit.Wrap(http.HandlerFunc(e.serveHTTP)))
	return e, nil
}

// queryTokenToHeader moves the download alternative `?access-token=` (§1) into the Authorization header before
// the request log sees the query: emukit's sanitizer does not know this provider's spelling, and a token must
// never reach a log line.
func queryTokenToHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if tok := q.Get("access-token"); tok != "" {
			if r.Header.Get("Authorization") == "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			q.Del("access-token")
			r.URL.RawQuery = q.Encode()
		}
		h.ServeHTTP(w, r)
	})
}

// opName names a request for fault matching and the log: "fullview", "files", "fops/move", "oauth2/token", …
func opName(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, BasePath+"/")
	if p == r.URL.Path {
		return strings.TrimPrefix(p, "/")
	}
	parts := strings.SplitN(p, "/", 3)
	switch parts[0] {
	case "fops", "oauth2", "fileupload":
		if len(parts) > 1 {
			return parts[0] + "/" + parts[1]
		}
	}
	return parts[0]
}

func (e *Emulator) loadState() error {
	l, err := load(e.store.DB)
	if err != nil {
		return err
	}
	e.cnt, e.journal, e.uploads, e.tokens = l.cnt, l.journal, l.uploads, l.tokens
	sort.Slice(e.journal, func(i, j int) bool { return e.journal[i].Seq < e.journal[j].Seq })
	for _, n := range l.nodes {
		e.index(n)
	}
	ch := newChange()
	if l.fresh {
		e.cnt = counters{NextID: 1, UserID: e.o.UserID, Epoch: 1}
		now := e.nowMS()
		for _, vf := range virtualFolders {
			n := &node{ID: e.newID(), Parent: "/", Name: vf, Folder: true, VersionCreated: now, Created: now}
			e.index(n)
			ch.put(n)
		}
	}
	return writeChange(e.store.DB, ch, e.cnt)
}

// index adds a loaded or new node to the in-memory indexes.
func (e *Emulator) index(n *node) {
	e.byID[n.ID] = n
	if !n.Folder && n.Checksum != "" {
		e.blobRefs[n.Checksum]++
		e.used += n.Size
	}
	if n.Trashed {
		p := n.path()
		e.trash[p] = append(e.trash[p], n)
		return
	}
	e.link(n)
}

// App is the OAuth app registered with the emulator: client id, secret and the first callback URL.
func (e *Emulator) App() (id, secret, redirect string) {
	return e.o.ClientID, e.o.ClientSecret, e.o.RedirectURIs[0]
}

// Handler serves the API behind the fault plan and request log.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Kit is the emulator's fault plan and request log.
func (e *Emulator) Kit() *emukit.Kit { return e.kit }

// DataDir is where files and metadata live.
func (e *Emulator) DataDir() string { return e.store.Dir }

// Close closes the db and removes a temporary data dir. Stop the HTTP server first.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.kit.Close()
		e.mu.Lock()
		err = e.store.Close()
		e.mu.Unlock()
	})
	return err
}

// ---- time and ids ----

func (e *Emulator) now() time.Time { return e.clk.Now().Add(e.offset) }
func (e *Emulator) nowMS() int64   { return e.now().UnixMilli() }

// SetClockOffset skews every time the server reports (and checks token expiry against) by d (F13).
func (e *Emulator) SetClockOffset(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offset = d
}

func (e *Emulator) newID() uint64 {
	id := e.cnt.NextID
	e.cnt.NextID++
	return id
}

func newContentToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "ct_" + base64.RawURLEncoding.EncodeToString(b)
}

// ---- tree helpers (all under e.mu) ----

func (e *Emulator) link(n *node) {
	p := n.path()
	e.live[p] = n
	m := e.kids[n.Parent]
	if m == nil {
		m = map[string]*node{}
		e.kids[n.Parent] = m
	}
	m[n.Name] = n
}

func (e *Emulator) unlink(n *node) {
	p := n.path()
	if e.live[p] == n {
		delete(e.live, p)
	}
	if m := e.kids[n.Parent]; m != nil && m[n.Name] == n {
		delete(m, n.Name)
		if len(m) == 0 {
			delete(e.kids, n.Parent)
		}
	}
}

// subtree returns n and every live node below it, parents first.
func (e *Emulator) subtree(n *node) []*node {
	out := []*node{n}
	for i := 0; i < len(out); i++ {
		if !out[i].Folder {
			continue
		}
		names := make([]string, 0, len(e.kids[out[i].path()]))
		for name := range e.kids[out[i].path()] {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			out = append(out, e.kids[out[i].path()][name])
		}
	}
	return out
}

func (e *Emulator) isEmpty(folder string) bool { return len(e.kids[folder]) == 0 }

func (e *Emulator) filesIn(folder string) int {
	n := 0
	for _, k := range e.kids[folder] {
		if !k.Folder {
			n++
		}
	}
	return n
}

// vfOf is the virtual folder a path lies in ("" for the root).
func vfOf(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

func isVirtualFolder(p string) bool { return p != "/" && strings.Count(p, "/") == 1 }

// touch records that path is about to change; before is what it holds now. Call it before the mutation.
func (e *Emulator) touch(ch *change, path string) { e.touchAs(ch, path, false) }

// touchAs is touch; move says the path is being left by a move or rename.
func (e *Emulator) touchAs(ch *change, path string, move bool) {
	e.cnt.Seq++
	j := jentry{Seq: e.cnt.Seq, VF: vfOf(path), Path: path, Before: e.live[path].kind(), Time: e.nowMS(), Move: move}
	e.journal = append(e.journal, j)
	ch.journal = append(ch.journal, j)
}

// prune drops journal entries beyond the limit or the age; etags that reach behind them answer 205.
func (e *Emulator) prune(ch *change) {
	cut := 0
	oldest := e.nowMS() - e.o.HistoryAge.Milliseconds()
	for cut < len(e.journal) && (len(e.journal)-cut > e.o.HistoryLimit || e.journal[cut].Time < oldest) {
		cut++
	}
	e.dropJournal(ch, cut)
}

func (e *Emulator) dropJournal(ch *change, cut int) {
	if cut == 0 {
		return
	}
	for _, j := range e.journal[:cut] {
		ch.dropJ = append(ch.dropJ, j.Seq)
	}
	e.cnt.Floor = e.journal[cut-1].Seq
	e.journal = append([]jentry(nil), e.journal[cut:]...)
}

// commit persists ch. Callers hold e.mu. A failure is logged and answered 500: the in-memory state is ahead of
// the disk then, which only a restart would reveal.
func (e *Emulator) commit(ch *change) error {
	e.prune(ch)
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		e.lg.Error("persist", zap.Error(err))
		return err
	}
	return nil
}

// ForceOutOfSync discards the journal and starts a new etag epoch: every etag issued so far answers 205.
func (e *Emulator) ForceOutOfSync() {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	e.dropJournal(ch, len(e.journal))
	e.cnt.Epoch++
	_ = e.commit(ch)
}

// DropHistory discards the journal: etags older than the newest change answer 205, a current one still 412.
func (e *Emulator) DropHistory() {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	e.dropJournal(ch, len(e.journal))
	e.cnt.Floor = e.cnt.Seq
	_ = e.commit(ch)
}

// ---- HTTP plumbing ----

type apiError struct {
	status int
	code   string
	desc   string
}

func (a *apiError) Error() string { return a.code + ": " + a.desc }

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return fail(http.StatusBadRequest, "invalid_request", format, args...)
}

func notFound(p string) *apiError { return fail(http.StatusNotFound, "not_found", "%s not found", p) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"server_error","error_description":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = fail(http.StatusInternalServerError, "server_error", "%v", err)
	}
	if ae.status == http.StatusUnauthorized && ae.code == "invalid_token" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.code, "error_description": ae.desc})
}

// splitEscaped turns the escaped URL path after a prefix into an absolute item path: each segment is
// percent-decoded on its own, so an encoded "/" inside a name stays part of the name (and is then refused).
func splitEscaped(rest string) (string, []string, error) {
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return "/", nil, nil
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return "", nil, badRequest("bad path encoding")
		}
		segs[i] = u
	}
	return "/" + strings.Join(segs, "/"), segs, nil
}

// checkName applies the naming rules of §1.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return badRequest("invalid name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return badRequest("invalid name %q", name)
	case len(name) > 255:
		return badRequest("name longer than 255 bytes")
	}
	return nil
}

// cleanPath validates an absolute item path from a query or JSON body.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", badRequest("path %q must be absolute", p)
	}
	if p == "/" {
		return p, nil
	}
	p = strings.TrimSuffix(p, "/")
	for _, seg := range strings.Split(p[1:], "/") {
		if err := checkName(seg); err != nil {
			return "", err
		}
	}
	return p, nil
}

func parentOf(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + BasePath
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", e.serverNow().UTC().Format(http.TimeFormat))
	if err := e.route(w, r); err != nil {
		writeErr(w, err)
	}
}

func (e *Emulator) serverNow() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now()
}

// route dispatches one request; an error is written as the API's error body.
func (e *Emulator) route(w http.ResponseWriter, r *http.Request) error {
	esc := r.URL.EscapedPath()
	if !strings.HasPrefix(esc, BasePath+"/") {
		return fail(http.StatusNotFound, "not_found", "no such endpoint")
	}
	rest := strings.TrimPrefix(esc, BasePath)
	m := r.Method
	switch {
	case rest == "/oauth2/authorize" && m == http.MethodGet:
		return e.authorize(w, r)
	case rest == "/oauth2/token" && m == http.MethodPost:
		return e.token(w, r)
	}
	if err := e.checkAuth(r); err != nil {
		return err
	}
	switch {
	case rest == "/account" && m == http.MethodGet:
		return e.account(w, r)
	case (rest == "/metadata" || rest == "/metadata/") && m == http.MethodGet:
		return e.metadata(w, r, "/")
	case strings.HasPrefix(rest, "/metadata/") && m == http.MethodGet:
		p, _, err := splitEscaped(strings.TrimPrefix(rest, "/metadata/"))
		if err != nil {
			return err
		}
		return e.metadata(w, r, p)
	case rest == "/fullview" && m == http.MethodGet:
		return e.fullview(w, r)
	case strings.HasPrefix(rest, "/files/") && m == http.MethodGet:
		p, _, err := splitEscaped(strings.TrimPrefix(rest, "/files/"))
		if err != nil {
			return err
		}
		return e.download(w, r, p)
	case rest == "/fileupload/intent" && m == http.MethodGet:
		return e.intent(w, r)
	case strings.HasPrefix(rest, "/upload/") && m == http.MethodPost:
		return e.upload(w, r, strings.TrimPrefix(rest, "/upload/"))
	case strings.HasPrefix(rest, "/commit/") && m == http.MethodPost:
		return e.commitUpload(w, r, strings.TrimPrefix(rest, "/commit/"))
	case rest == "/fops/createfolder" && m == http.MethodPost:
		return e.createFolder(w, r)
	case rest == "/fops/delete" && m == http.MethodDelete:
		return e.deleteItem(w, r)
	case (rest == "/fops/copy" || rest == "/fops/move" || rest == "/fops/rename") && m == http.MethodPost:
		return e.relocate(w, r, strings.TrimPrefix(rest, "/fops/"))
	case rest == "/fops/restore" && m == http.MethodPost:
		return e.restore(w, r)
	case rest == "/trash" && m == http.MethodGet:
		return e.listTrash(w, r)
	case rest == "/trash" && m == http.MethodDelete:
		return e.emptyTrash(w, r)
	case rest == "/search" && m == http.MethodGet:
		return e.search(w, r)
	case strings.HasPrefix(rest, "/thumbnails/") && m == http.MethodGet:
		return e.thumbnail(r, strings.TrimPrefix(rest, "/thumbnails/"))
	}
	return fail(http.StatusNotFound, "not_found", "no such endpoint")
}

// readJSON decodes a small JSON request body.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return badRequest("bad JSON body: %v", err)
	}
	return nil
}
