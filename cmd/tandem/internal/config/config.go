// Package config reads tandem's YAML configuration: the folder pairs the daemon keeps in sync and a few global
// settings. Parse keeps the line of every field, so that Validate can name file, line and field in each
// problem, and reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/conflict"
)

// Defaults, in one place.
const (
	DefaultPollInterval     = time.Minute
	DefaultFullScanInterval = time.Hour
	DefaultMaxDelete        = 50.0
	DefaultDeleteWindow     = 10 * time.Minute
	MinPollInterval         = time.Second
	MinFullScanInterval     = time.Minute
	// DefaultRemoteRelistInterval: how often the daemon lists a remote with a change feed completely, for the
	// changes the feed never reported. Each listing costs the remote's whole tree (pCloud: two recursive
	// listings; Verizon: one fullview; vBoxx: one request per folder), hence the minimum.
	DefaultRemoteRelistInterval = 24 * time.Hour
	MinRemoteRelistInterval     = time.Hour
	// RelistOff is RemoteRelistInterval written as "off": never list a feed remote completely on a timer.
	RelistOff time.Duration = -1
)

// Config is the whole file. Zero values mean "the default" (see the Effective methods).
type Config struct {
	// File is the name the config was parsed under; problems are reported against it.
	File string `yaml:"-"`

	StateDir    string // where pair databases, the status socket and the default log live
	LogFile     string // JSON log of the service (rotated); "" = <state dir>/tandem.log when a service
	MetricsAddr string // optional read-only TCP /metrics, e.g. 127.0.0.1:9469
	// MetricsPublic allows MetricsAddr on an address other hosts can reach (pair names are labels there).
	MetricsPublic    bool
	FullScanInterval time.Duration // safety-net pass interval; 0 = DefaultFullScanInterval
	// RemoteRelistInterval: the daemon lists a feed remote completely this long after its last complete
	// listing; 0 = DefaultRemoteRelistInterval, RelistOff = never.
	RemoteRelistInterval time.Duration
	TokenStore           string // where logins live: auto (""), keyring or file
	Pairs                []Pair
	// Verizon is the app key registered in ThingSpace that `tandem login verizon` uses (flags and environment
	// override it).
	Verizon VerizonApp

	lines map[string]int // field path ("pairs[1].remote") -> line
}

// VerizonApp is a Verizon app key: id, secret and its registered Callback URL.
type VerizonApp struct{ ClientID, ClientSecret, RedirectURL string }

// Pair is one synced folder pair. Credentials are never part of it: they stay in the token files that
// `tandem login` writes, found by the provider and Account.
type Pair struct {
	Name           string // unique; "" = the local folder's base name
	Local          string // absolute, or starting with ~/
	Remote         string // scheme:path, e.g. dir:/mnt/nas/Docs
	Account        string // which stored login of the provider to use
	Endpoint       string // provider API base URL (emulator, private deployment); "" = stored at login, else the provider's
	CAFile         string // extra trusted CA certificates (PEM) for the endpoint; absolute, or starting with ~/
	Ignore         []string
	Conflict       string        // conflict policy; "" = keep-both
	PollInterval   time.Duration // for remotes without long-poll; 0 = DefaultPollInterval
	BandwidthLimit int64         // bytes per second; 0 = unlimited
	MaxDelete      float64       // big-delete guard, percent; 0 = DefaultMaxDelete
	// DeleteWindow: the daemon counts the deletes it propagated this long back against the guard together
	// with each pass's own; 0 = DefaultDeleteWindow
	DeleteWindow time.Duration
}

// Problem is one thing wrong with the file.
type Problem struct {
	File  string
	Line  int // 0 when unknown (a missing field is reported at its parent's line)
	Field string
	Msg   string
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Line is where field was given (or its nearest given parent), 0 when unknown.
func (c *Config) Line(field string) int {
	for f := field; f != ""; f = parentField(f) {
		if l, ok := c.lines[f]; ok {
			return l
		}
	}
	return 0
}

func parentField(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

func (c *Config) problem(field, format string, a ...any) *Problem {
	return &Problem{File: c.File, Line: c.Line(field), Field: field, Msg: fmt.Sprintf(format, a...)}
}

// PairName is the pair's effective name: its name, or the base name of its local folder.
func (p Pair) PairName() string {
	if p.Name != "" {
		return p.Name
	}
	return filepath.Base(filepath.Clean(p.Local))
}

// EffectivePollInterval is PollInterval or the default.
func (p Pair) EffectivePollInterval() time.Duration {
	if p.PollInterval > 0 {
		return p.PollInterval
	}
	return DefaultPollInterval
}

// EffectiveMaxDelete is MaxDelete or the default.
func (p Pair) EffectiveMaxDelete() float64 {
	if p.MaxDelete > 0 {
		return p.MaxDelete
	}
	return DefaultMaxDelete
}

// EffectiveDeleteWindow is DeleteWindow or the default.
func (p Pair) EffectiveDeleteWindow() time.Duration {
	if p.DeleteWindow > 0 {
		return p.DeleteWindow
	}
	return DefaultDeleteWindow
}

// EffectiveFullScanInterval is FullScanInterval or the default.
func (c *Config) EffectiveFullScanInterval() time.Duration {
	if c.FullScanInterval > 0 {
		return c.FullScanInterval
	}
	return DefaultFullScanInterval
}

// EffectiveRemoteRelistInterval is RemoteRelistInterval or the default; 0 when it is off.
func (c *Config) EffectiveRemoteRelistInterval() time.Duration {
	switch {
	case c.RemoteRelistInterval == RelistOff:
		return 0
	case c.RemoteRelistInterval > 0:
		return c.RemoteRelistInterval
	}
	return DefaultRemoteRelistInterval
}

// ExpandHome turns a leading "~/" into the user's home folder.
func ExpandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// LocalPath is the pair's local folder with ~ expanded (symlinks are not resolved here).
func (p Pair) LocalPath() (string, error) { return ExpandHome(p.Local) }

// CAFilePath is the pair's ca_file with ~ expanded, "" when none is set.
func (p Pair) CAFilePath() (string, error) {
	if p.CAFile == "" {
		return "", nil
	}
	return ExpandHome(p.CAFile)
}

// DefaultPath is ~/.config/tandem/config.yaml ($XDG_CONFIG_HOME/tandem/config.yaml when that is set).
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "tandem", "config.yaml"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("config path: %w", err)
	}
	return filepath.Join(home, ".config", "tandem", "config.yaml"), nil
}

// ValidateOptions are the checks Validate cannot do alone.
type ValidateOptions struct {
	// Remote checks a remote spec (scheme known, path well-formed) and says what is wrong; nil skips the check.
	Remote func(spec string) error
	// Locate says where a pair's folders are for the overlap checks (symlinks resolved, names folded as the
	// provider compares them); nil uses PlainLocation.
	Locate func(Pair) Location
}

// Location is where a pair's two folders are, as the overlap checks compare them.
type Location struct {
	Local string // the local folder, absolute; "" when unknown
	// Dir is a dir: remote's folder (absolute); Service and Path name a cloud remote's folder: Service is the
	// provider, the account and the endpoint, Path the folder (leading "/", folded as the provider folds names).
	Dir, Service, Path string
}

// PlainLocation locates a pair without touching the file system and without folding names.
func PlainLocation(p Pair) Location {
	var l Location
	if lp, err := p.LocalPath(); err == nil && filepath.IsAbs(lp) {
		l.Local = filepath.Clean(lp)
	}
	scheme, root, ok := strings.Cut(p.Remote, ":")
	switch {
	case !ok:
	case scheme == "dir":
		if d, err := ExpandHome(root); err == nil && filepath.IsAbs(d) {
			l.Dir = filepath.Clean(d)
		}
	default:
		l.Service = scheme + "\x00" + p.Account + "\x00" + strings.TrimRight(p.Endpoint, "/")
		l.Path = "/" + strings.Trim(root, "/")
	}
	return l
}

// Validate returns every problem of the configuration at once (errors.Join of *Problem), nil if there is none.
// It touches the file system only to check that a pair's ca_file exists: a local folder that does not exist yet
// is the daemon's to report.
func (c *Config) Validate(o ValidateOptions) error {
	var errs []error
	add := func(p *Problem) { errs = append(errs, p) }
	if c.StateDir != "" {
		if d, err := ExpandHome(c.StateDir); err != nil || !filepath.IsAbs(d) {
			add(c.problem("state_dir", "want an absolute path or one starting with ~/, got %q", c.StateDir))
		}
	}
	if c.LogFile != "" {
		if d, err := ExpandHome(c.LogFile); err != nil || !filepath.IsAbs(d) {
			add(c.problem("log_file", "want an absolute path or one starting with ~/, got %q", c.LogFile))
		}
	}
	if c.MetricsAddr != "" {
		if err := checkAddr(c.MetricsAddr); err != nil {
			add(c.problem("metrics_addr", "%v", err))
		} else if !c.MetricsPublic && !loopbackAddr(c.MetricsAddr) {
			add(c.problem("metrics_addr", "%q can be reached from other hosts, and /metrics has no authentication "+
				"(it shows pair names and activity): use 127.0.0.1:PORT, or set metrics_public: true to expose it on purpose", c.MetricsAddr))
		}
	}
	if c.MetricsAddr != "" && c.MetricsPublic {
		// A public endpoint labels series with pair names; a default name is the local folder's, which the
		// user never chose to publish.
		for i, p := range c.Pairs {
			if p.Name == "" && p.Local != "" {
				add(c.problem(fmt.Sprintf("pairs[%d].name", i), "missing: metrics_public shows pair names to other hosts, "+
					"and this pair's default name is its local folder's (%q); give it a name of your choosing", p.PairName()))
			}
		}
	}
	switch c.TokenStore {
	case "", "auto", "keyring", "file":
	default:
		add(c.problem("token_store", "%q: want auto, keyring or file", c.TokenStore))
	}
	if c.FullScanInterval != 0 && c.FullScanInterval < MinFullScanInterval {
		add(c.problem("full_scan_interval", "%s is too short: want at least %s", c.FullScanInterval, MinFullScanInterval))
	}
	if c.RemoteRelistInterval > 0 && c.RemoteRelistInterval < MinRemoteRelistInterval {
		add(c.problem("remote_relist_interval", "%s is too short: want at least %s (or off)", c.RemoteRelistInterval, MinRemoteRelistInterval))
	}
	names := map[string]int{}
	locals := map[string]int{}
	for i, p := range c.Pairs {
		f := fmt.Sprintf("pairs[%d]", i)
		if p.Local == "" {
			add(c.problem(f+".local", "missing: the local folder to sync"))
		} else if l, err := p.LocalPath(); err != nil || !filepath.IsAbs(l) {
			add(c.problem(f+".local", "want an absolute path or one starting with ~/, got %q", p.Local))
		} else {
			l = filepath.Clean(l)
			if j, ok := locals[l]; ok {
				add(c.problem(f+".local", "%s is already synced by pairs[%d]", l, j))
			} else {
				for other, j := range locals {
					if within(l, other) || within(other, l) {
						add(c.problem(f+".local", "%s overlaps pairs[%d] (%s): pairs must not nest", l, j, other))
					}
				}
				locals[l] = i
			}
		}
		if p.Remote == "" {
			add(c.problem(f+".remote", "missing: the remote, e.g. dir:/mnt/nas/Documents"))
		} else if o.Remote != nil {
			if err := o.Remote(p.Remote); err != nil {
				add(c.problem(f+".remote", "%v", err))
			}
		}
		for _, pb := range c.checkEndpoint(f, p) {
			add(pb)
		}
		name := p.PairName()
		switch {
		case p.Name == "" && p.Local == "":
		case name == "" || name == "." || name == "/" || strings.ContainsAny(name, "/\x00"):
			add(c.problem(f+".name", "%q cannot name a pair: give it a name without slashes", name))
		default:
			if j, ok := names[name]; ok {
				add(c.problem(f+".name", "pair name %q is already used by pairs[%d]; give one of them a distinct name", name, j))
			}
			names[name] = i
		}
		if _, err := conflict.ParsePolicy(p.Conflict); err != nil {
			add(c.problem(f+".conflict", "%v", err))
		}
		if p.PollInterval != 0 && p.PollInterval < MinPollInterval {
			add(c.problem(f+".poll_interval", "%s is too short: want at least %s", p.PollInterval, MinPollInterval))
		}
		if p.MaxDelete != 0 && !validPercent(p.MaxDelete) {
			add(c.problem(f+".max_delete", "%g: want a percentage above 0 and at most 100", p.MaxDelete))
		}
		if p.BandwidthLimit < 0 {
			add(c.problem(f+".bandwidth_limit", "must not be negative"))
		}
		for k, pat := range p.Ignore {
			if strings.ContainsRune(pat, 0) {
				add(c.problem(fmt.Sprintf("%s.ignore[%d]", f, k), "NUL byte in pattern"))
			}
		}
	}
	for _, pb := range c.overlaps(o.Locate) {
		add(pb)
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].(*Problem).Line < errs[j].(*Problem).Line })
	return errors.Join(errs...)
}

// overlaps finds remotes that overlap anything another pair syncs (issue: two pairs on one dir: folder merged two
// unrelated folders): a remote folder that is, holds or lies inside another pair's remote, or (for dir:) another
// pair's local folder or its own pair's local folder. Local folders among themselves are checked in Validate.
// Each problem names both pairs.
func (c *Config) overlaps(locate func(Pair) Location) []*Problem {
	if locate == nil {
		locate = PlainLocation
	}
	locs := make([]Location, len(c.Pairs))
	for i, p := range c.Pairs {
		locs[i] = locate(p)
	}
	who := func(i int) string { return fmt.Sprintf("pairs[%d] (%q)", i, c.Pairs[i].PairName()) }
	var out []*Problem
	for j, b := range locs {
		f := fmt.Sprintf("pairs[%d].remote", j)
		switch {
		case b.Dir != "" && b.Local != "" && (within(b.Dir, b.Local) || within(b.Local, b.Dir)):
			out = append(out, c.problem(f, "%s: the remote folder %s and the local folder %s overlap: a folder cannot be synced with itself or with a folder inside it",
				who(j), b.Dir, b.Local))
		}
		for i, a := range locs {
			if i == j {
				continue
			}
			switch {
			case i < j && b.Dir != "" && a.Dir != "" && (within(b.Dir, a.Dir) || within(a.Dir, b.Dir)):
				out = append(out, c.problem(f, "%s syncs into %s, which %s the remote folder of %s (%s): two pairs would merge their folders",
					who(j), b.Dir, overlapVerb(b.Dir, a.Dir), who(i), a.Dir))
			case i < j && b.Service != "" && b.Service == a.Service && (withinSlash(b.Path, a.Path) || withinSlash(a.Path, b.Path)):
				out = append(out, c.problem(f, "%s syncs into %s, which %s the remote folder of %s (%s): two pairs would merge their folders",
					who(j), c.Pairs[j].Remote, overlapVerbSlash(b.Path, a.Path), who(i), c.Pairs[i].Remote))
			case b.Dir != "" && a.Local != "" && (within(b.Dir, a.Local) || within(a.Local, b.Dir)):
				out = append(out, c.problem(f, "%s syncs into %s, which %s the local folder of %s (%s): the other pair would sync it again",
					who(j), b.Dir, overlapVerb(b.Dir, a.Local), who(i), a.Local))
			}
		}
	}
	return out
}

// overlapVerb says how folder a relates to folder b (one of them lies within the other).
func overlapVerb(a, b string) string {
	switch {
	case a == b:
		return "is"
	case within(a, b):
		return "lies inside"
	}
	return "holds"
}

func overlapVerbSlash(a, b string) string {
	switch {
	case a == b:
		return "is"
	case withinSlash(a, b):
		return "lies inside"
	}
	return "holds"
}

// withinSlash reports whether the slash path p is dir or inside it (both start with "/").
func withinSlash(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// checkEndpoint checks a pair's endpoint and ca_file: an http(s) URL without credentials (plain http only to a
// loopback host, since tokens must not travel in clear), and a CA file that exists. A dir: remote has neither.
func (c *Config) checkEndpoint(f string, p Pair) []*Problem {
	var out []*Problem
	dir := strings.HasPrefix(p.Remote, "dir:")
	if p.Endpoint != "" {
		switch {
		case dir:
			out = append(out, c.problem(f+".endpoint", "a dir: remote has no endpoint; remove it"))
		default:
			if err := CheckEndpointURL(p.Endpoint); err != nil {
				out = append(out, c.problem(f+".endpoint", "%v", err))
			}
		}
	}
	if p.CAFile != "" {
		ca, err := p.CAFilePath()
		switch {
		case dir:
			out = append(out, c.problem(f+".ca_file", "a dir: remote has no endpoint to trust a CA for; remove it"))
		case err != nil || !filepath.IsAbs(ca):
			out = append(out, c.problem(f+".ca_file", "want an absolute path or one starting with ~/, got %q", p.CAFile))
		default:
			if fi, err := os.Stat(ca); err != nil {
				out = append(out, c.problem(f+".ca_file", "%s: %v", ca, statReason(err)))
			} else if !fi.Mode().IsRegular() {
				out = append(out, c.problem(f+".ca_file", "%s is not a file: want a PEM file of CA certificates", ca))
			}
		}
	}
	return out
}

// CheckEndpointURL accepts https://host[:port][/path], and http:// only to a loopback host (an emulator on this
// machine): the provider's tokens go with every request. Credentials, a query or a fragment are refused, so that
// no secret ends up in the config.
func CheckEndpointURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: want e.g. https://api.example.com", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http(s) URL, e.g. https://api.example.com", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q: the URL names no host", s)
	case u.User != nil:
		return fmt.Errorf("%q: an endpoint must not carry credentials; tokens live in the token files of `tandem login`", redacted(u))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%q: an endpoint must not carry a query or fragment", redacted(u))
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("%q: plain http is only allowed to a loopback host (127.0.0.1, ::1, localhost): "+
			"tokens must not travel in clear; use https", s)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: bad port", s)
		}
	}
	return nil
}

// redacted is u without what could be a secret (user info, query, fragment), for messages.
func redacted(u *url.URL) string {
	v := *u
	if v.User != nil {
		v.User = url.User("REDACTED")
	}
	if v.RawQuery != "" || v.ForceQuery {
		v.RawQuery = "REDACTED"
	}
	if v.Fragment != "" {
		v.Fragment = "REDACTED"
	}
	return v.String()
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func statReason(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// loopbackAddr: host:port names a loopback host (an empty host or 0.0.0.0 listens everywhere).
func loopbackAddr(a string) bool {
	host, _, err := net.SplitHostPort(a)
	return err == nil && host != "" && isLoopback(host)
}

func checkAddr(a string) error {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return fmt.Errorf("%q: want host:port, e.g. 127.0.0.1:9469", a)
	}
	port, err := strconv.Atoi(a[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("%q: bad port", a)
	}
	return nil
}

// Bandwidth limits other than 0 (unlimited) lie in [MinBandwidth, MaxBandwidth]: a rate under 1 KiB/s is far
// more likely a slip ("0.1" meant as MiB) than a wish, and the bounds keep the arithmetic exact.
const (
	MinBandwidth = 1 << 10
	MaxBandwidth = 1 << 40
)

// ParseBandwidth reads "500K", "2MiB", "1.5M", "800000" (bytes per second; K/M/G are powers of 1024, an
// optional trailing "B", "/s" or "iB" is accepted; a fraction of a byte is dropped). "0" or "" is unlimited.
// Only plain decimals are numbers here: no sign, exponent, hex, NaN or Inf.
func ParseBandwidth(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "/s")
	t = strings.TrimSuffix(t, "ps")
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	if t == "" {
		return 0, nil
	}
	mult := 1.0
	switch strings.ToUpper(t[len(t)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		t = strings.TrimSpace(t[:len(t)-1])
	}
	bad := fmt.Errorf("%q: want bytes per second, e.g. 500K or 2MiB (0 for no limit)", s)
	whole, frac, _ := strings.Cut(t, ".")
	if whole == "" || !allDigits(whole) || !allDigits(frac) {
		return 0, bad
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, bad
	}
	bps := v * mult
	switch {
	case bps == 0:
		return 0, nil
	case bps < MinBandwidth:
		return 0, fmt.Errorf("%q is under 1 KiB/s: want 0 for no limit, or a rate of at least 1K", s)
	case bps > MaxBandwidth || err != nil:
		return 0, fmt.Errorf("%q is over 1024 GiB/s: want 0 for no limit, or a rate of at most 1024G", s)
	}
	return int64(bps), nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// validPercent: finite, above 0 and at most 100 (NaN compares false with every bound, so test it first).
func validPercent(x float64) bool {
	return !math.IsNaN(x) && !math.IsInf(x, 0) && x > 0 && x <= 100
}
