package engine

import (
	"slices"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Move detection pairs the delete of an object on one side with its creation at another path of the same side,
// and replays the pair as one move on the other side (DESIGN: "moved"). It is a pure step over the planner's
// decisions: it returns the moves and the decisions they take the place of, and changes nothing itself.
//
// A pair is a move when the new entry's id (remote id, or inode) is what the base knew at the deleted path and:
//   - a file holds the content the base recorded there (an inode is handed out again by the filesystem, so
//     the same inode with other content is a new file);
//   - a folder has a file inside that came along (folderMoveEvidence): rm -rf D; mkdir E often gives E the
//     inode D just freed.

// idLookup finds the base path that held an object (move detection).
type idLookup func(ix state.Index, id string) (remote.Path, bool)

// baseIDs looks ids up in the store's index (a failed read finds nothing).
func baseIDs(rd state.Reader) idLookup {
	return func(ix state.Index, id string) (remote.Path, bool) {
		p, ok, err := rd.PathOfID(ix, id)
		return p, ok && err == nil
	}
}

// moveSet is what move detection found: the moves to run this round, and the decisions (by index) that they
// replace or that wait for the next round (below a moved folder, after the trees are re-keyed).
type moveSet struct {
	moves    []Action
	consumed map[int]bool
}

// apply is a new plan of the decisions and the moves, the consumed decisions as no-ops (fold.go still looks
// for them); the decisions are left as they are.
func (ms moveSet) apply(acts []Action) []Action {
	out := append(make([]Action, 0, len(acts)+len(ms.moves)), acts...)
	for i := range ms.consumed {
		out[i].Op = OpNone
	}
	return append(out, ms.moves...)
}

// goneOn finds the delete candidates of each side: a path the side deleted whose other side is as recorded.
func goneOn(acts []Action) [2]map[remote.Path]int {
	gone := [2]map[remote.Path]int{{}, {}}
	for i, a := range acts {
		if a.Base == nil {
			continue
		}
		for _, s := range sides {
			if a.Op == sideOps[s.this].del && on(s.other, a.Local, a.Remote) == nil {
				gone[s.other][a.Path] = i
			}
		}
	}
	return gone
}

// created returns the side s whose new entry a carries to the other side, and that entry, when a creates a
// path the base never had (an upload or folder create that has no record on the side it writes).
func created(a Action, mkdirOnly bool) (side, *state.Record, bool) {
	if a.Base != nil {
		return side{}, nil, false
	}
	for _, s := range sides {
		ops := sideOps[s.this]
		if a.Op != ops.mkdir && (mkdirOnly || a.Op != ops.transfer) {
			continue
		}
		if n := on(s.other, a.Local, a.Remote); n != nil && on(s.this, a.Local, a.Remote) == nil {
			return s, n, true
		}
	}
	return side{}, nil, false
}

// findMoves is move detection over the decisions acts, with lookup the base's id index.
func findMoves(acts []Action, lookup idLookup) moveSet {
	ms := moveSet{consumed: map[int]bool{}}
	gone := goneOn(acts)
	if len(gone[state.Local]) == 0 && len(gone[state.Remote]) == 0 {
		return ms
	}
	evidence := folderMoveEvidence(acts, gone, lookup)
	var moves []Action
	for i, a := range acts {
		s, n, ok := created(a, false)
		if !ok || n.ID == "" {
			continue
		}
		p, ok := lookup(sideOps[s.other].baseIndex, n.ID)
		j, isGone := gone[s.other][p]
		if !ok || !isGone || ms.consumed[j] {
			continue
		}
		src := acts[j]
		if src.Base.Dir != n.Dir || (!n.Dir && !holds(s.other, n, src.Base)) ||
			(n.Dir && !evidence[folderMove{src.Path, a.Path, s.other}]) {
			continue
		}
		ms.consumed[i], ms.consumed[j] = true, true
		l, r := s.pair(on(s.this, src.Local, src.Remote), n)
		moves = append(moves, Action{Op: sideOps[s.this].move, Path: src.Path, To: a.Path, Local: l, Remote: r,
			Base: src.Base, Reason: "moved " + adverb(s.other)})
	}
	if len(moves) == 0 {
		return ms
	}
	// Everything inside a moved folder, and every other move into or out of one, waits for the next round.
	for _, m := range moves {
		if !m.Base.Dir {
			continue
		}
		for i, a := range acts {
			if (a.Path != m.Path && a.Path.Within(m.Path)) || (a.Path != m.To && a.Path.Within(m.To)) {
				ms.consumed[i] = true
			}
		}
	}
	// Moves inside another moved folder wait for the next round, after the trees are re-keyed. Moves are kept
	// greedily by destination depth, so a folder's new parent is placed before what moves into it; the greedy
	// order also keeps one of two moves that each lie inside the other (seed 31503: b moved out of Z to a/x,
	// then Z moved into a/x; dropping both left them unplanned for ever).
	slices.SortStableFunc(moves, func(a, b Action) int {
		if da, db := a.To.Depth(), b.To.Depth(); da != db {
			return da - db
		}
		return state.Compare(a.To, b.To)
	})
	for _, m := range moves {
		if !slices.ContainsFunc(ms.moves, func(o Action) bool { return o.Base.Dir && nested(m, o) }) {
			ms.moves = append(ms.moves, m)
		}
	}
	return ms
}

// nested: move m starts or ends strictly inside folder move o's source or destination.
func nested(m, o Action) bool {
	in := func(p, d remote.Path) bool { return p != d && p.Within(d) }
	return in(m.Path, o.Path) || in(m.To, o.To) || in(m.Path, o.To) || in(m.To, o.Path)
}

// folderMove is a folder move candidate: the folder from (gone on side) and the new folder to with its id.
type folderMove struct {
	from, to remote.Path
	side     state.Side
}

// folderMoveEvidence finds, for each new folder whose id the base knew at a folder now gone on the same side,
// whether a file came along: a new file below it whose content is what the base held at the same place below
// the old folder, or at the base path its own id names there. Only such folders are moves: a folder's id
// alone (an inode) is handed out again by the filesystem, and a wrong move would replace the files at the old
// place by new ones without their old versions going to any trash. Without evidence the old folder is
// deleted (its files to the trash) and the new one created.
func folderMoveEvidence(acts []Action, gone [2]map[remote.Path]int, lookup idLookup) map[folderMove]bool {
	cands := map[remote.Path][]folderMove{} // by new folder
	for _, a := range acts {
		s, n, ok := created(a, true)
		if !ok || !n.Dir || n.ID == "" {
			continue
		}
		if p, ok := lookup(sideOps[s.other].baseIndex, n.ID); ok {
			if j, isGone := gone[s.other][p]; isGone && acts[j].Base.Dir {
				cands[a.Path] = append(cands[a.Path], folderMove{p, a.Path, s.other})
			}
		}
	}
	found := map[folderMove]bool{}
	if len(cands) == 0 {
		return found
	}
	for _, a := range acts {
		s, f, ok := created(a, false)
		// An empty file proves nothing: every empty file has the same digest, and a new one often gets the
		// inode of an empty file just removed with the old folder (seed 3981: rm -r D; mkdir E; touch E/b took
		// D/café's inode, the folder "move" then uploaded the empty E/b over D/b, whose version no trash held).
		if !ok || a.Op != sideOps[s.this].transfer || f.Size == 0 {
			continue
		}
		for d := a.Path.Dir(); d != remote.Root; d = d.Dir() {
			for _, c := range cands[d] {
				if c.side != s.other || found[c] {
					continue
				}
				same := func(p remote.Path) bool {
					j, ok := gone[s.other][p]
					return ok && !acts[j].Base.Dir && p.Within(c.from) && holds(s.other, f, acts[j].Base)
				}
				if same(a.Path.Rebase(c.to, c.from)) {
					found[c] = true
					continue
				}
				if f.ID != "" {
					if p, ok := lookup(sideOps[s.other].baseIndex, f.ID); ok && same(p) {
						found[c] = true
					}
				}
			}
		}
	}
	return found
}
