package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

func historyOf(t *testing.T, st *state.Store, p remote.Path) []state.HistoryEntry {
	t.Helper()
	var out []state.HistoryEntry
	if err := st.View(func(r state.Reader) error {
		return r.History(p, func(h state.HistoryEntry) error { out = append(out, h); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every executed action leaves an entry under its path: an upload, a move under both names, a conflict under
// the path and its copy; newest first.
func TestHistoryRecordsDecisions(t *testing.T) {
	p := newRealPair(t)
	write(t, p.L, "a.txt", "one")
	p.pass()
	h := historyOf(t, p.st, "a.txt")
	if len(h) != 1 || h[0].Op != "upload" || h[0].Outcome != "done" || h[0].Reason == "" || h[0].Local == nil ||
		h[0].Local.Size != 3 || !strings.HasPrefix(h[0].Local.Hash, "sha256:") || h[0].Remote != nil ||
		!strings.HasPrefix(h[0].Pass, "full") {
		t.Fatalf("upload entry: %+v", h)
	}
	if err := os.Rename(filepath.Join(p.L, "a.txt"), filepath.Join(p.L, "b.txt")); err != nil {
		t.Fatal(err)
	}
	p.pass()
	h = historyOf(t, p.st, "a.txt")
	if len(h) != 2 || h[0].Op != "move-remote" || h[0].To != "b.txt" || h[1].Op != "upload" {
		t.Fatalf("a.txt after the move, newest first: %+v", h)
	}
	in := historyOf(t, p.st, "b.txt")
	if len(in) != 1 || in[0].From != "a.txt" || in[0].Op != "move-remote" {
		t.Fatalf("b.txt: the move in: %+v", in)
	}
	p.conflict("b.txt", "local edit", "remote edit!")
	h = historyOf(t, p.st, "b.txt")
	if h[0].Op != "conflict" || h[0].Copy == "" || h[0].Local == nil || h[0].Remote == nil ||
		h[0].Local.Size == h[0].Remote.Size {
		t.Fatalf("conflict entry: %+v", h[0])
	}
	cp := historyOf(t, p.st, h[0].Copy)
	if len(cp) == 0 || cp[len(cp)-1].From != "b.txt" {
		t.Fatalf("the copy %s names where it came from: %+v", h[0].Copy, cp)
	}
}

// A failing action is recorded as failed with its error, in a transaction of its own; the daemon's reason
// for the pass is kept with it.
func TestHistoryRecordsFailure(t *testing.T) {
	clk, local, mem := memPair(memremote.Options{})
	rem := refusingPuts(mem)
	if err := local.WriteFile("a", []byte("refused")); err != nil {
		t.Fatal(err)
	}
	st := memStore(t)
	e := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{MaxRounds: 1})
	e.SetPassWhy("a local change")
	if _, err := e.RunScoped(t.Context(), &Scope{Local: []ScopePath{{Path: "a"}}}); err != nil {
		t.Fatal(err)
	}
	h := historyOf(t, st, "a")
	if len(h) != 1 || h[0].Outcome != "failed" || !strings.Contains(h[0].Error, "the provider refused it") ||
		h[0].Pass != "scoped: a local change" {
		t.Fatalf("failed upload: %+v", h)
	}
	rem.fail.Store(false)
	if _, err := e.RunPass(t.Context()); err != nil {
		t.Fatal(err)
	}
	h = historyOf(t, st, "a")
	if len(h) != 2 || h[0].Outcome != "done" || h[1].Outcome != "failed" || h[0].Pass != "full: a local change" {
		t.Fatalf("then done: %+v", h)
	}
}
