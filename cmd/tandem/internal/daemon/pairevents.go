package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
)

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
			if wait, ok := heldFor(ls.retry, rep.Problems, l.d.clk.Now()); ok {
				// Every failed path waits out the engine's own backoff: retry when the first comes free, not
				// at a jittered guess that could come just before and find them all held again (then waiting
				// twice as long: a busy file's last version came 20 s late so).
				ls.retryAt = l.d.clk.After(wait)
			} else {
				ls.retryAt = l.d.clk.After(ls.retryBack.next())
			}
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

// heldFor is how long until the first of the retry paths comes free, when the pass reported every one of them
// as held back by the engine's path backoff (engine.Problem.RetryAt); ok is false otherwise.
func heldFor(retry map[remote.Path]bool, problems []engine.Problem, now time.Time) (wait time.Duration, ok bool) {
	until := map[remote.Path]time.Time{}
	for _, p := range problems {
		if !p.RetryAt.IsZero() {
			until[p.Path] = p.RetryAt
		}
	}
	var first time.Time
	for p := range retry {
		t, held := until[p]
		if !held {
			return 0, false
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Sub(now), 0), true
}
