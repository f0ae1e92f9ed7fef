package localdir_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
)

// opLog records the names of the fakefs ops (SetFault's op names); fail, when set, fails the op it names.
type opLog struct {
	mu   sync.Mutex
	ops  []string
	fail map[string]error
}

func logOps(f *fakefs.FS, fail map[string]error) *opLog {
	l := &opLog{fail: fail}
	f.SetFault(func(op, _ string) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ops = append(l.ops, op)
		return l.fail[op]
	})
	return l
}

// count is the number of op calls logged since the last reset.
func (l *opLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.ops {
		if o == op {
			n++
		}
	}
	return n
}

func (l *opLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = nil
}

// barrierDir is a Dir with SyncFSBatch batch on a fake disk whose power losses follow seed.
func barrierDir(t *testing.T, seed uint64, batch int) (*fakefs.FS, *localdir.Dir) {
	t.Helper()
	clk := clockwork.NewFakeClockAt(t0)
	f := fakefs.New(clk, rand.New(rand.NewPCG(seed, 11)))
	d := localdir.New(zaptest.NewLogger(t), f, localdir.Options{Clock: clk, Rand: rand.New(rand.NewPCG(seed, 12)).Uint64,
		SyncFSBatch: batch})
	if err := d.InitRoot(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f, d
}

// TestPutSyncFSInsteadOfFsyncs: with a batch of 1 every Put is in a batch, and makes its temp and its name
// durable through syncfs alone, no fsync of the file nor of a folder; with the barrier off (-1) it fsyncs them
// and never calls syncfs.
func TestPutSyncFSInsteadOfFsyncs(t *testing.T) {
	for _, tc := range []struct {
		batch  int
		want   []string
		absent []string
	}{
		{1, []string{"syncfs"}, []string{"sync", "syncdir"}},
		{-1, []string{"sync", "syncdir"}, []string{"syncfs"}},
	} {
		e := newEnv(t, "fake", localdir.Options{SyncFSBatch: tc.batch})
		e.mkdir("d")
		l := logOps(e.fake, nil)
		put(t, e, "d/a", "new", remote.Precondition{})
		for _, op := range tc.want {
			if l.count(op) == 0 {
				t.Errorf("SyncFSBatch %d: no %q op in %q", tc.batch, op, l.ops)
			}
		}
		for _, op := range tc.absent {
			if n := l.count(op); n != 0 {
				t.Errorf("SyncFSBatch %d: %d %q ops in %q, want none", tc.batch, n, op, l.ops)
			}
		}
	}
}

// TestPutThroughSyncFSSurvivesPowerLoss: a Put that returned through the barrier survives a power loss, the
// new content at its path, in a folder the user made and nobody fsynced (syncfs covers its name too), over
// an older file, whatever prefix of the pending ops the crash keeps.
func TestPutThroughSyncFSSurvivesPowerLoss(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 40; seed++ {
		f, d := barrierDir(t, seed, 1)
		if err := f.MkdirAll("u/v"); err != nil {
			t.Fatal(err)
		}
		if err := f.WriteFile("u/v/a", []byte("old")); err != nil {
			t.Fatal(err)
		}
		l := logOps(f, nil)
		if _, err := d.Put(ctx, "u/v/a", strings.NewReader("new"), 3, t0, remote.Precondition{}); err != nil {
			t.Fatalf("seed %d: Put: %v", seed, err)
		}
		if _, err := d.Put(ctx, "u/b", strings.NewReader("bee"), 3, t0, remote.Precondition{}); err != nil {
			t.Fatalf("seed %d: Put: %v", seed, err)
		}
		if l.count("syncfs") == 0 {
			t.Fatalf("seed %d: no syncfs: the test does not exercise the barrier (ops %q)", seed, l.ops)
		}
		f.SetFault(nil)
		f.Crash()
		for n, want := range map[string]string{"u/v/a": "new", "u/b": "bee"} {
			if got, err := f.ReadFile(n); err != nil || string(got) != want {
				t.Errorf("seed %d: after a power loss %s holds %q (%v), want %q", seed, n, got, err, want)
			}
		}
		for n := range f.Snapshot() {
			if strings.Contains(n, ".part") {
				t.Errorf("seed %d: temp %s came back after a power loss", seed, n)
			}
		}
	}
}

// TestPutSyncFSFailure: a failing syncfs fails the Put that waited on it with an error that wraps the cause and
// names the path, leaves the old content and no temp; the barrier is then broken, so the next Put fsyncs its
// file and folders itself (never syncfs, whose next call would not report the error again) and succeeds, durably.
func TestPutSyncFSFailure(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{SyncFSBatch: 1})
	e.mkdir("d")
	put(t, e, "d/a", "old", remote.Precondition{})
	l := logOps(e.fake, map[string]error{"syncfs": syscall.EIO})
	_, err := e.d.Put(context.Background(), "d/a", strings.NewReader("new"), 3, t0, remote.Precondition{})
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "d/a") {
		t.Fatalf("Put over a failing syncfs: %v, want an error naming d/a that wraps EIO", err)
	}
	if l.count("syncfs") == 0 {
		t.Fatalf("no syncfs: the error did not come from the barrier (ops %q)", l.ops)
	}
	if got := mustRead(t, e, "d/a"); got != "old" {
		t.Errorf("d/a holds %q after the failed Put, want the old content", got)
	}
	noTemp(t, e)

	l.reset()
	put(t, e, "d/a", "newer", remote.Precondition{})
	if l.count("sync") == 0 || l.count("syncdir") == 0 || l.count("syncfs") != 0 {
		t.Errorf("Put after a failed syncfs: %d sync, %d syncdir, %d syncfs ops; want its own fsyncs only (ops %q)",
			l.count("sync"), l.count("syncdir"), l.count("syncfs"), l.ops)
	}
	e.fake.SetFault(nil)
	e.fake.Crash()
	if got := mustRead(t, e, "d/a"); got != "newer" {
		t.Errorf("after a power loss d/a holds %q, want what the Put after the failure wrote", got)
	}
}

// TestSyncThroughSyncFS: Dir.Sync in a batch makes a file the user wrote without fsync durable through syncfs,
// with its name in a folder nobody fsynced, whatever prefix of the pending ops a power loss keeps.
func TestSyncThroughSyncFS(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		f, d := barrierDir(t, seed, 1)
		if err := f.MkdirAll("u"); err != nil {
			t.Fatal(err)
		}
		if err := f.WriteFile("u/a", []byte("user's")); err != nil {
			t.Fatal(err)
		}
		l := logOps(f, nil)
		if err := d.Sync(context.Background(), "u/a"); err != nil {
			t.Fatalf("seed %d: Sync: %v", seed, err)
		}
		if l.count("syncfs") == 0 || slices.Contains(l.ops, "sync") || slices.Contains(l.ops, "syncdir") {
			t.Fatalf("seed %d: Sync in a batch made ops %q, want syncfs and no fsync", seed, l.ops)
		}
		f.SetFault(nil)
		f.Crash()
		if got, err := f.ReadFile("u/a"); err != nil || string(got) != "user's" {
			t.Errorf("seed %d: after a power loss u/a holds %q (%v), want what the user wrote", seed, got, err)
		}
	}
}

// TestSyncObservedCountsTheOtherRootsSyncFS: two roots on one disk share their syncs (ShareBarrier). A file
// written before the epoch and unchanged since is made durable by the syncfs the other root's Put ran after
// the epoch: SyncObserved runs no sync of its own, and the file survives a power loss whatever the crash keeps.
// Without the shared barrier it runs a syncfs; for a file rewritten since it was observed it runs Sync's fsync.
func TestSyncObservedCountsTheOtherRootsSyncFS(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 20; seed++ {
		for _, share := range []bool{true, false} {
			f, a := barrierDir(t, seed, 1)
			b := localdir.New(zaptest.NewLogger(t), f, localdir.Options{Clock: clockwork.NewFakeClockAt(t0),
				Rand: rand.New(rand.NewPCG(seed, 13)).Uint64, SyncFSBatch: 1})
			if got := localdir.ShareBarrier(a, b); got != share && share {
				t.Fatalf("seed %d: ShareBarrier of two roots on one disk = %v", seed, got)
			}
			if !share {
				b = localdir.New(zaptest.NewLogger(t), f, localdir.Options{Clock: clockwork.NewFakeClockAt(t0),
					Rand: rand.New(rand.NewPCG(seed, 13)).Uint64, SyncFSBatch: 1})
			}
			if err := f.MkdirAll("u"); err != nil {
				t.Fatal(err)
			}
			if err := f.WriteFile("u/src", []byte("the user's bytes")); err != nil {
				t.Fatal(err)
			}
			src, err := a.Stat(ctx, "u/src")
			if err != nil {
				t.Fatal(err)
			}
			a.NewSyncEpoch()
			b.NewSyncEpoch()
			if _, err := b.Put(ctx, "dst", strings.NewReader("sent"), 4, t0, remote.Precondition{}); err != nil {
				t.Fatalf("seed %d: Put: %v", seed, err)
			}
			// Every other seed hands over the caller's fresh stat, as an upload does: it stands for SyncObserved's.
			var now remote.Entry
			if seed%2 == 0 {
				if now, err = a.Stat(ctx, "u/src"); err != nil {
					t.Fatal(err)
				}
			}
			l := logOps(f, nil)
			if err := a.SyncObserved(ctx, "u/src", src.Rev, now); err != nil {
				t.Fatalf("seed %d: SyncObserved: %v", seed, err)
			}
			if n := l.count("lstat"); now.Path != "" && n != 0 {
				t.Errorf("seed %d: SyncObserved given the caller's stat stat'ed again: %q", seed, l.ops)
			}
			if n := l.count("syncfs") + l.count("sync") + l.count("syncdir"); share && n != 0 {
				t.Errorf("seed %d: SyncObserved after the other root's Put ran %d syncs: %q", seed, n, l.ops)
			} else if !share && l.count("syncfs") == 0 {
				t.Errorf("seed %d: SyncObserved on a barrier of its own ran no syncfs: %q", seed, l.ops)
			}
			f.Crash()
			if got, err := f.ReadFile("u/src"); err != nil || string(got) != "the user's bytes" {
				t.Errorf("seed %d, shared %v: after a power loss u/src holds %q (%v)", seed, share, got, err)
			}
		}
	}
	// A file rewritten after it was observed is not covered by the epoch's syncs: its own fsync.
	f, a := barrierDir(t, 1, 1)
	if err := f.WriteFile("src", []byte("one")); err != nil {
		t.Fatal(err)
	}
	before, err := a.Stat(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	a.NewSyncEpoch()
	if _, err := a.Put(ctx, "dst", strings.NewReader("x"), 1, t0, remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("src", []byte("two, longer")); err != nil {
		t.Fatal(err)
	}
	// Found either way: by SyncObserved's own stat, or by the caller's stat taken after the rewrite.
	after, err := a.Stat(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []remote.Entry{{}, after} {
		l := logOps(f, nil)
		if err := a.SyncObserved(ctx, "src", before.Rev, now); err != nil {
			t.Fatal(err)
		}
		if l.count("sync")+l.count("syncfs") == 0 {
			t.Errorf("SyncObserved (caller's stat %v) of a file rewritten since it was observed synced nothing: %q",
				now.Path != "", l.ops)
		}
	}
	f.Crash()
	if got, err := f.ReadFile("src"); err != nil || string(got) != "two, longer" {
		t.Errorf("after a power loss src holds %q (%v), want the rewrite", got, err)
	}
}

// TestBatchAnnouncedSharesSyncFS: with the default threshold (8 writes), a Put alone in flight fsyncs its file
// and folders; inside an announced batch of 10 writes (the engine's round of transfers, whose writers are not all
// inside a Put at once) it shares a syncfs instead, and once the batch ends it fsyncs again.
func TestBatchAnnouncedSharesSyncFS(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{})
	e.mkdir("d")
	l := logOps(e.fake, nil)
	put(t, e, "d/a", "one", remote.Precondition{})
	if l.count("syncfs") != 0 || l.count("sync") == 0 {
		t.Fatalf("a lone Put: %q, want its own fsyncs", l.ops)
	}
	l.reset()
	end := e.d.BeginBatch(10)
	put(t, e, "d/b", "two", remote.Precondition{})
	if l.count("syncfs") == 0 || l.count("sync")+l.count("syncdir") != 0 {
		t.Errorf("a Put inside an announced batch of 10: %q, want one shared syncfs and no fsync", l.ops)
	}
	end()
	end() // a second call is a no-op
	l.reset()
	put(t, e, "d/c", "three", remote.Precondition{})
	if l.count("syncfs") != 0 || l.count("sync") == 0 {
		t.Errorf("a Put after the batch ended: %q, want its own fsyncs", l.ops)
	}
}

// TestSharedBarrierCountsOneRoundOnce: the two roots of a pair on one disk share a barrier and both hear of each
// round's transfers; a round of 5 is still fewer than the threshold of 8, so its Puts fsync by themselves.
func TestSharedBarrierCountsOneRoundOnce(t *testing.T) {
	f, b := barrierDir(t, 2, 8)
	a := localdir.New(zaptest.NewLogger(t), f, localdir.Options{Clock: clockwork.NewFakeClockAt(t0),
		Rand: rand.New(rand.NewPCG(3, 13)).Uint64, SyncFSBatch: 8})
	if !localdir.ShareBarrier(a, b) {
		t.Fatal("two roots on one disk do not share a barrier")
	}
	endA, endB := a.BeginBatch(5), b.BeginBatch(5)
	defer endA()
	defer endB()
	l := logOps(f, nil)
	if _, err := b.Put(context.Background(), "x", strings.NewReader("x"), 1, t0, remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if l.count("syncfs") != 0 || l.count("sync") == 0 {
		t.Errorf("a Put in a round of 5 announced by both roots: %q, want its own fsyncs", l.ops)
	}
}

// TestMkdirThroughSyncFSSurvivesPowerLoss: a folder create in a batch makes its name durable through the shared
// syncfs, no fsync of its parent, and the folder is there after a power loss whatever the crash keeps; with the
// barrier off it fsyncs the parent and calls no syncfs.
func TestMkdirThroughSyncFSSurvivesPowerLoss(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 40; seed++ {
		f, d := barrierDir(t, seed, 1)
		if err := f.MkdirAll("u"); err != nil {
			t.Fatal(err)
		}
		l := logOps(f, nil)
		for _, p := range []remote.Path{"u/v", "w"} {
			if _, err := d.Mkdir(ctx, p); err != nil {
				t.Fatalf("seed %d: Mkdir %s: %v", seed, p, err)
			}
		}
		if l.count("syncfs") == 0 || l.count("syncdir") != 0 {
			t.Fatalf("seed %d: Mkdir in a batch: ops %q, want syncfs and no folder fsync", seed, l.ops)
		}
		f.SetFault(nil)
		f.Crash()
		for _, n := range []string{"u/v", "w"} {
			if fi, err := f.Lstat(n); err != nil || !fi.IsDir() {
				t.Errorf("seed %d: after a power loss %s is %+v, %v; want the folder", seed, n, fi, err)
			}
		}
	}
	f, d := barrierDir(t, 1, -1)
	l := logOps(f, nil)
	if _, err := d.Mkdir(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if l.count("syncdir") == 0 || l.count("syncfs") != 0 {
		t.Fatalf("Mkdir with the barrier off: ops %q, want a folder fsync and no syncfs", l.ops)
	}
}
