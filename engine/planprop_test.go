package engine

import (
	"fmt"
	"sort"
	"testing"

	"pgregory.net/rapid"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// TestPlannerProperty is SIM-02 (CanopyCheck) for files: rapid draws a base and perturbs it twice into a local
// and a remote tree; the plan is applied as if every action succeeded, round after round. It must terminate
// within 50 rounds with the three trees equal, and no destructive action may take a pre-image other than the
// base. (Folders, moves and type changes are covered by the simulation.)
func TestPlannerProperty(t *testing.T) {
	names := []string{"a", "b", "c.txt", "caf\u00e9", "cafe\u0301"}
	// rapid runs -rapid.checks cases (default 100) per Check; 20 Checks make the 2,000 cases of make test.
	for range 20 {
		planProperty(t, names)
	}
}

func planProperty(t *testing.T, names []string) {
	rapid.Check(t, func(rt *rapid.T) {
		content := rapid.IntRange(0, 4) // 0: absent
		base, loc, rem := map[string]int{}, map[string]int{}, map[string]int{}
		for _, n := range names {
			if b := content.Draw(rt, "base "+n); b != 0 {
				base[n] = b
			}
			loc[n], rem[n] = base[n], base[n]
			if rapid.Bool().Draw(rt, "local changes "+n) {
				loc[n] = content.Draw(rt, "local "+n)
			}
			if rapid.Bool().Draw(rt, "remote changes "+n) {
				rem[n] = content.Draw(rt, "remote "+n)
			}
			if loc[n] == 0 {
				delete(loc, n)
			}
			if rem[n] == 0 {
				delete(rem, n)
			}
		}
		fresh := 100 // conflict copies keep their own content ids
		for round := 0; ; round++ {
			if round >= 50 {
				rt.Fatalf("no fixed point after 50 rounds: base %v local %v remote %v", base, loc, rem)
			}
			acts := planOnce(base, loc, rem)
			if len(acts) == 0 {
				break
			}
			for _, a := range acts {
				p := string(a.Path)
				pre := func(side map[string]int, what string) {
					if v, ok := side[p]; ok && v != base[p] {
						rt.Fatalf("%s %s takes %d, base %d (round %d, %v)", what, p, v, base[p], round, a)
					}
				}
				switch a.Op {
				case Upload:
					pre(rem, "upload over")
					rem[p], base[p] = loc[p], loc[p]
				case Download:
					pre(loc, "download over")
					loc[p], base[p] = rem[p], rem[p]
				case DeleteRemote:
					pre(rem, "delete-remote")
					delete(rem, p)
					delete(base, p)
				case DeleteLocal:
					pre(loc, "delete-local")
					delete(loc, p)
					delete(base, p)
				case Record:
					if loc[p] != rem[p] {
						rt.Fatalf("record %s with local %d remote %d", p, loc[p], rem[p])
					}
					base[p] = loc[p]
				case Forget:
					delete(base, p)
				case Conflict:
					fresh++
					c := fmt.Sprintf("%s (conflict %d)", p, fresh)
					loc[c] = loc[p]
					loc[p], base[p] = rem[p], rem[p]
				default:
					rt.Fatalf("unexpected %v", a)
				}
			}
		}
		for p, v := range loc {
			if rem[p] != v || base[p] != v {
				rt.Fatalf("not converged at %s: local %d remote %d base %d", p, v, rem[p], base[p])
			}
		}
		if len(loc) != len(rem) || len(loc) != len(base) {
			rt.Fatalf("not converged: base %v local %v remote %v", base, loc, rem)
		}
	})
}

func propRec(p string, v int) *state.Record {
	h := remote.Hash{Algo: "sha256", Hex: fmt.Sprintf("%064x", v)}
	return &state.Record{Entry: remote.Entry{Path: remote.Path(p), Size: int64(v), Rev: fmt.Sprint(v), Hash: h}}
}

// planOnce runs the planner over three flat trees of file contents.
func planOnce(base, loc, rem map[string]int) []Action {
	seen := map[string]bool{}
	for _, m := range []map[string]int{base, loc, rem} {
		for p := range m {
			seen[p] = true
		}
	}
	var paths []string
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return state.Compare(remote.Path(paths[i]), remote.Path(paths[j])) < 0 })
	pl := &planner{}
	for _, p := range paths {
		var b *state.Base
		var l, r *state.Record
		if v, ok := base[p]; ok {
			br := propRec(p, v)
			b = &state.Base{Path: remote.Path(p), Hash: br.Hash, Local: *br, Remote: *br}
		}
		if v, ok := loc[p]; ok {
			l = propRec(p, v)
		}
		if v, ok := rem[p]; ok {
			r = propRec(p, v)
		}
		pl.add(remote.Path(p), b, l, r)
	}
	return pl.finish(nil)
}
