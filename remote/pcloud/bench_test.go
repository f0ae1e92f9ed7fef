package pcloud

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// BenchmarkFirstUpload is a first sync's remote half against the emulator on loopback: 10,000 small files
// uploaded by 4 workers (the engine's Parallel) with Absent preconditions, and one 1 GiB file through the
// chunked upload. Run with: go test ./remote/pcloud -run X -bench FirstUpload -benchtime 1x
func BenchmarkFirstUpload(b *testing.B) {
	b.Run("10000-small", func(b *testing.B) {
		const files, size = 10_000, 2 << 10
		data := randomBytes(size, 9)
		var took time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			_, r, _ := pair(b, emulator.Options{}, Options{})
			dir := remote.Path("run" + strconv.Itoa(i))
			if _, err := r.Mkdir(context.Background(), dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			g, ctx := errgroup.WithContext(context.Background())
			g.SetLimit(r.Capabilities().Parallel)
			for f := 0; f < files; f++ {
				p := remote.Path(fmt.Sprintf("%s/f%05d.txt", dir, f))
				g.Go(func() error {
					_, err := r.Put(ctx, p, bytesReader(data), size, time.Now(), remote.Precondition{Absent: true})
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			took += time.Since(start)
		}
		b.ReportMetric(float64(files*b.N)/took.Seconds(), "files/s")
		b.ReportMetric(float64(files*size*b.N)/took.Seconds()/1e6, "MB/s")
	})
	b.Run("1GiB", func(b *testing.B) {
		const size = 1 << 30
		var took time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			_, r, _ := pair(b, emulator.Options{}, Options{})
			b.StartTimer()
			start := time.Now()
			if _, err := r.Put(context.Background(), "big.bin", &patternReader{left: size}, size, time.Now(),
				remote.Precondition{Absent: true}); err != nil {
				b.Fatal(err)
			}
			took += time.Since(start)
		}
		b.ReportMetric(float64(size*b.N)/took.Seconds()/1e6, "MB/s")
	})
}

func bytesReader(b []byte) *bytesReaderT { return &bytesReaderT{b: b} }

// bytesReaderT is a fresh reader per file over shared bytes.
type bytesReaderT struct {
	b   []byte
	off int
}

func (r *bytesReaderT) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}
