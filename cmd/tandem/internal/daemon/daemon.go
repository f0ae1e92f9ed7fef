// Package daemon runs tandem's pairs in the background: one loop per pair (folder watchers, a change-feed
// poller, a safety-net scan timer, and passes serialised per pair), the status API on a private unix socket
// (with its client, used by `tandem status`), Prometheus metrics, and the adapter to the OS service manager.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
)

// Options configure a Daemon.
type Options struct {
	Config     *config.Config
	ConfigPath string // shown in status
	StateDir   string // resolved state dir: the socket lives in <StateDir>/run/
	Open       OpenPair
	Logger     *zap.Logger
	Clock      clockwork.Clock // default: real
	Version    string
	// TokenStore and TokenStoreWhy: where logins live, for the status (see Status).
	TokenStore, TokenStoreWhy string
}

// Daemon runs every configured pair. Reload may be called from any goroutine while Run runs.
type Daemon struct {
	o        Options
	lg       *zap.Logger
	clk      clockwork.Clock
	open     OpenPair
	m        *metrics
	fullScan time.Duration
	relist   time.Duration // remote_relist_interval; 0: off
	retryMin time.Duration // first wait before a failed pass (a full pass) or failed paths (a pass over them) are retried
	// ctlWait bounds how long a control request waits for a pair's loop to take it (a pair being set up
	// takes it once its state database and remote are open).
	ctlWait time.Duration
	started time.Time
	boot    *config.Config // the config Run started with: what restart-only fields are compared against
	reload  chan *config.Config

	mu    sync.Mutex // guards pairs and order for the status handlers
	pairs map[string]*running
	order []string
}

type running struct {
	l      *pairLoop
	cancel context.CancelFunc // set by launch
	done   chan struct{}
}

// add registers the loop of pair p, starting, without running it (launch does); d.mu is held or not yet
// shared.
func (d *Daemon) add(p config.Pair) *running {
	r := &running{l: newPairLoop(d, p, d.fullScan, d.relist), done: make(chan struct{})}
	d.pairs[p.PairName()] = r
	return r
}

// launch runs r's loop until ctx ends or r.cancel is called. Only Run's goroutine calls it (it sets cancel,
// which only that goroutine reads).
func (r *running) launch(ctx context.Context) {
	pctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() { // owned: stopAll and apply wait on done
		defer close(r.done)
		r.l.run(pctx)
	}()
}

// SocketPath is where the status socket of a daemon using stateDir listens.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, "run", "tandem.sock") }

// New checks the options; nothing runs until Run.
func New(o Options) (*Daemon, error) {
	if o.Config == nil || o.Open == nil || o.StateDir == "" {
		return nil, errors.New("daemon: Config, Open and StateDir are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	d := &Daemon{
		o:        o,
		lg:       o.Logger.Named("daemon"),
		clk:      o.Clock,
		open:     o.Open,
		fullScan: o.Config.EffectiveFullScanInterval(),
		relist:   o.Config.EffectiveRemoteRelistInterval(),
		retryMin: 10 * time.Second,
		ctlWait:  10 * time.Second,
		reload:   make(chan *config.Config, 1),
		pairs:    map[string]*running{},
	}
	d.m = newMetrics(d)
	// Every configured pair is in the status from here on, starting, so that status never answers "no
	// pairs" while they are being set up; Run starts their loops once the socket is served.
	for _, p := range o.Config.Pairs {
		d.add(p)
		d.order = append(d.order, p.PairName())
	}
	return d, nil
}

// Reload replaces the configuration: pairs that were added, removed or changed restart their loops, the others
// keep running untouched. A newer call replaces one Run has not applied yet.
func (d *Daemon) Reload(c *config.Config) {
	for {
		select {
		case d.reload <- c:
			return
		default:
		}
		select {
		case <-d.reload:
		default:
		}
	}
}

// Run serves the status socket and runs every pair until ctx ends; then it cancels the passes in flight (their
// actions are atomic, so nothing is left half-written), waits for every loop and returns. It returns an error
// only if the socket cannot be served (for example, another daemon already runs on this state dir).
func (d *Daemon) Run(ctx context.Context) error {
	d.started = d.clk.Now()
	d.boot = d.o.Config
	ln, err := listenUnix(SocketPath(d.o.StateDir), d.lg)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: d.handler(false), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.lg.Error("status socket", zap.Error(err))
		}
	})
	var tcp *http.Server
	if a := d.o.Config.MetricsAddr; a != "" {
		tln, err := net.Listen("tcp", a)
		if err != nil {
			d.lg.Error("metrics address: not serving /metrics over TCP", zap.String("addr", a), zap.Error(err))
		} else {
			tcp = &http.Server{Handler: d.handler(true), ReadHeaderTimeout: 10 * time.Second}
			wg.Go(func() {
				if err := tcp.Serve(tln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					d.lg.Error("metrics listener", zap.Error(err))
				}
			})
		}
	}
	d.lg.Info("daemon started", zap.Int("pairs", len(d.o.Config.Pairs)), zap.String("socket", SocketPath(d.o.StateDir)))
	d.mu.Lock()
	for _, r := range d.pairs { // registered by New
		r.launch(ctx)
	}
	d.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			d.stopAll()
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(sctx)
			if tcp != nil {
				_ = tcp.Shutdown(sctx)
			}
			cancel()
			wg.Wait()
			os.Remove(SocketPath(d.o.StateDir))
			d.lg.Info("daemon stopped")
			return nil
		case c := <-d.reload:
			d.lg.Info("configuration reloaded", zap.Int("pairs", len(c.Pairs)))
			for _, f := range restartFields(d.boot, c) {
				d.lg.Warn(f + " changed: it takes effect when tandem restarts (the running daemon keeps the old value)")
			}
			d.apply(ctx, c)
		}
	}
}

// apply starts, stops and restarts loops so that they match c, and asks the loops it keeps for a full pass.
func (d *Daemon) apply(ctx context.Context, c *config.Config) {
	want := map[string]config.Pair{}
	var order []string
	for _, p := range c.Pairs {
		want[p.PairName()] = p
		order = append(order, p.PairName())
	}
	d.mu.Lock()
	var stop []*running
	for name, r := range d.pairs {
		if p, ok := want[name]; !ok || !reflect.DeepEqual(p, r.l.cfg) {
			stop = append(stop, r)
			delete(d.pairs, name)
		}
	}
	d.mu.Unlock()
	for _, r := range stop {
		d.lg.Info("stopping pair", zap.String("pair", r.l.name))
		r.cancel()
		<-r.done
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.order = order
	d.o.Config = c
	scan := c.EffectiveFullScanInterval()
	rescan := scan != d.fullScan
	d.fullScan = scan
	relist := c.EffectiveRemoteRelistInterval()
	relistChanged := relist != d.relist
	d.relist = relist
	for _, name := range order {
		if r, ok := d.pairs[name]; ok {
			if relistChanged {
				// Before the full pass below, so that a listing due under the new interval happens in it.
				r.l.setRelistInterval(relist)
			}
			// A pair that kept running looks at everything once: whatever prompted the reload may have
			// changed on disk too.
			r.l.kickFull(whyReload)
			if rescan {
				r.l.setScanInterval(scan)
			}
			continue
		}
		d.add(want[name]).launch(ctx)
	}
}

// reloadable are the top-level config fields a reload applies: pairs restart or start, full_scan_interval
// resets every pair's safety-net timer, remote_relist_interval sets when each pair's next complete remote
// listing is due (counted from its last one), and the Verizon app key is read by `tandem login` only. Every
// other field is read once at start.
var reloadable = map[string]bool{"File": true, "Pairs": true, "FullScanInterval": true, "RemoteRelistInterval": true,
	"Verizon": true}

// restartFields names the config fields (as the file spells them) that differ between old and c and that only
// a restart applies.
func restartFields(old, c *config.Config) []string {
	var out []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(c).Elem()
	for i := range ov.NumField() {
		f := ov.Type().Field(i)
		if !f.IsExported() || reloadable[f.Name] || reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			continue
		}
		out = append(out, yamlName(f.Name))
	}
	return out
}

// yamlName turns a Go field name into the config file's key: MetricsAddr -> metrics_addr.
func yamlName(s string) string {
	var b []byte
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b = append(b, '_')
			}
			r += 'a' - 'A'
		}
		b = append(b, byte(r))
	}
	return string(b)
}

func (d *Daemon) stopAll() {
	d.mu.Lock()
	rs := make([]*running, 0, len(d.pairs))
	for _, r := range d.pairs {
		rs = append(rs, r)
	}
	d.mu.Unlock()
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		<-r.done
	}
}

// loops returns the running loops in config order; name "" selects all, else exactly that pair.
func (d *Daemon) loops(name string) ([]*running, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*running
	for _, n := range d.order {
		if r, ok := d.pairs[n]; ok && (name == "" || name == n) {
			out = append(out, r)
		}
	}
	if name != "" && len(out) == 0 {
		names := append([]string(nil), d.order...)
		sort.Strings(names)
		return nil, fmt.Errorf("no pair named %q (pairs: %v)", name, names)
	}
	return out, nil
}

func (d *Daemon) snapshot() []PairStatus {
	rs, _ := d.loops("")
	out := make([]PairStatus, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.l.snapshot())
	}
	return out
}
