package localdir_test

import (
	"math/rand/v2"
	"testing"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
	"github.com/tandemsync/tandem/remote/remotetest"
)

// The root is initialised first, as the engine does on a first sync: Delete needs .tandem for its trash.
func TestConformanceOS(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		dir := t.TempDir()
		open := func() *localdir.Dir {
			d, err := localdir.Open(zaptest.NewLogger(t), dir, localdir.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		}
		r := open()
		if err := r.InitRoot(t.Context()); err != nil {
			t.Fatal(err)
		}
		return remotetest.Fixture{R: r, Other: open()}
	}, nil)
}

func TestConformanceFake(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		clk := clockwork.NewFakeClock()
		f := fakefs.New(clk, rand.New(rand.NewPCG(7, 7)))
		lg := zaptest.NewLogger(t)
		r := localdir.New(lg, f, localdir.Options{Clock: clk, Rand: rand.New(rand.NewPCG(7, 8)).Uint64})
		if err := r.InitRoot(t.Context()); err != nil {
			t.Fatal(err)
		}
		return remotetest.Fixture{R: r, Other: localdir.New(lg, f, localdir.Options{Clock: clk})}
	}, nil)
}
