package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
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

	mu        sync.Mutex // guards st, transfers and deps for the status handlers
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

// control sends a request to the loop and waits until it has been applied (or the loop has ended).
func (l *pairLoop) control(ctx context.Context, done <-chan struct{}, r ctlReq) error {
	r.reply = make(chan struct{})
	select {
	case l.ctl <- r:
	case <-done:
		return fmt.Errorf("pair %s is stopping", l.name)
	case <-ctx.Done():
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

// takeRelistInterval applies a remote_relist_interval a reload sent, if one waits: the reload's full pass,
// which may already be starting, must see it.
func (l *pairLoop) takeRelistInterval(ls *loopState) {
	select {
	case iv := <-l.relistEvery:
		l.setRelist(ls, iv)
	default:
	}
}

func (l *pairLoop) setRelist(ls *loopState, iv time.Duration) {
	ls.relistIv = iv
	l.armRelist(ls)
}

// relistDue: the remote is followed through its feed and its last complete listing is at least the relist
// interval old (or there was none).
func (ls *loopState) relistDue(now time.Time) bool {
	if !ls.feed || ls.relistIv <= 0 {
		return false
	}
	l := ls.lastListing
	return l.IsZero() || !now.Before(l.Add(ls.relistIv))
}

// armRelist reads when the remote was last listed completely (the state database keeps it, so a daemon
// restarted every hour still lists daily) and sets the timer for the next listing. A listing due already gets
// no timer: the next full pass makes it (start), and a pass that fails before listing is retried with the
// backoff of failed passes rather than at once.
func (l *pairLoop) armRelist(ls *loopState) {
	if ls.relistT != nil {
		ls.relistT.Stop()
		ls.relistT = nil
	}
	if ls.eng == nil {
		return
	}
	last, err := ls.eng.LastListing()
	if err != nil {
		l.lg.Warn("reading when the remote was last listed", zap.Error(err))
		last = ls.lastListing
	}
	ls.lastListing = last
	var next time.Time
	if ls.feed && ls.relistIv > 0 && !last.IsZero() {
		next = last.Add(ls.relistIv)
		if wait := next.Sub(l.d.clk.Now()); wait > 0 {
			ls.relistT = l.d.clk.NewTimer(wait)
		}
	}
	l.mu.Lock()
	l.lastListing, l.nextRelist = last, next
	l.mu.Unlock()
}

// resetScan (re)starts the safety-net timer: the next full scan is due iv from now.
func (l *pairLoop) resetScan(ls *loopState, iv time.Duration) {
	if ls.scanT != nil {
		ls.scanT.Stop()
	}
	ls.scanIv = iv
	ls.scanT = l.d.clk.NewTimer(iv)
	l.mu.Lock()
	l.nextScan = l.d.clk.Now().Add(iv)
	l.mu.Unlock()
}

// arm starts a watcher on side s's folder. Its first batch is a rescan of the whole folder, which the next
// pass waits for. If the folder cannot be watched, the side is left unwatched and tried again later.
func (l *pairLoop) arm(ls *loopState, s side) {
	ws := &ls.watch[s]
	lg := l.lg
	if s == sideRemote {
		lg = lg.Named("remote")
	}
	w, err := watcher.New(lg, ws.root, watcher.Options{Debounce: watchDebounce, Ignore: ls.deps.Ignored})
	if err != nil {
		l.unwatch(ls, s, "is not watched: "+err.Error())
		return
	}
	ctx, cancel := context.WithCancel(ls.wctx)
	ev := make(chan []watcher.Event)
	ws.w, ws.ev, ws.cancel, ws.first, ws.rearm = w, ev, cancel, true, nil
	stop := ls.watchStop
	ls.wg.Go(func() {
		if err := w.Run(ctx, ev); err != nil {
			select {
			case stop <- watchStop{s: s, w: w, err: err}:
			case <-ctx.Done():
			}
		}
	})
	if s == sideRemote && ls.pollT != nil {
		ls.pollT.Stop()
		ls.pollT = nil
	}
	ls.degraded[s] = ""
	l.mu.Lock()
	if s == sideLocal {
		l.localW = w
	} else {
		l.remoteW = w
	}
	l.unwatched[s] = ""
	l.mu.Unlock()
}

// unwatch stops side s's watcher (if any) and records why the side is not watched; status shows the pair as
// degraded until it is watched again. The loop looks again after a backoff, and at once on resume, rescan or
// SIGHUP. Meanwhile a `dir:` remote is walked every poll interval; the local side waits for a full pass.
func (l *pairLoop) unwatch(ls *loopState, s side, why string) {
	ws := &ls.watch[s]
	if ws.cancel != nil {
		ws.cancel()
	}
	ws.w, ws.ev, ws.cancel, ws.first = nil, nil, nil, false
	ws.rearm = l.d.clk.After(ws.back.next())
	if s == sideRemote && ls.pollT == nil {
		ls.pollT = l.d.clk.NewTicker(l.cfg.EffectivePollInterval())
	}
	ls.degraded[s] = ""
	msg := sideWord(s) + " folder " + why
	l.mu.Lock()
	if l.unwatched[s] != msg { // once per cause, not on every retry
		l.lg.Warn("folder not watched; tandem watches it again once it can", zap.String("side", sideWord(s)),
			zap.String("path", ws.root), zap.String("why", why))
	}
	if s == sideLocal {
		l.localW = nil
	} else {
		l.remoteW = nil
	}
	l.unwatched[s] = msg
	l.mu.Unlock()
}

// rearm watches side s again if its folder is back. The new watcher's first batch makes the next pass a full
// one; a safety stop for a missing root is lifted, since that pass checks the roots again.
func (l *pairLoop) rearm(ls *loopState, s side) {
	ws := &ls.watch[s]
	if ws.w != nil || ws.root == "" || ls.deps == nil {
		return
	}
	if fi, err := os.Stat(ws.root); err != nil || !fi.IsDir() {
		ws.rearm = l.d.clk.After(ws.back.next())
		return
	}
	l.arm(ls, s)
	if ws.w == nil {
		return
	}
	ws.back.reset()
	l.lg.Info("watching the folder again", zap.String("side", sideWord(s)), zap.String("path", ws.root))
	ls.scope.setFull(whyWatchBack)
	ls.pending = true
	if ls.rootStop {
		ls.blocked, ls.rootStop = false, false
		if !ls.paused && !ls.running {
			l.setState(StateIdle, "")
		}
	}
}

// rearmAll tries at once every side that is not watched (resume, rescan, SIGHUP).
func (l *pairLoop) rearmAll(ls *loopState) {
	for s := range ls.watch {
		l.rearm(ls, side(s))
	}
}

func sideWord(s side) string {
	if s == sideLocal {
		return "local"
	}
	return "remote"
}

// watched adds a watcher batch of side s to the next pass's scope. A watcher that reports a new Degraded
// message (the watch limit reached, the queue overflowed) may have missed events: the next pass is a full
// one. A watcher whose folder itself went away watches nothing any more: it is stopped, and the loop watches
// the folder again once it is back.
func (l *pairLoop) watched(ls *loopState, s side, evs []watcher.Event) {
	ws := &ls.watch[s]
	if ws.first && len(evs) == 1 && evs[0].Subtree && evs[0].Path == "" {
		ws.first = false
	}
	ls.scope.add(s, evs)
	if w := ws.w; w != nil {
		if d := w.Degraded(); d != ls.degraded[s] {
			ls.degraded[s] = d
			if d != "" {
				ls.scope.setFull(whyWatcher)
			}
		}
		if w.Gone() {
			l.unwatch(ls, s, "was moved or deleted: not watched until it is back")
			ls.scope.setFull(whyWatcher)
		}
	}
	ls.pending = true
}

func (l *pairLoop) apply(ls *loopState, r ctlReq) {
	switch r.op {
	case opPause:
		ls.paused = true
		if ls.running {
			ls.cancelPass() // actions are atomic: a cancelled transfer leaves only a temp file, swept later
		}
		l.setState(StatePaused, "paused: run `tandem resume "+l.name+"` to continue")
	case opResume:
		wasBlocked := ls.paused || ls.blocked
		ls.paused, ls.blocked, ls.rootStop = false, false, false
		ls.allowOnce = ls.allowOnce || r.allowDeletes
		l.rearmAll(ls)
		ls.scope.setFull(whyResume)
		ls.pending = true
		if ls.deps == nil {
			ls.openBack.reset()
			ls.openAt = l.d.clk.After(0)
		}
		if wasBlocked && !ls.running {
			l.setState(StateIdle, "")
		}
	case opRescan:
		l.rearmAll(ls)
		ls.scope.setFull(whyRescan)
		ls.pending = true
	case opLogout:
		ls.blocked = true
		if ls.running {
			ls.cancelPass()
		}
		l.setState(StateLoginRequired, loggedOutMsg(l.cfg, l.name))
	}
}

// polled records the poller's outcome: news arrive as kicks, failures here.
func (l *pairLoop) polled(ls *loopState, err error) {
	now := l.d.clk.Now()
	switch {
	case err == nil:
		l.mu.Lock()
		l.remoteAt = now
		l.mu.Unlock()
	case errors.Is(err, remote.ErrUnauthorized):
		ls.blocked = true
		l.loginRequired(err)
	default:
		l.mu.Lock()
		l.st.LastError, l.lastErrAt = "watching remote changes: "+err.Error(), now
		l.mu.Unlock()
	}
}

func (l *pairLoop) loginRequired(err error) {
	l.d.m.errors.WithLabelValues(l.name).Inc()
	l.setState(StateLoginRequired, l.loginMsg(err))
}

func (l *pairLoop) loginMsg(err error) string {
	return fmt.Sprintf("the remote refused the stored login (%v): log in again, then run `tandem resume %s`", err, l.name)
}

// failed records an error outside a pass's normal outcome.
func (l *pairLoop) failed(ls *loopState, err error, what string) {
	l.d.m.errors.WithLabelValues(l.name).Inc()
	if errors.Is(err, remote.ErrUnauthorized) {
		ls.blocked = true
		l.loginRequired(err)
		return
	}
	l.lg.Error(what+" failed", zap.Error(err))
	l.mu.Lock()
	l.st.LastError, l.lastErrAt = err.Error(), l.d.clk.Now()
	l.mu.Unlock()
	l.setState(StateError, err.Error())
}

func (l *pairLoop) setState(s, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.State, l.st.Message = s, msg
}

func (l *pairLoop) passBegins() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.State, l.st.Message = StateScanning, ""
	l.passStart = l.d.clk.Now()
	l.st.PassBytesDone, l.st.PassBytesTotal, l.st.Queue = 0, 0, 0
	clear(l.transfers)
}

// progress is the engine's Progress hook; it runs on the pool's goroutines.
func (l *pairLoop) progress(ev engine.Event) {
	a := ev.Action
	key := a.Op.String() + "\x00" + string(a.Path)
	n := a.Bytes()
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev.Progress {
		if t := l.transfers[key]; t != nil {
			t.Done = ev.Bytes
		}
		return
	}
	if l.st.State == StateScanning {
		l.st.State = StateSyncing
	}
	if !ev.Done {
		l.st.Queue++
		l.st.PassBytesTotal += n
		l.transfers[key] = &Transfer{Path: remote.Escape(string(a.Path)), Op: a.Op.String(), Total: n, Started: l.d.clk.Now()}
		return
	}
	l.st.Queue--
	delete(l.transfers, key)
	if ev.Err != nil {
		return
	}
	l.st.PassBytesDone += n
	l.d.m.actions.WithLabelValues(l.name, a.Op.String()).Inc()
	switch a.Op {
	case engine.Upload:
		l.d.m.bytes.WithLabelValues(l.name, "up").Add(float64(n))
	case engine.Download:
		l.d.m.bytes.WithLabelValues(l.name, "down").Add(float64(n))
	}
}

func (l *pairLoop) passEnded(ls *loopState, res passResult) {
	now := l.d.clk.Now()
	rep, err := res.rep, res.err
	run := ls.run
	full := run.scope == nil
	if full {
		ls.fullEnd, ls.fullTook = now, now.Sub(ls.passStart)
	}
	info := &PassInfo{Result: "ok", Scope: "scoped", Paths: run.paths}
	if full {
		info.Scope, info.Reason = "full", run.why
	}
	if rep != nil {
		info.RemoteListed = rep.FullListing
		rep.Sort()
		l.noteSkips(rep.Skipped, full && err == nil)
		t := rep.Totals()
		info.TookMS = rep.Took.Milliseconds()
		info.Uploaded, info.Downloaded = t.Uploaded, t.Downloaded
		info.Deleted, info.Moved = t.DeletedLocal+t.DeletedRemote, t.MovedLocal+t.MovedRemote
		info.Bytes = t.UpBytes + t.DownBytes
		l.d.m.passDur.WithLabelValues(l.name).Observe(rep.Took.Seconds())
	}
	// Everything this pass changes in status is published at once, below: a reader never sees the pass
	// counted (or the pair idle) without its LastPass.
	state, msg := "", "" // "" keeps the state
	var lastErr string
	problems := -1
	switch {
	case err == nil:
		n := len(rep.Problems)
		problems = n
		if n > 0 {
			info.Result = "problems"
			p := rep.Problems[0]
			lastErr = fmt.Sprintf("%d paths failed, e.g. %s %s: %s (retried)", n, p.Op, remote.Escape(string(p.Path)), p.Err)
		}
		// The engine plans a failed path again only when a pass looks at it: the retry is a pass scoped to
		// the failed paths (on both sides), not a full one, so a path that fails again and again (a file
		// rewritten faster than a full pass takes) costs a small pass each time. Its wait doubles while paths
		// keep failing; events for those paths bring them back sooner through the watchers.
		if !run.coversRetry {
			for _, p := range rep.Problems {
				ls.retry[p.Path] = true
			}
		} else {
			clear(ls.retry)
			for _, p := range rep.Problems {
				ls.retry[p.Path] = true
			}
		}
		switch {
		case len(ls.retry) == 0:
			ls.retryBack.reset()
			ls.retryAt = nil
		case ls.retryAt == nil:
			ls.retryAt = l.d.clk.After(ls.retryBack.next())
		}
		if rep.PendingRemote > 0 {
			// Remote changes the pass read but left unplanned: the poller, which follows the stored cursor,
			// will not report them again; the engine keeps them for the next pass, which runs now.
			ls.pending = true
		}
		if !ls.paused {
			state = StateIdle
		}
		what := zap.Int("paths", info.Paths)
		if full {
			what = zap.String("reason", info.Reason)
		}
		l.lg.Info("pass done", zap.String("scope", info.Scope), what, zap.Int("up", info.Uploaded),
			zap.Int("down", info.Downloaded), zap.Int("deleted", info.Deleted), zap.Int("moved", info.Moved),
			zap.Int("problems", n), zap.Int64("took_ms", info.TookMS))
	case ls.paused || errors.Is(err, context.Canceled):
		info.Result = "cancelled"
		ls.pending = true // whatever it was doing is still to do
		ls.scope.setFull(whyCancelled)
		if ls.paused {
			state, msg = StatePaused, "paused: run `tandem resume "+l.name+"` to continue"
		}
	case errors.Is(err, remote.ErrUnauthorized):
		info.Result = "error"
		ls.blocked = true
		ls.scope.setFull(whyFailed)
		l.d.m.errors.WithLabelValues(l.name).Inc()
		state, msg = StateLoginRequired, l.loginMsg(err)
	case errors.Is(err, engine.ErrSafetyStop):
		info.Result = "error"
		ls.blocked = true
		ls.rootStop = errors.Is(err, remote.ErrRootMissing)
		ls.scope.setFull(whyFailed)
		l.d.m.errors.WithLabelValues(l.name).Inc()
		hint := "fix the cause, then run `tandem resume " + l.name + "`"
		if errors.Is(err, engine.ErrBigDelete) {
			hint = "if the deletes are intended, run `tandem resume --allow-deletes " + l.name + "`"
		} else if errors.Is(err, remote.ErrRootMissing) {
			// `tandem once --resync` cannot open the database while this daemon holds it.
			hint = "when the folder is back, run `tandem resume " + l.name + "`; if this is a new start, stop " +
				"tandem, run `tandem once --resync` on the pair (with --state-dir " + l.d.o.StateDir + "), then start tandem again"
		}
		l.lg.Error("safety stop", zap.Error(err))
		lastErr = err.Error()
		state, msg = StateError, err.Error()+"; "+hint
	default:
		info.Result = "error"
		l.d.m.errors.WithLabelValues(l.name).Inc()
		l.lg.Error("pass failed", zap.Error(err))
		lastErr = err.Error()
		state, msg = StateError, err.Error()+"; retrying"
		// Whatever the pass had to look at is still to do, and more may have gone wrong: the next pass
		// (the retry, or an earlier one for new events) walks both sides.
		ls.scope.setFull(whyFailed)
		ls.retryAt = l.d.clk.After(ls.retryBack.next())
	}
	l.d.m.passes.WithLabelValues(l.name, info.Result).Inc()
	l.mu.Lock()
	l.st.Passes++
	clear(l.transfers)
	l.st.Queue = 0
	if err == nil {
		l.lastSync, l.remoteAt = now, now
		if rep.Resynced {
			l.resynced = now
		}
	}
	if problems >= 0 {
		l.st.Problems = problems
	}
	if lastErr != "" {
		l.st.LastError, l.lastErrAt = lastErr, now
	}
	if state != "" {
		l.st.State, l.st.Message = state, msg
	}
	l.st.LastPass = info
	l.mu.Unlock()
	l.readConflicts()
	l.armRelist(ls)
	// The stored cursor may have moved (a new pair has its first only now): the poller looks again at once.
	select {
	case l.passed <- struct{}{}:
	default:
	}
}

func (l *pairLoop) readConflicts() {
	l.mu.Lock()
	deps := l.deps
	l.mu.Unlock()
	if deps == nil {
		return
	}
	n := 0
	if err := deps.Store.View(func(r state.Reader) error {
		return r.Conflicts(func(state.Conflict) error { n++; return nil })
	}); err != nil {
		l.lg.Warn("reading conflicts", zap.Error(err))
		return
	}
	l.mu.Lock()
	l.st.Conflicts = n
	l.mu.Unlock()
}

// conflicts lists the pair's recorded conflicts (none while the pair is not open).
func (l *pairLoop) conflicts() ([]ConflictInfo, error) {
	l.mu.Lock()
	deps := l.deps
	l.mu.Unlock()
	if deps == nil {
		return nil, nil
	}
	var out []ConflictInfo
	err := deps.Store.View(func(r state.Reader) error {
		return r.Conflicts(func(c state.Conflict) error {
			out = append(out, ConflictInfo{Pair: l.name, Path: string(c.Path), Copy: string(c.Copy),
				At: time.Unix(0, c.At).UTC(), Reason: c.Reason})
			return nil
		})
	})
	return out, err
}

// snapshot is the pair's status now.
func (l *pairLoop) snapshot() PairStatus {
	now := l.d.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.st
	s.Transfers = make([]Transfer, 0, len(l.transfers))
	for _, t := range l.transfers {
		s.Transfers = append(s.Transfers, *t)
	}
	sort.Slice(s.Transfers, func(i, j int) bool { return s.Transfers[i].Path < s.Transfers[j].Path })
	if s.State == StateSyncing || s.State == StateScanning {
		moved := s.PassBytesDone
		for _, t := range s.Transfers {
			moved += t.Done // bytes of transfers still running
		}
		if el := now.Sub(l.passStart).Seconds(); el > 0 {
			s.Rate = float64(moved) / el
		}
	}
	var msgs, unwatched []string
	for i, w := range []*watcher.Watcher{l.localW, l.remoteW} {
		switch {
		case l.unwatched[i] != "":
			msgs = append(msgs, l.unwatched[i])
			unwatched = append(unwatched, sideWord(side(i)))
		case w != nil && w.Degraded() != "":
			msgs = append(msgs, w.Degraded())
		}
	}
	if len(unwatched) > 0 && s.State == StateIdle {
		// Not idle: changes on that side wait for the next full pass until its folder is watched again.
		s.State = StateDegraded
		s.Message = "the " + strings.Join(unwatched, " and the ") + " folder is not watched: its changes sync " +
			"with the next full pass (`tandem rescan " + l.name + "` runs one now); tandem watches it again once it can"
	}
	s.NextFullScan = timePtr(l.nextScan)
	s.LastRemoteListing = timePtr(l.lastListing)
	s.NextRemoteRelist = timePtr(l.nextRelist)
	s.Watcher = strings.Join(msgs, "; ")
	if l.deps != nil {
		if ro, ok := l.deps.Remote.(interface{ ReadOnly() bool }); ok && ro.ReadOnly() {
			s.ReadOnly = true
		}
	}
	s.LastSync = timePtr(l.lastSync)
	s.LastErrorAt = timePtr(l.lastErrAt)
	s.Resynced = timePtr(l.resynced)
	s.Skipped = append([]SkipInfo{}, l.skips...)
	s.CursorAge = -1
	if !l.remoteAt.IsZero() {
		s.CursorAge = now.Sub(l.remoteAt).Seconds()
	}
	return s
}

// maxSkips bounds the skipped paths status keeps (a tree full of symlinks must not grow the daemon).
const maxSkips = 200

// noteSkips merges a pass's skipped paths into status; a complete full pass replaces them (what it did not
// skip is no longer skipped).
func (l *pairLoop) noteSkips(skips []engine.Skip, replace bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if replace {
		l.skips = nil
	}
	for _, sk := range skips {
		i := slices.IndexFunc(l.skips, func(x SkipInfo) bool { return x.Path == remote.Escape(string(sk.Path)) && x.Side == sk.Side })
		info := SkipInfo{Path: remote.Escape(string(sk.Path)), Side: sk.Side, Reason: sk.Reason}
		switch {
		case i >= 0:
			l.skips[i] = info
		case len(l.skips) < maxSkips:
			l.skips = append(l.skips, info)
		}
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
