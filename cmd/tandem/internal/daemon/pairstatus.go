package daemon

import (
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
	"github.com/tandemsync/tandem/watcher"
)

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
