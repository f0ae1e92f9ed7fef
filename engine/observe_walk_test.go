package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
