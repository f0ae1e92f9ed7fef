package verizon

import (
	"fmt"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// seed10k fills the root with 10,000 files in 100 folders, directly (no HTTP), and returns a client.
func seed10k(b *testing.B) (*emulator.Running, *Client) {
	b.Helper()
	r := startEmu(b, emulator.Options{})
	for d := range 100 {
		for f := range 100 {
			p := fmt.Sprintf("%s/d%03d/f%03d.txt", testRoot, d, f)
			if err := r.Emu.PutFile(p, []byte(p), testTime()); err != nil {
				b.Fatal(err)
			}
		}
	}
	return r, newClient(b, r, nil)
}

// BenchmarkFirstListing10k is what a first sync (or an OutOfSync recovery) costs on the remote side: Head and
// the full Walk of 10,000 files. Reported: requests per listing (one fullview; Head's listing serves the Walk).
func BenchmarkFirstListing10k(b *testing.B) {
	r, c := seed10k(b)
	r.ResetLog()
	n := 0
	for b.Loop() {
		if _, err := c.Head(b.Context()); err != nil {
			b.Fatal(err)
		}
		n = 0
		if err := c.Walk(b.Context(), remote.Root, func(remote.Entry) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 10100 {
		b.Fatalf("walked %d entries, want 10,100", n)
	}
	b.ReportMetric(float64(len(r.Log()))/float64(b.N), "requests/op")
	var bytes int64
	for _, e := range r.Log() {
		bytes += e.BytesOut
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "resp-bytes/op")
}

// BenchmarkNoChangePoll is one incremental poll of the same tree when nothing changed: a fullview with the
// etag, answered 412.
func BenchmarkNoChangePoll(b *testing.B) {
	r, c := seed10k(b)
	cur, err := c.Head(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	r.ResetLog()
	for b.Loop() {
		batch, err := c.Changes(b.Context(), cur)
		if err != nil || len(batch.Changes) != 0 {
			b.Fatalf("%+v %v", batch, err)
		}
	}
	b.ReportMetric(float64(len(r.Log()))/float64(b.N), "requests/op")
}
