// Package gcpace sets how often the garbage collector runs for tandem's workload. A pass allocates far more
// than it keeps: a no-change pass over 100,000 files allocates about 190 MB while its live heap stays near
// 8 MB, so with Go's default (a collection each time the heap doubles) it collects twenty-odd times and a
// tenth of the pass's CPU goes to collections. Letting the heap grow to three times what is live (GOGC=200)
// halves that while the live heap is small; once it is large (a first sync of a million files holds its plan,
// about 1.6 GB), the default is kept, so the peak stays twice the live heap rather than three times.
//
// Measured on the 2-core benchmark VM (test/bench/results.md, 2026-12-07): a no-change pass over 100,000
// files took 0.61 s instead of 0.69 s (median of 6 alternated runs each) with peak RssAnon 14 MiB instead of
// 10 MiB; a first sync of 20,000 small files 4.9 s instead of 5.45 s.
package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

const (
	// Small is the percent while the live heap is under Knee: the heap may grow to three times what is live.
	Small = 200
	// Large is Go's default, used from Knee on.
	Large = 100
	// Knee is the live heap from which the default applies (a first sync of about 150,000 files).
	Knee = 256 << 20
)

// Percent is the GOGC percent for a live heap of live bytes, Knee being where the default begins.
func Percent(live, knee uint64) int {
	if live < knee {
		return Small
	}
	return Large
}

// Start paces the collector by Percent of the live heap, checked after every collection, unless the user set
// GOGC (their choice stands). It returns a func that stops the checks and puts the percent back.
func Start() (stop func()) { return start(Knee) }

func start(knee uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	p := &pacer{cur: Small, knee: knee}
	old := debug.SetGCPercent(Small)
	p.arm()
	return func() {
		p.stopped.Store(true)
		debug.SetGCPercent(old)
	}
}

type pacer struct {
	knee    uint64
	cur     int // only the finalizer goroutine touches it after start
	stopped atomic.Bool
	sample  [1]metrics.Sample
}

// arm asks to be called after the next collection: the finalizer of an object nothing refers to runs once a
// collection has found it unreachable. Each call re-arms with a fresh object.
func (p *pacer) arm() {
	runtime.SetFinalizer(new(sentinel), func(*sentinel) { p.check() })
}

type sentinel struct{ _ [16]byte } // not zero-sized: a zero-sized object may never be collected

func (p *pacer) check() {
	if p.stopped.Load() {
		return
	}
	p.sample[0].Name = "/gc/heap/live:bytes"
	metrics.Read(p.sample[:])
	if p.sample[0].Value.Kind() == metrics.KindUint64 {
		if want := Percent(p.sample[0].Value.Uint64(), p.knee); want != p.cur {
			debug.SetGCPercent(want)
			p.cur = want
		}
	}
	p.arm()
}
