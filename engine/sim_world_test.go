package engine

// The simulation's world: the ledger of versions, the fake disk and remote, the store, views of the sides.
// See sim_test.go.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/remote/remotetest"
	"github.com/tandemsync/tandem/state"
)

// ---------------------------------------------------------------------------------------------------------
// The world of one seed.

type simVersion struct {
	side    string // "L" or "R": where the user wrote it
	path    string
	sha     string // sha256 hex of the content
	step    int
	exempt  bool
	pending bool // written locally and not yet written back: a power loss may take it
	// moved: pending because the user moved it (-sim.lazydisk): a power loss may lose it with the folder it went
	// into, and to the engine that is the user's delete (crash)
	moved bool
	// movedVia: the local paths the user's mvs since the last power loss took it from and to (each mv's source
	// and destination). A power loss keeps or undoes each mv, so the version's file, if any is left, sits at one
	// of them (crash).
	movedVia []string
	// trashed: the user deleted it where both sides held it; the delete must take it to a trash (checked after
	// every pass), so it need not be live at quiescence.
	trashed bool
	// trashedAt: where it was when the user deleted it, the paths the engine's delete must take it from. Not
	// path, which is where the user wrote it: a move by either user or by tandem may have taken it elsewhere
	// since (seeds 60123, 26930), and a file the user puts back at one of these paths is an edit there (replaced).
	trashedAt []string
	// lastSeenL: the local paths that held it when the last pass ended. A user's mv that no pass saw is no move
	// to the engine: deleted after such a mv, the version was, to the engine, deleted where the pass saw it, and
	// a file the user writes there is an edit of it (replaced; seed 502637: mv café Café; rm -r Café; mkdir
	// café; write café/a, one folder replaced in the engine's eyes).
	lastSeenL []string
	// seen: a pass that began after the write finished without a crash, so the engine had the chance to make
	// it durable before relying on it (-sim.lazydisk holds the engine to that only for writes it saw).
	seen bool
	// away: exempt only while its folder is on another disk (opFolderToSkip, sim_guard_test.go). A user's discard
	// meanwhile clears it, so the folder's return does not make owed again a version given up while away (seed 170765).
	away bool
}

type world struct {
	t     testing.TB
	seed  uint64
	steps int
	tot   *simTotals
	rng   *rand.Rand
	clk   *clockwork.FakeClock
	dir   string
	ctx   context.Context

	ffs  *fakefs.FS
	ldir *localdir.Dir
	mem  *memremote.Mem

	// What a local watcher would have reported since the last clean pass; fullNext: the next pass must be
	// full (start-up after a crash, or a scoped pass that did not finish cleanly), as the daemon does.
	scopeL   []ScopePath
	fullNext bool
	L, R     *simSide

	st  *state.Store
	eng *Engine
	o   Options

	// ledger
	versions []*simVersion
	known    map[string]bool // every content hash (sha256) ever seen as a user's or a power loss's
	counter  int

	// fault state, per pass
	inPass     bool
	faultsOn   bool
	crashAt    int // the mutating call (either side) at which the pass crashes; 0: none
	fsFaultAt  int
	fsFaultErr error
	mutCalls   int // mutating calls by the engine this pass (both sides)
	syncCalls  int // of those, local fsyncs: durability, not a change (I8's idle pass allows them)
	crashed    bool
	cancel     context.CancelFunc
	raceLocal  remote.Path // a user edit lands here when a temp file is created in its folder
	// raced is the content of the last race edit (raceEdit) and raceSeq counts them: a Put a race landed in and
	// that left the race's content in place destroyed nothing (simSide.Put's I1 check).
	raced   pre
	racedAt remote.Path
	racedOn *simSide
	raceSeq int
	// raceAtRename: the edit at raceLocal lands at the download's rename instead, after every check the Put
	// made: a plain rename replaced it there (a new file, or an edit of the file the download replaces)
	raceAtRename bool
	raceRemote   remote.Path // a user edit lands here while the upload's body is in flight
	racesOn      bool
	passDels     int
	lastErr      error
	peeking      bool // the oracle is looking: no faults, no counting

	step      int
	trace     []string
	failed    bool
	violation string

	// Hooks of the extra operations (sim_*_test.go); nil: none.
	foldR       func(string) string // the remote folds names (a case-folding memremote)
	names       *simNamesState
	openHook    func(p remote.Path, rc io.ReadCloser) io.ReadCloser // the engine opens a local file
	actHook     func(a Action)                                      // an engine action starts
	forceScoped bool                                                // the next pass is scoped (unless fullNext)

	// Hooks for operations registered from other files (sim_*_test.go): hide leaves entries out of a side's
	// view (ignored files, symlinks); onProgress hears every engine event; beforePass and afterPass wrap each
	// pass (afterPass checks invariants); diffFilter adjusts what convergence compares; passFileDels holds the
	// paths of the files the engine deleted in the running pass, per side (0 local, 1 remote): a file deleted
	// again after a power loss undid its first delete is one file, as the engine's budget counts by path.
	hide         func(s *simSide, p, h string) bool
	onProgress   func(ev Event)
	beforePass   []func()
	afterPass    []func(rep *Report, err error)
	diffFilter   func(l, r []simEntry) ([]simEntry, []simEntry)
	passFileDels [2]map[string]bool
	guard        *simGuard // sim_guard_test.go's state of this world
}

// simWorldSetup runs for every new world before its store and engine are made (registered by init()).
var simWorldSetup []func(w *world)

// simWorldHooks shape a world before its remote is made (registered by init() in sim_*_test.go files).
var simWorldHooks []func(w *world, mo *memremote.Options)

var errSimCrash = fmt.Errorf("simulated crash: %w", context.Canceled)

func (w *world) logf(format string, args ...any) {
	l := fmt.Sprintf("%d: ", w.step) + fmt.Sprintf(format, args...)
	w.trace = append(w.trace, strings.ReplaceAll(l, w.dir, "$DIR"))
}

func (w *world) traceHash() string {
	h := sha256.New()
	for _, l := range w.trace {
		io.WriteString(h, l)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// fail records the first violation of an invariant; the seed stops there.
func (w *world) fail(inv, format string, args ...any) {
	if w.failed {
		return
	}
	w.failed = true
	w.violation = fmt.Sprintf("%s: %s", inv, fmt.Sprintf(format, args...))
	w.logf("VIOLATION %s", w.violation)
	w.t.Errorf("seed %d step %d: %s\nreplay: go test ./engine -run TestSimRandomOps%s -sim.seed=%d -v",
		w.seed, w.step, w.violation, simModeFlags(w.steps), w.seed)
}

// simModeFlags are the flags besides the seed that shape a run, so a replay line reproduces the run it came from.
func simModeFlags(steps int) string {
	var b strings.Builder
	if *simLazyDisk {
		b.WriteString(" -sim.lazydisk")
	}
	if *simSyncFaults {
		b.WriteString(" -sim.syncfaults")
	}
	if steps != simStepsDefault {
		fmt.Fprintf(&b, " -sim.steps=%d", steps)
	}
	return b.String()
}

var emptySHA = shaHex(nil)

func shaHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func digestHex(algo string, b []byte) string {
	h, err := remote.NewDigest(algo)
	if err != nil {
		panic(err)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func simTempDir(t testing.TB) string {
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm" // fsync-free: bbolt commits cost memory copies, not disk flushes
	}
	d, err := os.MkdirTemp(base, "tandem-sim-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newWorld(t testing.TB, seed uint64, steps int, tot *simTotals) *world {
	w := &world{t: t, seed: seed, steps: steps, tot: tot, known: map[string]bool{}, ctx: context.Background()}
	if w.tot == nil {
		w.tot = &simTotals{}
	}
	w.rng = rand.New(rand.NewPCG(seed, 0x73696d))
	w.clk = startClock()
	w.dir = simTempDir(t)
	// A third of the seeds make the local side's writes durable with one syncfs each instead of their own
	// fsyncs (production does so when many writes are in flight; the executor here runs one at a time). A
	// quarter of them give the disk multigrain timestamps: no racy window, every same-instant rewrite after a
	// stat moves the ctime. One in five has no unnamed files (no O_TMPFILE: FUSE, NFS, vfat), so that new local
	// files take temp files there as everything else does everywhere.
	w.ffs, w.ldir = fakeDisk(w.clk, rand.New(rand.NewPCG(seed, 0xf5)), w.rng.Uint64, seed%3 == 1, seed%4 == 3)
	w.ffs.SetUnnamed((seed/3)%5 != 2)
	w.ffs.SetFault(w.fsHook)
	mo := memremote.Options{Label: "sim"}
	switch seed % 5 {
	case 1:
		mo.NoHash = true // vBoxx-like: the engine compares bytes
	case 3:
		mo.Hash = "sha1"
	}
	if seed%7 == 2 {
		mo.PageSize = 3
	}
	if seed%11 == 4 {
		mo.HistoryLimit = 20 // old cursors die: full listings against the base
	}
	for _, h := range simWorldHooks {
		h(w, &mo)
	}
	w.mem = memremote.New(w.clk, mo)
	w.L = &simSide{w: w, local: true, inner: w.ldir}
	w.R = &simSide{w: w, inner: w.mem}
	if seed%3 == 2 {
		var rules []remotetest.Rule
		ops := []string{"Put", "Put", "Delete", "Move", "Mkdir", "Open", "Changes", "Walk", "HashOf", "Stat", "Head"}
		for range 2 + w.rng.IntN(6) {
			op := ops[w.rng.IntN(len(ops))]
			r := remotetest.Rule{Op: op, Nth: 1 + w.rng.IntN(40)}
			switch op {
			case "Put", "Delete", "Move", "Mkdir":
				r.After = w.rng.IntN(2) == 0 // ack loss
			}
			if op == "Open" && w.rng.IntN(2) == 0 {
				r.CutAt = int64(w.rng.IntN(8))
			}
			rules = append(rules, r)
		}
		w.R.faulty = remotetest.Faulty(w.mem, rules...)
		w.logf("remote faults: %+v", rules)
	}
	w.o = Options{Host: "simhost", AllowDeletes: seed%4 != 0}
	w.o.Progress = w.progress
	for _, f := range simWorldSetup {
		f(w)
	}
	w.openStore()
	w.newEngine()
	w.logf("world: remote %+v", mo)
	return w
}

func (w *world) openStore() {
	st, err := state.Open(path.Join(w.dir, "pair.db"), zap.NewNop(), state.Options{})
	if err != nil {
		w.fail("I7", "open the store: %v", err)
		return
	}
	w.st = st
	if err := st.Check(); err != nil {
		w.fail("I7", "store check after open: %v", err)
	}
}

func (w *world) newEngine() {
	if w.st == nil {
		return
	}
	lg := zap.NewNop()
	if *simDebug {
		lg = zaptest.NewLogger(w.t, zaptest.Level(zap.DebugLevel))
	}
	e, err := New(Deps{Clock: w.clk, Rand: w.rng, Local: w.L, Remote: w.R, Store: w.st, Exec: Serial{Rand: w.rng},
		Logger: lg}, w.o)
	if err != nil {
		w.t.Fatalf("seed %d: engine: %v", w.seed, err)
	}
	e.checkRoundPlan = func(roots []remote.Path, scoped, full []Action) {
		if d := planDiff(scoped, full); d != "" {
			w.fail("I8", "a later round planned over its %d roots differs from the full plan: %s", len(roots), d)
		}
	}
	w.eng = e
}

// planDiff describes the first difference between two plans (op, path and target of each action), "" if none.
func planDiff(got, want []Action) string {
	key := func(a Action) string { return fmt.Sprintf("%s %s -> %s", a.Op, a.Path.Quoted(), a.To.Quoted()) }
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return "missing " + key(want[i])
		case i >= len(want):
			return "extra " + key(got[i])
		case key(got[i]) != key(want[i]):
			return fmt.Sprintf("%s where the full plan has %s", key(got[i]), key(want[i]))
		}
	}
	return ""
}

func (w *world) close() {
	if w.st != nil {
		w.st.Close()
	}
	os.RemoveAll(w.dir)
}

// ---------------------------------------------------------------------------------------------------------
// Views of the sides.

type simEntry struct {
	path string
	dir  bool
	sha  string
}

func userVisible(p string) bool {
	if p == remote.ReservedDir || strings.HasPrefix(p, remote.ReservedDir+"/") {
		return false
	}
	b := path.Base(p)
	return !(strings.HasPrefix(b, remote.TempPrefix) && strings.HasSuffix(b, remote.TempSuffix))
}

// list is a side's user-visible tree, sorted.
func (w *world) list(s *simSide) []simEntry {
	var snap map[string]string
	if s.local {
		snap = w.ffs.Snapshot()
	} else {
		snap = w.mem.Snapshot()
	}
	out := make([]simEntry, 0, len(snap))
	for p, h := range snap {
		if !userVisible(p) || (w.hide != nil && w.hide(s, p, h)) {
			continue
		}
		out = append(out, simEntry{path: p, dir: h == "dir", sha: h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func (w *world) liveHashes(s *simSide, withTrash bool) map[string]bool {
	m := map[string]bool{}
	for _, e := range w.list(s) {
		if !e.dir {
			m[e.sha] = true
		}
	}
	if withTrash {
		for h := range w.trashHashes(s) {
			m[h] = true
		}
	}
	return m
}

func (w *world) trashHashes(s *simSide) map[string]bool {
	m := map[string]bool{}
	if s.local {
		w.ffs.Walk(func(name string, dir bool, data []byte) {
			if !dir && strings.HasPrefix(name, ".tandem/trash/") {
				m[shaHex(data)] = true
			}
		})
		return m
	}
	for _, it := range w.mem.Trash() {
		m[shaHex(it.Data)] = true
	}
	return m
}
