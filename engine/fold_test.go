package engine

import (
	"path"
	"slices"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

// TestFoldFinalForms: on a folding remote a later spelling may settle the fate of an earlier one (or of a folder
// whose subtree is half planned), and the walk plans each name's actions once, in their final form. What is
// planned at and below a name before its fate is settled takes that fate; what comes after (an ignored file, the
// rest of a subtree left out) is planned as it is, as it was when the planner changed planned actions in place.
func TestFoldFinalForms(t *testing.T) {
	X, x := dir("X"), dir("x")
	xa, xaNew, xb, xc := file("x/a", "a"), file("x/a", "a2"), file("x/b.log", "b"), file("x/c", "c")
	AB, Ab, aB, Abx := dir("AB"), dir("Ab"), dir("aB"), file("Ab/x.log", "x")
	co := " (" + collides + ")"
	for _, tc := range []struct {
		name string
		rows []row
		want []string
	}{
		{name: "a folder the remote took again in another spelling collides once a child must stay",
			rows: []row{
				{"X", base(X, X), X, X},
				{"x", base(x, x), x, nil},
				{"x/a", base(xa, xa), xaNew, nil},  // changed here, gone there: it must stay, so x would be made again
				{"x/b.log", base(xb, xb), xb, nil}, // ignored, met after x became a collision: forgotten as ignored
				{"x/c", base(xc, xc), xc, nil},     // left out: its sync point forgotten
			},
			want: []string{"forget x" + co, "forget x/a" + co, "forget x/b.log (ignored)", "forget x/c" + co,
				"collision x with X"},
		},
		{name: "a case rename's local spelling collides with a third spelling on both sides",
			rows: []row{
				{"AB", nil, nil, AB},
				{"Ab", nil, Ab, nil},
				{"Ab/x.log", nil, Abx, nil}, // ignored below the renamed spelling, which then collides: nothing
				{"aB", nil, aB, aB},
			},
			want: []string{"move-remote AB -> Ab (the remote holds this name in another spelling (it ignores case or " +
				"normalises names))", "record aB (folder on both sides)", "collision Ab with aB"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := &planner{fold: newFoldState(remote.Capabilities{FoldsCase: true}),
				ignored: func(p remote.Path, _ bool) bool { return path.Ext(string(p)) == ".log" }}
			for _, r := range tc.rows {
				pl.add(remote.Path(r.p), r.b, r.l, r.r)
			}
			var got []string
			for _, a := range pl.finish(nil) {
				got = append(got, a.String()+" ("+a.Reason+")")
			}
			for _, c := range pl.fold.collisions {
				got = append(got, "collision "+string(c.Path)+" with "+string(c.With))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}
