package daemon

import (
	"slices"
	"strings"
	"time"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/watcher"
)

const (
	// maxScopePaths bounds the paths a pair holds for its next pass. Past it the next pass is a full one, so
	// the loop's memory stays bounded however big the flood (an untar, a build, a checkout).
	maxScopePaths = 10_000
	// watchDebounce is the watchers' quiet time before a batch goes out (the watcher's default is 100 ms). It
	// is most of the daemon's own share of the propagation latency; an editor's write-temp-then-rename or
	// rename-away-then-write takes well under it, so an atomic save still arrives as one batch.
	watchDebounce = 50 * time.Millisecond
)

// Why a pass walks both sides (PassInfo.Reason).
const (
	whyStartup   = "start-up"
	whyRescan    = "rescan requested"
	whySafetyNet = "safety-net scan"
	whyRetry     = "retry after a failed pass"
	whyFailed    = "the last pass failed"
	whyCancelled = "the last pass was interrupted"
	whyResume    = "resumed"
	whyReload    = "configuration reloaded"
	whyWholeTree = "the watcher asked for a rescan of the whole folder"
	whyBadPath   = "the watcher reported a path tandem cannot sync"
	whyTooMany   = "more changed paths than a scoped pass takes"
	whyWatcher   = "a folder watch degraded or stopped"
	whyWatchBack = "a folder is watched again"
	whyRelist    = "complete remote listing due (remote_relist_interval)"
)

// side of a pair, for pendingScope.
type side int

const (
	sideLocal side = iota
	sideRemote
)

// pendingScope is what the next pass must look at, gathered from the watchers between passes: the paths each
// side's watcher reported, or "everything" (full) once something asked for a full pass or the paths became
// too many. A feed remote's news needs nothing here: the engine reads its feed on every pass and adds those
// paths to the scope itself.
type pendingScope struct {
	full  bool
	why   string // the first reason the next pass is full
	paths [2]map[remote.Path]bool
	n     int
}

// setFull makes the next pass a full one and drops the paths (a full pass covers them).
func (p *pendingScope) setFull(why string) {
	if !p.full {
		p.full, p.why = true, why
	}
	p.paths = [2]map[remote.Path]bool{}
	p.n = 0
}

// add records a watcher batch for side s.
func (p *pendingScope) add(s side, evs []watcher.Event) {
	for _, ev := range evs {
		if p.full {
			return
		}
		if ev.Path == "" {
			// The watcher's start-up batch, an overflow, an fsnotify error or the root itself moving: all
			// of it is to be looked at again.
			p.setFull(whyWholeTree)
			return
		}
		if reserved(ev.Path) {
			// Tandem's own temporary files (an upload or download in flight, whose rename to the real name
			// is reported under that name) and anything else under a reserved name: never synced.
			continue
		}
		rp, err := remote.ParsePath(ev.Path)
		if err != nil {
			p.setFull(whyBadPath)
			return
		}
		p.addPath(s, rp, ev.Subtree)
	}
}

// retry adds the paths that failed to both sides (each with what is below it: a failed folder action is
// looked at whole).
func (p *pendingScope) retry(paths map[remote.Path]bool) {
	for rp := range paths {
		for s := range p.paths {
			if p.full {
				return
			}
			p.addPath(side(s), rp, true)
		}
	}
}

// rescanRemote asks the next pass to walk the whole remote side (a feed-less remote nobody watches, on its
// poll interval), while the local side stays scoped to what its watcher saw.
func (p *pendingScope) rescanRemote() {
	if !p.full {
		p.addPath(sideRemote, remote.Root, true)
	}
}

func (p *pendingScope) addPath(s side, rp remote.Path, subtree bool) {
	m := p.paths[s]
	if m == nil {
		m = map[remote.Path]bool{}
		p.paths[s] = m
	}
	old, seen := m[rp]
	if seen && (old || !subtree) {
		return
	}
	m[rp] = subtree
	if !seen {
		if p.n++; p.n > maxScopePaths {
			p.setFull(whyTooMany)
		}
	}
}

// take returns the next pass's scope and empties the pending one: nil with the reason for a full pass, else
// each side's paths sorted, each once, with paths below a subtree of the same side folded into it.
func (p *pendingScope) take() (sc *engine.Scope, why string, paths int) {
	defer func() { *p = pendingScope{} }()
	if p.full {
		return nil, p.why, 0
	}
	sc = &engine.Scope{Local: compactScope(p.paths[sideLocal]), Remote: compactScope(p.paths[sideRemote])}
	return sc, "", len(sc.Local) + len(sc.Remote)
}

// compactScope sorts m's paths and drops those a subtree entry covers.
func compactScope(m map[remote.Path]bool) []engine.ScopePath {
	if len(m) == 0 {
		return nil
	}
	out := make([]engine.ScopePath, 0, len(m))
	for p, sub := range m {
		if !coveredAbove(m, p) {
			out = append(out, engine.ScopePath{Path: p, Subtree: sub})
		}
	}
	slices.SortFunc(out, func(a, b engine.ScopePath) int { return strings.Compare(string(a.Path), string(b.Path)) })
	return out
}

// coveredAbove reports whether a strict ancestor of p is a subtree entry of m (O(depth) lookups).
func coveredAbove(m map[remote.Path]bool, p remote.Path) bool {
	for p != remote.Root {
		p = p.Dir()
		if m[p] {
			return true
		}
	}
	return false
}

// reserved reports whether a component of rel is a name tandem reserves (its .tandem folder, the prefix of its
// temporary files), which no pass ever syncs.
func reserved(rel string) bool {
	for c := range strings.SplitSeq(rel, "/") {
		if c == remote.ReservedDir || strings.HasPrefix(c, remote.TempPrefix) {
			return true
		}
	}
	return false
}
