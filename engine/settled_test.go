package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

// TestSettledPassPlansWhatItWrote: once a pass planned nothing, the next full pass plans its first round over
// the paths its own commits wrote (none when nothing changed), and each such plan equals the full one; a tree
// write by anyone else in between, or a pass that left work undone, makes the next pass plan everything.
func TestSettledPassPlansWhatItWrote(t *testing.T) {
	clk, local, rem := memPair(memremote.Options{})
	st := memStore(t)
	e := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{})
	for i := range 30 {
		if err := local.WriteFile(fmt.Sprintf("d%d/f%02d", i%3, i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var first []remote.Path // the roots a pass's first round was planned over; nil: it planned everything
	e.checkRoundPlan = func(roots []remote.Path, scoped, full []Action) {
		if e.pass.round == 0 && first == nil {
			first = append([]remote.Path{}, roots...)
		}
		if d := planDiff(scoped, full); d != "" {
			t.Errorf("round %d over %q: %s", e.pass.round, roots, d)
		}
	}
	// firstRound runs a pass: the roots its first round planned, and whether it planned them alone.
	firstRound := func() ([]remote.Path, bool, *Report) {
		t.Helper()
		clk.Advance(time.Minute) // files the clock has not left behind are racily clean: digested every pass
		first = nil
		rep := cleanPass(t, e)
		return first, first != nil, rep
	}
	cleanPass(t, e) // the first sync
	settledSoon := false
	for range 3 { // what the first sync's last commits wrote after its last plan takes at most a pass to settle
		if roots, ok, _ := firstRound(); ok && len(roots) == 0 {
			settledSoon = true
			break
		}
	}
	if !settledSoon {
		t.Fatal("no-change passes after a first sync never planned an empty round alone")
	}
	if roots, ok, rep := firstRound(); !ok || len(roots) != 0 || len(rep.Done) != 0 {
		t.Fatalf("no-change pass on a settled store: first round over %q (alone: %v), done %v", roots, ok, rep.Done)
	}

	clk.Advance(time.Minute)
	if err := local.WriteFile("d1/f01", []byte("edited")); err != nil {
		t.Fatal(err)
	}
	roots, ok, rep := firstRound()
	if !ok || !slices.Contains(roots, "d1/f01") || len(rep.Done) != 1 {
		t.Fatalf("one edit on a settled store: first round over %q (alone: %v), done %v", roots, ok, rep.Done)
	}

	// The edit's upload, and the feed read that confirmed it, wrote after that pass's last plan: the pass
	// planned what they wrote before it ended, so the next one is settled too.
	if roots, ok, _ := firstRound(); !ok || len(roots) != 0 {
		t.Fatalf("the pass after an edit: first round over %q (alone: %v), want none alone", roots, ok)
	}

	// Another writer of the store (here the test) voids the mark: the next pass plans everything.
	if err := st.Update(func(w state.Writer) error {
		r, found, err := w.Get(state.Local, "d2/f02")
		if err != nil || !found {
			return fmt.Errorf("get: %v %v", found, err)
		}
		r.HashedAt++
		return w.Put(state.Local, r)
	}); err != nil {
		t.Fatal(err)
	}
	if roots, ok, _ := firstRound(); ok {
		t.Fatalf("after a write outside any pass, the first round was planned over %q alone", roots)
	}
}

// TestNoSettledPassWhereTheRemoteFolds: against a remote that folds names a path's plan depends on twins
// anywhere in its folder, so every full pass plans everything.
func TestNoSettledPassWhereTheRemoteFolds(t *testing.T) {
	clk, local, rem := memPair(memremote.Options{FoldsCase: true})
	e := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: memStore(t)}, Options{})
	if err := local.WriteFile("a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	scoped := 0
	e.checkRoundPlan = func(roots []remote.Path, s, full []Action) {
		if e.pass.round == 0 {
			scoped++
		}
	}
	for range 4 {
		clk.Advance(time.Minute)
		cleanPass(t, e)
	}
	if scoped != 0 {
		t.Fatalf("%d first rounds were planned over what their pass wrote", scoped)
	}
}

// TestDownloadAfterUncleanEndKeepsBoth: after a holder of the store that did not close it, a remote change to a
// file unchanged locally is not downloaded over it: the local file may be the last copy of the version the
// remote change replaced (seed 642701), so both are kept as a conflict. Once a full pass has completed, a
// remote change is downloaded again.
func TestDownloadAfterUncleanEndKeepsBoth(t *testing.T) {
	clk, local, rem := memPair(memremote.Options{})
	open := storeOpener(t)
	st := open()
	e := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{})
	if err := local.WriteFile("b", []byte("version one")); err != nil {
		t.Fatal(err)
	}
	cleanPass(t, e)
	if st.Unclean() {
		t.Fatal("a new store is unclean")
	}
	clk.Advance(time.Minute)
	if err := rem.WriteFile("b", []byte("version two")); err != nil {
		t.Fatal(err)
	}
	if err := st.Abandon(); err != nil { // the process dies
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	if !st.Unclean() {
		t.Fatal("a store left without Close is not unclean")
	}
	// A dry run shows what the pass will do: compare, not download.
	dry := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{DryRun: true})
	drep, err := dry.RunPass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(drep.Planned) != 1 || drep.Planned[0].Op != Compare {
		t.Fatalf("dry run after an unclean end planned %v, want one Compare", drep.Planned)
	}
	if !st.Unclean() {
		t.Fatal("a dry run cleared the unclean mark")
	}
	e = testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{})
	rep := cleanPass(t, e)
	if len(rep.Conflicts) != 1 {
		t.Fatalf("after an unclean end: conflicts %+v, done %v; want the remote change kept beside the local file", rep.Conflicts, rep.Done)
	}
	for _, s := range []*memremote.Mem{local, rem} {
		snap := s.Snapshot()
		for _, want := range []string{"version one", "version two"} {
			sum := sha256.Sum256([]byte(want))
			if !slices.Contains(slices.Collect(maps.Values(snap)), hex.EncodeToString(sum[:])) {
				t.Errorf("%s lost %q: %v", s, want, snap)
			}
		}
	}
	if st.Unclean() {
		t.Fatal("still unclean after a full pass")
	}
	clk.Advance(time.Minute)
	if err := rem.WriteFile("b", []byte("version three")); err != nil {
		t.Fatal(err)
	}
	rep = cleanPass(t, e)
	if len(rep.Conflicts) != 0 || len(rep.Done) != 1 {
		t.Fatalf("after recovery: conflicts %+v, done %v; want one download", rep.Conflicts, rep.Done)
	}
}
