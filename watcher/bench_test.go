package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkStartup measures the start-up walk: from Run to the first batch, which goes out once every
// directory is watched. With the default 8,192 max_user_watches of many distributions a big tree hits the
// limit, which is what the Degraded message is for; this machine's limit is far higher.
func BenchmarkStartup(b *testing.B) {
	const dirs = 2000
	root := b.TempDir()
	// 20 top folders × 10 × 10 = 2,000 leaves below 220 inner folders; a file in each leaf so the walk
	// reads real entries.
	n := 0
	for i := 0; n < dirs; i++ {
		for j := 0; j < 10 && n < dirs; j++ {
			for k := 0; k < 10 && n < dirs; k++ {
				p := filepath.Join(root, fmt.Sprintf("t%02d", i), fmt.Sprintf("m%d", j), fmt.Sprintf("l%d", k))
				if err := os.MkdirAll(p, 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, "f"), nil, 0o644); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
	}
	var watched int
	b.ResetTimer()
	for range b.N {
		w, err := New(zap.NewNop(), root, Options{Debounce: 1})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan []Event)
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx, out) }()
		<-out
		watched = w.Watched()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(watched*b.N)/b.Elapsed().Seconds(), "watches/s")
	b.ReportMetric(float64(watched), "watched")
}
