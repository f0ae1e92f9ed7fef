// Package bench measures the real binary on real folders: the cost of a no-change `tandem once` on a
// 10,000-file tree (the daemon's steady state) and first-sync throughput. Run with `make bench`.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-bench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = testenv.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	nFiles   = 10_000
	nFolders = 100
)

// makeTree writes nFiles small files (1-4 KiB, seeded) across nFolders folders, dated an hour ago so that no
// file is "racily clean" (recently modified files are re-hashed on purpose; old ones are the common case).
// It returns the bytes written.
func makeTree(b *testing.B, root string) int64 {
	b.Helper()
	old := time.Now().Add(-time.Hour)
	var total int64
	for i := range nFiles {
		size := int64(1024 + (i*7919)%3072)
		p := filepath.Join(root, fmt.Sprintf("folder%03d", i%nFolders), fmt.Sprintf("file%05d.dat", i))
		testenv.WriteRandom(b, p, size, uint64(i))
		if err := os.Chtimes(p, old, old); err != nil {
			b.Fatal(err)
		}
		total += size
	}
	return total
}

func once(b *testing.B, sd, l, r string) testenv.Doc {
	b.Helper()
	res := testenv.Run(b, bin, "once", "--json", "--state-dir", sd, l, "dir:"+r)
	if res.Code != 0 {
		b.Fatalf("%s", res)
	}
	return res.JSON(b)
}

// BenchmarkNoChangeOnce10k times a `tandem once` that finds nothing to do on a synced 10,000-file pair: two
// walks with the stat fast-check and one streaming plan over the store.
func BenchmarkNoChangeOnce10k(b *testing.B) {
	l, r, sd := b.TempDir(), b.TempDir(), b.TempDir()
	makeTree(b, l)
	once(b, sd, l, r)
	once(b, sd, l, r) // settles anything the first sync recorded as racy
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if d := once(b, sd, l, r); len(d.Done) != 0 {
			b.Fatalf("a no-change pass did %d actions", len(d.Done))
		}
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(nFiles*b.N)/secs, "files/s")
	b.ReportMetric(secs*1000/float64(b.N), "ms/pass")
}

// BenchmarkFirstSync10k times the first sync of 10,000 small files to an empty dir: remote.
func BenchmarkFirstSync10k(b *testing.B) {
	var bytes int64
	var elapsed time.Duration
	b.StopTimer()
	for range b.N {
		l, r, sd := b.TempDir(), b.TempDir(), b.TempDir()
		bytes = makeTree(b, l)
		b.StartTimer()
		start := time.Now()
		d := once(b, sd, l, r)
		elapsed += time.Since(start)
		b.StopTimer()
		if got := d.Totals["uploaded"]; got != nFiles {
			b.Fatalf("uploaded %d files, want %d", got, nFiles)
		}
	}
	secs := elapsed.Seconds()
	b.ReportMetric(float64(nFiles*b.N)/secs, "files/s")
	b.ReportMetric(float64(bytes*int64(b.N))/secs/1e6, "MB/s")
}
