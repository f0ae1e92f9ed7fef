package engine

import (
	"slices"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// as is r with the id of the object that was at path was (a file or folder that kept its id through a move).
func as(r *state.Record, was string) *state.Record {
	c := *r
	c.ID = "id-" + was
	return &c
}

// synced is a row of a path both sides hold as the base recorded.
func synced(r *state.Record) row { return row{string(r.Path), base(r, r), r, r} }

// goneLocally is a row of a synced path deleted locally; goneRemotely deleted on the remote.
func goneLocally(r *state.Record) row  { return row{string(r.Path), base(r, r), nil, r} }
func goneRemotely(r *state.Record) row { return row{string(r.Path), base(r, r), r, nil} }
func newLocal(r *state.Record) row     { return row{string(r.Path), nil, r, nil} }
func newRemote(r *state.Record) row    { return row{string(r.Path), nil, nil, r} }

// planMoves plans rows (any order) with the base's id index as move detection's lookup; fold: the remote
// ignores case and normalises names.
func planMoves(t *testing.T, rows []row, fold bool) (plan []Action, consumed []string) {
	t.Helper()
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b row) int { return state.Compare(remote.Path(a.p), remote.Path(b.p)) })
	ids := map[state.Index]map[string]remote.Path{state.IDBaseLocal: {}, state.IDBaseRemote: {}}
	for _, r := range rows {
		if r.b != nil {
			ids[state.IDBaseLocal][r.b.Local.ID] = r.b.Path
			ids[state.IDBaseRemote][r.b.Remote.ID] = r.b.Path
		}
	}
	lookup := func(ix state.Index, id string) (remote.Path, bool) {
		p, ok := ids[ix][id]
		return p, ok
	}
	pl := &planner{}
	if fold {
		pl.fold = newFoldState(remote.Capabilities{FoldsCase: true, NormalizesUnicode: true})
	}
	for _, r := range rows {
		pl.add(remote.Path(r.p), r.b, r.l, r.r)
	}
	// Move detection itself changes nothing: it only reports the moves and what they consume.
	dec := pl.decisions()
	before := slices.Clone(dec)
	ms := findMoves(dec, lookup)
	if !slices.Equal(before, dec) {
		t.Fatalf("findMoves changed the decisions")
	}
	for i := range ms.consumed {
		consumed = append(consumed, string(dec[i].Path))
	}
	// Holding uploads for their other spelling's delete builds the final plan anew: it changes no planned action.
	if pl.fold != nil {
		planned := ms.apply(dec)
		before := slices.Clone(planned)
		holdUploads(planned, pl.fold.afterDelete)
		if !slices.Equal(before, planned) {
			t.Fatalf("holdUploads changed the plan it was given")
		}
	}
	slices.Sort(consumed)
	return pl.finish(lookup), consumed
}

// TestMoveTable holds the rules of move detection, one row each. Seeds name the simulation run that found the
// case.
func TestMoveTable(t *testing.T) {
	a, b := file("a.txt", "content"), file("b.txt", "content")
	d, n, df, nf := dir("d"), dir("n"), file("d/f", "f"), file("n/f", "f")
	editedRemote := as(file("b.txt", "other"), "a.txt")
	touchedRemote := as(file("b.txt", "content"), "a.txt")
	touchedRemote.Rev = "rev-new" // a new revision of the same bytes
	emptyOld, emptyNew := file("d/café", ""), as(file("n/b", ""), "d/café")
	z, zb, zbf, zg, ad := dir("Z"), dir("Z/b"), file("Z/b/f", "f"), file("Z/g", "g"), dir("a")
	report, reportDir := file("report", "content"), dir("Report")
	bigR, bigRa := dir("Report"), file("Report/a", "a")
	bigD, bigDf := dir("D"), file("D/f", "f")
	cases := []struct {
		name, why string
		fold      bool
		rows      []row
		want      []string
		consumes  []string // the decisions the moves take the place of or leave for the next round (sorted)
	}{
		{name: "file moved locally",
			why:      "the new local file has the inode the base knew at a.txt and the same content",
			rows:     []row{goneLocally(a), newLocal(as(b, "a.txt"))},
			want:     []string{"move-remote a.txt -> b.txt"},
			consumes: []string{"a.txt", "b.txt"}},
		{name: "file moved remotely",
			why:  "the new remote file has the remote id the base knew at a.txt and its revision",
			rows: []row{goneRemotely(a), newRemote(as(b, "a.txt"))},
			want: []string{"move-local a.txt -> b.txt"}},
		{name: "inode reused",
			why:      "the same inode with other content is a new file: an inode alone never proves a move",
			rows:     []row{goneLocally(a), newLocal(as(file("b.txt", "other"), "a.txt"))},
			want:     []string{"upload b.txt", "delete-remote a.txt"},
			consumes: []string{}},
		{name: "remote move with a new revision of the same bytes",
			why:  "a remote file holds the base's content when its digest agrees, whatever its revision",
			rows: []row{goneRemotely(a), newRemote(touchedRemote)},
			want: []string{"move-local a.txt -> b.txt"}},
		{name: "remote move of an edited file",
			why:  "same id, other content: the old one is deleted, the new one downloaded",
			rows: []row{goneRemotely(a), newRemote(editedRemote)},
			want: []string{"download b.txt", "delete-local a.txt"}},
		{name: "folder moved locally with its file",
			why:      "a file came along (same content at the same place below): the folder moves, what is inside waits for the next round",
			rows:     []row{goneLocally(d), goneLocally(df), newLocal(as(n, "d")), newLocal(as(nf, "d/f"))},
			want:     []string{"move-remote d -> n"},
			consumes: []string{"d", "d/f", "n", "n/f"}},
		{name: "folder moved remotely with its file",
			why:  "as above, the other way",
			rows: []row{goneRemotely(d), goneRemotely(df), newRemote(as(n, "d")), newRemote(as(nf, "d/f"))},
			want: []string{"move-local d -> n"}},
		{name: "folder with a renamed file inside moved",
			why:  "the evidence may also be a file whose own id names a base file below the old folder",
			rows: []row{goneLocally(d), goneLocally(df), newLocal(as(n, "d")), newLocal(as(file("n/g", "f"), "d/f"))},
			want: []string{"move-remote d -> n"}},
		{name: "folder inode reused (issue 9 item 6)",
			why:  "rm -rf d; mkdir n gave n the inode d freed, but no file came along: delete and create",
			rows: []row{goneLocally(d), goneLocally(df), newLocal(as(n, "d")), newLocal(file("n/g", "g"))},
			want: []string{"mkdir-remote n", "upload n/g", "delete-remote d/f", "delete-remote d"}},
		{name: "seed 3981: an empty file is no evidence",
			why:  "rm -r d; mkdir n; touch n/b took the inode of the empty d/café: every empty file has the same digest, so the folder is not a move (the empty file itself pairs with d/café)",
			rows: []row{goneLocally(d), goneLocally(emptyOld), newLocal(as(n, "d")), newLocal(emptyNew)},
			want: []string{"mkdir-remote n", "move-remote d/café -> n/b", "delete-remote d"}},
		{name: "move into a new folder",
			why:  "the new folder is created first, then the file moves into it",
			rows: []row{goneLocally(a), newLocal(n), newLocal(as(file("n/a.txt", "content"), "a.txt"))},
			want: []string{"mkdir-remote n", "move-remote a.txt -> n/a.txt"}},
		{name: "seed 31503: two folder moves each inside the other",
			why: "Z/b moved out of Z to a/x, then Z moved into a/x: the shallower destination is kept, the other is found again next round (dropping both left them unplanned for ever)",
			rows: []row{goneLocally(z), goneLocally(zb), goneLocally(zbf), goneLocally(zg), synced(ad),
				newLocal(as(dir("a/x"), "Z/b")), newLocal(as(file("a/x/f", "f"), "Z/b/f")),
				newLocal(as(dir("a/x/Z"), "Z")), newLocal(as(file("a/x/Z/g", "g"), "Z/g"))},
			want:     []string{"move-remote Z/b -> a/x"},
			consumes: []string{"Z", "Z/b", "Z/b/f", "Z/g", "a/x", "a/x/Z", "a/x/Z/g", "a/x/f"}},
		{name: "case-only rename on a folding remote",
			why:  "report.txt renamed Report.txt pairs as an ordinary move; the executor renames in two steps",
			fold: true,
			rows: []row{goneLocally(file("report.txt", "r")), newLocal(as(file("Report.txt", "r"), "report.txt"))},
			want: []string{"move-remote report.txt -> Report.txt"}},
		{name: "seed 5894: file moved into a new folder of its own folded name",
			why:  "the folder Report waits for the delete of report, so the move into it could never run: report goes to the trash now, Report/report is uploaded next round",
			fold: true,
			rows: []row{goneLocally(report), newLocal(reportDir), newLocal(as(file("Report/report", "content"), "report"))},
			want: []string{"delete-remote report"}},
		{name: "seed 6726: folder moved into a new folder of its own folded name",
			why:  "the folder move Report -> report/old goes back to a delete, and the delete takes back what is inside (its deletes were deferred as inside a moved folder)",
			fold: true,
			rows: []row{goneLocally(bigR), goneLocally(bigRa), newLocal(dir("report")),
				newLocal(as(dir("report/old"), "Report")), newLocal(as(file("report/old/a", "a"), "Report/a"))},
			want: []string{"delete-remote Report/a", "delete-remote Report"}},
		{name: "seed 1708: file moved out of the other spelling into the held folder",
			why:  "D/ came back as a new folder d/ (not a move) holding D/f: the move D/f -> d/f would wait with d, and D's delete fail on a non-empty folder, so D/f is deleted now and uploaded next round",
			fold: true,
			rows: []row{goneLocally(bigD), goneLocally(bigDf), newLocal(dir("d")), newLocal(as(file("d/f", "f"), "D/f"))},
			want: []string{"delete-remote D/f", "delete-remote D"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, consumed := planMoves(t, tc.rows, tc.fold)
			if got := ops(plan); !slices.Equal(got, tc.want) {
				t.Fatalf("%s\nplan = %q\nwant   %q", tc.why, got, tc.want)
			}
			if tc.consumes != nil && !slices.Equal(consumed, tc.consumes) {
				t.Fatalf("%s\nconsumed %q\nwant     %q", tc.why, consumed, tc.consumes)
			}
		})
	}
}
