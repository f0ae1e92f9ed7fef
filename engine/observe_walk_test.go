package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
)

// gatedWalk is a localdir whose Walk announces that it started and then waits until the other side's walk has
// started too. The bound only turns the hang of walks in series into a failure; walks at once never reach it.
type gatedWalk struct {
	*localdir.Dir
	once          sync.Once
	started, peer chan struct{}
}

func (g *gatedWalk) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.peer:
	case <-time.After(time.Minute):
		return errors.New("the other side's walk did not start while this one ran: the walks run in series")
	}
	return g.Dir.Walk(ctx, dir, fn)
}

// TestWalksBothSidesAtOnce: a pass against a remote without a feed walks the two sides concurrently, and the
// result is the same sync.
func TestWalksBothSidesAtOnce(t *testing.T) {
	p := newRealPair(t)
	write(t, p.L, "a/x", "local")
	write(t, p.R, "b/y", "remote")
	lStart, rStart := make(chan struct{}), make(chan struct{})
	l := &gatedWalk{Dir: p.ldir, started: lStart, peer: rStart}
	r := &gatedWalk{Dir: p.rdir, started: rStart, peer: lStart}
	rep, err := testEngine(t, Deps{Local: l, Remote: r, Store: p.st}, p.opts).RunPass(context.Background())
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("problems: %+v", rep.Problems)
	}
	p.converged()
}

// TestScanOpensNoEmptyFileNorReadsStorePerFile: on a disk where every change moves the ctime (multigrain), the
// scan of new files records an empty file from its stat (no open: an empty file's stat is its content) and
// decides which new files wait for their upload's digest in one read of the store per batch, not one per file.
func TestScanOpensNoEmptyFileNorReadsStorePerFile(t *testing.T) {
	clk := startClock()
	ffs, ldir := fakeDisk(clk, rand.New(rand.NewPCG(1, 2)), nil, false, true)
	mem := memremote.New(clk, memremote.Options{Label: "mem"})
	st, err := state.Open(filepath.Join(t.TempDir(), "pair.db"), zap.NewNop(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deps := Deps{Clock: clk, Local: ldir, Remote: mem, Store: st, Logger: zap.NewNop()}
	// The roots get their .tandem, and the disk its ctime probe.
	if _, err := testEngine(t, deps, Options{Host: "testhost"}).RunPass(context.Background()); err != nil {
		t.Fatal(err)
	}
	const files = 40
	for i := range files {
		if err := ffs.WriteFile(fmt.Sprintf("f%02d", i), []byte(fmt.Sprintf("content %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := ffs.WriteFile("empty", nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	opens := 0
	ffs.SetFault(func(op, name string) error {
		if op == "open" && name == "empty" {
			opens++
		}
		return nil
	})
	reads := st.Reads()
	// A dry run: the scan and the plan, no transfer (whose own opens would count).
	rep, err := testEngine(t, deps, Options{Host: "testhost", DryRun: true}).RunPass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reads = st.Reads() - reads
	ffs.SetFault(nil)
	if opens != 0 {
		t.Errorf("the scan opened the empty file %d times", opens)
	}
	if reads >= files {
		t.Errorf("the pass read the store %d times for %d new files: once per file", reads, files)
	}
	if n := len(rep.Planned); n != files+1 {
		t.Errorf("%d actions planned, want an upload of each of the %d files", n, files+1)
	}
}
