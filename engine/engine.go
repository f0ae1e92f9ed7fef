// Package engine runs sync passes: observe both sides into the state store, plan with the three-way rules of
// DESIGN.md, execute through a bounded pool with every destructive action re-checked just before it acts, and
// commit each finished action in its own transaction.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/tandemsync/tandem/conflict"
	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Deps are the engine's seams: production wires the real ones, the simulation fakes (RELIABILITY section 6).
type Deps struct {
	Clock  clockwork.Clock
	Rand   *rand.Rand // conflict-free temp names and the simulation's executor order
	Local  remote.Remote
	Remote remote.Remote
	Store  *state.Store
	Exec   Executor // nil: a bounded pool of Options.Parallel
	Logger *zap.Logger
}

// Options are a pair's settings. The zero value is valid.
type Options struct {
	DryRun       bool
	Resync       bool    // drop the cursor and list the remote completely, reconciling against the base
	MaxDeletePct float64 // big-delete guard; 0 = 50; otherwise finite, above 0 and at most 100
	AllowDeletes bool
	// Window, when set, is the rolling delete budget the guard counts with each pass's own (the daemon's,
	// shared by a pair's passes); nil: each pass has its own budget only (`tandem once`).
	Window *DeleteWindow
	// Junk reports the files ignored by default as OS and editor droppings (.DS_Store, *.swp): unlike what the
	// user chose to ignore, they go to the trash with a folder deleted on the other side. nil: none.
	Junk     func(name string) bool
	Policy   conflict.Policy
	Host     string // for conflict names
	Parallel int    // transfers reading and writing at once (Pool); 0 = the remote's preference or 4
	// BandwidthLimit caps the pair's transfers, uploads and downloads together, in bytes per second (0: none).
	BandwidthLimit int64
	TrashDays      int // local trash retention; 0 = 30
	Ignored        func(p remote.Path, dir bool) bool
	MaxRounds      int // plan/execute rounds within a pass; 0 = 6
	// PathBackoff, when set, holds back a path whose action failed: it is not tried again for PathBackoff,
	// doubling with each failure in a row up to 10 minutes, in full and scoped passes alike (the daemon: 10 s).
	// Until then its action is reported as a problem without being tried.
	PathBackoff time.Duration
	// Progress, when set, hears about every action as it starts and ends (the CLI's progress bar, the daemon's status).
	Progress func(Event)
}

// Event is a progress notification: an action starts (Done false, Bytes 0), moves content (Progress true,
// Bytes so far, at most every progressStep), or ends (Done true).
type Event struct {
	Action   Action
	Done     bool
	Progress bool
	Bytes    int64
	Err      error
}

// Engine syncs one pair. Passes must not run concurrently on one Engine.
type Engine struct {
	d    Deps
	o    Options
	lg   *zap.Logger
	algo string // the digest both sides are compared by
	// purged: this process already purged old trash once
	purged bool
	// distrusted: distrustUnsynced marked what the unclean end left (the marks stay until a scan reads those
	// files, so the passes after it, scoped ones included, do not merge the three trees again)
	distrusted bool
	// tempID is the open journal entry naming tempSession, the session of the temp files this engine's
	// transfers create (0: none open). A session outlives a pass that ends with an error: the next one sweeps it.
	tempID      uint64
	tempSession string
	// tempLeft: a failed download may have left its temp file (its removal can fail too): keep the session's
	// journal entry, so the next pass sweeps it
	tempLeft atomic.Bool
	// resynced: Options.Resync's complete listing was done
	resynced bool
	// relist: ListRemoteNext asked for a complete listing, not yet begun
	relist bool
	// unconfirmedChecked: the remote writes noted in the store (unconfirmed.go) are this engine's own, which
	// confirmWrites looks at; false: a process or pass before left some, checkUnconfirmed looks at them
	unconfirmedChecked bool
	// maxUnconfirmed: more noted writes than this are checked by a complete listing (maxUnconfirmedStats)
	maxUnconfirmed int
	// leftDirs: folders a feed change's id moved an object out of, looked at when a feed read reaches the end
	// (checkLeftDirs); a read that failed after its cursor moved leaves them to the next pass's
	leftDirs map[remote.Path]bool
	limiter  *rate.Limiter // Options.BandwidthLimit; nil: none
	backoff  pathBackoff   // Options.PathBackoff
	// collided: collisions recorded for `tandem conflicts` by this process
	collided map[remote.Path]bool
	// confirmRounds bounds how often a pass plans what other clients wrote while it ran (RunPass)
	confirmRounds int
	// pass: the running pass's own state (pass.go); nil between passes
	pass *pass
	// passWhy: why the passes run, for the history (SetPassWhy)
	passWhy string
	// hashExec runs the digests a walk needs (observeWalkUnder)
	hashExec Executor
	// checkRoundPlan, set by tests, sees each later round of a full pass planned both ways: over the round's
	// roots (what runs) and over everything (what it must equal)
	checkRoundPlan func(roots []remote.Path, scoped, full []Action)
	// settledTag: what a settled mark must carry for this engine to believe it (settled.go)
	settledTag []byte
	// folds: the remote folds names (case, Unicode normalisation); no settled passes then (settled.go)
	folds bool
}

// New checks the dependencies and picks the digest the pair compares content with: the remote's preferred one
// if the local side can compute it, else sha256 (a remote without digests is then compared by reading its bytes).
func New(d Deps, o Options) (*Engine, error) {
	if d.Local == nil || d.Remote == nil || d.Store == nil {
		return nil, errors.New("engine: Local, Remote and Store are required")
	}
	if d.Clock == nil {
		d.Clock = clockwork.NewRealClock()
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Rand == nil {
		d.Rand = rand.New(rand.NewPCG(uint64(d.Clock.Now().UnixNano()), 0x7a6e64656d))
	}
	if o.MaxDeletePct == 0 {
		o.MaxDeletePct = 50
	}
	if !ValidMaxDelete(o.MaxDeletePct) {
		// NaN compares false with everything: it would let every delete through.
		return nil, fmt.Errorf("engine: max delete %g: want a percentage above 0 and at most 100", o.MaxDeletePct)
	}
	if o.Policy == "" {
		o.Policy = conflict.KeepBoth
	}
	if o.Host == "" {
		o.Host = "host"
	}
	if o.TrashDays == 0 {
		o.TrashDays = 30
	}
	if o.MaxRounds == 0 {
		o.MaxRounds = 6
	}
	if o.Parallel == 0 {
		o.Parallel = d.Remote.Capabilities().Parallel
		if o.Parallel == 0 {
			o.Parallel = 4
		}
	}
	// Digests of a walk run beside each other, fewer than transfers: each reads a whole file and digests it on
	// a CPU. An executor the caller gives (the simulation's seeded one) runs them too, so its runs replay.
	hashExec := d.Exec
	if hashExec == nil {
		hashExec = NewPool(min(max(runtime.GOMAXPROCS(0), 2), 8, o.Parallel))
	}
	if d.Exec == nil {
		d.Exec = NewPool(o.Parallel)
	}
	e := &Engine{d: d, o: o, lg: d.Logger.Named("engine").With(zap.String("remote", d.Remote.String())), algo: "sha256",
		limiter: newLimiter(o.BandwidthLimit), confirmRounds: 3, maxUnconfirmed: maxUnconfirmedStats,
		hashExec: hashExec}
	local := d.Local.Capabilities().Hashes
	for _, h := range d.Remote.Capabilities().Hashes {
		if slices.Contains(local, h) {
			e.algo = h
			break
		}
	}
	e.settledTag = settledTag(e.algo)
	e.folds = newFoldState(d.Remote.Capabilities()) != nil
	return e, nil
}

// Algo is the digest the pair compares content by.
func (e *Engine) Algo() string { return e.algo }

func (e *Engine) ignored(p remote.Path, dir bool) bool {
	return e.o.Ignored != nil && e.o.Ignored(p, dir)
}

// RunPass runs one full pass: start-up recovery, safety checks, observe both sides, then plan and execute rounds
// until a round plans nothing (or MaxRounds). It returns a Report of what happened; the error is non-nil for a
// safety stop or anything that ended the pass early (per-path problems are in the Report, not the error).
func (e *Engine) RunPass(ctx context.Context) (*Report, error) { return e.run(ctx, nil) }

// run runs a full pass (sc nil) or one scoped to sc.
func (e *Engine) run(ctx context.Context, sc *scopeState) (*Report, error) {
	start := e.d.Clock.Now()
	rep := &Report{Pair: e.d.Remote.String(), DryRun: e.o.DryRun}
	defer func() { rep.Took = e.d.Clock.Now().Sub(start) }()
	e.beginPass(rep, sc)
	defer func() {
		if e.pass.settled != nil {
			e.pass.settled.Stop()
		}
		e.pass = nil
	}()
	err := e.runPass(ctx, rep)
	var left []remote.Path
	for i := 0; ; i++ {
		news, cerr := e.confirmWrites(ctx, rep)
		if err == nil && cerr != nil {
			err = fmt.Errorf("read the remote's changes after the pass: %w", cerr)
		}
		if len(news) == 0 {
			break
		}
		if err != nil || i+1 >= e.confirmRounds {
			left = news
			break
		}
		// Another client changed the remote while this pass wrote to it: the feed read that moved the cursor
		// past tandem's writes also brought those changes into the store, and nothing else would plan them
		// before the next full pass (the daemon's poller follows the stored cursor). Plan them now.
		for _, p := range news {
			e.scopeAdd(p)
		}
		err = e.runRounds(ctx, rep, false)
	}
	if len(left) > 0 && !e.o.DryRun {
		// Still unplanned (the pass failed, or other clients kept writing): the next pass, scoped or not,
		// plans them; the poller cannot see them any more.
		if perr := e.savePending(left); perr != nil && err == nil {
			err = perr
		}
		rep.PendingRemote = len(left)
	}
	if err == nil && sc == nil && e.pass.afterUnclean {
		e.d.Store.Recovered() // a full pass saw everything the unclean end may have left
	}
	if err == nil {
		if kerr := e.keepSettled(ctx); kerr != nil {
			// The pass's work is done; the next full pass plans everything instead.
			e.lg.Warn("could not record that the pass left nothing to do", zap.Error(kerr))
		}
		e.closeTempSession()
	}
	return rep, err
}

func (e *Engine) runPass(ctx context.Context, rep *Report) error {
	if err := e.beginSettled(); err != nil {
		return err
	}
	unclean := e.d.Store.Unclean()
	e.pass.afterUnclean = unclean && !e.o.DryRun
	if !e.o.DryRun {
		if err := e.takePending(); err != nil {
			return err
		}
		if err := e.recover(ctx, rep); err != nil {
			return err
		}
	}
	// A dry run too: the marks change only the observed trees, as its scan does, and without them its plan
	// would trust the digests the real pass reads again (showing "record" where the real pass keeps both).
	if unclean && !e.distrusted {
		if err := e.distrustUnsynced(); err != nil {
			return err
		}
		e.distrusted = true
	}
	if err := e.checkRoots(ctx, rep); err != nil {
		return err
	}
	if err := e.observe(ctx, rep); err != nil {
		return err
	}
	if e.pass.settledAtStart && e.pass.scope == nil && !e.o.DryRun {
		e.pass.firstRoots = e.settledRoots(e.pass.settled)
	}
	return e.runRounds(ctx, rep, true)
}

// runRounds plans and executes until a round plans nothing (or MaxRounds), re-observing once after failures.
// Every plan of every round passes the root check (rootsChecked: the caller just did it for the first) and
// the big-delete guard, against one budget for the whole pass.
func (e *Engine) runRounds(ctx context.Context, rep *Report, rootsChecked bool) error {
	reobserved := false
	// next: in a full pass, what the round after a round with actions plans (nil: everything). Between two
	// rounds only the actions wrote to the store, at paths the round decided on (and below them): planning the
	// whole tree again cost a one-change pass over 100,000 files a second full merge of the three trees.
	// A pass that began settled plans its first round over what it wrote since (settled.go).
	next := e.pass.firstRoots
	e.pass.firstRoots = nil
	for round := 0; round < e.o.MaxRounds; round++ {
		e.pass.round = round
		if round > 0 || !rootsChecked {
			if err := e.verifyRoots(ctx); err != nil {
				return err
			}
		}
		plan := e.plan
		switch {
		case e.pass.scope != nil:
			plan = e.planScoped
		case next != nil:
			roots := next
			plan = func(ctx context.Context) ([]Action, error) { return e.planRound(ctx, roots) }
		}
		var gen uint64
		if e.canMarkSettled() { // a scoped pass's round (the daemon's every edit) reads nothing more
			var err error
			if gen, err = e.treeGen(); err != nil {
				return err
			}
		}
		acts, err := plan(ctx)
		if err != nil {
			return err
		}
		decided := e.pass.decided
		nothing := len(acts) == 0 && len(e.pass.collisions) == 0 // before anything is held back
		if err := e.reportCollisions(rep, e.pass.collisions); err != nil {
			return err
		}
		acts = e.dropSkipped(acts)
		if acts, err = e.dropKept(ctx, acts); err != nil {
			return err
		}
		if err := e.guard(acts); err != nil {
			rep.Planned = acts
			return err
		}
		if len(acts) == 0 {
			if nothing {
				return e.markSettled(ctx, gen)
			}
			return nil
		}
		rep.Rounds++
		if e.o.DryRun {
			// A dry run shows the first round: later rounds depend on what the first one does. After an
			// unclean end it shows the downloads as the real pass will run them (uncleanCompare).
			if e.d.Store.Unclean() {
				acts = slices.Clone(acts)
				for i := range acts {
					acts[i], _ = uncleanCompare(acts[i])
				}
			}
			rep.Planned = acts
			return nil
		}
		// Problems are those of the last round: a failure that a later round cured is not one.
		rep.mu.Lock()
		rep.Problems = nil
		rep.mu.Unlock()
		e.pass.failures.Store(0)
		progressed, err := e.execute(ctx, acts, rep)
		if err != nil {
			return err
		}
		next = e.nextRound(rep, decided)
		// What this round created elsewhere (move targets, conflict copies) is planned by the next one.
		for _, a := range acts {
			e.scopeAdd(a.Path)
			if a.To != "" {
				e.scopeAdd(a.To)
			}
		}
		for _, c := range rep.Conflicts {
			if c.Copy != "" {
				e.scopeAdd(c.Copy)
			}
		}
		if e.pass.failures.Load() > 0 && !reobserved {
			// Something changed under the plan (a precondition failed, a file moved on): look again once,
			// so the next round plans from what is there now.
			reobserved = true
			if err := e.observe(ctx, rep); err != nil {
				return err
			}
			next = nil // the observation may have found changes anywhere
			continue
		}
		if !progressed {
			return nil // every remaining action failed: report them, do not spin
		}
	}
	return nil
}

func (e *Engine) observe(ctx context.Context, rep *Report) error {
	if e.pass.scope != nil {
		return e.observeScoped(ctx, rep)
	}
	if e.d.Remote.Capabilities().Feed {
		if err := e.observeWalk(ctx, state.Local, rep); err != nil {
			return err
		}
		if err := fullWalkDone(); err != nil {
			return err
		}
		return e.observeFeed(ctx, rep)
	}
	// Both sides are walked (a dir: remote): at once, as each walk waits on its own disk and the store takes
	// the two sides' writes in separate transactions. Both walks end before the pass goes on, so a failed one
	// never leaves the other running; the local side's error is reported first.
	var rerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rerr = e.observeWalk(ctx, state.Remote, rep)
	}()
	lerr := e.observeWalk(ctx, state.Local, rep)
	<-done
	if lerr != nil {
		return lerr
	}
	if rerr != nil {
		return rerr
	}
	return fullWalkDone()
}

// fullWalkDone is where a test stretches a full pass (failpoint sleep) to see what the daemon does with changes
// made meanwhile.
func fullWalkDone() error { return failpoint.Hit("observe.fullWalk") }

// plan streams the three trees through the planner.
func (e *Engine) plan(ctx context.Context) ([]Action, error) {
	pl := e.newPlanner()
	err := mergeStore(e.d.Store, func(p remote.Path, b *state.Base, l, r *state.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		pl.add(p, b, l, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return viewOne(e.d.Store, func(r state.Reader) ([]Action, error) { return pl.finish(baseIDs(r)), nil })
}

// newPlanner is a planner with the pair's ignore rules and the remote's name folding; the plan's collisions
// land in the pass's collisions when it finishes.
func (e *Engine) newPlanner() *planner {
	e.pass.collisions = nil
	e.pass.decided = nil
	return &planner{ignored: e.o.Ignored, fold: newFoldState(e.d.Remote.Capabilities()), done: func(pl *planner) {
		if pl.fold != nil {
			e.pass.collisions = pl.fold.collisions
		}
		e.pass.decided = pl.decided
	}}
}

// checkRoots is the unmount guard: a side whose root or marker vanished stops the pass while the base says the
// pair has synced before; on a first sync the markers are created.
func (e *Engine) checkRoots(ctx context.Context, rep *Report) error {
	synced, err := viewOne(e.d.Store, state.Reader.HasBase)
	if err != nil {
		return err
	}
	for _, side := range e.rootCheckers() {
		err := side.CheckRoot(ctx)
		switch {
		case err == nil:
		case errors.Is(err, remote.ErrRootMissing) && !synced:
			if e.o.DryRun {
				continue
			}
			if err := side.InitRoot(ctx); err != nil {
				return fmt.Errorf("prepare %s: %w", side, err)
			}
		case errors.Is(err, remote.ErrRootMissing) && e.o.Resync && !e.o.DryRun:
			// The user has seen the safety stop and asked for a new start: the old sync point cannot tell a
			// deleted file from one that was never on this side any more, so it is dropped and the pass is a
			// union merge, which deletes nothing.
			if err := side.InitRoot(ctx); err != nil {
				return fmt.Errorf("prepare %s: %w", side, err)
			}
			if err := e.d.Store.Update(func(w state.Writer) error { return w.DeleteBaseTree(remote.Root) }); err != nil {
				return err
			}
			e.lg.Warn("root had lost its marker: merging both sides without the old sync point; nothing is deleted",
				zap.String("root", fmt.Sprint(side)))
			rep.Resynced = true
			synced = false
		case errors.Is(err, remote.ErrRootMissing):
			// How to start over differs between `tandem once` and the daemon (which holds the database): the
			// caller says it.
			return fmt.Errorf("%w: %w; nothing was changed. If the folder was moved or unmounted, put it back",
				ErrSafetyStop, err)
		default:
			return fmt.Errorf("check the sync root: %w", err)
		}
	}
	return nil
}

// found turns a lookup's (value, ok, error) into a pointer to the value, nil when there is none.
func found[T any](v T, ok bool, err error) (*T, error) {
	if err != nil || !ok {
		return nil, err
	}
	return &v, nil
}

// stored is the record the store holds at p on side (nil: none).
func (e *Engine) stored(side state.Side, p remote.Path) (*state.Record, error) {
	return viewOne(e.d.Store, func(r state.Reader) (*state.Record, error) { return found(r.Get(side, p)) })
}

// viewOne reads one value in a read transaction.
func viewOne[T any](st *state.Store, get func(state.Reader) (T, error)) (T, error) {
	var v T
	err := st.View(func(r state.Reader) error {
		var err error
		v, err = get(r)
		return err
	})
	return v, err
}
