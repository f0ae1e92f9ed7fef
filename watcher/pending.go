package watcher

import (
	"slices"
	"strings"
	"time"
)

// pending is the set of paths seen since the last batch was cut. A path appears once however many events it
// got, which is what turns an editor's write-temp-then-rename into one event for the target.
type pending struct {
	m           map[string]bool // rel path → subtree
	first, last time.Time       // first and latest event of the burst: the debounce deadlines hang off them
	max         int
}

func newPending(limit int) *pending { return &pending{m: make(map[string]bool), max: limit} }

func (p *pending) empty() bool { return len(p.m) == 0 }

// add records rel. Entries below an already pending subtree are dropped here (an O(depth) check); the reverse
// case, a subtree arriving after entries below it, is swept in compact so that add never scans the whole set.
func (p *pending) add(rel string, subtree bool, now time.Time) {
	if p.empty() {
		p.first = now
	}
	p.last = now
	for a := rel; ; a = parent(a) {
		if p.m[a] {
			return
		}
		if a == "" {
			break
		}
	}
	p.m[rel] = p.m[rel] || subtree
	if len(p.m) > p.max {
		// A flood (untar, rm -rf, a build) must not grow memory without bound: trade precision for size by
		// widening the deepest entries into subtree rescans of their folders; the engine rescans those.
		p.m = coarsen(p.m, p.max/2)
	}
}

// take returns the pending events, sorted and with everything under a subtree absorbed, and empties the set.
func (p *pending) take() []Event {
	if p.empty() {
		return nil
	}
	evs := compact(p.m)
	p.m = make(map[string]bool)
	return evs
}

// compact sorts depth-first (each folder's children right after it, as the state store orders its keys) and
// drops entries covered by a subtree entry, which with that order sit right after it.
func compact(m map[string]bool) []Event {
	evs := make([]Event, 0, len(m))
	for k, s := range m {
		evs = append(evs, Event{Path: k, Subtree: s})
	}
	slices.SortFunc(evs, func(a, b Event) int { return comparePath(a.Path, b.Path) })
	out := evs[:0]
	cover, covering := "", false
	for _, e := range evs {
		if covering && under(e.Path, cover) {
			continue
		}
		out = append(out, e)
		if e.Subtree {
			cover, covering = e.Path, true
		}
	}
	return out
}

// coarsen widens entries one level at a time, deepest first, until at most target remain (the root alone
// always fits).
func coarsen(m map[string]bool, target int) map[string]bool {
	target = max(target, 1)
	for {
		evs := compact(m)
		if len(evs) <= target {
			out := make(map[string]bool, len(evs))
			for _, e := range evs {
				out[e.Path] = e.Subtree
			}
			return out
		}
		deepest := 0
		for _, e := range evs {
			deepest = max(deepest, depth(e.Path))
		}
		m = make(map[string]bool, len(evs))
		for _, e := range evs {
			if depth(e.Path) == deepest {
				m[parent(e.Path)] = true
			} else {
				m[e.Path] = m[e.Path] || e.Subtree
			}
		}
	}
}

// comparePath orders slash paths depth-first: "/" sorts before every other byte, so "a/b" comes right after
// "a" and before "a b" and "a-b".
func comparePath(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// under reports whether p is dir or lies below it; "" is the root and covers everything.
func under(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// parent of a rel path; the root's parent is the root.
func parent(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

func depth(rel string) int {
	if rel == "" {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
