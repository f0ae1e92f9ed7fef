package localdir_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
)

// dirSyncCounter counts folder fsyncs per folder.
type dirSyncCounter struct {
	*fakefs.FS
	mu    sync.Mutex
	syncs map[string]int
}

func (c *dirSyncCounter) SyncDir(name string) error {
	c.mu.Lock()
	c.syncs[name]++
	c.mu.Unlock()
	return c.FS.SyncDir(name)
}

func (c *dirSyncCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.syncs {
		n += v
	}
	return n
}

// TestSyncEpochOneFolderFsyncPerFolder: after NewSyncEpoch, making 50 files of one folder durable fsyncs each
// folder of the chain once, not once per file; before any epoch (a caller that never said what it observed)
// every Sync pays the whole chain, as before.
func TestSyncEpochOneFolderFsyncPerFolder(t *testing.T) {
	ctx := context.Background()
	f := &dirSyncCounter{FS: fakefs.New(clockwork.NewFakeClock(), rand.New(rand.NewPCG(1, 1))), syncs: map[string]int{}}
	d := localdir.New(zaptest.NewLogger(t), f, localdir.Options{})
	if err := f.MkdirAll("a/b/c"); err != nil {
		t.Fatal(err)
	}
	var files []remote.Path
	for i := range 50 {
		p := remote.Path("a/b/c/f" + string(rune('A'+i%26)) + string(rune('a'+i/26)))
		if err := f.WriteFile(string(p), []byte("x")); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	syncAll := func() int {
		before := f.total()
		for _, p := range files {
			if err := d.Sync(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		return f.total() - before
	}
	if n := syncAll(); n != 4*len(files) {
		t.Errorf("no epoch: %d folder fsyncs for %d files, want %d (every folder up to the root, each time)", n, len(files), 4*len(files))
	}
	d.NewSyncEpoch()
	if n := syncAll(); n != 4 {
		t.Errorf("after NewSyncEpoch: %d folder fsyncs for %d files in a/b/c, want 4 (c, b, a, the root once each)", n, len(files))
	}
	// A new epoch (a new round's observation) counts nothing from the last one.
	d.NewSyncEpoch()
	if n := syncAll(); n != 4 {
		t.Errorf("next epoch: %d folder fsyncs, want 4", n)
	}
}

// TestSyncEpochFolderMadeAgainIsSyncedAgain: a folder fsynced in this epoch that the user then removes and makes
// again (the inode may even be reused) is not covered by that fsync: a Put into the new folder must fsync the
// folder above it again, or a power loss takes the new folder, and the file tandem recorded as written, away.
// Several seeds: fakefs keeps a random prefix of the unsynced operations in a power loss.
func TestSyncEpochFolderMadeAgainIsSyncedAgain(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(30) {
		clk := clockwork.NewFakeClock()
		f := fakefs.New(clk, rand.New(rand.NewPCG(seed, 3)))
		d := localdir.New(zaptest.NewLogger(t), f, localdir.Options{})
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
		must(f.MkdirAll("a/b/c"))
		must(f.WriteFile("a/b/c/f1", []byte("one")))
		d.NewSyncEpoch()
		must(d.Sync(ctx, "a/b/c/f1")) // fsyncs f1, c, b, a and the root: all durable
		clk.Advance(time.Second)
		// The user replaces folder c (rm -r c; mkdir c), nothing synced.
		must(f.Remove("a/b/c/f1"))
		must(f.Remove("a/b/c"))
		must(f.Mkdir("a/b/c", 0o755))
		body := []byte("tandem wrote this")
		if _, err := d.Put(ctx, "a/b/c/z", bytes.NewReader(body), int64(len(body)), clk.Now(), remote.Precondition{Absent: true}); err != nil {
			t.Fatalf("seed %d: put: %v", seed, err)
		}
		f.Crash()
		got, err := f.ReadFile("a/b/c/z")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("seed %d: after a power loss a/b/c/z = %q, %v: Put returned, so its file and the folders above must be durable", seed, got, err)
		}
	}
}
