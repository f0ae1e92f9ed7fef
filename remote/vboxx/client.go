// Package vboxx is tandem's vBoxxCloud (Anchor API v2) provider, following its API reference (summarised with our readings in PROVIDER.md): HTTPS only,
// OAuth2 with the password grant at login and refresh on expiry, files and folders by id, and a change feed
// built from modified_since plus the folder hash / 304 protocol (see feed.go).
//
// vBoxx has no content hash: Capabilities.Hashes is empty, so the engine compares bytes where it must know
// whether two sides hold the same content; a download is checked by byte count against the listed size.
package vboxx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// Config is everything a Client needs; Open builds one from remote.OpenOptions and the token file. The zero
// values of the tuning fields are the reference's defaults.
type Config struct {
	Endpoint string // "https://host[:port]"; an http:// endpoint is refused before any request
	CAFile   string // extra trusted CA certificates (PEM); TLS verification is never disabled
	// OnSkip is told about listed names tandem cannot hold (pair path, escaped, and why); default: a warning.
	OnSkip func(p, reason string)
	HTTP   *http.Client // default: httpx's client with CAFile's trust
	Clock  clockwork.Clock
	// Token is the login; Save persists a refreshed token (with the rotated refresh token) before it is used.
	// Save may be nil for tokens given on the command line.
	Token                  *oauth2.Token
	Save                   func(*oauth2.Token) error
	ClientID, ClientSecret string // default "anchor", no secret

	Overlap      time.Duration // modified_since safety overlap; default 120 s
	SweepBudget  int           // folder listings per poll; default 200
	MaxCursorAge time.Duration // an older cursor gets a full conditional sweep; default 7 days
	MaxFeed      int           // a longer modified_since answer gets a full sweep too; default 10,000
	MaxAttempts  int           // httpx retry attempts; default httpx's
	BaseDelay    time.Duration // httpx first backoff; default httpx's
}

// Client is a vBoxx folder as a remote.Remote. Safe for concurrent use.
type Client struct {
	lg       *zap.Logger
	clk      clockwork.Clock
	cfg      Config
	base     string // endpoint, no trailing slash
	hx       *httpx.Client
	auth     *httpx.OAuth
	spec     string
	rootName string
	basePath string // the pair root inside the vBoxx root: "/" or "/Sync/laptop"
	rootID   int64

	mu    sync.Mutex
	dirs  map[string]int64 // absolute folder path → id; a hint, verified by every listing that uses it
	dirty map[int64]bool   // folders this client changed: swept first by the next Changes
	guid  string           // device guid, sent with every refresh grant
	pol   serverPolicy     // company policy, quota, read-only: see server.go

	overwrite     atomic.Int32 // tri: does the server honour overwrite=true (learned once per process, see replace)
	caseSensitive atomic.Bool  // a listing proved the server keeps names apart by case
}

var (
	_ remote.Remote      = (*Client)(nil)
	_ remote.RootChecker = (*Client)(nil)
)

// CheckEndpoint refuses anything but an https URL: vBoxx servers answer plain HTTP with insecure_transport, and a
// password or token must never travel in clear even once.
func CheckEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("vboxx endpoint %q: want https://host[:port]", endpoint)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("vboxx endpoint %q uses %s: vBoxxCloud only accepts https, and tandem never sends "+
			"credentials in clear; use an https:// URL (for a private certificate authority, add --ca-file)",
			endpoint, u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("vboxx endpoint %q: credentials and queries do not belong in the URL", u.Redacted())
	}
	// The reference gives the base as https://host/api/2, and users paste that; tandem adds /api/2 itself.
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/api/2")
	u.RawPath = ""
	return strings.TrimRight(u.String(), "/"), nil
}

// New connects to the root named in root ("/RootName/path/in/root"; "" or "/" is the user's sync root) and
// returns the folder at that path as a Remote. The folder itself may be missing (InitRoot creates it); a
// missing root is an error wrapping remote.ErrRootMissing.
func New(ctx context.Context, lg *zap.Logger, root string, cfg Config) (*Client, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	base, err := CheckEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.Token == nil {
		return nil, fmt.Errorf("vboxx: %w: no token; run `tandem login vboxx`", remote.ErrUnauthorized)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "anchor"
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = 120 * time.Second
	}
	if cfg.SweepBudget <= 0 {
		cfg.SweepBudget = 200
	}
	if cfg.MaxCursorAge <= 0 {
		cfg.MaxCursorAge = 7 * 24 * time.Hour
	}
	if cfg.MaxFeed <= 0 {
		cfg.MaxFeed = 10000
	}
	rootName, basePath, err := parseSpec(root)
	if err != nil {
		return nil, err
	}
	c := &Client{lg: lg.Named("vboxx"), clk: cfg.Clock, cfg: cfg, base: base, rootName: rootName,
		basePath: basePath, dirs: map[string]int64{}, dirty: map[int64]bool{}, guid: guidOf(cfg.Token)}
	c.auth = httpx.NewOAuthFunc(cfg.Token, cfg.Save, cfg.Clock.Now, c.refreshGrant)
	c.hx, err = httpx.New(httpx.Options{Name: "vboxx", HTTP: cfg.HTTP, CAFile: cfg.CAFile, Auth: c.auth, Clock: cfg.Clock,
		Logger: c.lg, MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay})
	if err != nil {
		return nil, fmt.Errorf("vboxx: %w", err)
	}
	if err := c.findRoot(ctx); err != nil {
		return nil, err
	}
	c.spec = "vboxx:/" + c.rootName + strings.TrimSuffix(basePath, "/")
	return c, nil
}

// parseSpec splits "/RootName/a/b" into the root name and the absolute folder path inside it.
func parseSpec(root string) (name, path string, err error) {
	s := strings.Trim(root, "/")
	if s == "" {
		return "", "/", nil
	}
	name, rest, _ := strings.Cut(s, "/")
	path = "/"
	if rest != "" {
		for _, part := range strings.Split(rest, "/") {
			if err := remote.ValidName(part); err != nil {
				return "", "", fmt.Errorf("vboxx spec %q: %w", root, err)
			}
		}
		path = "/" + rest
	}
	return name, path, nil
}

// findRoot resolves the root by name through /person (which lists the roots the user subscribes to).
func (c *Client) findRoot(ctx context.Context) error {
	var p person
	err := c.call(ctx, "person", http.MethodGet, "/api/2/person", nil, true, func(resp *http.Response) error {
		return c.hx.DecodeJSON(resp, &p)
	})
	if err != nil {
		return fmt.Errorf("vboxx: read the account: %w", err)
	}
	c.setPolicy(&p)
	var names []string
	for _, r := range p.Roots {
		if (c.rootName == "" && r.ID == p.RootID) || (c.rootName != "" && r.Name == c.rootName) {
			if r.RootType == "backup" {
				return fmt.Errorf("vboxx root %q is a machine backup root: tandem syncs sync and share roots only", r.Name)
			}
			c.rootID, c.rootName = int64(r.ID), r.Name
			return nil
		}
		names = append(names, strconv.Quote(r.Name))
	}
	return fmt.Errorf("vboxx: %w: no root named %q (the account has %s)", remote.ErrRootMissing, c.rootName,
		strings.Join(names, ", "))
}

func (c *Client) String() string { return c.spec }

// Capabilities: no content hash (the engine compares bytes), server-side moves that keep ids, a trash (deletes
// are soft), a durable feed without long polling. Names are unique per folder case-insensitively. Upload sets
// `modified` to the server's time, so no mtime survives (MTimeStep 0).
func (c *Client) Capabilities() remote.Capabilities {
	return remote.Capabilities{ServerMove: true, Trash: true, Feed: true, FoldsCase: c.foldsCase()}
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hx.HTTP().CloseIdleConnections()
	return nil
}

func (c *Client) rootPath(rest string) string {
	return "/api/2/files/" + strconv.FormatInt(c.rootID, 10) + rest
}

func folderPath(folder int64) string {
	if folder == 0 {
		return ""
	}
	return "/folder/" + strconv.FormatInt(folder, 10)
}

// call runs one JSON request through httpx (retries, refresh, limits) and maps error answers to APIError.
// Parameters go in the query for GET and in a form body for POST; no credential is ever among them.
func (c *Client) call(ctx context.Context, op, method, path string, form url.Values, idempotent bool,
	handle func(*http.Response) error) error {
	if handle == nil {
		handle = func(*http.Response) error { return nil }
	}
	build := func(ctx context.Context) (*http.Request, error) {
		u := c.base + path
		var body io.Reader
		if method == http.MethodGet {
			if len(form) > 0 {
				u += "?" + form.Encode()
			}
		} else {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if method != http.MethodGet {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept", "application/json")
		return req, nil
	}
	return apiErr(op, c.hx.Do(ctx, op, idempotent, build, handle))
}

func (c *Client) decode(v any) func(*http.Response) error {
	return func(resp *http.Response) error { return c.hx.DecodeJSON(resp, v) }
}

// listFlags are sent explicitly, the same on every call: defaults differ between servers, and a different flag
// set would give a different hash.
func listFlags(hash string) url.Values {
	q := url.Values{"include_children": {"true"}, "include_deleted": {"false"}, "include_lock_info": {"false"},
		"include_permissions": {"false"}}
	if hash != "" {
		q.Set("hash", hash)
	}
	return q
}

// list GETs a folder (0: the top level through the root route) with its children. With a hash, a 304 answers
// notModified and no object.
func (c *Client) list(ctx context.Context, folder int64, hash string) (obj object, notModified bool, err error) {
	op := "list"
	if folder == 0 {
		op = "list root"
	}
	err = c.call(ctx, op, http.MethodGet, c.rootPath(folderPath(folder)), listFlags(hash), true,
		func(resp *http.Response) error {
			if resp.StatusCode == http.StatusNotModified {
				notModified = true
				return nil
			}
			var raw []byte
			if err := c.hx.DecodeJSON(resp, (*rawJSON)(&raw)); err != nil {
				return err
			}
			var skipped []skippedChild
			obj, skipped, err = decodeListing(raw)
			if err != nil {
				return httpx.Retry(err, 0) // a broken answer is the server's problem: retried, then an error
			}
			c.noteCase(obj.Children)
			c.reportSkipped(obj.Path, skipped)
			return nil
		})
	return obj, notModified, err
}

// reportSkipped tells OnSkip (or the log) about the children of the folder at abs that a listing left out. Only
// names inside the pair root are the user's business; ancestors listed to find it are not.
func (c *Client) reportSkipped(abs string, skipped []skippedChild) {
	if len(skipped) == 0 {
		return
	}
	dir, inside := c.rel(abs)
	for _, s := range skipped {
		rest, ok := strings.CutPrefix(s.path, strings.TrimSuffix(abs, "/")+"/")
		if !ok {
			rest = s.path // claims to live elsewhere: shown as the server says
		}
		p := remote.Escape(rest)
		if dir != remote.Root {
			p = string(dir) + "/" + p
		}
		switch {
		case !inside:
		case s.obj.ID > 0:
			// Walk and the feed emit it with Entry.Skip: the engine reports it (once), and keeps what it stored.
			c.lg.Debug("a remote name tandem cannot hold", zap.String("path", p), zap.String("reason", s.why))
		case c.cfg.OnSkip != nil:
			c.cfg.OnSkip(p, "remote name left out: "+s.why)
		default:
			c.lg.Warn("skipping a remote name tandem cannot hold", zap.String("path", p), zap.String("reason", s.why))
		}
	}
}

// rawJSON keeps a body as bytes while still being checked as JSON by DecodeJSON.
type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func joinAbs(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func parentAbs(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// abs is p's absolute path inside the vBoxx root.
func (c *Client) abs(p remote.Path) string {
	if p == remote.Root {
		return c.basePath
	}
	return joinAbs(c.basePath, string(p))
}

// rel is the pair path of an absolute server path; false when it lies outside the pair root or cannot be a
// tandem path.
func (c *Client) rel(abs string) (remote.Path, bool) {
	var rest string
	switch {
	case abs == c.basePath:
		return remote.Root, true
	case c.basePath == "/":
		rest = strings.TrimPrefix(abs, "/")
	case strings.HasPrefix(abs, c.basePath+"/"):
		rest = abs[len(c.basePath)+1:]
	default:
		return "", false
	}
	p, err := remote.ParsePath(rest)
	return p, err == nil
}

// checkPath refuses a Path that did not come from ParsePath ("../x", reserved names).
func checkPath(op string, p remote.Path) error {
	if _, err := remote.ParsePath(string(p)); err != nil {
		return fmt.Errorf("vboxx %s: %w", op, err)
	}
	return nil
}

func (c *Client) cachedDir(abs string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.dirs[abs]
	return id, ok
}

func (c *Client) cacheDir(abs string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirs[abs] = id
}

// forgetDirs drops the cached ids at and below abs (after a move or delete of a folder).
func (c *Client) forgetDirs(abs string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.dirs {
		if p == abs || strings.HasPrefix(p, abs+"/") || abs == "/" {
			delete(c.dirs, p)
		}
	}
}

func (c *Client) markDirty(folders ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range folders {
		c.dirty[f] = true
	}
}

// listDir lists the folder at an absolute path. A cached id is used only if the answer still says that path, so
// a folder another client renamed is never mistaken for the one that now has its old name.
func (c *Client) listDir(ctx context.Context, abs string) (int64, object, error) {
	if abs == "/" {
		obj, _, err := c.list(ctx, 0, "")
		return 0, obj, err
	}
	if id, ok := c.cachedDir(abs); ok {
		obj, _, err := c.list(ctx, id, "")
		if err == nil && c.samePath(obj.Path, abs) && !bool(obj.IsDeleted) {
			return id, obj, nil
		}
		if err != nil && !errors.Is(err, remote.ErrNotFound) {
			return 0, object{}, err
		}
		c.forgetDirs(abs)
	}
	_, parent, err := c.listDir(ctx, parentAbs(abs))
	if err != nil {
		return 0, object{}, err
	}
	name := abs[strings.LastIndexByte(abs, '/')+1:]
	if ch := c.findChild(parent.Children, name); ch != nil {
		if ch.Type != "folder" {
			return 0, object{}, fmt.Errorf("vboxx: %s is a file, not a folder: %w", remote.Escape(abs), remote.ErrNotFound)
		}
		obj, _, err := c.list(ctx, int64(ch.ID), "")
		if err != nil {
			return 0, object{}, err
		}
		if !c.samePath(obj.Path, abs) || bool(obj.IsDeleted) {
			return 0, object{}, fmt.Errorf("vboxx: %s changed while being read: %w", remote.Escape(abs), remote.ErrNotFound)
		}
		c.cacheDir(abs, int64(ch.ID))
		return int64(ch.ID), obj, nil
	}
	return 0, object{}, fmt.Errorf("vboxx: no folder %s: %w", remote.Escape(abs), remote.ErrNotFound)
}

// lookup lists p's parent and finds p in it (child nil when absent), case-insensitively where the server folds
// case (the name it would take for p). The parent missing is ErrNotFound.
func (c *Client) lookup(ctx context.Context, p remote.Path) (parent int64, child *object, err error) {
	return c.lookupName(ctx, p.Dir(), p.Base())
}

func (c *Client) lookupName(ctx context.Context, dir remote.Path, name string) (int64, *object, error) {
	parent, lst, err := c.listDir(ctx, c.abs(dir))
	if err != nil {
		return 0, nil, err
	}
	if ownTemp(name) {
		return parent, c.findChild(lst.temps, name), nil // our own temp upload, after a lost answer
	}
	return parent, c.findChild(lst.Children, name), nil
}

func itemID(o *object) string {
	if o.isFolder() {
		// Folder ids get a prefix: the reference does not promise that file and folder ids never collide, and
		// the engine's move detection keys on Entry.ID.
		return "d" + strconv.FormatInt(int64(o.ID), 10)
	}
	return strconv.FormatInt(int64(o.ID), 10)
}

func entryOf(o *object, p remote.Path) remote.Entry {
	if o.isFolder() {
		return remote.Entry{Path: p, Dir: true, ID: itemID(o)}
	}
	return remote.Entry{Path: p, Size: int64(o.Size), ModTime: o.modTime(), ID: itemID(o),
		Rev: strconv.FormatInt(int64(o.RevisionID), 10)}
}

// Stat describes p.
func (c *Client) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := checkPath("stat", p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		id, _, err := c.statBase(ctx)
		if err != nil {
			return remote.Entry{}, fmt.Errorf("stat %s: %w", c.spec, err)
		}
		return remote.Entry{Path: remote.Root, Dir: true, ID: "d" + strconv.FormatInt(id, 10)}, nil
	}
	_, child, err := c.lookup(ctx, p)
	if err == nil && child == nil {
		err = remote.ErrNotFound
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("stat %s: %w", p.Quoted(), err)
	}
	return entryOf(child, p), nil
}

// statBase confirms the pair root exists: a root GET without children for "/", else the folder by its cached id
// (or by path). It returns the folder id (0 for the root's top level) and the object.
func (c *Client) statBase(ctx context.Context) (int64, object, error) {
	// Permissions come with it: a pair folder without FILE_WRITE syncs down only (checked on every pass).
	if c.basePath == "/" {
		var o object
		err := c.call(ctx, "stat root", http.MethodGet, c.rootPath(""), url.Values{"include_children": {"false"},
			"include_permissions": {"true"}}, true, c.decode(&o))
		if err == nil {
			c.setReadOnly(&o)
		}
		return 0, o, err
	}
	if id, ok := c.cachedDir(c.basePath); !ok {
		if _, _, err := c.listDir(ctx, c.basePath); err != nil {
			return 0, object{}, err
		}
	} else if !c.checkCached(ctx, id) {
		c.forgetDirs(c.basePath)
		if _, _, err := c.listDir(ctx, c.basePath); err != nil {
			return 0, object{}, err
		}
	}
	id, _ := c.cachedDir(c.basePath)
	var o object
	err := c.call(ctx, "stat folder", http.MethodGet, c.rootPath(folderPath(id)),
		url.Values{"include_children": {"false"}, "include_permissions": {"true"}}, true, c.decode(&o))
	if err != nil {
		return 0, object{}, err
	}
	if !c.samePath(o.Path, c.basePath) || bool(o.IsDeleted) {
		c.forgetDirs(c.basePath)
		return 0, object{}, fmt.Errorf("vboxx: %s changed while being read: %w", remote.Escape(c.basePath), remote.ErrNotFound)
	}
	c.setReadOnly(&o)
	return id, o, nil
}

// checkCached confirms a cached folder id still names the pair folder.
func (c *Client) checkCached(ctx context.Context, id int64) bool {
	var o object
	err := c.call(ctx, "stat folder", http.MethodGet, c.rootPath(folderPath(id)),
		url.Values{"include_children": {"false"}, "include_permissions": {"false"}}, true, c.decode(&o))
	return err == nil && c.samePath(o.Path, c.basePath) && !bool(o.IsDeleted)
}

// Walk lists everything below dir, breadth first (parents before children). Names tandem cannot hold are
// skipped and logged; their siblings are reported.
func (c *Client) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	if err := checkPath("walk", dir); err != nil {
		return err
	}
	_, first, err := c.listDir(ctx, c.abs(dir))
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir.Quoted(), err)
	}
	type job struct {
		id  int64
		rel remote.Path
	}
	queue := []job{}
	emit := func(lst object, rel remote.Path) error {
		for i := range lst.Children {
			ch := &lst.Children[i]
			p, err := rel.Join(ch.name())
			if err != nil {
				continue // decodeListing already skipped and logged such names
			}
			if err := fn(entryOf(ch, p)); err != nil {
				return err
			}
			if ch.isFolder() {
				queue = append(queue, job{int64(ch.ID), p})
			}
		}
		return nil
	}
	if err := emit(first, dir); err != nil {
		return err
	}
	emitSkips := func(lst object, rel remote.Path) error {
		for _, sc := range lst.unholdable {
			if err := fn(skipEntry(rel, lst.Path, sc)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := emitSkips(first, dir); err != nil {
		return err
	}
	// A folder id seen twice means the server's answers form a cycle: each folder is listed once, whatever they say.
	seen := map[int64]bool{}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		if seen[j.id] {
			return fmt.Errorf("walk %s: folder id %d listed twice (the server's tree has a cycle): %w", j.rel.Quoted(),
				j.id, remote.ErrNotFound)
		}
		seen[j.id] = true
		lst, _, err := c.list(ctx, j.id, "")
		if err != nil {
			return fmt.Errorf("walk %s: %w", j.rel.Quoted(), err)
		}
		if lst.Path != c.abs(j.rel) || bool(lst.IsDeleted) {
			// Moved or deleted during the walk: the walk is incomplete, and an incomplete listing must never
			// look like deletions.
			return fmt.Errorf("walk %s: folder changed during the walk: %w", j.rel.Quoted(), remote.ErrNotFound)
		}
		if err := emit(lst, j.rel); err != nil {
			return err
		}
		if err := emitSkips(lst, j.rel); err != nil {
			return err
		}
	}
	return nil
}

// skipEntry is the entry of a listed child whose name tandem cannot hold, emitted with Skip and its id so the
// engine keeps what it stored for that object (a synced folder renamed on the server to such a name keeps its
// local copy: RELIABILITY I4). Its path is for display: a name with "/" shows the server's absolute path, which
// can never be taken for a pair path.
func skipEntry(dir remote.Path, parentAbs string, sc skippedChild) remote.Entry {
	rest := strings.TrimPrefix(sc.path, strings.TrimSuffix(parentAbs, "/")+"/")
	p := remote.Escape(rest)
	if dir != remote.Root {
		p = string(dir) + "/" + p
	}
	if strings.Contains(rest, "/") {
		p = remote.Escape(sc.path)
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
	}
	e := entryOf(&sc.obj, remote.Path(p))
	e.Skip = "remote name left out: " + sc.why
	return e
}

// Open downloads p. The body fails with remote.ErrCorrupt unless exactly the listed size arrives: vBoxx has no
// digest, so the byte count is the only check the protocol allows.
func (c *Client) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := checkPath("open", p); err != nil {
		return nil, remote.Entry{}, err
	}
	_, child, err := c.lookup(ctx, p)
	if err == nil && (child == nil || child.isFolder()) {
		err = remote.ErrNotFound
	}
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), err)
	}
	e := entryOf(child, p)
	path := c.rootPath("/" + strconv.FormatInt(int64(child.ID), 10) + "/download")
	resp, err := c.hx.Stream(ctx, "download", func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	})
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), apiErr("download "+p.Quoted(), err))
	}
	if resp.ContentLength >= 0 && resp.ContentLength != e.Size {
		resp.Body.Close()
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w: server sends %d bytes, the listing says %d",
			p.Quoted(), remote.ErrCorrupt, resp.ContentLength, e.Size)
	}
	return &verifiedBody{Verifier: remote.NewVerifier(resp.Body, remote.Hash{}, e.Size, ""), c: resp.Body}, e, nil
}

type verifiedBody struct {
	*remote.Verifier
	c io.Closer
}

func (v *verifiedBody) Close() error { return v.c.Close() }

// Put uploads body as p. A read-only pair folder and the company policy refuse first, before anything is sent
// (ErrUnavailable: skipped and reported). Preconditions are checked against a fresh listing of the parent just
// before the upload (vBoxx has no compare-and-swap; the remaining window is one request). A new name is one
// upload, which a file appearing meanwhile turns into name_conflict; an existing file is replaced (see replace).
func (c *Client) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time,
	pre remote.Precondition) (remote.Entry, error) {
	if err := checkPath("put", p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return remote.Entry{}, fmt.Errorf("put: the pair root is a folder: %w", remote.ErrConflict)
	}
	if c.readOnly() {
		return remote.Entry{}, c.errReadOnly("put", p)
	}
	if err := c.checkPolicy(ctx, p, size); err != nil {
		return remote.Entry{}, err
	}
	parent, old, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("put %s: %w", p.Quoted(), err)
	}
	switch {
	case old != nil && old.isFolder():
		return remote.Entry{}, fmt.Errorf("put %s: a folder has that name: %w", p.Quoted(), remote.ErrConflict)
	case pre.Absent && old != nil:
		return remote.Entry{}, fmt.Errorf("put %s: exists: %w", p.Quoted(), remote.ErrConflict)
	case pre.Rev != "" && (old == nil || strconv.FormatInt(int64(old.RevisionID), 10) != pre.Rev):
		return remote.Entry{}, fmt.Errorf("put %s: changed since revision %s: %w", p.Quoted(), pre.Rev, remote.ErrConflict)
	}
	var obj object
	if old == nil {
		obj, err = c.upload(ctx, p.Dir(), p.Base(), parent, body, size, false, nil)
	} else {
		obj, err = c.replace(ctx, p, parent, old, body, size)
	}
	c.learnUpload(p, size, err)
	c.markDirty(parent)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("put %s: %w", p.Quoted(), err)
	}
	if int64(obj.Size) != size {
		return remote.Entry{}, fmt.Errorf("put %s: %w: server stored %d bytes of %d", p.Quoted(), remote.ErrCorrupt, obj.Size, size)
	}
	return entryOf(&obj, p), nil
}

var errNoReplay = errors.New("the body cannot be sent again (not seekable)")

// upload sends one multipart POST with a Content-Length (the size is known, and many server stacks refuse or
// misread a chunked body) while still streaming the file: the multipart framing is built around it, never the
// file held in memory. An upload is not idempotent: after a lost answer the folder is read again, and a file
// that now has this name, the right size and a revision that was not there before is adopted as ours.
// overwrite is sent only when it is true (the reference has no such field; see replace).
func (c *Client) upload(ctx context.Context, dir remote.Path, name string, folder int64, body io.Reader, size int64,
	overwrite bool, before *object) (object, error) {
	op := "upload " + remote.Escape(path.Join(string(dir), name))
	seeker, _ := body.(io.Seeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	attempts := 0
	build := func(ctx context.Context) (*http.Request, error) {
		attempts++
		if attempts > 1 {
			if seeker == nil {
				return nil, fmt.Errorf("%s: %w", op, errNoReplay)
			}
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("%s: rewind: %w", op, err)
			}
		}
		head, tail, ctype, err := uploadFraming(name, overwrite)
		if err != nil {
			return nil, err
		}
		rd := io.MultiReader(bytes.NewReader(head), &exactReader{r: body, left: size}, bytes.NewReader(tail))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+c.rootPath(folderPath(folder)+"/upload"),
			io.NopCloser(rd))
		if err != nil {
			return nil, err
		}
		req.ContentLength = int64(len(head)) + size + int64(len(tail))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", "application/json")
		return req, nil
	}
	var out object
	err := c.hx.Do(ctx, op, false, build, c.decode(&out))
	if err == nil {
		if out.Type != "file" || out.ID <= 0 || out.RevisionID <= 0 {
			return object{}, fmt.Errorf("%s: the answer is not a file object", op)
		}
		return out, nil
	}
	err = apiErr(op, err)
	var ae *APIError
	lost := httpx.IsTransport(err) || (errors.As(err, &ae) && ae.Code == "name_conflict" && attempts > 1)
	if !lost || ctx.Err() != nil {
		return object{}, err
	}
	_, now, lerr := c.lookupName(ctx, dir, name)
	if lerr == nil && now != nil && now.Type == "file" && int64(now.Size) == size &&
		(before == nil || now.RevisionID != before.RevisionID) {
		c.lg.Info("upload answer lost; the stored file is ours", zap.String("op", op))
		return *now, nil
	}
	return object{}, err
}

// uploadFraming is the multipart body around the file's bytes: the head (the `overwrite` field when asked for,
// first because a server decides on it before the file arrives, then the part header of `file`) and the closing
// boundary. The name goes as a plain quoted filename= in UTF-8, as browsers and the public clients send it: RFC
// 7578 forbids filename*= in form-data, and stacks that follow it would see no file at all.
func uploadFraming(name string, overwrite bool) (head, tail []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if overwrite {
		if err := mw.WriteField("overwrite", "true"); err != nil {
			return nil, nil, "", err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+quoteEscaper.Replace(name)+`"`)
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", err
	}
	n := buf.Len()
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	all := buf.Bytes()
	return all[:n:n], all[n:], mw.FormDataContentType(), nil
}

// quoteEscaper escapes a quoted-string the way Go's multipart.CreateFormFile does.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

// exactReader passes exactly left bytes of r on and fails if r ends early: the Content-Length is promised.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > e.left {
		b = b[:e.left]
	}
	n, err := e.r.Read(b)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("body ended %d bytes early (file changed during the upload?)", e.left)
	}
	if e.left == 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// Mkdir creates the folder p; an existing folder is success (so is one a lost answer already created).
func (c *Client) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := checkPath("mkdir", p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return c.Stat(ctx, p)
	}
	if c.readOnly() {
		return remote.Entry{}, c.errReadOnly("mkdir", p)
	}
	parent, old, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	if old != nil {
		if !old.isFolder() {
			return remote.Entry{}, fmt.Errorf("mkdir %s: a file has that name: %w", p.Quoted(), remote.ErrConflict)
		}
		return entryOf(old, p), nil
	}
	var out object
	err = c.call(ctx, "create_folder "+p.Quoted(), http.MethodPost, c.rootPath(folderPath(parent)+"/create_folder"),
		url.Values{"name": {p.Base()}}, true, c.decode(&out))
	c.markDirty(parent)
	if errors.Is(err, remote.ErrConflict) {
		// Taken meanwhile, or our own lost answer: adopt a folder, refuse a file.
		if _, now, lerr := c.lookup(ctx, p); lerr == nil && now != nil && now.isFolder() {
			c.cacheDir(c.abs(p), int64(now.ID))
			return entryOf(now, p), nil
		}
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	c.cacheDir(c.abs(p), int64(out.ID))
	return entryOf(&out, p), nil
}

// Move renames and/or moves from to to (a server-side move that keeps the id). The target must be free:
// rename and move refuse a taken name with name_conflict anyway, which is ErrConflict.
func (c *Client) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if err := checkPath("move", from); err != nil {
		return remote.Entry{}, err
	}
	if err := checkPath("move", to); err != nil {
		return remote.Entry{}, err
	}
	if from == remote.Root || to == remote.Root || to.Within(from) && from != to {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	if c.readOnly() {
		return remote.Entry{}, c.errReadOnly("move", from)
	}
	srcParent, src, err := c.lookup(ctx, from)
	if err == nil && src == nil {
		err = remote.ErrNotFound
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s: %w", from.Quoted(), err)
	}
	if pre.Rev != "" && (src.isFolder() || strconv.FormatInt(int64(src.RevisionID), 10) != pre.Rev) {
		return remote.Entry{}, fmt.Errorf("move %s: changed since revision %s: %w", from.Quoted(), pre.Rev, remote.ErrConflict)
	}
	dstParent, dst, err := c.lookup(ctx, to)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
	}
	if dst != nil && dst.ID != src.ID {
		return remote.Entry{}, fmt.Errorf("move %s: %s exists: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	kind := "/"
	if src.isFolder() {
		kind = "/folder/"
	}
	item := c.rootPath(kind + strconv.FormatInt(int64(src.ID), 10))
	defer c.markDirty(srcParent, dstParent)
	if src.isFolder() {
		defer c.forgetDirs(c.abs(from))
	}
	out := *src
	if srcParent != dstParent {
		dest := ""
		if dstParent != 0 {
			dest = strconv.FormatInt(dstParent, 10) // the top level is an empty to_folder_id, never 0
		}
		err := c.call(ctx, "move "+from.Quoted(), http.MethodPost, item+"/move", url.Values{"to_folder_id": {dest}},
			true, c.decode(&out))
		if err != nil {
			return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
		}
	}
	if to.Base() != from.Base() {
		err := c.call(ctx, "rename "+from.Quoted(), http.MethodPost, item+"/rename", url.Values{"name": {to.Base()}},
			true, c.decode(&out))
		if err != nil {
			if srcParent != dstParent { // put it back where it was, so a failed move leaves nothing half done
				back := ""
				if srcParent != 0 {
					back = strconv.FormatInt(srcParent, 10)
				}
				if berr := c.call(ctx, "move back", http.MethodPost, item+"/move", url.Values{"to_folder_id": {back}},
					true, nil); berr != nil {
					c.lg.Warn("could not undo a half-done move", zap.String("path", from.Quoted()), zap.Error(berr))
				}
			}
			return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
		}
	}
	return entryOf(&out, to), nil
}

// Delete moves p to the vBoxx trash. A folder must be empty: the server's folder delete is recursive, so
// emptiness is checked on a fresh listing first (the window between check and delete is one request).
func (c *Client) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	if err := checkPath("delete", p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("delete: refusing to delete the pair root %s", c.spec)
	}
	if c.readOnly() {
		return c.errReadOnly("delete", p)
	}
	parent, it, err := c.lookup(ctx, p)
	if err == nil && it == nil {
		err = remote.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	path := c.rootPath("/" + strconv.FormatInt(int64(it.ID), 10))
	if it.isFolder() {
		lst, _, err := c.list(ctx, int64(it.ID), "")
		if err != nil {
			return fmt.Errorf("delete %s: %w", p.Quoted(), err)
		}
		if len(lst.Children) > 0 {
			return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrNotEmpty)
		}
		path = c.rootPath(folderPath(int64(it.ID)))
		defer c.forgetDirs(c.abs(p))
	} else if pre.Rev != "" && strconv.FormatInt(int64(it.RevisionID), 10) != pre.Rev {
		return fmt.Errorf("delete %s: changed since revision %s: %w", p.Quoted(), pre.Rev, remote.ErrConflict)
	}
	err = c.call(ctx, "delete "+p.Quoted(), http.MethodPost, path+"/delete", nil, true, nil)
	c.markDirty(parent)
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	return nil
}

// CheckRoot reports a deleted vBoxx root (410 root_deleted), a lost root (403) or a missing pair folder as
// remote.ErrRootMissing: the pair stops and nothing is deleted locally.
func (c *Client) CheckRoot(ctx context.Context) error {
	_, _, err := c.statBase(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, remote.ErrRootMissing), errors.Is(err, remote.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", c.spec, remote.ErrRootMissing, err)
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return fmt.Errorf("%s: %w: access to the root was lost: %w", c.spec, remote.ErrRootMissing, err)
	}
	return err
}

// InitRoot creates the pair folder and its missing parents inside the vBoxx root. Roots themselves cannot be
// created through the API (an administrator makes them), so a missing root stays ErrRootMissing. No marker is
// written: a vanished cloud root shows as root_deleted or a missing folder, which CheckRoot reports.
func (c *Client) InitRoot(ctx context.Context) error {
	parent := int64(0)
	cur := "/"
	for _, name := range strings.Split(strings.Trim(c.basePath, "/"), "/") {
		if name == "" {
			break
		}
		next := joinAbs(cur, name)
		id, _, err := c.listDir(ctx, next)
		if errors.Is(err, remote.ErrNotFound) {
			var out object
			err = c.call(ctx, "create_folder "+remote.Escape(next), http.MethodPost,
				c.rootPath(folderPath(parent)+"/create_folder"), url.Values{"name": {name}}, true, c.decode(&out))
			if errors.Is(err, remote.ErrConflict) {
				id, _, err = c.listDir(ctx, next)
			} else if err == nil {
				id = int64(out.ID)
				c.cacheDir(next, id)
			}
		}
		if err != nil {
			if errors.Is(err, remote.ErrRootMissing) {
				return fmt.Errorf("%s: %w", c.spec, err)
			}
			return fmt.Errorf("create %s in %s: %w", remote.Escape(next), c.spec, err)
		}
		parent, cur = id, next
	}
	return nil
}
