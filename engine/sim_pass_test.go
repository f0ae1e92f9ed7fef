package engine

// The simulation's passes and the checks after each one and at quiescence.
// See sim_test.go.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// ---------------------------------------------------------------------------------------------------------
// Passes and checks.

// pass runs one engine pass, with the faults the caller armed, and checks what must hold after every pass.
func (w *world) pass(faults bool) *Report {
	if w.eng == nil {
		return nil
	}
	w.tot.passes.Add(1)
	w.faultsOn, w.racesOn = faults, faults
	w.mutCalls, w.syncCalls, w.passDels, w.crashAt, w.fsFaultAt = 0, 0, 0, 0, 0
	w.passFileDels = [2]map[string]bool{{}, {}}
	for _, f := range w.beforePass {
		f()
	}
	w.raceLocal, w.raceRemote, w.raceAtRename = "", "", false
	if faults {
		switch r := w.rng.IntN(100); {
		case r < 12:
			w.crashAt = 1 + w.rng.IntN(40)
		case r < 22:
			w.fsFaultAt = 1 + w.rng.IntN(40)
			w.fsFaultErr = pick(w.rng, []error{syscall.ENOSPC, syscall.EIO})
		}
	}
	if !*simLazyDisk {
		w.ffs.Sync() // writeback of the user's dirty pages: tandem's own durability is what is under test
		for _, v := range w.versions {
			v.pending = false
		}
	}
	before := len(w.versions)
	// Events during the pass (SIM-04 races) belong to the next one, as a watcher delivers them after it.
	pending := w.scopeL
	w.scopeL = nil
	ctx, cancel := context.WithCancel(w.ctx)
	w.cancel = cancel
	w.inPass = true
	var rep *Report
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				inv := "panic"
				if strings.Contains(fmt.Sprint(r), "I5") {
					inv = "I5"
				}
				w.fail(inv, "%v", r)
			}
		}()
		// Half of the passes are scoped to what a watcher saw, as the daemon runs them; a scoped pass is only
		// as good as its scope, so after anything unclean the next one is full, as in the daemon.
		if !w.fullNext && (w.forceScoped || w.rng.IntN(2) == 0) {
			sc := &Scope{Local: pending}
			w.logf("scoped pass: %d local paths", len(sc.Local))
			rep, err = w.eng.RunScoped(ctx, sc)
		} else {
			rep, err = w.eng.RunPass(ctx)
		}
	}()
	if err != nil || rep == nil || len(rep.Problems) > 0 || w.crashed {
		w.fullNext = true
		w.scopeL = append(pending, w.scopeL...)
	} else {
		w.fullNext = false
	}
	w.inPass = false
	w.lastErr = err
	cancel()
	crashed := w.crashed
	w.crashed = false
	if !crashed && err == nil {
		for _, v := range w.versions[:before] {
			v.seen = true
		}
		for _, v := range w.versions {
			if !v.exempt {
				v.lastSeenL = w.pathsHolding(w.L, v.sha)
			}
		}
	}
	w.logf("pass: rounds %d done %d problems %d conflicts %d err %v", rounds(rep), lenDone(rep), lenProblems(rep),
		lenConflicts(rep), err)
	if rep != nil {
		w.tot.conflicts.Add(int64(len(rep.Conflicts)))
	}
	for _, f := range w.afterPass {
		f(rep, err) // the guard's budget (I9) is checked here, over rounds and the rolling window
	}
	if errors.Is(err, ErrBigDelete) {
		w.eng.o.AllowDeletes = true // the user runs `tandem resume --allow-deletes`
		w.o.AllowDeletes = true
	}
	if w.failed {
		return rep
	}
	w.checkPass()
	if crashed {
		w.tot.crashes.Add(1)
		w.crash()
		if !w.failed {
			w.checkPass()
		}
	}
	return rep
}

func rounds(r *Report) int {
	if r == nil {
		return -1
	}
	return r.Rounds
}
func lenDone(r *Report) int {
	if r == nil {
		return 0
	}
	return len(r.Done)
}
func lenProblems(r *Report) int {
	if r == nil {
		return 0
	}
	return len(r.Problems)
}
func lenConflicts(r *Report) int {
	if r == nil {
		return 0
	}
	return len(r.Conflicts)
}

// checkPass: I7 (the store is sound), I3 (no conflict of equal contents), I6 (every live file holds a known
// content) and the weak form of I2 (no tracked version vanished from everywhere, trash included).
func (w *world) checkPass() {
	if w.st == nil {
		return
	}
	if err := w.st.Check(); err != nil {
		w.fail("I7", "store check: %v", err)
		return
	}
	_ = w.st.View(func(r state.Reader) error {
		return r.Conflicts(func(c state.Conflict) error {
			if !c.LocalHash.IsZero() && c.LocalHash == c.RemoteHash {
				w.fail("I3", "conflict recorded at %s for equal contents %s", c.Path.Quoted(), c.LocalHash)
			}
			return nil
		})
	})
	if w.names != nil {
		w.names.checkPass(w)
		if w.failed {
			return
		}
	}
	for _, s := range []*simSide{w.L, w.R} {
		for _, e := range w.list(s) {
			if !e.dir && !w.known[e.sha] {
				w.fail("I6", "%s %s holds %s, a content no user wrote", s.name(), e.path, e.sha[:12])
				return
			}
		}
	}
	live := w.liveHashes(w.L, true)
	for h := range w.liveHashes(w.R, true) {
		live[h] = true
	}
	// A replace a crash stopped between its swap and its end leaves the file it took out (maybe the user's
	// change) under a .swap temp name until the next start's sweep trashes it: still there, not yet in the
	// trash. At quiescence (I6) no .swap file may be left.
	w.ffs.Walk(func(name string, dir bool, data []byte) {
		if b := path.Base(name); !dir && strings.HasPrefix(b, remote.TempPrefix) && strings.HasSuffix(b, ".swap") {
			live[shaHex(data)] = true
		}
	})
	for _, v := range w.versions {
		if !v.exempt && !live[v.sha] {
			w.fail("I2", "%s version %s of %q (step %d) is gone from both sides and both trashes", v.side,
				v.sha[:12], v.path, v.step)
			return
		}
	}
}

// quiesce stops the user and the faults, then requires convergence (I8) and checks I2, I3, I6, I7 in full.
func (w *world) quiesce() {
	w.step = w.steps
	w.logf("quiesce")
	const maxPasses = 6
	quiet := false
	var last *Report
	for i := 0; i < maxPasses && !w.failed; i++ {
		w.eng.o.AllowDeletes, w.o.AllowDeletes = true, true
		w.fullNext = true // convergence is judged by full passes
		last = w.pass(false)
		if last != nil && w.lastErr == nil && last.Rounds == 0 && len(last.Problems) == 0 {
			quiet = true
			break
		}
	}
	if w.failed {
		return
	}
	if !quiet {
		w.fail("I8", "no quiet pass within %d passes after the user stopped; last: %s", maxPasses, describe(last))
		return
	}
	l, r := w.list(w.L), w.list(w.R)
	if w.foldR != nil {
		l, r = w.withoutCollisions(l, r)
	}
	if w.diffFilter != nil {
		l, r = w.diffFilter(l, r)
	}
	if d := diffTrees(l, r); d != "" {
		w.fail("I8", "trees differ after a quiet pass: %s", d)
		return
	}
	w.fullNext = true
	rep := w.pass(false)
	if w.failed {
		return
	}
	// A file re-hashed in its racy window is fsync'd again when it holds the base's content (seed 8624), and the
	// fake clock stands still while quiescing, so that window never closes here: an fsync changes nothing.
	if rep == nil || rep.Rounds != 0 || len(rep.Done) != 0 || w.mutCalls-w.syncCalls != 0 {
		w.fail("I8", "the pass after convergence was not idle (%d mutating calls): %s", w.mutCalls-w.syncCalls,
			describe(rep))
		return
	}
	// I2: every version no user discarded is live on both sides.
	liveL, liveR := w.liveHashes(w.L, false), w.liveHashes(w.R, false)
	for _, v := range w.versions {
		if v.exempt || v.trashed {
			continue
		}
		w.tot.checked.Add(1)
		if w.foldR != nil && liveL[v.sha] && !liveR[v.sha] && w.collidingSHA(v.sha) {
			continue // kept locally under a name the remote cannot hold beside another: reported, not synced
		}
		if !liveL[v.sha] || !liveR[v.sha] {
			w.fail("I2", "%s version %s of %q (step %d) lost: live locally %v, remotely %v", v.side, v.sha[:12],
				v.path, v.step, liveL[v.sha], liveR[v.sha])
			return
		}
	}
	// I6: no temp file left anywhere.
	w.ffs.Walk(func(name string, dir bool, _ []byte) {
		b := path.Base(name)
		if strings.HasPrefix(b, remote.TempPrefix) && (strings.HasSuffix(b, remote.TempSuffix) || strings.HasSuffix(b, ".swap")) &&
			!w.names.userTemp(name) {
			w.fail("I6", "temp file %s left after convergence", name)
		}
	})
	// I3: a conflict copy never holds what its original holds.
	byPath := map[string]simEntry{}
	for _, e := range l {
		byPath[e.path] = e
	}
	for _, e := range l {
		base := path.Base(e.path)
		i := strings.Index(base, " (conflict ")
		if e.dir || i < 0 {
			continue
		}
		j := strings.Index(base[i:], ")")
		orig := path.Join(path.Dir(e.path), base[:i]+base[i+j+1:])
		// Empty content is exempt: a power loss can empty a user's unsynced file, and every empty file shares
		// one digest (seed 20866).
		if o, ok := byPath[orig]; ok && !o.dir && o.sha == e.sha && w.versionsAt(e.sha) < 2 && e.sha != shaHex(nil) {
			w.fail("I3", "conflict copy %s holds the same content as %s", e.path, orig)
		}
	}
	// I7: base == local == remote, no intent left.
	_ = w.st.View(func(rd state.Reader) error {
		if err := rd.Intents(func(in state.Intent) error {
			w.fail("I7", "intent %s %s left at quiescence", in.Op, in.Path)
			return nil
		}); err != nil {
			return err
		}
		return rd.EachBase(remote.Root, func(b state.Base) error {
			lr, lok, _ := rd.Get(state.Local, b.Path)
			rr, rok, _ := rd.Get(state.Remote, b.Path)
			switch {
			case !lok || !rok:
				w.fail("I7", "base %s without both records (local %v, remote %v)", b.Path, lok, rok)
			case lr.Dir != b.Dir || rr.Dir != b.Dir:
				w.fail("I7", "base %s kind differs from a side", b.Path)
			case !b.Dir && lr.Hash != b.Hash:
				w.fail("I7", "base %s hash %s, local record %s", b.Path, b.Hash, lr.Hash)
			case !b.Dir && !rr.Hash.IsZero() && rr.Hash != b.Hash:
				w.fail("I7", "base %s hash %s, remote record %s", b.Path, b.Hash, rr.Hash)
			}
			return nil
		})
	})
}

// versionsAt counts ledger versions with a content (a user may have written one content twice).
func (w *world) versionsAt(sha string) int {
	n := 0
	for _, v := range w.versions {
		if v.sha == sha {
			n++
		}
	}
	return n
}

func describe(r *Report) string {
	if r == nil {
		return "no report"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rounds %d", r.Rounds)
	for i, d := range r.Done {
		if i == 6 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, "; %s %s", d.Op, d.Path.Quoted())
		if d.To != "" {
			fmt.Fprintf(&b, "->%s", d.To.Quoted())
		}
	}
	for i, p := range r.Problems {
		if i == 4 {
			break
		}
		fmt.Fprintf(&b, "; problem %s %s: %s", p.Op, p.Path.Quoted(), p.Err)
	}
	return b.String()
}

func diffTrees(l, r []simEntry) string {
	lm, rm := map[string]string{}, map[string]string{}
	for _, e := range l {
		lm[e.path] = e.sha
	}
	for _, e := range r {
		rm[e.path] = e.sha
	}
	var out []string
	for _, e := range l {
		if rm[e.path] != e.sha {
			out = append(out, fmt.Sprintf("%s: local %.8s remote %.8s", e.path, e.sha, rm[e.path]))
		}
	}
	for _, e := range r {
		if _, ok := lm[e.path]; !ok {
			out = append(out, fmt.Sprintf("%s: local - remote %.8s", e.path, e.sha))
		}
	}
	if len(out) > 8 {
		out = append(out[:8], "...")
	}
	return strings.Join(out, "; ")
}
