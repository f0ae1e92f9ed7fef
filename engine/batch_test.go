package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
	"github.com/tandemsync/tandem/remote/memremote"
)

// TestFolderCreatesShareSyncFS: the folders a pass creates on a local disk, a level at a time, are announced as
// a batch (remote.Batcher), so their names are made durable by a syncfs shared by the level instead of an fsync
// of the parent per folder. The executor runs one task at a time, so only the announcement can make them share.
func TestFolderCreatesShareSyncFS(t *testing.T) {
	ctx := context.Background()
	clk := startClock()
	ffs := fakefs.New(clk, rand.New(rand.NewPCG(1, 2)))
	ldir := localdir.New(zap.NewNop(), ffs, localdir.Options{Clock: clk, Label: "local", SyncFSBatch: 4})
	mem := memremote.New(clk, memremote.Options{Label: "mem"})
	const n = 12
	for i := range n {
		if err := mem.MkdirAll(fmt.Sprintf("d%02d/e", i)); err != nil {
			t.Fatal(err)
		}
	}
	e := testEngine(t, Deps{Clock: clk, Local: ldir, Remote: mem, Store: memStore(t), Logger: zap.NewNop(), Exec: Serial{}},
		Options{Host: "testhost"})
	var mu sync.Mutex
	ops := map[string]int{}
	ffs.SetFault(func(op, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		ops[op]++
		return nil
	})
	if _, err := e.RunPass(ctx); err != nil {
		t.Fatal(err)
	}
	ffs.SetFault(nil)
	ffs.Crash() // what the pass recorded must be on the disk
	for i := range n {
		if fi, err := ffs.Lstat(fmt.Sprintf("d%02d/e", i)); err != nil || !fi.IsDir() {
			t.Fatalf("d%02d/e after the pass and a power loss: %+v, %v", i, fi, err)
		}
	}
	if ops["syncfs"] == 0 || ops["syncdir"] >= n {
		t.Fatalf("creating %d folders on each of two levels: %d syncfs and %d folder fsyncs; want a few syncfs shared by each level", n, ops["syncfs"], ops["syncdir"])
	}
}
