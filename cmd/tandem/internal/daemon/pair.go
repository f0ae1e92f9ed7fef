package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
	"github.com/tandemsync/tandem/watcher"
)

// PairDeps is what a pair loop runs on. The caller's OpenPair builds it (cmd/tandem's cli package owns the
// provider registry and the helpers `tandem once` uses for the same pair, so both open the same database).
type PairDeps struct {
	Local     string        // local root: absolute, symlinks resolved
	Spec      string        // normalised remote spec, for status
	Remote    remote.Remote // the remote side (the poller reads its change feed)
	RemoteDir string        // a `dir:` remote's folder, watched like the local one; "" for other remotes
	Store     *state.Store
	// Ignored is the pair's ignore rules for watcher paths (slash-separated, relative to a root).
	Ignored func(rel string, dir bool) bool
	// NewEngine builds the pair's engine. progress receives every action's start and end; allowDeletes lets
	// the passes of this engine through the big-delete guard.
	NewEngine func(allowDeletes bool, progress func(engine.Event)) (*engine.Engine, error)
	Close     func() error
}

// OpenPair opens a configured pair. An error wrapping remote.ErrUnauthorized puts the pair in login-required.
type OpenPair func(ctx context.Context, lg *zap.Logger, p config.Pair) (*PairDeps, error)

// backoff is exponential with ±20% jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	j := 0.8 + 0.4*rand.Float64() //nolint:gosec // jitter, not security
	return time.Duration(float64(b.cur) * j)
}

func (b *backoff) reset() { b.cur = 0 }

type ctlOp int

const (
	opPause ctlOp = iota
	opResume
	opRescan
	opLogout // the pair's login was removed (tandem logout): login-required until resumed
)

type ctlReq struct {
	op           ctlOp
	allowDeletes bool
	reply        chan struct{}
}

type passResult struct {
	rep *engine.Report
	err error
}

// pairLoop runs one pair: one goroutine and one select over watcher batches, poller news, timers, control
// requests and the end of the pass it started. Passes of a pair never overlap; pairs are independent.
type pairLoop struct {
	d    *Daemon
	cfg  config.Pair
	name string
	lg   *zap.Logger

	wake chan struct{} // capacity 1: kicks arriving during a pass collapse into one pending pass
	full chan string   // capacity 1: a full pass is asked for (the reason); later asks collapse into it
	ctl  chan ctlReq
	poll chan error // capacity 1: the poller's latest failure (nil: it got an answer)
	// passed (capacity 1) tells the poller a pass ended: the stored cursor may have moved (the first one
	// exists only after the first pass), so it looks again now rather than after a poll interval.
	passed chan struct{}
	// scanEvery (capacity 1) hands the loop a new safety-net interval (SIGHUP); the latest replaces one
	// not yet read.
	scanEvery chan time.Duration
	// relistEvery (capacity 1) hands the loop a new remote_relist_interval (SIGHUP); the latest replaces one
	// not yet read.
	relistEvery chan time.Duration

	mu sync.Mutex // guards st, transfers, deps and settingUp for the handlers
	// settingUp: the loop is opening the pair (its state database and remote) and takes no control request
	// until that ends; true from the start.
	settingUp bool
	st        PairStatus
	lastSync  time.Time
	lastErrAt time.Time
	remoteAt  time.Time
	resynced  time.Time
	skips     []SkipInfo // status: paths left alone
	passStart time.Time
	transfers map[string]*Transfer
	deps      *PairDeps
	localW    *watcher.Watcher
	remoteW   *watcher.Watcher
	unwatched [2]string // per side: why its folder is not watched now ("" while it is, or has none)
	nextScan  time.Time // when the safety-net scan is due
	scanIv0   time.Duration
	relistIv0 time.Duration
	// lastListing: when the remote's last complete listing began (from the state database); nextRelist: when
	// the next is due (zero: off, or not a feed remote)
	lastListing, nextRelist time.Time
}

// newPairLoop makes the loop of pair p; scan is the safety-net interval it starts with, relist the
// remote_relist_interval (0: off).
func newPairLoop(d *Daemon, p config.Pair, scan, relist time.Duration) *pairLoop {
	name := p.PairName()
	return &pairLoop{
		d:           d,
		cfg:         p,
		name:        name,
		lg:          d.lg.With(zap.String("pair", name)),
		wake:        make(chan struct{}, 1),
		full:        make(chan string, 1),
		ctl:         make(chan ctlReq),
		poll:        make(chan error, 1),
		passed:      make(chan struct{}, 1),
		scanEvery:   make(chan time.Duration, 1),
		relistEvery: make(chan time.Duration, 1),
		st: PairStatus{Name: name, Local: p.Local, Remote: p.Remote, State: StateStarting,
			Transfers: []Transfer{}},
		transfers: map[string]*Transfer{},
		settingUp: true,
		scanIv0:   scan,
		relistIv0: relist,
	}
}

// kick asks for a pass over whatever is pending (a feed remote's news are read by the pass itself); it never
// blocks.
func (l *pairLoop) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// kickFull asks for a full pass; it never blocks. An ask already waiting covers this one.
func (l *pairLoop) kickFull(why string) {
	select {
	case l.full <- why:
	default:
	}
}

// setScanInterval hands the loop a new safety-net interval; it never blocks, and the latest value wins.
func (l *pairLoop) setScanInterval(iv time.Duration) {
	for {
		select {
		case l.scanEvery <- iv:
			return
		default:
		}
		select {
		case <-l.scanEvery:
		default:
		}
	}
}

// setRelistInterval hands the loop a new remote_relist_interval (0: off); it never blocks, and the latest
// value wins.
func (l *pairLoop) setRelistInterval(iv time.Duration) {
	for {
		select {
		case l.relistEvery <- iv:
			return
		default:
		}
		select {
		case <-l.relistEvery:
		default:
		}
	}
}

// control sends a request to the loop and waits until it has been applied (or the loop has ended). A pair
// being set up takes it once it is open: a request that cannot wait that long says the pair is still starting.
func (l *pairLoop) control(ctx context.Context, done <-chan struct{}, r ctlReq) error {
	r.reply = make(chan struct{})
	select {
	case l.ctl <- r:
	case <-done:
		return fmt.Errorf("pair %s is stopping", l.name)
	case <-ctx.Done():
		l.mu.Lock()
		busy, state := l.settingUp, l.st.State
		l.mu.Unlock()
		switch {
		case busy && state == StateStarting:
			return fmt.Errorf("pair %s is still starting (opening its state database and remote): try again "+
				"in a moment", l.name)
		case busy:
			return fmt.Errorf("pair %s is opening its state database and remote again (the last try failed: see "+
				"`tandem status`): try again in a moment", l.name)
		}
		return ctx.Err()
	}
	select {
	case <-r.reply:
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// loopState is what only the loop goroutine touches.
type loopState struct {
	deps    *PairDeps
	eng     *engine.Engine
	pending bool         // a pass is due
	scope   pendingScope // what it must look at: the watchers' paths since the last pass began, or everything
	// degraded is each watcher's last Degraded message: a new one means events may have gone unreported.
	degraded [2]string
	watch    [2]watchSide
	// wctx and wg own the watchers and the poller; a watcher that stops by itself reports on watchStop.
	wctx      context.Context
	wg        *sync.WaitGroup
	watchStop chan watchStop
	// pollT walks a remote that is neither watched nor followed through a feed, every poll interval.
	pollT  clockwork.Ticker
	scanT  clockwork.Timer // the safety-net scan
	scanIv time.Duration
	// relistT fires when a complete listing of a feed remote is due (nil: none is pending, or one is due
	// already and the next full pass makes it); relistIv is remote_relist_interval (0: off).
	relistT  clockwork.Timer
	relistIv time.Duration
	feed     bool // the remote is followed through its change feed (not walked): relisting applies
	// lastListing: when the last complete listing of the remote began, as armRelist last read it
	lastListing time.Time
	run         passKind // of the pass running
	running     bool
	passStart   time.Time
	cancelPass  context.CancelFunc
	paused      bool
	blocked     bool // safety stop or login required: no pass until resume
	rootStop    bool // the safety stop was a missing root: lifted when a watcher finds its folder back
	allowOnce   bool
	openAt      <-chan time.Time
	retryAt     <-chan time.Time
	openBack    backoff
	retryBack   backoff
	// retry is the paths that failed and have not been looked at since: the retry pass is scoped to them.
	retry       map[remote.Path]bool
	retryQueued bool // the pending scope holds them
	// fullEnd and fullTook describe the last full pass: the next one waits as long again after it (see
	// maxFullGap), so full passes never run back to back; fullAt fires when a held-back one may start.
	fullEnd  time.Time
	fullTook time.Duration
	fullAt   <-chan time.Time
}

// maxFullGap bounds the wait between two full passes (a very slow tree must still get its safety net).
const maxFullGap = 5 * time.Minute

// watchSide is one side's folder watcher as the loop sees it.
type watchSide struct {
	root   string // "" for a remote that has no folder to watch
	w      *watcher.Watcher
	ev     chan []watcher.Event // w's batches; nil while no watcher runs
	cancel context.CancelFunc
	first  bool             // w's first batch (its start-up rescan) has not arrived: passes wait for it
	rearm  <-chan time.Time // while unwatched: when to look whether the folder can be watched again
	back   backoff
}

// watchStop is a watcher that stopped by itself.
type watchStop struct {
	s   side
	w   *watcher.Watcher
	err error
}

func (ls *loopState) awaitingFirst() bool {
	return ls.watch[sideLocal].first || ls.watch[sideRemote].first
}

// passKind says what a pass looked at: everything (Scope nil, with the reason) or the paths in Scope.
type passKind struct {
	scope *engine.Scope
	why   string
	paths int
	// coversRetry: the pass looked at every path in loopState.retry.
	coversRetry bool
}

func (l *pairLoop) run(ctx context.Context) {
	ls := &loopState{
		openBack:  backoff{min: 2 * time.Second, max: 5 * time.Minute},
		retryBack: backoff{min: l.d.retryMin, max: 10 * time.Minute},
		retry:     map[remote.Path]bool{},
		watchStop: make(chan watchStop),
	}
	for s := range ls.watch {
		ls.watch[s].back = backoff{min: 250 * time.Millisecond, max: 5 * time.Second}
	}
	clk := l.d.clk
	var wg sync.WaitGroup // watchers and the poller
	wctx, stopWatch := context.WithCancel(ctx)
	ls.wctx, ls.wg = wctx, &wg
	done := make(chan passResult, 1)
	l.resetScan(ls, l.scanIv0)
	ls.relistIv = l.relistIv0

	defer func() {
		if ls.running {
			ls.cancelPass()
			<-done
		}
		stopWatch()
		wg.Wait()
		ls.scanT.Stop()
		if ls.relistT != nil {
			ls.relistT.Stop()
		}
		if ls.pollT != nil {
			ls.pollT.Stop()
		}
		if ls.deps != nil && ls.deps.Close != nil {
			if err := ls.deps.Close(); err != nil {
				l.lg.Warn("closing the pair", zap.Error(err))
			}
		}
		l.mu.Lock()
		l.deps = nil
		l.mu.Unlock()
	}()

	open := func() {
		l.mu.Lock()
		l.settingUp = true
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			l.settingUp = false
			l.mu.Unlock()
		}()
		deps, err := l.d.open(ctx, l.lg, l.cfg)
		if err == nil {
			var eng *engine.Engine
			eng, err = deps.NewEngine(false, l.progress)
			if err != nil {
				deps.Close()
			} else {
				ls.deps, ls.eng = deps, eng
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.failed(ls, err, "open")
			ls.openAt = clk.After(ls.openBack.next())
			return
		}
		ls.openBack.reset()
		l.mu.Lock()
		l.deps = ls.deps
		l.st.Local, l.st.Remote = ls.deps.Local, ls.deps.Spec
		l.mu.Unlock()
		l.readConflicts()
		ls.pending = true
		ls.scope.setFull(whyStartup)
		// The first batch of each watcher is a root rescan, sent once its watches are in place: the start-up
		// pass waits for them so that one pass covers both, and nothing changed meanwhile is missed.
		ls.watch[sideLocal].root = deps.Local
		l.arm(ls, sideLocal)
		switch {
		case deps.RemoteDir != "":
			ls.watch[sideRemote].root = deps.RemoteDir
			l.arm(ls, sideRemote)
		case deps.Remote.Capabilities().Feed:
			wg.Go(func() { l.poller(wctx, deps) })
			ls.feed = true
		default:
			ls.pollT = clk.NewTicker(l.cfg.EffectivePollInterval())
		}
		l.armRelist(ls)
	}

	start := func() {
		if ls.running || !ls.pending || ls.paused || ls.blocked || ls.deps == nil || ls.awaitingFirst() {
			return
		}
		if ls.scope.full && !ls.fullEnd.IsZero() {
			// Never two full passes back to back: a full pass asked for right after another (a retry, a
			// watcher overflow, a safety-net tick) waits as long as the last one took; events meanwhile
			// join it.
			if wait := ls.fullEnd.Add(min(ls.fullTook, maxFullGap)).Sub(clk.Now()); wait > 0 {
				if ls.fullAt == nil {
					ls.fullAt = clk.After(wait)
				}
				return
			}
		}
		eng := ls.eng
		if ls.allowOnce {
			e, err := ls.deps.NewEngine(true, l.progress)
			if err != nil {
				l.failed(ls, err, "pass")
				return
			}
			eng, ls.allowOnce = e, false
		}
		ls.pending, ls.running = false, true
		sc, why, n := ls.scope.take()
		l.takeRelistInterval(ls)
		if sc == nil && ls.relistDue(clk.Now()) {
			// A full pass whose remote listing is due lists the remote instead of reading its feed, whatever
			// started it: the timer, a retry after a failed listing, a reload, the start-up pass.
			eng.ListRemoteNext()
		}
		ls.run = passKind{scope: sc, why: why, paths: n, coversRetry: sc == nil || ls.retryQueued}
		ls.retryQueued = false
		ls.passStart = clk.Now()
		pctx, cancel := context.WithCancel(ctx)
		ls.cancelPass = cancel
		l.passBegins()
		eng.SetPassWhy(historyWhy(why, n)) // why, for the per-path history

		go func() { // owned: the loop always waits on done before it returns
			rep, err := eng.RunScoped(pctx, sc)
			done <- passResult{rep, err}
		}()
	}

	open()
	for {
		start()
		l.mu.Lock()
		l.st.Pending = ls.pending
		l.mu.Unlock()
		var pollC, relistC <-chan time.Time
		if ls.pollT != nil {
			pollC = ls.pollT.Chan()
		}
		if ls.relistT != nil {
			relistC = ls.relistT.Chan()
		}
		select {
		case <-ctx.Done():
			return
		case <-ls.openAt:
			ls.openAt = nil
			if ls.deps == nil && !ls.paused {
				open()
			}
		case evs := <-ls.watch[sideLocal].ev:
			l.watched(ls, sideLocal, evs)
		case evs := <-ls.watch[sideRemote].ev:
			l.watched(ls, sideRemote, evs)
		case ws := <-ls.watchStop:
			if ws.w == ls.watch[ws.s].w {
				l.unwatch(ls, ws.s, "is not watched: "+ws.err.Error())
				ls.scope.setFull(whyWatcher)
				ls.pending = true
			}
		case <-ls.watch[sideLocal].rearm:
			ls.watch[sideLocal].rearm = nil
			l.rearm(ls, sideLocal)
		case <-ls.watch[sideRemote].rearm:
			ls.watch[sideRemote].rearm = nil
			l.rearm(ls, sideRemote)
		case <-l.wake:
			ls.pending = true // a feed remote's news: the pass reads the feed and scopes itself to its paths
		case why := <-l.full:
			l.rearmAll(ls)
			ls.scope.setFull(why)
			ls.pending = true
		case iv := <-l.scanEvery:
			l.resetScan(ls, iv)
		case iv := <-l.relistEvery:
			l.setRelist(ls, iv)
		case <-relistC:
			// A feed remote's complete listing is due: the changes its feed never reported are found by it.
			ls.relistT = nil
			ls.scope.setFull(whyRelist)
			ls.pending = true
		case <-pollC:
			// A remote nobody watches and without a feed: walk it; the local side stays scoped to its
			// watcher's paths.
			ls.scope.rescanRemote()
			ls.pending = true
		case <-ls.scanT.Chan():
			// The safety net: a pass walks both sides stat-only, so a change no event reported still syncs.
			ls.scope.setFull(whySafetyNet)
			ls.pending = true
			l.resetScan(ls, ls.scanIv)
		case <-ls.fullAt:
			ls.fullAt = nil // start() runs the held-back full pass now
		case <-ls.retryAt:
			ls.retryAt = nil
			if len(ls.retry) == 0 {
				ls.scope.setFull(whyRetry) // a failed pass: whatever it had to look at is still to do
			} else {
				ls.scope.retry(ls.retry)
				ls.retryQueued = true
			}
			ls.pending = true
		case err := <-l.poll:
			l.polled(ls, err)
		case r := <-l.ctl:
			l.apply(ls, r)
			close(r.reply)
		case res := <-done:
			ls.running = false
			ls.cancelPass()
			l.passEnded(ls, res)
		}
	}
}
