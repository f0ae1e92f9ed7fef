package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestNoRehashAfterSyncWhereExact: on a disk with multigrain timestamps the first pass after a sync reads none
// of the files the sync wrote (their fingerprints vouch for them at once); on a coarse clock it reads every one
// (the racy window). Either way, a same-size rewrite made at the very instant of the download, with its mtime put
// back (touch -r), is seen and uploaded: on the multigrain disk because it moves the ctime, on the coarse one
// because the racy re-hash reads it.
func TestNoRehashAfterSyncWhereExact(t *testing.T) {
	ctx := context.Background()
	const n = 12
	for _, multigrain := range []bool{false, true} {
		p := newFakeDiskPair(t, 1, 0xe4)
		p.ffs.SetMultigrain(multigrain)
		for i := range n {
			if err := p.mem.WriteFile(fmt.Sprintf("f%02d", i), []byte(fmt.Sprintf("remote %02d", i))); err != nil {
				t.Fatal(err)
			}
		}
		p.pass(ctx) // downloads every file
		if !p.e.d.Local.(interface{ ExactChange() bool }).ExactChange() == multigrain {
			t.Fatalf("multigrain %v: the local side's ExactChange disagrees", multigrain)
		}
		// The user rewrites f00 at the same instant, same size, and puts its mtime back.
		before, err := p.ffs.Lstat("f00")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.ffs.WriteFile("f00", []byte("edited 00")); err != nil {
			t.Fatal(err)
		}
		if err := p.ffs.Chtimes("f00", before.ModTime); err != nil {
			t.Fatal(err)
		}
		reads := map[string]bool{}
		var mu sync.Mutex // the walk hashes files in parallel
		p.ffs.SetFault(func(op, name string) error {
			if op == "read" {
				mu.Lock()
				reads[name] = true
				mu.Unlock()
			}
			return nil
		})
		p.clk.Advance(time.Minute)
		p.pass(ctx)
		p.ffs.SetFault(nil)
		want := 1 // f00 only: its ctime moved
		if !multigrain {
			want = n // every file the sync wrote is racy
		}
		if len(reads) != want {
			t.Errorf("multigrain %v: the pass after the sync read %d files, want %d: %v", multigrain, len(reads), want, reads)
		}
		if got, err := p.mem.ReadFile("f00"); err != nil || string(got) != "edited 00" {
			t.Errorf("multigrain %v: remote f00 = %q, %v; want the rewrite uploaded", multigrain, got, err)
		}
		p.st.Close()
	}
}
