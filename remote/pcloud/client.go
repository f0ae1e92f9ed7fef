// Package pcloud is the pCloud provider: a remote.Remote over pCloud's HTTP JSON API
// (summarised with our readings in PROVIDER.md), with the `diff` change feed, chunked resumable uploads, checksum-verified downloads
// and the OAuth2 login. Everything is addressed by folderid/fileid (never by path, as the reference decides);
// paths are resolved through an id index kept current by `diff` (tree.go).
package pcloud

import (
	"encoding/json"
	"fmt"
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
