// Package verizon is the Verizon Personal Cloud Storage provider: a remote.Remote over the /cloud/1 API with OAuth2
// refresh serialised across processes (refresh.go), a change feed from fullview etags and complete listings
// compared with the previous one (cursor.go), writes checked by a metadata read just before and the replaced
// version just after (the intent's safe/version are undocumented), safe=true moves, downloads verified against the
// listed SHA-256, and the authorization-code login with the user's own app key. PROVIDER.md lists what is
// documented and what is a reading of ours.
package verizon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// DefaultEndpoint is the production base URL, /cloud/1 included (§1).
const DefaultEndpoint = "https://api.cloudapi.verizon.com/cloud/1"

// DefaultVirtualFolder is where a root without one would go; the SDK's default everywhere.
const DefaultVirtualFolder = "VZMOBILE"

// Config builds a Client. Zero values take the defaults shown.
type Config struct {
	Endpoint string // default DefaultEndpoint
	// Root is the absolute remote folder of the pair, at least one level below a virtual folder
	// ("/VZMOBILE/tandem").
	Root   string
	Auth   httpx.Authorizer
	CAFile string       // extra trusted CA (PEM); TLS verification is never turned off
	HTTP   *http.Client // default: httpx's, with CAFile
	Clock  clockwork.Clock
	// ChunkThreshold: files at least this large use the chunked upload (default 104,857,600, as the SDK);
	// ChunkSize is the chunk size then (default 8 MiB).
	ChunkThreshold int64
	ChunkSize      int64
	// IdleTimeout ends a download read that makes no progress for this long; it is resumed with a Range
	// request (default 60 s). A total timeout would kill large transfers, so there is none.
	IdleTimeout time.Duration
	// MaxResumes bounds the resumptions of one download (default 5).
	MaxResumes  int
	MaxAttempts int           // per request, see httpx (default 5)
	BaseDelay   time.Duration // first backoff (default 250 ms)
	// SpoolDir is where Put spools a body that cannot be re-read (default os.TempDir()).
	SpoolDir string
}

// Client is a remote.Remote rooted at Config.Root. Safe for concurrent use.
type Client struct {
	lg       *zap.Logger
	clk      clockwork.Clock
	cfg      Config
	hc       *httpx.Client
	endpoint *url.URL
	root     string // absolute, no trailing slash
	vf       string

	mu   sync.Mutex
	snap *snapshot // the full listing Head took, for the Walk that follows it
	last *answer   // the last Changes that took a complete listing, for a second call from the same cursor
	// writes counts the starts and ends of this client's writes: an answer saved across one is not reused, so
	// the engine's feed read after its own writes always looks at the server.
	writes  atomic.Uint64
	skipped []string // names skipped in the last listing, for status

	// Readings of undocumented behaviour, detected once and remembered (PROVIDER.md).
	moveIntoFolder atomic.Bool // fops/move takes the destination folder, not the full new path
	plainIntent    atomic.Bool // the intent refused safe/version/modificationDate with a 400
	wholeChunkSum  atomic.Bool // each chunk carries the whole file's checksum
}

// snapshot is the listing answered together with the etag of a Head.
type snapshot struct {
	list *listing
	at   time.Time
}

// snapshotTTL bounds how long a Head's listing may stand in for a Walk: the engine walks right after Head.
const snapshotTTL = time.Minute

// answer is a Changes result that cost a complete listing. The daemon's poller reads the feed from the stored
// cursor only to learn that something changed, and the pass it starts then reads from the same cursor: the
// second call gets the same batch instead of a second complete listing. A batch from an older listing is still
// a correct answer (its Next is that listing's etag, and the caller's next Changes sees what came after), so
// the only bound needed is answerTTL.
type answer struct {
	from   remote.Cursor
	batch  remote.Batch
	at     time.Time
	writes uint64 // Client.writes when the listing was asked for
}

// wrote marks the start and the end of a write (call as defer c.wrote()()).
func (c *Client) wrote() func() {
	c.writes.Add(1)
	return func() { c.writes.Add(1) }
}

const answerTTL = 30 * time.Second

// ValidateRoot checks a remote root: absolute, every component a valid name, below a virtual folder.
func ValidateRoot(root string) (string, error) {
	root = strings.TrimSuffix(root, "/")
	if !strings.HasPrefix(root, "/") {
		return "", fmt.Errorf("verizon root %q: must be an absolute path such as /%s/tandem", root, DefaultVirtualFolder)
	}
	parts := strings.Split(root[1:], "/")
	if len(parts) < 2 {
		return "", fmt.Errorf("verizon root %q: must be a folder below a virtual folder, such as /%s/tandem",
			root, DefaultVirtualFolder)
	}
	for _, p := range parts {
		if err := remote.ValidName(p); err != nil {
			return "", fmt.Errorf("verizon root %q: %w", root, err)
		}
	}
	return root, nil
}

// checkEndpoint allows https, and plain http only on a loopback address (an emulator without TLS).
func checkEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("endpoint %q: must be an https URL (plain http only on loopback)", raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("endpoint %q: must not carry credentials or a query", raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New builds a Client from a Config (Open is the registry's entry point).
func New(lg *zap.Logger, cfg Config) (*Client, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.ChunkThreshold == 0 {
		// failpoint.Int: crash tests send tiny files through the chunked upload (the default build: as the SDK).
		cfg.ChunkThreshold = failpoint.Int("verizon.chunkThreshold", 104857600)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = failpoint.Int("verizon.chunkSize", 8<<20)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.MaxResumes == 0 {
		cfg.MaxResumes = 5
	}
	ep, err := checkEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	root, err := ValidateRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	hc, err := httpx.New(httpx.Options{Name: "verizon", HTTP: cfg.HTTP, CAFile: cfg.CAFile, Auth: cfg.Auth, Clock: cfg.Clock,
		Logger: lg, MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay,
		// A fullview of a whole virtual folder is one JSON document; 10,000 files take about 4 MB.
		MaxBody: 256 << 20})
	if err != nil {
		return nil, err
	}
	return &Client{lg: lg.Named("verizon").With(zap.String("root", root)), clk: cfg.Clock, cfg: cfg, hc: hc,
		endpoint: ep, root: root, vf: strings.Split(root[1:], "/")[0]}, nil
}

func (c *Client) String() string { return "verizon:" + c.root }

// Capabilities: listings carry SHA-256 and contentToken; move and rename are server-side and keep the token;
// deletes go to the trash; fullview etags are a durable feed (no long poll).
func (c *Client) Capabilities() remote.Capabilities {
	// MTimeStep 0: the server keeps no user mtime (fileEntry).
	return remote.Capabilities{Hashes: []string{"sha256"}, ServerMove: true, Trash: true, Feed: true, Parallel: 4}
}

// Skipped lists the server items the last listing left out because their names cannot be Paths, escaped for
// printing.
func (c *Client) Skipped() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.skipped...)
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.HTTP().CloseIdleConnections()
	return nil
}

// ---- requests ----

// url builds endpoint + path (already escaped) + query.
func (c *Client) url(escPath string, q url.Values) string {
	u := *c.endpoint
	u.RawPath = c.endpoint.EscapedPath() + escPath
	u.Path, _ = url.PathUnescape(u.RawPath)
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// sameOrigin refuses a server-supplied URL that would take our token to another scheme or host.
func (c *Client) sameOrigin(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server sent a bad URL: %w", err)
	}
	if u.Scheme != c.endpoint.Scheme || u.Host != c.endpoint.Host || u.User != nil {
		return nil, fmt.Errorf("server sent a URL for %s://%s; only %s://%s is trusted",
			remote.Escape(u.Scheme), remote.Escape(u.Host), c.endpoint.Scheme, c.endpoint.Host)
	}
	return u, nil
}

// call runs one JSON API request. body, when set, is JSON; out receives a 2xx answer.
func (c *Client) call(ctx context.Context, op, method, u string, body any, idempotent bool, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	err := c.hc.Do(ctx, op, idempotent, func(ctx context.Context) (*http.Request, error) {
		var rd io.Reader
		if data != nil {
			rd = bytes.NewReader(data)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		if data != nil {
			req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		}
		req.Header.Set("Accept", "application/json")
		return req, nil
	}, func(resp *http.Response) error {
		if out == nil {
			return nil
		}
		return c.hc.DecodeJSON(resp, out)
	})
	return apiError(op, err)
}

// ---- metadata ----

// stat asks /metadata for abs. A folder answer carries at most one child: enough to tell empty from not.
func (c *Client) stat(ctx context.Context, p remote.Path) (remote.Entry, bool, error) {
	abs := absPath(c.root, p)
	var ma metadataAnswer
	q := url.Values{"start": {"1"}, "count": {"1"}}
	if err := c.call(ctx, "metadata", http.MethodGet, c.url("/metadata"+escapePath(abs), q), nil, true, &ma); err != nil {
		return remote.Entry{}, false, fmt.Errorf("stat %s: %w", p.Quoted(), err)
	}
	switch {
	case ma.File != nil:
		got, _, err := itemPath(c.root, ma.File.ParentPath, ma.File.Name)
		if err != nil || got != p {
			return remote.Entry{}, false, fmt.Errorf("stat %s: the server answered for another item (%s)",
				p.Quoted(), remote.Escape(ma.File.ParentPath+"/"+ma.File.Name))
		}
		if why := sane(ma.File); why != "" {
			return remote.Entry{}, false, fmt.Errorf("stat %s: unusable answer: %s", p.Quoted(), why)
		}
		return fileEntry(p, ma.File), false, nil
	case ma.Folder != nil:
		return folderEntry(p, &ma.Folder.cloudFolder), len(ma.Folder.File)+len(ma.Folder.Folder) > 0, nil
	}
	return remote.Entry{}, false, fmt.Errorf("stat %s: answer holds neither file nor folder", p.Quoted())
}

// Stat implements remote.Remote.
func (c *Client) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := check(p); err != nil {
		return remote.Entry{}, err
	}
	e, _, err := c.stat(ctx, p)
	return e, err
}

// check refuses a Path that ParsePath would not build: the engine never sends one, a bug or a hostile name
// might.
func check(p remote.Path) error {
	_, err := remote.ParsePath(string(p))
	return err
}

// HashOf implements remote.Hasher: the listing's SHA-256 costs one metadata call.
func (c *Client) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	if algo != "sha256" {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("verizon offers sha256, not %q", algo)
	}
	e, err := c.Stat(ctx, p)
	if err != nil {
		return remote.Hash{}, e, err
	}
	if e.Dir {
		return remote.Hash{}, e, fmt.Errorf("hash %s: is a folder", p.Quoted())
	}
	return e.Hash, e, nil
}

// CheckRoot implements remote.RootChecker: a root that answers 404/410, or is a file, is a safety stop.
func (c *Client) CheckRoot(ctx context.Context) error {
	e, _, err := c.stat(ctx, remote.Root)
	if errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("%w: %s is gone on the server", remote.ErrRootMissing, c)
	}
	if err != nil {
		return err
	}
	if !e.Dir {
		return fmt.Errorf("%w: %s is a file on the server", remote.ErrRootMissing, c)
	}
	return nil
}

// InitRoot implements remote.RootChecker: it creates the root and any missing folder above it (the virtual
// folder itself must exist: it cannot be created by a data call).
func (c *Client) InitRoot(ctx context.Context) error {
	defer c.wrote()()
	parts := strings.Split(c.root[1:], "/")
	parent := "/" + parts[0]
	for _, name := range parts[1:] {
		if err := c.createFolder(ctx, parent, name); err != nil {
			return fmt.Errorf("create root %s: %w", c, err)
		}
		parent += "/" + name
	}
	return nil
}

// ---- folders, moves, deletes ----

// Mkdir implements remote.Remote with override=modify, so an existing folder is success (§10.1).
func (c *Client) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	defer c.wrote()()
	if err := check(p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return c.Stat(ctx, p)
	}
	if err := c.createFolder(ctx, absPath(c.root, p.Dir()), p.Base()); err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	return remote.Entry{Path: p, Dir: true}, nil
}

// createFolder makes parent/name, or finds it there. No override is sent: what "modify" does on a taken name is
// not documented (the existing folder, or a new one under a free name), so a taken name is a 409 and a look
// settles it. The answer is verified: a folder made under another name (a server that renames on conflict
// anyway) is a stray of ours, removed again, and the existing folder is used.
func (c *Client) createFolder(ctx context.Context, parent, name string) error {
	var out struct {
		Folder *cloudFolder `json:"folder"`
	}
	err := c.call(ctx, "fops/createfolder", http.MethodPost, c.url("/fops/createfolder", nil),
		map[string]string{"path": parent, "name": name}, true, &out)
	if errors.Is(err, remote.ErrConflict) {
		return c.isFolder(ctx, parent+"/"+name, err)
	}
	if err != nil {
		return err
	}
	if out.Folder != nil && (out.Folder.ParentPath != parent || out.Folder.Name != name) {
		got := out.Folder.ParentPath + "/" + out.Folder.Name
		c.lg.Warn("the server made the folder under another name; removing that copy", zap.String("want", parent+"/"+name),
			zap.String("got", remote.Escape(got)))
		if strings.HasPrefix(got, c.root+"/") || got == c.root {
			q := url.Values{"path": {got}, "purge": {"false"}}
			_ = c.call(ctx, "fops/delete", http.MethodDelete, c.url("/fops/delete", q), nil, true, nil)
		}
		return c.isFolder(ctx, parent+"/"+name, fmt.Errorf("%w: the server made %s instead", remote.ErrConflict, remote.Escape(got)))
	}
	return nil
}

// isFolder is nil when abs is a folder now, else taken.
func (c *Client) isFolder(ctx context.Context, abs string, taken error) error {
	var ma metadataAnswer
	q := url.Values{"start": {"1"}, "count": {"1"}}
	if err := c.call(ctx, "metadata", http.MethodGet, c.url("/metadata"+escapePath(abs), q), nil, true, &ma); err != nil {
		return fmt.Errorf("%w (and looking at it: %w)", taken, err)
	}
	if ma.Folder == nil {
		return taken
	}
	return nil
}

// Move implements remote.Remote: rename when the parent stays, move otherwise, always safe=true so an existing
// target is a 409 (ErrConflict) and never overwritten. The API has no precondition on the source, so a Rev is
// re-checked just before (the remaining window is accepted, DESIGN "Transfers").
func (c *Client) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	defer c.wrote()()
	if err := check(from); err != nil {
		return remote.Entry{}, err
	}
	if err := check(to); err != nil {
		return remote.Entry{}, err
	}
	if from == remote.Root || to == remote.Root {
		return remote.Entry{}, fmt.Errorf("move %s to %s: the root cannot move", from.Quoted(), to.Quoted())
	}
	src, _, err := c.stat(ctx, from)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move: %w", err)
	}
	if pre.Rev != "" && !src.Dir && src.Rev != pre.Rev {
		return remote.Entry{}, fmt.Errorf("move %s: %w: revision %s, the plan saw %s", from.Quoted(),
			remote.ErrConflict, src.Rev, pre.Rev)
	}
	if from.Dir() == to.Dir() {
		return c.relocate(ctx, "fops/rename", from, to, absPath(c.root, to), src)
	}
	// What /fops/move's target means is not documented: the full new path, or the folder the item goes into.
	// Under the folder reading a full path names a folder that does not exist (404), so the first move tells
	// which one the server speaks; the answer is remembered. The target must be free: under the folder reading
	// an existing folder there would swallow the item.
	if _, _, err := c.stat(ctx, to); err == nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w: the target exists", from.Quoted(), to.Quoted(), remote.ErrConflict)
	} else if !errors.Is(err, remote.ErrNotFound) {
		return remote.Entry{}, fmt.Errorf("move: %w", err)
	}
	if !c.moveIntoFolder.Load() {
		e, err := c.relocate(ctx, "fops/move", from, to, absPath(c.root, to), src)
		if !errors.Is(err, remote.ErrNotFound) {
			return e, err
		}
		// A 404 with the source still in place and the target's folder present: the server read the target as
		// a folder.
		if cur, _, serr := c.stat(ctx, from); serr != nil || cur.Dir != src.Dir || cur.ID != src.ID {
			return e, err
		}
		if to.Dir() != remote.Root {
			if pe, _, perr := c.stat(ctx, to.Dir()); perr != nil || !pe.Dir {
				return e, err
			}
		}
		c.lg.Info("fops/move takes the destination folder on this server; moving in two steps from now on")
		c.moveIntoFolder.Store(true)
	}
	mid, err := to.Dir().Join(from.Base())
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s: %w", from.Quoted(), err)
	}
	if mid != to {
		if _, _, err := c.stat(ctx, mid); err == nil {
			// The server keeps the name while moving and that name is taken in the target folder (another file
			// of the same name lives there): rename the item in its own folder first, then move it.
			return c.renameThenMove(ctx, from, to, src)
		} else if !errors.Is(err, remote.ErrNotFound) {
			return remote.Entry{}, fmt.Errorf("move: %w", err)
		}
	}
	e, err := c.relocate(ctx, "fops/move", from, mid, absPath(c.root, to.Dir()), src)
	if err != nil || mid == to {
		return e, err
	}
	return c.relocate(ctx, "fops/rename", mid, to, absPath(c.root, to), e)
}

// renameThenMove moves from to to on a server that keeps the name while moving, when from's name is taken in
// to's folder: the item is renamed in its own folder to its final name (or, when that is taken there too, to a
// visible stand-in such as "m.txt (moving 3f2a9c)"), moved, and renamed again if a stand-in was used. Each
// step is one the change feed reports, so a crash between them leaves the item under a visible name that the
// next pass sees as a remote rename; never under a name tandem hides.
func (c *Client) renameThenMove(ctx context.Context, from, to remote.Path, src remote.Entry) (remote.Entry, error) {
	step, err := c.freeName(ctx, from.Dir(), to.Base())
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
	}
	e, err := c.relocate(ctx, "fops/rename", from, step, absPath(c.root, step), src)
	if err != nil {
		return e, err
	}
	mid, err := to.Dir().Join(step.Base())
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s: %w", step.Quoted(), err)
	}
	if mid != to {
		if _, _, err := c.stat(ctx, mid); err == nil {
			return remote.Entry{}, fmt.Errorf("move %s to %s: %w: %s is taken in the target folder", step.Quoted(),
				to.Quoted(), remote.ErrConflict, mid.Quoted())
		}
	}
	if e, err = c.relocate(ctx, "fops/move", step, mid, absPath(c.root, to.Dir()), e); err != nil || mid == to {
		return e, err
	}
	return c.relocate(ctx, "fops/rename", mid, to, absPath(c.root, to), e)
}

// freeName is dir/name when nothing is there, else a free dir/"name (moving XXXXXX)".
func (c *Client) freeName(ctx context.Context, dir remote.Path, name string) (remote.Path, error) {
	for i := 0; ; i++ {
		cand := name
		if i > 0 {
			var b [3]byte
			_, _ = rand.Read(b[:])
			cand = fmt.Sprintf("%s (moving %x)", name, b)
		}
		p, err := dir.Join(cand)
		if err != nil {
			return "", err
		}
		_, _, err = c.stat(ctx, p)
		switch {
		case errors.Is(err, remote.ErrNotFound):
			return p, nil
		case err != nil:
			return "", err
		case i >= 5:
			return "", fmt.Errorf("%w: no free name for %s in %s", remote.ErrConflict, name, dir.Quoted())
		}
	}
}

// relocate runs one move or rename of from (last seen as src) with target as the server reads it, and checks
// that the item is at want afterwards.
func (c *Client) relocate(ctx context.Context, op string, from, want remote.Path, target string, src remote.Entry) (remote.Entry, error) {
	var out struct {
		File   *cloudFile   `json:"file"`
		Folder *cloudFolder `json:"folder"`
	}
	body := map[string]any{"src": absPath(c.root, from), "target": target, "safe": true}
	err := c.call(ctx, op, http.MethodPost, c.url("/"+op, nil), body, true, &out)
	if errors.Is(err, remote.ErrNotFound) {
		// A retry after a lost answer finds the source gone: the move happened if the target is what we moved.
		if dst, _, serr := c.stat(ctx, want); serr == nil && dst.Dir == src.Dir && (dst.Dir || dst.ID == src.ID) {
			return dst, nil
		}
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), want.Quoted(), err)
	}
	var parent, name string
	switch {
	case out.File != nil:
		if why := sane(out.File); why != "" {
			return remote.Entry{}, fmt.Errorf("move %s: unusable answer: %s", from.Quoted(), why)
		}
		parent, name = out.File.ParentPath, out.File.Name
	case out.Folder != nil:
		parent, name = out.Folder.ParentPath, out.Folder.Name
	default:
		return c.Stat(ctx, want)
	}
	if got, _, perr := itemPath(c.root, parent, name); perr != nil || got != want {
		return remote.Entry{}, fmt.Errorf("move %s to %s: the server put it at %s", from.Quoted(), want.Quoted(),
			remote.Escape(parent+"/"+name))
	}
	if out.File != nil {
		return fileEntry(want, out.File), nil
	}
	return folderEntry(want, out.Folder), nil
}

// Delete implements remote.Remote, to the trash (purge=false). The API's delete is recursive and has no
// precondition, so both checks happen in the metadata call immediately before it: the file's revision, and a
// folder's emptiness (ErrNotEmpty). A child created in the window in between goes to the trash with the folder,
// never lost.
func (c *Client) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	defer c.wrote()()
	if err := check(p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("delete: %w: the root is never deleted", remote.ErrConflict)
	}
	e, nonEmpty, err := c.stat(ctx, p)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	switch {
	case e.Dir && nonEmpty:
		return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrNotEmpty)
	case !e.Dir && pre.Rev != "" && e.Rev != pre.Rev:
		return fmt.Errorf("delete %s: %w: revision %s, the plan saw %s", p.Quoted(), remote.ErrConflict, e.Rev, pre.Rev)
	}
	q := url.Values{"path": {absPath(c.root, p)}, "purge": {"false"}}
	if err := c.call(ctx, "fops/delete", http.MethodDelete, c.url("/fops/delete", q), nil, true, nil); err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	return nil
}

// ---- listing and feed ----

// fullview fetches a full listing (etag "") or the delta since etag. changed is false on 412 (nothing new).
func (c *Client) fullview(ctx context.Context, etag string) (l *listing, next string, changed bool, err error) {
	u := c.url("/fullview", url.Values{"virtualfolder": {c.vf}})
	var body []byte
	status := 0
	err = c.hc.Do(ctx, "fullview", true, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil && etag != "" {
			req.Header.Set("X-Header-ETag", etag)
		}
		return req, err
	}, func(resp *http.Response) error {
		status = resp.StatusCode
		if status == http.StatusResetContent {
			return nil
		}
		next = resp.Header.Get("X-Header-ETag")
		var raw json.RawMessage
		if err := c.hc.DecodeJSON(resp, &raw); err != nil {
			return err
		}
		if next == "" {
			return httpx.Retry(errors.New("fullview answer without X-Header-ETag"), 0)
		}
		body = raw
		return nil
	})
	var se *httpx.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusPreconditionFailed && etag != "":
		return nil, etag, false, nil // keep the old etag (§7 client rule)
	case err != nil:
		return nil, "", false, apiError("fullview", err)
	case status == http.StatusResetContent:
		return nil, "", false, fmt.Errorf("fullview of %s: %w: the server answered OutOfSync (205)", c, remote.ErrOutOfSync)
	}
	if l, err = decodeFullview(body, c.root); err != nil {
		return nil, "", false, err
	}
	for _, s := range l.skipped {
		c.lg.Warn("skipped a server item", zap.String("item", s))
	}
	c.mu.Lock()
	c.skipped = l.skipped
	c.mu.Unlock()
	return l, next, true, nil
}

// Head implements remote.Remote: a full fullview, whose etag is "now", and the listing itself in the cursor
// (cursor.go). The listing is also kept for the Walk that follows, which then sees exactly the state the cursor
// starts from (no gap, nothing twice).
func (c *Client) Head(ctx context.Context) (remote.Cursor, error) {
	l, etag, _, err := c.fullview(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	c.mu.Lock()
	c.snap = &snapshot{list: l, at: c.clk.Now()}
	c.mu.Unlock()
	return encodeCursor(etag, l), nil
}

// Walk implements remote.Remote from one fullview (parents first, implied folders included). A root that is
// neither listed nor implied is missing, never empty: that is ErrRootMissing, not a listing without entries.
func (c *Client) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	if err := check(dir); err != nil {
		return err
	}
	c.mu.Lock()
	snap := c.snap
	c.snap = nil // one Walk per Head: a later Walk must see later changes
	c.mu.Unlock()
	var l *listing
	if snap != nil && dir == remote.Root && c.clk.Since(snap.at) < snapshotTTL {
		l = snap.list
	} else {
		var err error
		if l, _, _, err = c.fullview(ctx, ""); err != nil {
			return fmt.Errorf("walk %s: %w", c, err)
		}
	}
	if l.rootGone || !l.rootSeen {
		return fmt.Errorf("walk %s: %w: the root is not in the listing", c, remote.ErrRootMissing)
	}
	if dir != remote.Root {
		if e, ok := l.entries[dir]; !ok || !e.Dir {
			return fmt.Errorf("walk %s: %w", dir.Quoted(), remote.ErrNotFound)
		}
	}
	for _, e := range l.sorted(dir) {
		if err := fn(e); err != nil {
			return err
		}
	}
	for _, e := range l.skips {
		if dir == remote.Root || strings.HasPrefix(string(e.Path), string(dir)+"/") {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Changes implements remote.Remote: the fullview delta since the cursor's etag tells whether anything changed
// (412: nothing, same cursor; 205: ErrOutOfSync); when something did, a complete fullview is compared with the
// listing the cursor carries (cursor.go says why the delta's own content is not enough). A delta or listing that
// deletes the root itself is a safety stop, not a mass delete.
func (c *Client) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	c.mu.Lock()
	c.snap = nil // a Walk after Changes must see the state after them
	gen := c.writes.Load()
	if a := c.last; a != nil && a.writes == gen && bytes.Equal(a.from, cur) && c.clk.Since(a.at) < answerTTL {
		c.mu.Unlock()
		return remote.Batch{Changes: append([]remote.Change(nil), a.batch.Changes...), Next: a.batch.Next}, nil
	}
	c.mu.Unlock()
	etag, old, err := decodeCursor(cur)
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes of %s: %w: %w", c, remote.ErrOutOfSync, err)
	}
	delta, _, changed, err := c.fullview(ctx, etag)
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes: %w", err)
	}
	if !changed {
		return remote.Batch{Next: cur}, nil
	}
	if delta.rootGone {
		return remote.Batch{}, fmt.Errorf("changes of %s: %w: the server reports the root deleted", c, remote.ErrRootMissing)
	}
	now, next, _, err := c.fullview(ctx, "")
	if err != nil {
		return remote.Batch{}, fmt.Errorf("changes: %w", err)
	}
	if now.rootGone || !now.rootSeen {
		return remote.Batch{}, fmt.Errorf("changes of %s: %w: the root is not in the listing", c, remote.ErrRootMissing)
	}
	b := remote.Batch{Changes: diff(old, now), Next: encodeCursor(next, now)}
	out := remote.Batch{Changes: append([]remote.Change(nil), b.Changes...), Next: b.Next}
	c.mu.Lock()
	c.last = &answer{from: append(remote.Cursor(nil), cur...), batch: b, at: c.clk.Now(), writes: gen}
	c.mu.Unlock()
	return out, nil
}

// ---- helpers ----

func isoMS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var _ remote.Remote = (*Client)(nil)
var _ remote.Hasher = (*Client)(nil)
var _ remote.RootChecker = (*Client)(nil)
