// Package emulator is a vBoxxCloud (Anchor) API v2 server that follows the API reference (see ../PROVIDER.md) to the letter: HTTPS
// only (a plain-HTTP request on the same port gets `400 insecure_transport`), the OAuth2 token endpoint with the
// password and refresh_token grants and expiring tokens, /api/2/version, person (quota and policy), roots, files
// and folders with the reference's error bodies, listings with include_children and the hash / 304 protocol,
// search and modified_since. Faults come from emukit, like the other emulators.
//
// One user with one sync root (and optionally a share root). Metadata persists in a bbolt file in
// Options.DataDir and every content revision in its own file there, so the data survives restarts.
package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// Options configures an emulator. The zero value is a valid default.
type Options struct {
	DataDir string          // "" = a temp dir removed by Close
	Clock   clockwork.Clock // the server clock before skew; default real
	// Sync makes every metadata commit fsync (off by default: see emukit.OpenDB).
	Sync bool

	Username    string // login name; default "anna"
	Email       string // default "anna@example.org"
	Password    string // default "correct horse battery staple"
	DisplayName string // default "Anna de Vries"
	RootName    string // the sync root's name; default DisplayName
	ShareRoot   string // when set, a second root of type "share" with this name
	// ClientID and ClientSecret register an app besides the built-in `anchor` client (which has no secret).
	ClientID, ClientSecret string
	// TwoStep turns on two-step verification with this mode ("sms", "email", "app"); TOTPCode is the code that
	// is accepted (default "123456").
	TwoStep, TOTPCode string

	AccessTTL  time.Duration // default 1 h
	RefreshTTL time.Duration // default 30 days

	// Policy (company_policy) and quota. Extensions are compared case-insensitively on the last extension and may
	// be given with or without the dot. MaxFileSize is in bytes; 0 = no limit. Quota 0 = no quota.
	ExcludedExtensions []string
	MaxFileSize        int64
	Quota              int64

	// FeedDeletions makes modified_since also return files deleted at or after `since`, with is_deleted true.
	FeedDeletions bool
	// AllowPlainHTTP serves plain HTTP requests instead of refusing them: only for in-process transports in tests
	// (there is no TLS on an in-memory RoundTripper). Never set by `tandem emulate`.
	AllowPlainHTTP bool
	Version        string // /api/2/version; default "2.4.1"
	LogSize        int    // emukit request log size
	MaxForm        int64  // limit for non-upload request bodies; default 1 MiB
	// Variants picks readings of the reference other than the least helpful default (see Variants).
	Variants []string
}

// The caller's person id, and the person the emulator pretends holds "foreign" locks.
const (
	personID    = 27
	companyID   = 4
	otherPerson = 99
)

// Emulator is one vBoxx account. Safe for concurrent use.
type Emulator struct {
	lg      *zap.Logger
	o       Options
	kit     *emukit.Kit
	store   *emukit.Store // data dir and db
	content emukit.Blobs  // one file per revision (blobID)
	handler http.Handler

	mu     sync.Mutex
	skew   time.Duration
	cnt    counters
	items  map[int64]*item
	roots  map[int64]*rootRec
	kids   map[parentKey]map[string]int64 // live children by folded name
	tokens map[string]*tokenRec
	guids  map[string]bool
	policy policy
	v      variants
	// rawNames: an admin injection (inject.go) is running under mu, and checkName accepts any name.
	rawNames bool
}

type parentKey struct{ root, parent int64 }

type policy struct {
	exts    []string // lower case, with the dot
	maxSize int64
	quota   int64
}

// New opens (or creates) the account in o.DataDir.
func New(lg *zap.Logger, o Options) (*Emulator, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Username, "anna")
	def(&o.Email, "anna@example.org")
	def(&o.Password, "correct horse battery staple")
	def(&o.DisplayName, "Anna de Vries")
	def(&o.RootName, o.DisplayName)
	def(&o.TOTPCode, "123456")
	def(&o.Version, "2.4.1")
	if o.AccessTTL <= 0 {
		o.AccessTTL = time.Hour
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.MaxForm <= 0 {
		o.MaxForm = 1 << 20
	}
	v, err := parseVariants(o.Variants)
	if err != nil {
		return nil, err
	}
	e := &Emulator{lg: lg.Named("vboxx-emu"), o: o, items: map[int64]*item{},
		roots: map[int64]*rootRec{}, kids: map[parentKey]map[string]int64{}, tokens: map[string]*tokenRec{},
		guids: map[string]bool{}, v: v}
	e.setPolicyLocked(o.ExcludedExtensions, o.MaxFileSize, o.Quota)
	st, err := openStore(o.DataDir, o.Sync)
	if err != nil {
		return nil, err
	}
	e.store, e.content = st, emukit.NewBlobs(st.Dir, "content")
	if err := e.loadState(); err != nil {
		st.Close()
		return nil, err
	}
	e.kit = emukit.New(emukit.Options{Logger: e.lg, Clock: o.Clock, LogSize: o.LogSize, Op: opName})
	e.kit.SetTrash(e.trashSums)
	e.registerHooks()
	e.kit.SetInjector(e)
	e.handler = e.kit.Wrap(http.HandlerFunc(e.serveHTTP))
	return e, nil
}

func (e *Emulator) loadState() error {
	l, err := load(e.store.DB)
	if err != nil {
		return err
	}
	e.cnt, e.items, e.roots, e.tokens = l.cnt, l.items, l.roots, l.tokens
	for _, t := range e.tokens {
		e.guids[t.GUID] = true
	}
	if l.fresh {
		e.cnt = counters{NextID: 5100, NextRev: 80400, SyncID: 318}
		ch := newChange()
		sr := &rootRec{ID: 318, Name: e.o.RootName, Type: "sync"}
		e.roots[sr.ID], ch.roots[sr.ID] = sr, sr
		if e.o.ShareRoot != "" {
			shr := &rootRec{ID: 319, Name: e.o.ShareRoot, Type: "share"}
			e.roots[shr.ID], ch.roots[shr.ID] = shr, shr
		}
		if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
			return err
		}
	}
	for _, it := range e.items {
		if !it.Deleted {
			e.addKid(it)
		}
	}
	if l.fresh {
		return e.seedVariants()
	}
	return nil
}

// seedVariants gives a fresh account of the read-only variants something to sync down, written as the
// administrator would (the caller cannot write there).
func (e *Emulator) seedVariants() error {
	rt := e.roots[e.cnt.SyncID]
	welcome := []byte("Written by the administrator; this folder is read-only for you.\n")
	store := func(parent int64, name string) error {
		tmp, _, err := e.content.Spool(bytes.NewReader(welcome), "seed-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		_, err = e.storeFile(rt, parent, name, false, tmp, int64(len(welcome)))
		return err
	}
	if e.v.readonlyRoot {
		if err := store(0, "welcome.txt"); err != nil {
			return err
		}
	}
	if e.v.readonlyFolder {
		d, err := e.createFolder(rt, 0, "Read-only")
		if err != nil {
			return err
		}
		d.ReadOnly = true
		ch := newChange()
		ch.put(d)
		if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
			return err
		}
		if err := store(d.ID, "welcome.txt"); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the API (behind the fault plan and the request log).
func (e *Emulator) Handler() http.Handler { return e.handler }

// Kit is the fault plan and the request log.
func (e *Emulator) Kit() *emukit.Kit { return e.kit }

// DataDir is where the account lives.
func (e *Emulator) DataDir() string { return e.store.Dir }

// Close releases the database (and removes a temp data dir).
func (e *Emulator) Close() error {
	e.kit.Close()
	return e.store.Close()
}

// Now is the server clock: the injected clock plus the configured skew.
func (e *Emulator) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nowLocked()
}

func (e *Emulator) nowLocked() time.Time { return e.o.Clock.Now().Add(e.skew).UTC() }

// SetClockSkew offsets the server clock from the injected clock (±2 h in the clock-skew tests; a later call is a
// jump, forwards or backwards).
func (e *Emulator) SetClockSkew(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.skew = d
}

// ClockSkew is the current offset.
func (e *Emulator) ClockSkew() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.skew
}

// SyncRootID is the id of the user's sync root.
func (e *Emulator) SyncRootID() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cnt.SyncID
}

// RootName is the sync root's name.
func (e *Emulator) RootName() string { return e.o.RootName }

// Credentials are the username and password the password grant accepts.
func (e *Emulator) Credentials() (user, password string) { return e.o.Username, e.o.Password }

// SetPolicy replaces the company policy and the quota.
func (e *Emulator) SetPolicy(excludedExtensions []string, maxFileSize, quota int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setPolicyLocked(excludedExtensions, maxFileSize, quota)
}

func (e *Emulator) setPolicyLocked(exts []string, maxSize, quota int64) {
	p := policy{maxSize: maxSize, quota: quota}
	for _, x := range exts {
		x = strings.ToLower(strings.TrimSpace(x))
		if x == "" {
			continue
		}
		if !strings.HasPrefix(x, ".") {
			x = "." + x
		}
		p.exts = append(p.exts, x)
	}
	e.policy = p
}

// opName names a request for fault matching and the request log: "root", "folder", "file", "file/download",
// "folder/upload", "modified_since", "oauth/token", ... Listing requests are "root" and "folder", so a test can
// count them.
func opName(r *http.Request) string {
	p := strings.Trim(r.URL.Path, "/")
	if strings.HasPrefix(p, "oauth/") {
		return p
	}
	parts := strings.Split(strings.TrimPrefix(p, "api/2/"), "/")
	if len(parts) == 0 || parts[0] != "files" {
		if len(parts) > 0 {
			return parts[0]
		}
		return p
	}
	switch {
	case len(parts) == 2:
		return "root"
	case len(parts) == 3 && (parts[2] == "search" || parts[2] == "modified_since"):
		return parts[2]
	case len(parts) == 3 && isAction(parts[2]):
		return "root/" + parts[2]
	case len(parts) == 3:
		return "file"
	case len(parts) == 4 && parts[2] == "folder":
		return "folder"
	case len(parts) == 4:
		return "file/" + parts[3]
	case len(parts) == 5 && parts[2] == "folder":
		return "folder/" + parts[4]
	}
	return p
}

func isAction(s string) bool {
	switch s {
	case "upload", "create_folder", "lock", "unlock", "rename", "move", "delete", "download", "share":
		return true
	}
	return false
}

// apiError is an answer with the reference's error body.
type apiError struct {
	status int
	code   string
	desc   string
	extra  map[string]any
}

func (a *apiError) Error() string { return fmt.Sprintf("%d %s %s", a.status, a.code, a.desc) }

func errf(status int, code, desc string) *apiError {
	return &apiError{status: status, code: code, desc: desc}
}

var (
	errNotFound  = errf(http.StatusNotFound, "not_found", "")
	errLocked    = errf(http.StatusConflict, "resource_locked", "")
	errConflict  = errf(http.StatusConflict, "name_conflict", "")
	errBadName   = errf(http.StatusBadRequest, "invalid_name", "")
	errLongName  = errf(http.StatusBadRequest, "name_too_long", "")
	errBadExt    = errf(http.StatusBadRequest, "invalid_extension", "")
	errRootGone  = errf(http.StatusGone, "root_deleted", "Root was previously deleted.")
	errDenied    = errf(http.StatusUnauthorized, "access_denied", "")
	errMethod    = errf(http.StatusMethodNotAllowed, "method_not_allowed", "")
	errForbidden = errf(http.StatusForbidden, "forbidden", "")
)

func missingParam(p string) *apiError {
	return errf(http.StatusBadRequest, "invalid_request", "Missing required parameter: "+p)
}

func badParam(p string) *apiError {
	return errf(http.StatusBadRequest, "invalid_request", "Invalid value for parameter: "+p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"unknown"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errf(http.StatusInternalServerError, "unknown", "")
	}
	body := map[string]any{"error": ae.code}
	if ae.desc != "" {
		body["error_description"] = ae.desc
	}
	for k, v := range ae.extra {
		body[k] = v
	}
	writeJSON(w, ae.status, body)
}

// okBody is the bare success answer.
func okBody() map[string]any { return map[string]any{"status": "ok"} }

// serveHTTP is the whole API behind the kit.
func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// The Date header carries the server clock (skew included): the client's change cursor is taken from it.
	w.Header().Set("Date", e.Now().Format(http.TimeFormat))
	if r.TLS == nil && !e.o.AllowPlainHTTP {
		writeErr(w, errf(http.StatusBadRequest, "insecure_transport", "Requests MUST utilize https."))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/") {
		r.Body = http.MaxBytesReader(w, r.Body, e.o.MaxForm)
	}
	var err error
	switch p := strings.Trim(r.URL.Path, "/"); {
	case p == "oauth/token":
		err = e.serveToken(w, r)
	case p == "oauth/revoke":
		err = e.serveRevoke(w, r)
	case strings.HasPrefix(p, "api/2/"):
		err = e.serveAPI(w, r, strings.Split(strings.TrimPrefix(p, "api/2/"), "/"))
	default:
		err = errNotFound
	}
	if err != nil {
		writeErr(w, err)
	}
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request, parts []string) error {
	if len(parts) == 1 && parts[0] == "version" {
		if r.Method != http.MethodGet {
			return errMethod
		}
		writeJSON(w, http.StatusOK, map[string]any{"version": e.o.Version})
		return nil
	}
	if err := e.authorize(r); err != nil {
		return err
	}
	if parts[0] == "person" && len(parts) <= 2 {
		if r.Method != http.MethodGet {
			return errMethod
		}
		return e.servePerson(w, r, parts[1:])
	}
	if parts[0] != "files" || len(parts) < 2 {
		return errNotFound
	}
	return e.serveFiles(w, r, parts[1:])
}

func need(r *http.Request, method string) error {
	if r.Method != method {
		return errMethod
	}
	return nil
}

// key is the name as the uniqueness rule sees it: folded, or as it is under the case-sensitive variant.
func (e *Emulator) key(name string) string {
	if e.v.caseSensitive {
		return name
	}
	return fold(name)
}

// fold is the case-insensitive key of a name: Unicode simple case folding (each rune to the smallest rune of its
// folding orbit), no normalization, as the reference's name rule says.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		return m
	}, s)
}

// timeFmt is the reference's date-time layout: UTC, no zone, no fraction.
const timeFmt = "2006-01-02T15:04:05"

func fmtTime(unix int64) string { return time.Unix(unix, 0).UTC().Format(timeFmt) }

// formatSize is the human form; display only, and the reference says its style is inconsistent anyway.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), []string{"KB", "MB", "GB", "TB", "PB"}
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.2f %s", v, suffix[i])
}
