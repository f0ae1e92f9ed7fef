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

// TestNewFileReadOnceWhereExact: a first sync reads each new local file once on a disk with multigrain
// timestamps (the upload digests what it sends; the scan leaves new files undigested, digestLater) and twice on a
// coarse clock, where only the scan's digest, checked again by the upload, tells a version from a mixture of two.
// Either way the remote ends up with every file.
func TestNewFileReadOnceWhereExact(t *testing.T) {
	ctx := context.Background()
	const n = 8
	reads := map[bool]map[string]int{}
	for _, multigrain := range []bool{false, true} {
		p := newFakeDiskPair(t, 3, 0xe5)
		p.ffs.SetMultigrain(multigrain)
		for i := range n {
			if err := p.ffs.WriteFile(fmt.Sprintf("f%02d", i), []byte(fmt.Sprintf("local %02d", i))); err != nil {
				t.Fatal(err)
			}
		}
		p.clk.Advance(time.Minute)
		got := map[string]int{}
		var mu sync.Mutex
		p.ffs.SetFault(func(op, name string) error {
			if op == "read" {
				mu.Lock()
				got[name]++
				mu.Unlock()
			}
			return nil
		})
		p.pass(ctx)
		p.ffs.SetFault(nil)
		reads[multigrain] = got
		for i := range n {
			f := fmt.Sprintf("f%02d", i)
			if b, err := p.mem.ReadFile(f); err != nil || string(b) != fmt.Sprintf("local %02d", i) {
				t.Errorf("multigrain %v: remote %s = %q, %v", multigrain, f, b, err)
			}
		}
		p.st.Close()
	}
	for i := range n {
		f := fmt.Sprintf("f%02d", i)
		if once, twice := reads[true][f], reads[false][f]; once == 0 || twice != 2*once {
			t.Errorf("%s: %d read calls with multigrain timestamps, %d on a coarse clock; want half as many", f, once, twice)
		}
	}
}
