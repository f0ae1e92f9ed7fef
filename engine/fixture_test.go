package engine

// The fixture the engine tests share: a fake clock, memory sides, a fake disk, a store and an engine, so that
// each test says only what it changes.

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

// startClock is the fake clock the tests start on: a fixed date, so that a run repeats.
func startClock() *clockwork.FakeClock {
	return clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
}

// memPair is a local and a remote memory side on one fake clock; ro sets how the remote behaves (its label is
// always "remote").
func memPair(ro memremote.Options) (clk *clockwork.FakeClock, local, rem *memremote.Mem) {
	clk = startClock()
	ro.Label = "remote"
	return clk, memremote.New(clk, memremote.Options{Label: "local"}), memremote.New(clk, ro)
}

// fakeDisk is a fake disk on clk whose faults and power losses draw from rng, and the local side over it, which
// names its temporary files from sideRand (nil: at random). syncfs: every write of the side is made durable by
// one filesystem-wide sync (as in a batch of writes in production), else by its own fsyncs (a lone write).
// multigrain: the disk's timestamps are Linux 6.13's multigrain ones (a change after a stat always moves the
// ctime), so the side reports ExactChange and the engine keeps no racy window for it. Both log nothing: the
// tests that use them run many seeds.
func fakeDisk(clk clockwork.Clock, rng *rand.Rand, sideRand func() uint64, syncfs, multigrain bool) (*fakefs.FS, *localdir.Dir) {
	ffs := fakefs.New(clk, rng)
	ffs.SetMultigrain(multigrain)
	o := localdir.Options{Clock: clk, Rand: sideRand, Label: "local", SyncFSBatch: -1}
	if syncfs {
		o.SyncFSBatch = 1
	}
	return ffs, localdir.New(zap.NewNop(), ffs, o)
}

// beforePut is a memory side that calls hook before each upload; an error from it fails the upload.
type beforePut struct {
	*memremote.Mem
	hook func() error
}

func (b *beforePut) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	if err := b.hook(); err != nil {
		return remote.Entry{}, err
	}
	return b.Mem.Put(ctx, p, body, size, mtime, pre)
}

// memStore is a store in the test's temporary folder, closed when the test ends.
func memStore(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.Open(t.TempDir()+"/pair.db", zaptest.NewLogger(t), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// storeOpener opens, at each call, one store in the test's temporary folder, for tests that abandon it (the
// process dies) and open it again; the caller closes what it opened last.
func storeOpener(t *testing.T) func() *state.Store {
	path := t.TempDir() + "/pair.db"
	return func() *state.Store {
		t.Helper()
		st, err := state.Open(path, zap.NewNop(), state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

// testEngine is an engine over d with o, logging to the test unless d names a logger; the test stops if the
// engine refuses them.
func testEngine(t *testing.T, d Deps, o Options) *Engine {
	t.Helper()
	if d.Logger == nil {
		d.Logger = zaptest.NewLogger(t)
	}
	e, err := New(d, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
