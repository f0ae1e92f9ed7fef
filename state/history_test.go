package state

import (
	"fmt"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

func historyOf(t *testing.T, s *Store, p remote.Path) []HistoryEntry {
	t.Helper()
	var out []HistoryEntry
	mustView(t, s, func(r Reader) error {
		return r.History(p, func(h HistoryEntry) error { out = append(out, h); return nil })
	})
	return out
}

func TestHistoryNewestFirstAndReplace(t *testing.T) {
	s := open(t)
	if got := historyOf(t, s, "a"); len(got) != 0 {
		t.Fatalf("a database without history: %v", got)
	}
	var first uint64
	mustUpdate(t, s, func(w Writer) error {
		var err error
		first, err = w.AddHistory(HistoryEntry{Path: "a", Op: "upload", Outcome: "done", Reason: "new locally"})
		if err != nil {
			return err
		}
		// Neighbours in key order must not leak into a's history.
		for _, p := range []remote.Path{"a/b", "a.txt", "b"} {
			if _, err := w.AddHistory(HistoryEntry{Path: p, Op: "download", Outcome: "done"}); err != nil {
				return err
			}
		}
		_, err = w.AddHistory(HistoryEntry{Path: "a", Op: "delete-remote", Outcome: "done"})
		return err
	})
	got := historyOf(t, s, "a")
	if len(got) != 2 || got[0].Op != "delete-remote" || got[1].Op != "upload" || got[1].Reason != "new locally" {
		t.Fatalf("history of a, newest first: %+v", got)
	}
	mustUpdate(t, s, func(w Writer) error {
		_, err := w.AddHistory(HistoryEntry{Path: "a", Seq: first, Op: "upload", Outcome: "failed", Error: "boom"})
		return err
	})
	got = historyOf(t, s, "a")
	if len(got) != 2 || got[1].Outcome != "failed" || got[1].Error != "boom" {
		t.Fatalf("replaced entry: %+v", got)
	}
	if got := historyOf(t, s, "a/b"); len(got) != 1 {
		t.Fatalf("a/b: %+v", got)
	}
}

func TestHistoryBounds(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error {
		for i := range HistoryPerPath + 5 {
			if _, err := w.AddHistory(HistoryEntry{Path: "hot", Op: "upload", Outcome: "done", Reason: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	got := historyOf(t, s, "hot")
	if len(got) != HistoryPerPath || got[0].Reason != fmt.Sprint(HistoryPerPath+4) || got[HistoryPerPath-1].Reason != "5" {
		t.Fatalf("per-path bound: %d entries, newest %q oldest %q", len(got), got[0].Reason, got[len(got)-1].Reason)
	}
	mustUpdate(t, s, func(w Writer) error {
		for i := range HistoryTotal - HistoryPerPath { // exactly at the bound, with hot's entries
			if _, err := w.AddHistory(HistoryEntry{Path: remote.Path(fmt.Sprintf("f%06d", i)), Op: "upload", Outcome: "done"}); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, s, func(r Reader) error {
		n, err := r.HistoryCount()
		if err != nil || n != HistoryTotal {
			t.Errorf("count %d %v, want %d", n, err, HistoryTotal)
		}
		return nil
	})
	// One more passes the bound: the oldest tenth goes (hot's 20 and the oldest f entries), the newest stay.
	mustUpdate(t, s, func(w Writer) error {
		_, err := w.AddHistory(HistoryEntry{Path: "one-more", Op: "upload", Outcome: "done"})
		return err
	})
	mustView(t, s, func(r Reader) error {
		n, err := r.HistoryCount()
		if err != nil || n > HistoryTotal*9/10+1 || n < HistoryTotal*9/10-HistoryPerPath {
			t.Errorf("count after the drop %d %v", n, err)
		}
		return nil
	})
	if got := historyOf(t, s, "hot"); len(got) != 0 {
		t.Fatalf("the oldest entries in all must go first: hot kept %d", len(got))
	}
	if got := historyOf(t, s, "f000000"); len(got) != 0 {
		t.Fatalf("f000000 is among the oldest and must be gone")
	}
	for _, p := range []remote.Path{"f099979", "one-more"} {
		if got := historyOf(t, s, p); len(got) != 1 {
			t.Fatalf("%s must stay: %v", p, got)
		}
	}
}
