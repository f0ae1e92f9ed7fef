package daemon

import (
	"context"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/watcher"
)

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
