// Package pcloud is the pCloud provider: a remote.Remote over pCloud's HTTP JSON API
// (summarised with our readings in PROVIDER.md), with the `diff` change feed, chunked resumable uploads, checksum-verified downloads
// and the OAuth2 login. Everything is addressed by folderid/fileid (never by path, as the reference decides);
// paths are resolved through an id index kept current by `diff` (tree.go).
package pcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// Default API hosts per region (§1.1).
const (
	USEndpoint = "https://api.pcloud.com"
	EUEndpoint = "https://eapi.pcloud.com"
)

// Options configure a Client. The zero value (plus a Token) talks to the US API with the defaults below.
type Options struct {
	Endpoint string        // API base URL; default USEndpoint. Plain http only to a loopback host (an emulator)
	Token    remote.Secret // OAuth access token; sent only in the Authorization header
	CAFile   string        // extra trusted CA certificates (PEM)
	// EU: the account lives in the EU region, where checksumfile offers sha256 (and no md5). Open sets it from
	// the login's locationid or an eapi.pcloud.com endpoint.
	EU    bool
	Clock clockwork.Clock
	// ChunkThreshold: files larger than this use the chunked upload_create/write/save (default 16 MiB);
	// ChunkSize is the size of one upload_write (default 8 MiB). Both bound the memory of one upload.
	ChunkThreshold int64
	ChunkSize      int64
	PollTimeout    time.Duration // client-side limit of one diff?block=1 (default 90 s, §6.5)
	MaxAttempts    int           // per request (default 5)
	BaseDelay      time.Duration // first backoff (default 250 ms)
	MaxDelay       time.Duration // backoff cap (default 30 s)
	// DiffLimit is the `limit` of one diff request (default 2000).
	DiffLimit int
	// MaxIndex bounds the id index (items); when it grows beyond, it is dropped and rebuilt lazily. Default 500k.
	MaxIndex int
	// OnSkip is told about every remote entry left out because tandem cannot hold its name (remote.OpenOptions).
	OnSkip func(path, reason string)
	// HTTP replaces the transport (tests); the long poll still gets a transport of its own.
	HTTP *http.Client
}

// Client is a pCloud folder as a remote.Remote. Safe for concurrent use.
type Client struct {
	lg        *zap.Logger
	clk       clockwork.Clock
	o         Options
	base      *url.URL
	rootSpec  string        // "/Sync"
	rootNames []string      // its components below the account root
	api       *httpx.Client // idempotent calls: retried with backoff
	mut       *httpx.Client // mutations: one attempt each; mutate() checks the effect before retrying
	dl        *httpx.Client // content servers: no credentials (the link is one)
	poll      *httpx.Client // diff?block=1 on its own connections (§6.5)

	rootMu    sync.Mutex
	rootID    uint64
	rootKnown bool

	ixMu   sync.Mutex
	ix     *tree  // nil until the root is known
	ixDiff uint64 // the diffid ix reflects
	ixInit bool   // ixDiff is set

	syncMu      sync.Mutex
	syncTicket  atomic.Uint64
	syncStarted uint64 // ticket count when the last successful sync began (under syncMu)

	sumMu sync.Mutex
	sums  map[uint64]fileSum // fileid -> digests of one content `hash`

	skew atomic.Int64 // tests: added to the clock when cursors are dated and aged (now)

	feedMu   sync.Mutex
	feedNext []byte // the cursor last returned by Changes/Head, and the tree it encodes
	feedTree *tree
}

// fileSum caches checksumfile / upload digests; they hold while the file's `hash` is unchanged.
type fileSum struct {
	hash              uint64
	sha1, sha256, md5 string
}

// New builds a Client rooted at root ("/Sync"; "/" is the whole account). It makes no request: a missing root
// shows in CheckRoot, and InitRoot creates it.
func New(lg *zap.Logger, root string, o Options) (*Client, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Endpoint == "" {
		o.Endpoint = USEndpoint
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.ChunkThreshold <= 0 {
		// failpoint.Int: crash tests send tiny files through the chunked upload (the default build: 16 MiB).
		o.ChunkThreshold = failpoint.Int("pcloud.chunkThreshold", 16<<20)
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = failpoint.Int("pcloud.chunkSize", 8<<20)
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 90 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 250 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 30 * time.Second
	}
	if o.DiffLimit <= 0 {
		o.DiffLimit = 2000
	}
	if o.MaxIndex <= 0 {
		o.MaxIndex = 500_000
	}
	base, err := checkEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	names, err := rootComponents(root)
	if err != nil {
		return nil, err
	}
	lg = lg.Named("pcloud")
	auth := httpx.Bearer{Token: o.Token}
	hopts := httpx.Options{HTTP: o.HTTP, CAFile: o.CAFile, Auth: auth, MaxAttempts: o.MaxAttempts,
		BaseDelay: o.BaseDelay, MaxDelay: o.MaxDelay, Clock: o.Clock, Logger: lg, ErrorBody: errorBody, Name: "pcloud"}
	api, err := httpx.New(hopts)
	if err != nil {
		return nil, err
	}
	shared := hopts
	shared.HTTP = api.HTTP() // one connection pool for API calls, mutations and content
	shared.MaxAttempts = 1
	mut, err := httpx.New(shared)
	if err != nil {
		return nil, err
	}
	shared.MaxAttempts, shared.Auth = o.MaxAttempts, nil
	dl, err := httpx.New(shared)
	if err != nil {
		return nil, err
	}
	popts := hopts
	popts.HTTP = nil // its own transport: anything else sent on a blocked connection would unblock it
	if o.HTTP != nil {
		popts.HTTP = &http.Client{Transport: o.HTTP.Transport, CheckRedirect: o.HTTP.CheckRedirect}
	}
	poll, err := httpx.New(popts)
	if err != nil {
		return nil, err
	}
	spec := "/" + strings.Join(names, "/")
	return &Client{lg: lg.With(zap.String("root", spec)), clk: o.Clock, o: o, base: base, rootSpec: spec,
		rootNames: names, api: api, mut: mut, dl: dl, poll: poll, sums: map[uint64]fileSum{}}, nil
}

// errorBody judges an HTTP error answer by pCloud's own {result, error} when it carries one (rclone decodes
// non-2xx bodies the same way, §2.2): a 4xx with result 2094 is a refused token, not a generic 4xx. 429 and 5xx
// stay temporary whatever the body says (their Retry-After is read by httpx).
func errorBody(code int, body []byte) error {
	var st status
	if json.Unmarshal(body, &st) != nil || st.Result == 0 {
		return nil
	}
	if code == http.StatusTooManyRequests || code >= 500 {
		return nil
	}
	return apiError("http "+strconv.Itoa(code), &st)
}

// checkEndpoint allows https, and plain http only to a loopback host: a token must never cross a network in
// clear, but a test emulator on 127.0.0.1 needs no certificate.
func checkEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("pcloud endpoint %q: want https://host[:port]", remote.Escape(s))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("pcloud endpoint %q: plain http is only allowed to a loopback emulator", remote.Escape(s))
		}
	default:
		return nil, fmt.Errorf("pcloud endpoint %q: scheme must be https", remote.Escape(s))
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

// rootComponents splits "/Sync/Sub" into validated names; "/" and "" are the account root.
func rootComponents(root string) ([]string, error) {
	s := strings.Trim(root, "/")
	if s == "" {
		return nil, nil
	}
	p, err := remote.ParsePath(s)
	if err != nil {
		return nil, fmt.Errorf("pcloud root %q: %w", remote.Escape(root), err)
	}
	return strings.Split(string(p), "/"), nil
}

// String implements remote.Remote.
func (c *Client) String() string { return "pcloud:" + c.rootSpec }

// Capabilities implements remote.Remote.
func (c *Client) Capabilities() remote.Capabilities {
	hashes := []string{"sha1"}
	if c.o.EU {
		hashes = append(hashes, "sha256")
	}
	return remote.Capabilities{Hashes: hashes, ServerMove: true, Trash: true, Feed: true, LongPoll: true,
		MTimeStep: time.Second, Parallel: 4}
}

// skipped reports an entry left out: in the log (escaped) and to Options.OnSkip, so it is listed in the pass's
// `skipped` like an invalid name in a `dir:` remote.
func (c *Client) skipped(dir, name, reason string) {
	p := name
	if dir != "" && dir != "." {
		p = dir + "/" + name
	}
	p = remote.Escape(p)
	c.lg.Warn("remote entry skipped", zap.String("path", p), zap.String("reason", reason))
	if c.o.OnSkip != nil {
		c.o.OnSkip(p, reason)
	}
}

// now is the time cursors are dated and aged by.
func (c *Client) now() time.Time { return c.clk.Now().Add(time.Duration(c.skew.Load())) }

// Close implements remote.Remote.
func (c *Client) Close() error { return nil }

// ---- requests ----

// call runs one API method. Idempotent calls go through the retrying client; mutations get one attempt and are
// retried by mutate, which first checks whether the lost answer's effect happened. Parameters travel in the
// query (none of them is a secret: the token is in the Authorization header).
func call[T any, PT interface {
	*T
	answer
}](ctx context.Context, c *Client, method string, q url.Values, idempotent bool) (*T, error) {
	hc := c.api
	if !idempotent {
		hc = c.mut
	}
	return callWith[T, PT](ctx, c, hc, method, q, idempotent)
}

// callWith is call on a chosen client (the long poll has its own).
func callWith[T any, PT interface {
	*T
	answer
}](ctx context.Context, c *Client, hc *httpx.Client, method string, q url.Values, idempotent bool) (*T, error) {
	var out *T
	err := hc.Do(ctx, "pcloud "+method, idempotent, func(ctx context.Context) (*http.Request, error) {
		verb := http.MethodGet
		if !idempotent {
			verb = http.MethodPost
		}
		return http.NewRequestWithContext(ctx, verb, c.methodURL(method, q), nil)
	}, func(resp *http.Response) error {
		v := new(T) // fresh per attempt: a retry must not inherit fields of a failed decode
		if err := hc.DecodeJSON(resp, v); err != nil {
			return err
		}
		if st := PT(v).envelope(); st.Result != 0 {
			return apiError(method, st)
		}
		out = v
		return nil
	})
	return out, err
}

func (c *Client) methodURL(method string, q url.Values) string {
	v := url.Values{}
	for k, vs := range q {
		v[k] = vs
	}
	v.Set("timeformat", "timestamp")
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + method
	u.RawQuery = v.Encode()
	return u.String()
}

func idParam(name string, id uint64) url.Values {
	return url.Values{name: {strconv.FormatUint(id, 10)}}
}

// ambiguous reports whether a failed mutation may have taken effect: the answer was lost (transport) or was a
// temporary refusal whose cause is not known for sure.
func ambiguous(err error) bool {
	var tmp *httpx.Temporary
	return httpx.IsTransport(err) || errors.As(err, &tmp)
}

// mutate runs a non-idempotent operation. After an ambiguous failure it asks check whether the effect happened
// (ack loss: the change was applied, the answer lost) and retries only when it did not, so a retry never makes
// a second folder, a "name (1)" file or a second move.
func (c *Client) mutate(ctx context.Context, op string, attempt func(ctx context.Context) error,
	check func(ctx context.Context) (bool, error)) error {
	for i := 1; ; i++ {
		err := attempt(ctx)
		if err == nil || !ambiguous(err) || ctx.Err() != nil {
			return err
		}
		if i >= c.o.MaxAttempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", op, i, err)
		}
		wait := c.backoff(i)
		var tmp *httpx.Temporary
		if errors.As(err, &tmp) && tmp.After > 0 {
			wait = min(tmp.After, 5*time.Minute)
		}
		c.lg.Debug("retrying after checking the effect", zap.String("op", op), zap.Int("attempt", i),
			zap.Duration("wait", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), err)
		case <-c.clk.After(wait):
		}
		done, cerr := check(ctx)
		if cerr != nil {
			return fmt.Errorf("%s: check after %v: %w", op, err, cerr)
		}
		if done {
			c.lg.Debug("lost answer, effect applied", zap.String("op", op))
			return nil
		}
	}
}

// backoff is exponential with jitter in [d/2, d].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.o.BaseDelay << (attempt - 1)
	if d > c.o.MaxDelay || d <= 0 {
		d = c.o.MaxDelay
	}
	return d/2 + time.Duration(rand.Float64()*float64(d/2))
}

// ---- root and index ----

// root resolves the sync root's folderid once (listing each component from the account root).
func (c *Client) root(ctx context.Context) (uint64, error) {
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.rootKnown {
		return c.rootID, nil
	}
	id, err := c.resolveRoot(ctx)
	if err != nil {
		return 0, err
	}
	c.rootID, c.rootKnown = id, true
	c.ixMu.Lock()
	c.ix, c.ixInit = newTree(id), false
	c.ixMu.Unlock()
	return id, nil
}

func (c *Client) resolveRoot(ctx context.Context) (uint64, error) {
	cur := uint64(0)
	for i, name := range c.rootNames {
		q := idParam("folderid", cur)
		q.Set("nofiles", "1")
		a, err := c.listfolder(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("find %s: %w", c.rootSpec, err)
		}
		next, found := uint64(0), false
		if a.Metadata != nil {
			for _, k := range a.Metadata.Contents {
				if k != nil && k.IsFolder && !k.IsDeleted && k.Name == name {
					next, found = k.FolderID, true
				}
			}
		}
		if !found {
			return 0, fmt.Errorf("find %s: folder /%s: %w", c.rootSpec, strings.Join(c.rootNames[:i+1], "/"), remote.ErrNotFound)
		}
		cur = next
	}
	return cur, nil
}

// forgetRoot drops the cached root id (the root was deleted): the next call resolves it again.
func (c *Client) forgetRoot() {
	c.rootMu.Lock()
	c.rootKnown = false
	c.rootMu.Unlock()
}

// sync brings the index up to the newest diffid. Callers that arrive while a sync runs wait for it and then
// run their own, unless one that began after they asked has finished meanwhile: a check made after sync
// returns sees every change that happened before sync was called.
func (c *Client) sync(ctx context.Context) error {
	if _, err := c.root(ctx); err != nil {
		return err
	}
	ticket := c.syncTicket.Add(1)
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.syncStarted >= ticket {
		return nil
	}
	start := c.syncTicket.Load()
	limit := c.o.DiffLimit
	for {
		c.ixMu.Lock()
		init, from := c.ixInit, c.ixDiff
		c.ixMu.Unlock()
		q := url.Values{}
		if !init {
			q.Set("last", "0") // no entries, only the current diffid: the index starts empty and fills lazily
		} else {
			q.Set("diffid", strconv.FormatUint(from, 10))
			q.Set("limit", strconv.Itoa(limit))
		}
		a, err := c.diff(ctx, c.api, q) // temporary refusals are retried there, without limit
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.kind != remote.ErrUnauthorized && init {
				// The server refuses this diffid for good: start over (§6.6 step 3).
				c.resetIndex()
				continue
			}
			return fmt.Errorf("read changes: %w", err)
		}
		if !init {
			c.ixMu.Lock()
			c.ixDiff, c.ixInit = a.DiffID, true
			c.ixMu.Unlock()
			break
		}
		reset, rootGone := c.applyIndex(from, a)
		if rootGone {
			c.forgetRoot()
			return fmt.Errorf("read changes: %s was deleted: %w", c, remote.ErrNotFound)
		}
		if reset {
			continue
		}
		// A short reply does not prove the end (cancelling events are dropped): only an empty one that did not
		// move the diffid does.
		if len(a.Entries) == 0 && a.DiffID <= from {
			break
		}
	}
	c.syncStarted = start
	return nil
}

func (c *Client) resetIndex() {
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix != nil {
		c.ix = newTree(c.ix.root)
	}
	c.ixInit = false
}

// applyIndex folds one diff answer into the index. reset: the index was dropped (a `reset` event) and must be
// rebuilt; rootGone: the root folder itself was deleted.
func (c *Client) applyIndex(from uint64, a *diffAnswer) (reset, rootGone bool) {
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix == nil {
		return false, false
	}
	for _, e := range a.Entries {
		if e.Event == "reset" {
			c.ix, c.ixInit = newTree(c.ix.root), false
			return true, false
		}
		m := e.Metadata
		if m == nil {
			continue
		}
		switch e.Event {
		case "createfolder", "modifyfolder", "createfile", "modifyfile":
			if m.DeletedFileID != 0 {
				c.ix.del(false, m.DeletedFileID)
			}
			if m.IsDeleted {
				c.ix.del(m.IsFolder, m.id())
			} else {
				c.ix.set(m)
			}
		case "deletefolder", "deletefile":
			if m.IsFolder && m.FolderID == c.ix.root {
				c.ix, c.ixInit = newTree(c.ix.root), false
				return true, true
			}
			c.ix.del(m.IsFolder, m.id())
		}
	}
	if c.ix.size() > c.o.MaxIndex {
		c.ix = newTree(c.ix.root) // consistent (nothing listed) and rebuilt lazily
	}
	// A listing inserted meanwhile rewound ixDiff so its older events are replayed: keep the lower value.
	if c.ixDiff == from {
		c.ixDiff = a.DiffID
	}
	return false, false
}

// listInto lists folder id (non-recursively) into the index. ixDiff is rewound to what it was before the request,
// so the next sync replays every event the listing may or may not reflect: events carry post-states, and
// replaying them in order ends at the newest state whatever the listing said.
func (c *Client) listInto(ctx context.Context, id uint64) error {
	c.ixMu.Lock()
	before := c.ixDiff
	c.ixMu.Unlock()
	a, err := c.listfolder(ctx, idParam("folderid", id))
	if err != nil {
		return err
	}
	if a.Metadata == nil || !a.Metadata.IsFolder || a.Metadata.FolderID != id {
		return fmt.Errorf("pcloud listfolder: answer without the folder's metadata")
	}
	if a.Metadata.Contents == nil {
		a.Metadata.Contents = []*meta{}
	}
	c.ixMu.Lock()
	defer c.ixMu.Unlock()
	if c.ix.dirs[id] == nil {
		return nil // forgotten meanwhile (moved or deleted): the caller looks again
	}
	c.ix.setListing(a.Metadata)
	c.ixDiff = min(c.ixDiff, before)
	return nil
}

// found is a resolved item: a copy of its node (never the live one) and its path.
type found struct {
	n node
	p remote.Path
}

// lookup resolves p to an item after a sync, listing folders on the way that the index does not know yet.
func (c *Client) lookup(ctx context.Context, p remote.Path) (found, error) {
	if err := c.sync(ctx); err != nil {
		return found{}, err
	}
	var names []string
	if p != remote.Root {
		names = strings.Split(string(p), "/")
	}
	for attempt := 0; ; attempt++ {
		c.ixMu.Lock()
		cur := c.ix.dirs[c.ix.root]
		var need uint64
		needList := false
		for i, name := range names {
			if !cur.listed {
				need, needList = cur.id, true
				break
			}
			k := c.ix.lookupKid(cur, name)
			if k == nil || (i < len(names)-1 && !k.dir) {
				c.ixMu.Unlock()
				return found{}, fmt.Errorf("%s: %w", p.Quoted(), remote.ErrNotFound)
			}
			cur = k
		}
		if !needList {
			f := found{n: *cur, p: p}
			f.n.kids, f.n.kidFiles = nil, nil
			c.ixMu.Unlock()
			return f, nil
		}
		c.ixMu.Unlock()
		if attempt > 64 {
			return found{}, fmt.Errorf("%s: the folder tree keeps changing while it is resolved", p.Quoted())
		}
		if err := c.listInto(ctx, need); err != nil && !errors.Is(err, remote.ErrNotFound) {
			return found{}, fmt.Errorf("%s: %w", p.Quoted(), err)
		}
		if err := c.sync(ctx); err != nil {
			return found{}, err
		}
	}
}

// validPath re-checks a Path handed in by a caller: Path is a string type, so a hostile or buggy caller can pass
// anything, and nothing outside the root may ever be touched.
func validPath(p remote.Path) error {
	if _, err := remote.ParsePath(string(p)); err != nil {
		return err
	}
	return nil
}

// entry builds the remote.Entry of a resolved item.
func (c *Client) entry(f found) remote.Entry {
	n := f.n
	e := remote.Entry{Path: f.p, Dir: n.dir, ModTime: time.Unix(n.mtime, 0).UTC(), ID: entryID(n.dir, n.id)}
	if !n.dir {
		e.Size, e.Rev = n.size, strconv.FormatUint(n.hash, 10)
		e.Hash = c.knownSHA1(n.id, n.hash)
	}
	return e
}

// entryOf builds the Entry of an item from an API answer's metadata.
func (c *Client) entryOf(p remote.Path, m *meta) remote.Entry {
	e := remote.Entry{Path: p, Dir: m.IsFolder, ModTime: m.Modified.Time(), ID: entryID(m.IsFolder, m.id()), Rev: m.rev()}
	if !m.IsFolder {
		e.Size = clampSize(m.Size)
		e.Hash = c.knownSHA1(m.FileID, m.Hash)
	}
	return e
}

func (c *Client) knownSHA1(id, hash uint64) remote.Hash {
	c.sumMu.Lock()
	defer c.sumMu.Unlock()
	if s, ok := c.sums[id]; ok && s.hash == hash && s.sha1 != "" {
		return remote.Hash{Algo: "sha1", Hex: s.sha1}
	}
	return remote.Hash{}
}

func (c *Client) rememberSum(id uint64, s fileSum) {
	c.sumMu.Lock()
	defer c.sumMu.Unlock()
	if len(c.sums) > c.o.MaxIndex {
		clear(c.sums)
	}
	c.sums[id] = s
}

// ---- Remote ----

// Stat implements remote.Remote.
func (c *Client) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Entry{}, err
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("stat %w", err)
	}
	return c.entry(f), nil
}

// parentOf resolves the folder that will hold p.
func (c *Client) parentOf(ctx context.Context, p remote.Path) (found, error) {
	d, err := c.lookup(ctx, p.Dir())
	if err != nil {
		return found{}, err
	}
	if !d.n.dir {
		return found{}, fmt.Errorf("%s is a file: %w", p.Dir().Quoted(), remote.ErrNotFound)
	}
	return d, nil
}

// Mkdir implements remote.Remote with createfolderifnotexists, which is idempotent: a retry after a lost answer
// finds the folder and reports it.
func (c *Client) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return c.Stat(ctx, p)
	}
	parent, err := c.parentOf(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %w", err)
	}
	if cur, err := c.lookup(ctx, p); err == nil && !cur.n.dir {
		// pCloud would make a folder beside the file; tandem keeps one item per name.
		return remote.Entry{}, fmt.Errorf("mkdir %s: a file has that name: %w", p.Quoted(), remote.ErrConflict)
	}
	q := idParam("folderid", parent.n.id)
	q.Set("name", p.Base())
	a, err := call[metaAnswer](ctx, c, "createfolderifnotexists", q, true)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w", p.Quoted(), err)
	}
	if a.Metadata == nil || !a.Metadata.IsFolder {
		return remote.Entry{}, fmt.Errorf("mkdir %s: answer without folder metadata", p.Quoted())
	}
	if err := c.stored("mkdir", p, parent.n.id, a.Metadata); err != nil {
		return remote.Entry{}, err
	}
	return c.entryOf(p, a.Metadata), nil
}

// Move implements remote.Remote with renamefile/renamefolder. pCloud's renamefile replaces an existing target
// atomically, so the target is checked just before (and a folder target is refused by pCloud itself, 2004);
// a file created at the target by someone else between that check and the rename would be replaced, and
// survives only as a revision of the moved file: the window the reference leaves (no compare-and-swap).
func (c *Client) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if err := validPath(from); err != nil {
		return remote.Entry{}, err
	}
	if err := validPath(to); err != nil {
		return remote.Entry{}, err
	}
	if from == remote.Root || to == remote.Root || to.Within(from) {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	src, err := c.lookup(ctx, from)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %w", err)
	}
	if pre.Rev != "" && !src.n.dir && strconv.FormatUint(src.n.hash, 10) != pre.Rev {
		return remote.Entry{}, fmt.Errorf("move %s: %w", from.Quoted(), remote.ErrConflict)
	}
	dst, err := c.parentOf(ctx, to)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s: target %w", from.Quoted(), err)
	}
	targetFree := func(ctx context.Context) error {
		cur, err := c.lookup(ctx, to)
		switch {
		case err == nil && !(cur.n.id == src.n.id && cur.n.dir == src.n.dir):
			return fmt.Errorf("move %s: %s exists: %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
		case err != nil && !errors.Is(err, remote.ErrNotFound):
			return err
		}
		return nil
	}
	method, idName := "renamefile", "fileid"
	if src.n.dir {
		method, idName = "renamefolder", "folderid"
	}
	q := idParam(idName, src.n.id)
	q.Set("tofolderid", strconv.FormatUint(dst.n.id, 10))
	q.Set("toname", to.Base())
	var out *meta
	err = c.mutate(ctx, "move "+from.Quoted(), func(ctx context.Context) error {
		if err := targetFree(ctx); err != nil {
			return err
		}
		a, err := call[metaAnswer](ctx, c, method, q, false)
		if err != nil {
			return err
		}
		out = a.Metadata
		return nil
	}, func(ctx context.Context) (bool, error) {
		m, err := c.statID(ctx, src.n.dir, src.n.id)
		if err != nil {
			return false, err
		}
		if m.IsDeleted {
			return false, fmt.Errorf("%s was deleted meanwhile: %w", from.Quoted(), remote.ErrNotFound)
		}
		if pid, ok := m.parent(); ok && pid == dst.n.id && (m.Name == to.Base() || m.Name == c.foldedName(to.Base())) {
			out = m
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w", from.Quoted(), to.Quoted(), err)
	}
	if out == nil {
		return remote.Entry{}, fmt.Errorf("move %s: answer without metadata", from.Quoted())
	}
	if err := c.stored("move "+from.Quoted()+" to", to, dst.n.id, out); err != nil {
		return remote.Entry{}, err
	}
	return c.entryOf(to, out), nil
}

// stored checks that the server kept the item where and under the name it was asked to (§4.3: pCloud may fold
// names, e.g. U+FF3C to a backslash, unverified). Trust what the server stored: when it differs, the item is
// reported as renamed on pCloud, and the operation fails as "temporarily refused" (the engine lists it as
// skipped with this reason and retries next pass) instead of recording a path that does not exist there.
func (c *Client) stored(op string, p remote.Path, parent uint64, m *meta) error {
	pid, hasParent := m.parent()
	if m.Name == p.Base() && (!hasParent || pid == parent) {
		return nil
	}
	where := remote.Escape(m.Name)
	if q, err := p.Dir().Join(m.Name); err == nil && (!hasParent || pid == parent) {
		where = q.Quoted()
	}
	c.lg.Warn("pcloud stored another name than asked", zap.String("asked", p.Quoted()), zap.String("stored", where))
	return fmt.Errorf("%s %s: pCloud stored it as %s (renamed by the server): %w", op, p.Quoted(), where,
		remote.ErrUnavailable)
}

// foldedName is name as a server that folds U+FF3C to a backslash stores it: a lost answer's check accepts it.
func (c *Client) foldedName(name string) string { return strings.ReplaceAll(name, "\uFF3C", `\`) }

// statID reads an item's current metadata by id: stat for a file, a folders-only listfolder for a folder (the
// reference documents stat for files only).
func (c *Client) statID(ctx context.Context, dir bool, id uint64) (*meta, error) {
	var a *metaAnswer
	var err error
	if dir {
		q := idParam("folderid", id)
		q.Set("nofiles", "1")
		a, err = c.listfolder(ctx, q)
	} else {
		a, err = call[metaAnswer](ctx, c, "stat", idParam("fileid", id), true)
	}
	if err != nil {
		return nil, err
	}
	if a.Metadata == nil {
		return nil, fmt.Errorf("pcloud: answer without metadata")
	}
	return a.Metadata, nil
}

// Delete implements remote.Remote: deletefile (to pCloud's trash) for a file, the non-recursive deletefolder for
// a folder (never deletefolderrecursive: a folder may hold files tandem has not seen). The Rev is compared just
// before; there is no compare-and-swap, so a write in between is the remaining window (it stays in the trash).
func (c *Client) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	if err := validPath(p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("delete the root: %w", remote.ErrConflict)
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	if pre.Rev != "" && !f.n.dir && strconv.FormatUint(f.n.hash, 10) != pre.Rev {
		return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrConflict)
	}
	method, idName := "deletefile", "fileid"
	if f.n.dir {
		method, idName = "deletefolder", "folderid"
	}
	err = c.mutate(ctx, "delete "+p.Quoted(), func(ctx context.Context) error {
		_, err := call[metaAnswer](ctx, c, method, idParam(idName, f.n.id), false)
		return err
	}, func(ctx context.Context) (bool, error) {
		m, err := c.statID(ctx, f.n.dir, f.n.id)
		if errors.Is(err, remote.ErrNotFound) {
			return true, nil // gone: the lost answer was a success
		}
		if err == nil && m.IsDeleted {
			return true, nil // in the trash: stat may still describe a deleted item, flagged isdeleted (§4.1)
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.Quoted(), err)
	}
	return nil
}

// HashOf implements remote.Hasher through checksumfile: sha1 in both regions, sha256 in the EU, md5 in the US.
func (c *Client) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %w", err)
	}
	if f.n.dir {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: is a folder", p.Quoted())
	}
	sum, m, err := c.checksum(ctx, f.n.id)
	if err != nil {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: %w", p.Quoted(), err)
	}
	hex := map[string]string{"sha1": sum.sha1, "sha256": sum.sha256, "md5": sum.md5}[algo]
	if hex == "" {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: pcloud offers no %q digest here", p.Quoted(), algo)
	}
	return remote.Hash{Algo: algo, Hex: hex}, c.entryOf(p, m), nil
}

// checksum asks checksumfile and remembers the digests for the content `hash` they belong to.
func (c *Client) checksum(ctx context.Context, fileID uint64) (fileSum, *meta, error) {
	a, err := call[checksumAnswer](ctx, c, "checksumfile", idParam("fileid", fileID), true)
	if err != nil {
		return fileSum{}, nil, err
	}
	if a.Metadata == nil || a.Metadata.IsFolder || a.Metadata.FileID != fileID || !isHex(a.SHA1, 40) {
		return fileSum{}, nil, fmt.Errorf("pcloud checksumfile: malformed answer")
	}
	s := fileSum{hash: a.Metadata.Hash, sha1: strings.ToLower(a.SHA1)}
	if isHex(a.SHA256, 64) {
		s.sha256 = strings.ToLower(a.SHA256)
	}
	if isHex(a.MD5, 32) {
		s.md5 = strings.ToLower(a.MD5)
	}
	c.rememberSum(fileID, s)
	return s, a.Metadata, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// CheckRoot implements remote.RootChecker: the root folder must still exist under its path and be the folder
// this client started with (a deleted and re-created /Sync is not the folder the base describes).
func (c *Client) CheckRoot(ctx context.Context) error {
	id, err := c.resolveRoot(ctx)
	if errors.Is(err, remote.ErrNotFound) {
		c.forgetRoot()
		return fmt.Errorf("%s: %w: %w", c, remote.ErrRootMissing, err)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", c, err)
	}
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.rootKnown && c.rootID != id {
		return fmt.Errorf("%s: %w: the folder was replaced by another one (folderid %d, was %d)", c,
			remote.ErrRootMissing, id, c.rootID)
	}
	if !c.rootKnown {
		c.rootID, c.rootKnown = id, true
		c.ixMu.Lock()
		c.ix, c.ixInit = newTree(id), false
		c.ixMu.Unlock()
	}
	return nil
}

// InitRoot implements remote.RootChecker: it creates the root folder and its parents with
// createfolderifnotexists (idempotent, so safely retried).
func (c *Client) InitRoot(ctx context.Context) error {
	cur := uint64(0)
	for _, name := range c.rootNames {
		q := idParam("folderid", cur)
		q.Set("name", name)
		a, err := call[metaAnswer](ctx, c, "createfolderifnotexists", q, true)
		if err != nil {
			return fmt.Errorf("create %s: %w", c.rootSpec, err)
		}
		if a.Metadata == nil || !a.Metadata.IsFolder {
			return fmt.Errorf("create %s: answer without folder metadata", c.rootSpec)
		}
		cur = a.Metadata.FolderID
	}
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if !c.rootKnown || c.rootID != cur {
		c.rootID, c.rootKnown = cur, true
		c.ixMu.Lock()
		c.ix, c.ixInit = newTree(cur), false
		c.ixMu.Unlock()
	}
	return nil
}

// Quota reports the account's used and total bytes (userinfo), for status. used may exceed total.
func (c *Client) Quota(ctx context.Context) (used, total int64, err error) {
	a, err := call[userinfoAnswer](ctx, c, "userinfo", nil, true)
	if err != nil {
		return 0, 0, fmt.Errorf("quota: %w", err)
	}
	return a.UsedQuota, a.Quota, nil
}

var (
	_ remote.Remote      = (*Client)(nil)
	_ remote.Hasher      = (*Client)(nil)
	_ remote.RootChecker = (*Client)(nil)
)
