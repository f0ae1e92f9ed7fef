package state

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

func settled(t *testing.T, s *Store, tag string) bool {
	t.Helper()
	var ok bool
	mustView(t, s, func(r Reader) error {
		var err error
		ok, err = r.Settled([]byte(tag))
		return err
	})
	return ok
}

func mark(t *testing.T, s *Store, tag string) {
	t.Helper()
	if !markAt(t, s, tag, gen(t, s)) {
		t.Fatal("MarkSettled at the current generation marked nothing")
	}
}

func markAt(t *testing.T, s *Store, tag string, g uint64) bool {
	t.Helper()
	var ok bool
	mustUpdate(t, s, func(w Writer) error {
		var err error
		ok, err = w.MarkSettled([]byte(tag), g)
		return err
	})
	return ok
}

func gen(t *testing.T, s *Store) uint64 {
	t.Helper()
	var g uint64
	mustView(t, s, func(r Reader) error {
		var err error
		g, err = r.TreeGen()
		return err
	})
	return g
}

// TestSettledVoidedByTreeWrites: the mark holds across commits that leave the trees alone (meta, journal,
// conflicts, history, a rolled-back write, a reopen) and falls with the first commit that writes any tree.
func TestSettledVoidedByTreeWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	s := openAt(t, path)
	if settled(t, s, "v1") {
		t.Fatal("a fresh store is settled")
	}
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("a", "1")) })
	mark(t, s, "v1")
	if !settled(t, s, "v1") {
		t.Fatal("not settled right after the mark")
	}
	if settled(t, s, "v2") {
		t.Fatal("settled for another tag")
	}
	mustUpdate(t, s, func(w Writer) error {
		if err := w.SetMeta("x", []byte{1}); err != nil {
			return err
		}
		if _, err := w.BeginIntent(Intent{Op: "upload", Path: "a"}); err != nil {
			return err
		}
		if err := w.AddConflict(Conflict{Path: "a", Copy: "a (conflict)"}); err != nil {
			return err
		}
		_, err := w.AddHistory(HistoryEntry{Path: "a", Op: "upload"})
		return err
	})
	boom := errors.New("boom")
	if err := s.Update(func(w Writer) error {
		if err := w.Put(Remote, rec("b", "2")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(w Writer) error { return w.Delete(Local, "not-there") }) // writes nothing
	if !settled(t, s, "v1") {
		t.Fatal("a commit that wrote no tree voided the mark")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	if !settled(t, s, "v1") {
		t.Fatal("reopening voided the mark")
	}

	for _, c := range []struct {
		name  string
		write func(Writer) error
	}{
		{"put", func(w Writer) error { return w.Put(Remote, rec("b", "2")) }},
		{"delete", func(w Writer) error { return w.Delete(Remote, "b") }},
		{"put base", func(w Writer) error { return w.PutBase(Base{Path: "c", Hash: rec("c", "3").Hash}) }},
		{"delete base", func(w Writer) error { return w.DeleteBase("c") }},
		{"move tree", func(w Writer) error { return w.MoveTree("a", "d") }},
		{"delete tree", func(w Writer) error { return w.DeleteTree(Local, "d") }},
		{"delete base tree", func(w Writer) error { return w.DeleteBaseTree(remote.Root) }},
	} {
		mark(t, s, "v1")
		mustUpdate(t, s, c.write)
		if settled(t, s, "v1") {
			t.Errorf("%s: still settled", c.name)
		}
	}

	// A mark in the transaction that also wrote a tree is no mark: the plan it stands for did not see that;
	// nor is one for a generation that a commit has moved on from (a write between the plan and the mark).
	g := gen(t, s)
	mustUpdate(t, s, func(w Writer) error {
		if err := w.Put(Local, rec("e", "5")); err != nil {
			return err
		}
		ok, err := w.MarkSettled([]byte("v1"), g)
		if ok {
			t.Error("MarkSettled after a write in its own transaction marked")
		}
		return err
	})
	if settled(t, s, "v1") {
		t.Fatal("settled by a mark after a write in one transaction")
	}
	g = gen(t, s)
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("f", "6")) })
	if markAt(t, s, "v1", g) || settled(t, s, "v1") {
		t.Fatal("marked settled at a generation a commit had left")
	}
	if err := s.Update(func(w Writer) error { return w.SetMeta(metaSettled, []byte{1}) }); err == nil {
		t.Fatal("SetMeta wrote the reserved settled key")
	}
}

// TestTrackerCollectsCommittedTreePaths: what a Tracker returns is every tree path of every commit made while
// it was attached, nothing rolled back, and an overflow says so instead of returning part.
func TestTrackerCollectsCommittedTreePaths(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("before", "1")) })
	tr := s.Track(10)
	mustUpdate(t, s, func(w Writer) error {
		if err := w.Put(Local, rec("a", "1")); err != nil {
			return err
		}
		if err := w.Delete(Local, "before"); err != nil {
			return err
		}
		return w.PutBase(Base{Path: "b", Hash: rec("b", "2").Hash})
	})
	_ = s.Update(func(w Writer) error {
		if err := w.Put(Local, rec("rolled-back", "1")); err != nil {
			return err
		}
		return errors.New("no")
	})
	mustUpdate(t, s, func(w Writer) error { return w.MoveTree("a", "c") })
	got, complete := tr.Paths()
	slices.Sort(got)
	got = slices.Compact(got) // a tree operation may name a path once per tree
	want := []remote.Path{"a", "b", "before", "c"}
	if !complete || !slices.Equal(got, want) {
		t.Fatalf("Paths() = %q, %v; want %q, true", got, complete, want)
	}
	g := gen(t, s)
	mustUpdate(t, s, func(w Writer) error { return w.Delete(Local, "c") })
	if got, complete = tr.PathsSince(g); !complete || !slices.Equal(got, []remote.Path{"c"}) {
		t.Fatalf("PathsSince(%d) = %q, %v; want the one commit after it", g, got, complete)
	}
	mustUpdate(t, s, func(w Writer) error {
		for _, p := range []string{"d", "e", "f", "g", "h", "i", "j", "k"} {
			if err := w.Put(Remote, rec(p, "1")); err != nil {
				return err
			}
		}
		return nil
	})
	if got, complete = tr.Paths(); complete || got != nil {
		t.Fatalf("past its bound: Paths() = %q, %v; want nothing, false", got, complete)
	}
	tr.Stop()
	tr2 := s.Track(5)
	defer tr2.Stop()
	tr.Stop() // the old one's Stop leaves the new one attached
	mustUpdate(t, s, func(w Writer) error { return w.Put(Remote, rec("e", "1")) })
	if got, complete = tr2.Paths(); !complete || !slices.Equal(got, []remote.Path{"e"}) {
		t.Fatalf("second tracker: Paths() = %q, %v", got, complete)
	}
}
