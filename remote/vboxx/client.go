// Package vboxx is tandem's vBoxxCloud (Anchor API v2) provider, following its API reference (summarised with our readings in PROVIDER.md): HTTPS only,
// OAuth2 with the password grant at login and refresh on expiry, files and folders by id, and a change feed
// built from modified_since plus the folder hash / 304 protocol (see feed.go).
//
// vBoxx has no content hash: Capabilities.Hashes is empty, so the engine compares bytes where it must know
// whether two sides hold the same content; a download is checked by byte count against the listed size.
package vboxx

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
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
