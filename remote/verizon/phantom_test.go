package verizon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
	"github.com/tandemsync/tandem/state"
)

// TestStoredFolderGoneRemotelyHeals: the stored view holds a remote folder the server no longer has, and the
// cursor's listing does not hold it either, so no feed read will ever name it (the state the torture's Verizon
// seed 365366 reached: "folder /VZMOBILE/T/d106 not found" on every pass, for every upload and move into it).
// However the view got there, the first write that the server refuses for a missing folder must lead the engine
// to look at the stored folders above the target and drop those that are gone, so the next pass re-creates the
// folder instead of failing for good.
func TestStoredFolderGoneRemotelyHeals(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	L := t.TempDir()
	st, ld := openPair(t, L)
	pass := func() *engine.Report {
		t.Helper()
		e, err := engine.New(engine.Deps{Local: ld, Remote: c, Store: st, Logger: zaptest.NewLogger(t)},
			engine.Options{Host: "testhost"})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := e.RunPass(context.Background())
		if err != nil {
			t.Fatalf("pass: %v", err)
		}
		return rep
	}
	for name, data := range map[string]string{"ghost/x.txt": "in the folder", "stay.txt": "stays"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(L, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(L, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if rep := pass(); len(rep.Problems) > 0 {
		t.Fatalf("first pass: %+v", rep.Problems)
	}
	// Another client removes the folder, and the stored cursor is replaced by one taken after that: the stored
	// view still holds the folder, and no listing comparison from this cursor can say it is gone.
	o := newClient(t, r, nil)
	if err := o.Delete(t.Context(), "ghost/x.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(t.Context(), "ghost", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx state.Writer) error { return tx.SetCursor(cur) }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(L, "ghost", "y.txt"), []byte("written into the folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	var last *engine.Report
	for i := 0; i < 3; i++ {
		last = pass()
	}
	if len(last.Problems) > 0 || len(last.Done) > 0 {
		t.Fatalf("no convergence after 3 passes: done %+v, problems %+v", last.Done, last.Problems)
	}
	if got, err := readAll(t, o, "ghost/y.txt"); err != nil || string(got) != "written into the folder" {
		t.Fatalf("remote ghost/y.txt: %q, %v", got, err)
	}
}
