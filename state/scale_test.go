package state

import (
	"runtime"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

const scaleN = 100_000

// A paged scan is how the engine walks a tree: memory must not grow with the tree.
func TestPageScanHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100,000 records")
	}
	s := open(t)
	fill(t, s, Remote, scaleN)
	// scan pages through the tree, calling sample after every 20 pages
	scan := func(sample func()) int {
		n := 0
		after := remote.Root
		for {
			var pg []Record
			mustView(t, s, func(r Reader) error {
				var err error
				pg, err = r.Page(Remote, after, 1000)
				return err
			})
			if n += len(pg); n%20_000 == 0 {
				sample()
			}
			if len(pg) < 1000 {
				return n
			}
			after = pg[len(pg)-1].Path
		}
	}
	scan(func() {}) // warm up: bbolt's mmap and page caches
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak uint64
	// sample the live heap during the scan, not only after it
	n := scan(func() {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapAlloc)
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n != scaleN {
		t.Fatalf("scanned %d records, want %d", n, scaleN)
	}
	// a tree held in memory would be ~100 B x 100k = 10 MB and more; one page of 1000 records is ~200 KB
	const bound = 4 << 20
	grow := int64(max(peak, after.HeapAlloc)) - int64(before.HeapAlloc)
	t.Logf("heap before %d KB, peak %d KB, after %d KB", before.HeapAlloc>>10, peak>>10, after.HeapAlloc>>10)
	if grow > bound {
		t.Errorf("heap grew by %d KB during a paged scan of %d records (bound %d KB)", grow>>10, scaleN, bound>>10)
	}
}

func BenchmarkEach100k(b *testing.B) {
	s := open(b)
	fill(b, s, Local, scaleN)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = 0
		if err := s.View(func(r Reader) error {
			return r.Each(Local, remote.Root, func(Record) error { n++; return nil })
		}); err != nil {
			b.Fatal(err)
		}
	}
	if n != scaleN {
		b.Fatalf("scanned %d records", n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/scaleN, "ns/record")
}

func BenchmarkPage100k(b *testing.B) {
	s := open(b)
	fill(b, s, Local, scaleN)
	b.ReportAllocs()
	for b.Loop() {
		after, n := remote.Root, 0
		for {
			var pg []Record
			if err := s.View(func(r Reader) error {
				var err error
				pg, err = r.Page(Local, after, 1000)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			n += len(pg)
			if len(pg) < 1000 {
				break
			}
			after = pg[len(pg)-1].Path
		}
		if n != scaleN {
			b.Fatalf("scanned %d records", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/scaleN, "ns/record")
}
