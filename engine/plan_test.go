package engine

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// file builds a record of a file whose content is data (the digest stands for the content).
func file(p, data string) *state.Record {
	return &state.Record{Entry: remote.Entry{Path: remote.Path(p), Size: int64(len(data)), ID: "id-" + p,
		Rev: "rev-" + data, Hash: remote.Hash{Algo: "sha256", Hex: "h-" + data}}}
}

func dir(p string) *state.Record {
	return &state.Record{Entry: remote.Entry{Path: remote.Path(p), Dir: true, ID: "id-" + p}}
}

func base(l, r *state.Record) *state.Base {
	return &state.Base{Path: l.Path, Dir: l.Dir, Hash: l.Hash, Local: *l, Remote: *r}
}

func TestDecide(t *testing.T) {
	v1, v2, v3 := file("a", "one"), file("a", "two"), file("a", "three")
	b1 := base(v1, v1)
	d := dir("a")
	bd := base(d, d)
	noHash := file("a", "two")
	noHash.Hash = remote.Hash{}
	touched := file("a", "one")
	touched.Rev = "rev-touched" // new revision, same digest
	// Modes (issue 13 item 6): both sides keep them in bm; a chmod moves the stat fingerprint (Rev) too.
	withMode := func(r *state.Record, m fs.FileMode, rev string) *state.Record {
		c := *r
		c.Mode = m
		if rev != "" {
			c.Rev = rev
		}
		return &c
	}
	m644 := withMode(v1, 0o644, "")
	bm := base(m644, m644)
	lChmod := withMode(v1, 0o600, "rev-chmod")
	rChmod := withMode(v1, 0o755, "rev-chmod")
	lEditChmod := withMode(v2, 0o600, "rev-edit")
	cloudBase := base(m644, v1) // the remote keeps no modes
	cases := []struct {
		name    string
		b       *state.Base
		l, r    *state.Record
		want    Op
		destroy bool
	}{
		// Neither side changed.
		{"in sync", b1, v1, v1, OpNone, false},
		{"nothing anywhere", nil, nil, nil, OpNone, false},
		{"remote metadata-only change refreshes the base", b1, v1, touched, Record, false},
		// Local changed, remote unchanged.
		{"local edit uploads", b1, v2, v1, Upload, false},
		{"new local file uploads", nil, v1, nil, Upload, false},
		{"new local folder mkdirs remote", nil, d, nil, MkdirRemote, false},
		{"local delete deletes remote", b1, nil, v1, DeleteRemote, true},
		{"local folder delete deletes remote folder", bd, nil, d, DeleteRemote, true},
		{"local file replaced by folder: remote file to trash first", b1, d, v1, DeleteRemote, true},
		{"local folder replaced by file: remote folder goes first", bd, v1, d, DeleteRemote, true},
		// Remote changed, local unchanged.
		{"remote edit downloads", b1, v1, v2, Download, false},
		{"new remote file downloads", nil, nil, v1, Download, false},
		{"new remote folder mkdirs local", nil, nil, d, MkdirLocal, false},
		{"remote delete deletes local", b1, v1, nil, DeleteLocal, true},
		{"remote file replaced by folder", b1, v1, d, DeleteLocal, true},
		// Permission bits between two sides that keep them; never towards a side that does not.
		{"local chmod alone sets the remote's bits", bm, lChmod, m644, ChmodRemote, false},
		{"remote chmod alone sets the local bits", bm, m644, rChmod, ChmodLocal, false},
		{"local edit and chmod uploads", bm, lEditChmod, m644, Upload, false},
		{"local chmod towards a cloud is no change", cloudBase, lChmod, v1, OpNone, false},
		{"a base from before modes is recorded again", b1, m644, m644, Record, false},
		// Both changed.
		{"same edit both sides records base only", b1, v2, v2, Record, false},
		{"different edits keep both", b1, v2, v3, Conflict, false},
		{"first sync different content is a conflict", nil, v2, v3, Conflict, false},
		{"first sync same content records", nil, v2, v2, Record, false},
		{"remote digest unknown: compare content", b1, v2, noHash, Compare, false},
		{"local delete vs remote edit restores", b1, nil, v2, Download, false},
		{"remote delete vs local edit re-uploads", b1, v2, nil, Upload, false},
		{"deleted on both sides forgets", b1, nil, nil, Forget, false},
		{"folder on both sides records", nil, d, d, Record, false},
		{"file vs folder is a type conflict", nil, v1, d, TypeConflict, false},
		{"folder vs file is a type conflict", nil, d, v1, TypeConflict, false},
		{"local delete vs remote folder created in its place", b1, nil, d, MkdirLocal, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide("a", tc.b, tc.l, tc.r)
			if a.Op != tc.want {
				t.Fatalf("decide = %v (%s), want %v", a.Op, a.Reason, tc.want)
			}
			// I1/I4: a destructive action only where the side it changes still holds the base.
			if a.Op == DeleteRemote && (tc.b == nil || tc.r == nil || remoteChanged(tc.b, tc.r)) {
				t.Fatalf("delete-remote of a remote that differs from the base")
			}
			if a.Op == DeleteLocal && (tc.b == nil || tc.l == nil || localChanged(tc.b, tc.l)) {
				t.Fatalf("delete-local of a local file that differs from the base")
			}
			if tc.destroy != (a.Op == DeleteLocal || a.Op == DeleteRemote) {
				t.Fatalf("destructive = %v, want %v", !tc.destroy, tc.destroy)
			}
		})
	}
}

// feed runs the planner over records given in store order.
type row struct {
	p    string
	b    *state.Base
	l, r *state.Record
}

func planRows(rows []row, lookup idLookup) []Action {
	pl := &planner{}
	for _, r := range rows {
		pl.add(remote.Path(r.p), r.b, r.l, r.r)
	}
	return pl.finish(lookup)
}

// checkPlan plans rows and fails t unless the plan's ops are want.
func checkPlan(t *testing.T, rows []row, lookup idLookup, want []string) {
	t.Helper()
	if got := ops(planRows(rows, lookup)); !slices.Equal(got, want) {
		t.Fatalf("plan = %q, want %q", got, want)
	}
}

func ops(acts []Action) []string {
	var s []string
	for _, a := range acts {
		s = append(s, a.String())
	}
	return s
}

func TestFolderDeleteNeverTakesUnseenFiles(t *testing.T) {
	d := dir("d")
	y := file("d/y", "y")
	// Local deleted d (with d/y); meanwhile a new file d/new appeared remotely.
	checkPlan(t, []row{
		{"d", base(d, d), nil, d},
		{"d/new", nil, nil, file("d/new", "n")},
		{"d/y", base(y, y), nil, y},
	}, nil, []string{"mkdir-local d", "download d/new", "delete-remote d/y"})
}

func TestModifiedChildRestoresDeletedFolder(t *testing.T) {
	d := dir("d")
	x := file("d/x", "x")
	// Remote deleted d; the local side edited d/x: the edit wins, d is re-created remotely.
	checkPlan(t, []row{
		{"d", base(d, d), d, nil},
		{"d/x", base(x, x), file("d/x", "x2"), nil},
	}, nil, []string{"mkdir-remote d", "upload d/x"})
}

func TestDeletesRunChildrenFirst(t *testing.T) {
	d, e := dir("d"), dir("d/e")
	f := file("d/e/f", "f")
	checkPlan(t, []row{
		{"d", base(d, d), nil, d},
		{"d/e", base(e, e), nil, e},
		{"d/e/f", base(f, f), nil, f},
	}, nil, []string{"delete-remote d/e/f", "delete-remote d/e", "delete-remote d"})
}

func TestMoveDetection(t *testing.T) {
	old := file("a.txt", "content")
	moved := file("b.txt", "content")
	moved.ID = old.ID
	lookup := func(ix state.Index, id string) (remote.Path, bool) {
		if id == old.ID {
			return "a.txt", true
		}
		return "", false
	}
	// Local move with the same content: a remote move.
	checkPlan(t, []row{
		{"a.txt", base(old, old), nil, old},
		{"b.txt", nil, moved, nil},
	}, lookup, []string{"move-remote a.txt -> b.txt"})
	// Same inode, different content: never a move (the inode was reused or the file edited).
	edited := file("b.txt", "other")
	edited.ID = old.ID
	checkPlan(t, []row{
		{"a.txt", base(old, old), nil, old},
		{"b.txt", nil, edited, nil},
	}, lookup, []string{"upload b.txt", "delete-remote a.txt"})
	// Remote move.
	rmoved := file("b.txt", "content")
	rmoved.ID = old.ID
	checkPlan(t, []row{
		{"a.txt", base(old, old), old, nil},
		{"b.txt", nil, nil, rmoved},
	}, lookup, []string{"move-local a.txt -> b.txt"})
}

func TestFolderMoveDefersChildren(t *testing.T) {
	d, nd := dir("d"), dir("n")
	nd.ID = d.ID
	f := file("d/f", "f")
	nf := file("n/f", "f")
	nf.ID = f.ID
	lookup := func(ix state.Index, id string) (remote.Path, bool) {
		switch id {
		case d.ID:
			return "d", true
		case f.ID:
			return "d/f", true
		}
		return "", false
	}
	checkPlan(t, []row{
		{"d", base(d, d), nil, d},
		{"d/f", base(f, f), nil, f},
		{"n", nil, nd, nil},
		{"n/f", nil, nf, nil},
	}, lookup, []string{"move-remote d -> n"})
}

func TestIgnoredIsForgottenNeverDeleted(t *testing.T) {
	v := file("build/out.o", "o")
	d := dir("build")
	pl := &planner{ignored: func(p remote.Path, dir bool) bool { return p == "build" }}
	pl.add("build", base(d, d), nil, d)
	pl.add("build/out.o", base(v, v), nil, v)
	for _, a := range pl.finish(nil) {
		if a.Op != Forget {
			t.Fatalf("ignored path planned %v", a)
		}
	}
}

func TestBigDeleteGuard(t *testing.T) {
	none := [2]int{}
	if err := overBudget([2]int{0, 15}, none, 20, 50, "this pass"); !errors.Is(err, ErrBigDelete) || !errors.Is(err, ErrSafetyStop) {
		t.Fatalf("15 of 20: %v", err)
	}
	if err := overBudget([2]int{0, 9}, none, 10, 50, "this pass"); err != nil {
		t.Fatalf("fewer than 10 deletes pass: %v", err)
	}
	if err := overBudget([2]int{0, 15}, none, 40, 50, "this pass"); err != nil {
		t.Fatalf("15 of 40: %v", err)
	}
	// One budget across rounds (or a rolling window): 25 planned after 5 done, of 30 files before the pass.
	if err := overBudget([2]int{0, 20}, [2]int{0, 5}, 25, 50, "this pass"); !errors.Is(err, ErrBigDelete) {
		t.Fatalf("20 planned after 5 done of 30: %v", err)
	}
	// Recent deletes alone never stop a pass that plans no delete on that side.
	if err := overBudget([2]int{1, 0}, [2]int{0, 80}, 20, 50, "the last 10m0s"); err != nil {
		t.Fatalf("no remote delete planned: %v", err)
	}
	// A slow rm: one delete per pass, 59 already in the window, of 100 files.
	err := overBudget([2]int{0, 1}, [2]int{0, 59}, 41, 50, "the last 10m0s")
	if !errors.Is(err, ErrBigDelete) || !strings.Contains(err.Error(), "60 of 100") {
		t.Fatalf("slow rm: %v", err)
	}
}
