package engine

// Simulation operations for issue 9's guard and skip holes (2, 3, 7, 13): ignore rules with ignored files
// inside folders, a local root (marker included) wiped in the middle of a pass after which a later round runs,
// delete storms split across a pass's rounds and across scoped passes under the daemon's rolling budget, and a
// folder replaced by a symlink or a special file. The harness checks the guard's invariant after every pass
// (I9 below): a pass, or the rolling window, never deletes more than the budget allows without --allow-deletes.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/tandemsync/tandem/engine/ignore"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

func init() {
	simWorldSetup = append(simWorldSetup, setupGuardWorld)
}

// simWindowSpan is the rolling window the simulation gives the engine (the daemon's default).
const simWindowSpan = 10 * time.Minute

type simGuard struct {
	match        *ignore.Matcher
	allowAtStart bool
	baseAtStart  int
	startAt      time.Time
	win          []simWinEntry // passes within the rolling window (harness side)
	skipped      map[string]bool
}

type simWinEntry struct {
	at   time.Time
	dels [2]map[string]bool // the paths of the files deleted, per side
}

func setupGuardWorld(w *world) {
	m, err := ignore.New([]string{"*.log"}, nil) // the user's choice; .DS_Store, *.swp are built-in junk
	if err != nil {
		w.t.Fatal(err)
	}
	g := &simGuard{match: m, skipped: map[string]bool{}}
	w.guard = g
	w.o.Ignored = func(p remote.Path, dir bool) bool { return m.Ignored(string(p), dir) }
	w.o.Junk = ignore.Junk
	if w.seed%8 == 0 {
		w.o.Window = NewDeleteWindow(simWindowSpan)
	}
	w.hide = func(s *simSide, p, h string) bool {
		return strings.HasPrefix(h, "symlink:") || strings.HasPrefix(h, "special:") || m.Ignored(p, h == "dir")
	}
	w.beforePass = append(w.beforePass, func() {
		g.allowAtStart = w.eng == nil || w.eng.o.AllowDeletes
		g.baseAtStart = w.baseFiles()
		g.startAt = w.clk.Now()
	})
	w.afterPass = append(w.afterPass, func(rep *Report, err error) { w.checkBudget() })
	w.diffFilter = w.keptFolders
}

// baseFiles counts the synced files in the store.
func (w *world) baseFiles() int {
	if w.st == nil {
		return 0
	}
	n := 0
	_ = w.st.View(func(r state.Reader) error {
		return r.EachBase(remote.Root, func(b state.Base) error {
			if !b.Dir {
				n++
			}
			return nil
		})
	})
	return n
}

// checkBudget is I9 (the big-delete guard): in a pass without --allow-deletes, the files deleted on one side
// (by this pass, plus the earlier passes in the rolling window when the engine has one) stay within
// MaxDeletePct of the files the pair had, or below minGuardDeletes.
func (w *world) checkBudget() {
	g := w.guard
	if g.allowAtStart {
		g.win = nil // approved: the engine resets its window too
		return
	}
	// Files are counted by path, as the engine's budget counts them (DESIGN: a delete counts once per path): a
	// delete that a power loss undid and the engine made again is one file the user gave up (seed 15043).
	earlier := [2]map[string]bool{{}, {}}
	if w.o.Window != nil {
		keep := g.win[:0]
		for _, e := range g.win {
			if g.startAt.Sub(e.at) < simWindowSpan {
				keep = append(keep, e)
				for i := range earlier {
					for p := range e.dels[i] {
						earlier[i][p] = true
					}
				}
			}
		}
		g.win = append(keep, simWinEntry{at: g.startAt, dels: w.passFileDels})
	}
	var before, total, now [2]int
	for i := range earlier {
		before[i] = len(earlier[i])
		for p := range w.passFileDels[i] {
			earlier[i][p] = true
		}
		total[i], now[i] = len(earlier[i]), len(w.passFileDels[i])
	}
	had := max(g.baseAtStart+before[0]+before[1], w.baseFiles()+total[0]+total[1])
	pct := w.eng.o.MaxDeletePct
	for i, side := range []string{"local", "remote"} {
		if now[i] > 0 && total[i] >= minGuardDeletes && float64(total[i]) > pct/100*float64(had) {
			w.fail("I9", "without --allow-deletes, %d files were deleted on the %s side (%d in this pass) of %d: "+
				"more than %g%%", total[i], side, now[i], had, pct)
			return
		}
	}
}

// keptFolders drops from the convergence check a folder that only one side holds and that holds nothing but
// ignored files there: the engine keeps it for the user's ignored files (hole 7) and reports it.
func (w *world) keptFolders(l, r []simEntry) ([]simEntry, []simEntry) {
	raw := w.ffs.Snapshot()
	onlyIgnored := func(d string) bool {
		some := false
		for p, h := range raw {
			if h == "dir" || !strings.HasPrefix(p, d+"/") || !userVisible(p) {
				continue
			}
			if !w.hide(w.L, p, h) {
				return false
			}
			some = true
		}
		return some
	}
	inR := map[string]bool{}
	for _, e := range r {
		inR[e.path] = true
	}
	out := l[:0:0]
	for _, e := range l {
		if e.dir && !inR[e.path] && onlyIgnored(e.path) {
			w.logf("convergence: %q kept locally for ignored files", e.path)
			continue
		}
		out = append(out, e)
	}
	return out, r
}

// writeIgnored writes a file tandem ignores: never synced, so not a version the ledger follows; its content is
// known (I6).
func (w *world) writeIgnored(p string, data []byte) {
	if err := w.ffs.WriteFile(p, data); err != nil {
		return
	}
	w.known[shaHex(data)] = true
	w.logf("user L write ignored %q", p)
	w.watched(w.L, p, false)
}

// TrashJunk passes the engine's junk sweep (a folder delete that only ignored files block) to localdir, and
// checks that only junk went, each to the trash (I4: a delete takes nothing the user did not give up).
func (s *simSide) TrashJunk(ctx context.Context, p remote.Path, junk func(name string) bool) ([]remote.Entry, error) {
	if err := s.gate("trashjunk", p, true); err != nil {
		return nil, err
	}
	jt, ok := s.inner.(junkTrasher)
	if !ok {
		return nil, fmt.Errorf("clear %s: %w", p.Quoted(), remote.ErrNotEmpty)
	}
	before := s.w.ffs.Snapshot()
	left, err := jt.TrashJunk(ctx, p, junk)
	after := s.w.ffs.Snapshot()
	trash := s.w.trashHashes(s)
	var gone []string
	for q, h := range before {
		if _, ok := after[q]; !ok && h != "dir" && userVisible(q) {
			gone = append(gone, q)
		}
	}
	sort.Strings(gone)
	for _, q := range gone {
		if path.Dir(q) != string(p) || !junk(path.Base(q)) {
			s.w.fail("I4", "the junk sweep of %s removed %s, which is not junk in that folder", p.Quoted(), q)
		} else if !trash[before[q]] {
			s.w.fail("I4", "the junk sweep of %s: %s is not in the trash", p.Quoted(), q)
		}
		s.w.logf("  %s trash junk %q", s.name(), q)
	}
	return left, err
}

// Entries passes the engine's look into a folder kept for ignored files to localdir; it changes nothing.
func (s *simSide) Entries(ctx context.Context, p remote.Path) ([]remote.Entry, error) {
	if err := s.gate("entries", p, false); err != nil {
		return nil, err
	}
	fl, ok := s.inner.(folderLister)
	if !ok {
		return nil, fmt.Errorf("list %s: %w", p.Quoted(), errors.ErrUnsupported)
	}
	return fl.Entries(ctx, p)
}

// opIgnoredFile drops junk (.DS_Store, a swap file) or a file the user ignores (*.log) into a local folder;
// often the remote then deletes that folder (hole 7).
func opIgnoredFile(w *world, c *simOpCtx) {
	var dirs []string
	for _, e := range w.list(w.L) {
		if e.dir {
			dirs = append(dirs, e.path)
		}
	}
	if len(dirs) == 0 {
		return
	}
	d := pick(w.rng, dirs)
	name := pick(w.rng, []string{".DS_Store", "c.txt.swp", "Thumbs.db", "notes.log", "build.log"})
	w.writeIgnored(path.Join(d, name), w.content(10+w.rng.IntN(20)))
	if rd, ok := w.lookup(w.R, d); ok && rd.dir && w.rng.IntN(2) == 0 {
		_ = w.userRemoveAll(w.R, d)
	}
}

// guardOn stands for a user whose pair has the guard on (the daemon's default; `resume --allow-deletes` lets
// one pass through).
func (w *world) guardOn() {
	w.o.AllowDeletes = false
	if w.eng != nil {
		w.eng.o.AllowDeletes = false
	}
}

// storm creates a folder of n files on side s and syncs it with clean passes; it returns the folder.
func (w *world) storm(s *simSide, n int) (string, bool) {
	w.counter++
	dir := fmt.Sprintf("storm%d", w.counter)
	if err := w.userMkdir(s, dir); err != nil {
		return "", false
	}
	for i := range n {
		_ = w.userWrite(s, fmt.Sprintf("%s/s%02d", dir, i), w.content(12+w.rng.IntN(20)))
	}
	for range 2 {
		w.pass(false)
		if w.failed {
			return "", false
		}
	}
	e, ok := w.lookup(w.other(s), dir)
	return dir, ok && e.dir
}

func (w *world) other(s *simSide) *simSide {
	if s.local {
		return w.R
	}
	return w.L
}

// opStormRounds is hole 2's first case: a folder moved, then most of its files deleted. The move is round 0
// of the next pass; the deletes come in round 1.
func opStormRounds(w *world, c *simOpCtx) {
	dir, ok := w.storm(c.s, 12+w.rng.IntN(12))
	if !ok {
		return
	}
	w.guardOn()
	w.counter++
	to := fmt.Sprintf("moved%d", w.counter)
	if w.userRename(c.s, dir, to) != nil {
		return
	}
	for _, e := range w.list(c.s) {
		if !e.dir && strings.HasPrefix(e.path, to+"/") && w.rng.IntN(10) < 9 {
			_ = w.userRemoveAll(c.s, e.path)
		}
	}
	w.pass(true)
}

// opStormScoped is hole 3: most files of a folder deleted a few at a time, each batch its own (often scoped)
// pass, as a slow `rm` reaches the daemon; the pair has the daemon's rolling window.
func opStormScoped(w *world, c *simOpCtx) {
	dir, ok := w.storm(c.s, 14+w.rng.IntN(12))
	if !ok {
		return
	}
	w.guardOn()
	if w.o.Window == nil {
		w.o.Window = NewDeleteWindow(simWindowSpan)
		w.eng.o.Window = w.o.Window
	}
	var files []string
	for _, e := range w.list(c.s) {
		if !e.dir && strings.HasPrefix(e.path, dir+"/") {
			files = append(files, e.path)
		}
	}
	for len(files) > 2 && !w.failed {
		k := min(len(files), 1+w.rng.IntN(4))
		for _, f := range files[:k] {
			_ = w.userRemoveAll(c.s, f)
		}
		files = files[k:]
		w.clk.Advance(time.Duration(1+w.rng.IntN(60)) * time.Second)
		w.pass(true)
	}
}

// opWipeRoot is hole 2's second case: the local root is emptied, marker included, while the first upload of a
// pass runs; that upload fails, so the engine observes again and plans another round. Nothing may be deleted
// on the remote after the wipe. The user then starts over with --resync.
func opWipeRoot(w *world, c *simOpCtx) {
	if w.baseFiles() == 0 {
		return
	}
	w.counter++
	if w.userWrite(w.L, fmt.Sprintf("wipe%d", w.counter), w.content(16)) != nil {
		return
	}
	armed, wiped := true, false
	// A remote delete after the wipe is a violation when the file was still there locally before it: only the
	// wipe could have planned it (deletes the user made earlier may still run in the round that began).
	hadLocally := map[remote.Path]bool{}
	var bad []string
	w.onProgress = func(ev Event) {
		if wiped && ev.Done && ev.Err == nil && ev.Action.Op == DeleteRemote && hadLocally[ev.Action.Path] &&
			ev.Action.Base != nil && !ev.Action.Base.Dir {
			bad = append(bad, string(ev.Action.Path))
		}
		if !armed || ev.Done || ev.Action.Op != Upload || w.crashed {
			return
		}
		armed, wiped = false, true
		for _, e := range w.list(w.L) {
			if !e.dir {
				hadLocally[remote.Path(e.path)] = true
			}
		}
		w.peeking = true // the user's rm is not the engine's call: no faults, no counting
		for _, e := range w.list(w.L) {
			if !e.dir {
				w.discard(e.sha)
			}
		}
		for h := range w.trashHashes(w.L) {
			w.discard(h)
		}
		var top []string
		for p := range w.ffs.Snapshot() {
			if !strings.Contains(p, "/") {
				top = append(top, p)
			}
		}
		sort.Strings(top) // fakefs replays unsynced operations on a power loss: keep their order deterministic
		for _, p := range top {
			_ = w.ffs.RemoveAll(p)
		}
		if w.names != nil {
			clear(w.names.temps) // the user's own temp-named files went with the rest: their choice
		}
		w.peeking = false
		w.logf("user L wipes the root, marker included, during the pass")
		w.watched(w.L, "", true)
	}
	w.pass(true)
	w.onProgress = nil
	if !wiped || w.failed {
		return
	}
	if len(bad) > 0 {
		w.fail("I9", "the local root lost its marker during the pass, yet %d remote files were deleted after it: %v",
			len(bad), bad)
		return
	}
	// The user sees the safety stop and starts over.
	w.o.Resync, w.eng.o.Resync, w.eng.resynced = true, true, false
	w.logf("user runs tandem once --resync")
	w.pass(false)
	w.o.Resync = false
	if w.eng != nil {
		w.eng.o.Resync = false
	}
}

// opFolderToSkip is hole 13: a local folder that the remote also holds is moved away and a symlink (or a
// special file) left in its place. Passes run; nothing the remote holds there may be deleted. Then the folder
// comes back as it was.
func opFolderToSkip(w *world, c *simOpCtx) {
	var cands []string
	for _, e := range w.list(w.L) {
		if re, ok := w.lookup(w.R, e.path); e.dir && ok && re.dir {
			cands = append(cands, e.path)
		}
	}
	if len(cands) == 0 {
		return
	}
	d := pick(w.rng, cands)
	saved := map[string][]byte{}
	var dirs []string
	for p, h := range w.ffs.Snapshot() {
		if (p != d && !strings.HasPrefix(p, d+"/")) || !userVisible(p) {
			continue // a crash's temp file does not come back with the folder (the sweep is hole 12's)
		}
		if h == "dir" {
			dirs = append(dirs, p)
			continue
		}
		if b, err := w.ffs.ReadFile(p); err == nil {
			saved[p] = b
		}
	}
	sort.Strings(dirs)
	var remoteBefore []string
	for _, e := range w.list(w.R) {
		if !e.dir && strings.HasPrefix(e.path, d+"/") {
			remoteBefore = append(remoteBefore, e.path)
		}
	}
	// The folder's content is on another disk meanwhile: not lost, but not visible to the ledger either.
	away := map[string]bool{}
	for _, b := range saved {
		away[shaHex(b)] = true
	}
	var moved []*simVersion
	for _, v := range w.versions {
		if !v.exempt && away[v.sha] {
			v.exempt, v.away = true, true
			moved = append(moved, v)
		}
	}
	// Only what is still away comes back owed: a version whose content a user overwrote or deleted meanwhile
	// (seed 170765: the remote user's overwrite of the copy the remote had moved out of the folder) was given up,
	// as anywhere else.
	defer func() {
		for _, v := range moved {
			if v.away {
				v.exempt, v.away = false, false
			}
		}
	}()
	if w.ffs.RemoveAll(d) != nil {
		return
	}
	kind := "symlink"
	var err error
	if w.rng.IntN(3) == 0 {
		kind = "fifo"
		err = w.ffs.Mkfifo(d)
	} else {
		err = w.ffs.Symlink("/mnt/other-disk/"+path.Base(d), d)
	}
	w.logf("user L replaces folder %q by a %s: %v", d, kind, err)
	w.watched(w.L, d, true)
	if err == nil {
		for range 1 + w.rng.IntN(2) {
			w.pass(true)
			if w.failed {
				return
			}
		}
		live := map[string]bool{}
		for _, e := range w.list(w.R) {
			live[e.path] = true
		}
		// A power loss in those passes may have kept only a prefix of rm -r D; mkfifo D (seed 1170, lazy disk:
		// D/c.txt unlinked, D itself back as a folder): then the disk no longer shows the special file, the
		// engine saw a plain delete of what is gone, and this check's premise does not hold.
		if h := w.ffs.Snapshot()[d]; !strings.HasPrefix(h, "symlink:") && !strings.HasPrefix(h, "special:") {
			w.logf("the local %q is no longer a %s (%q) after a power loss: no skip to check", d, kind, h)
			remoteBefore = nil
		}
		for _, p := range remoteBefore {
			if !live[p] {
				w.fail("I4", "remote %q was deleted while the local %q was a %s (skipped, never a delete)", p, d, kind)
				return
			}
		}
		// Putting the folder back replaces whatever D holds now. When a power loss undid the special file, the
		// engine saw D deleted and may have made it again for the other side's changes, which win over a delete
		// (seed 9426: moved56/s05's remote edit, downloaded and fsync'd up to the root): the user's rm -r
		// discards those versions, as userRemoveAll does, and the older copy put back is an edit like any other.
		// This rm -r takes what the engine made in D, not the versions away, which come back below.
		stillAway := map[*simVersion]bool{}
		for _, v := range moved {
			stillAway[v] = v.away
		}
		for _, e := range w.list(w.L) {
			if !e.dir && within(e.path, d) {
				w.discard(e.sha)
			}
		}
		for _, v := range moved {
			v.away = stillAway[v]
		}
		_ = w.ffs.RemoveAll(d)
	}
	// The folder comes back from the other disk, as it was.
	for _, p := range dirs {
		_ = w.ffs.MkdirAll(p)
	}
	paths := make([]string, 0, len(saved))
	for p := range saved {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		_ = w.ffs.WriteFile(p, saved[p])
	}
	w.ffs.Sync() // moved back long ago as far as a later power loss is concerned: the ledger does not track it
	w.logf("user L puts folder %q back", d)
	w.watched(w.L, d, true)
}
