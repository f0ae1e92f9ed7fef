package vboxx

import (
	"fmt"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote/vboxx/emulator"
)

// BenchmarkPoll10k measures one incremental poll (Changes) of a 10,000-file root (100 folders of 100 files)
// with the default budget (200 listings, so every folder is swept each poll): with no change, and with one
// edited file per poll. requests/op comes from the emulator's request log; cursor-bytes is the size of
// Batch.Next the engine stores.
func BenchmarkPoll10k(b *testing.B) {
	e := newEnv(b, emulator.Options{LogSize: 100000})
	// The tree is written an hour "ago" (server clock), as a tree that has been in use is: otherwise every file
	// would fall in modified_since's overlap window and each poll would re-read all 10,000 of them.
	e.emu.SetClockSkew(-time.Hour)
	for i := range 100 {
		dir := fmt.Sprintf("/d%03d", i)
		if _, err := e.emu.Emu.MkdirAll(dir); err != nil {
			b.Fatal(err)
		}
		for j := range 100 {
			if _, err := e.emu.Emu.WriteFile(fmt.Sprintf("%s/file-%04d.txt", dir, j), []byte(dir)); err != nil {
				b.Fatal(err)
			}
		}
	}
	e.emu.SetClockSkew(0)
	c := e.client("", nil)
	cur, err := c.Head(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("no change", func(b *testing.B) {
		e.emu.ResetLog()
		for b.Loop() {
			bt, err := c.Changes(b.Context(), cur)
			if err != nil || len(bt.Changes) != 0 {
				b.Fatalf("%v %d", err, len(bt.Changes))
			}
		}
		b.ReportMetric(float64(len(e.emu.Log()))/float64(b.N), "requests/op")
		b.ReportMetric(float64(len(cur)), "cursor-bytes")
	})
	b.Run("one change", func(b *testing.B) {
		n := 0
		e.emu.ResetLog()
		reqs := 0
		for b.Loop() {
			b.StopTimer()
			n++
			if _, err := e.emu.Emu.WriteFile(fmt.Sprintf("/d%03d/file-%04d.txt", n%100, n%100), []byte(fmt.Sprint("edit ", n))); err != nil {
				b.Fatal(err)
			}
			e.emu.ResetLog()
			b.StartTimer()
			bt, err := c.Changes(b.Context(), cur)
			if err != nil || len(bt.Changes) != 1 {
				b.Fatalf("%v %q", err, changeList(bt))
			}
			b.StopTimer()
			reqs += len(e.emu.Log())
			cur = bt.Next
			b.StartTimer()
		}
		b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
	})
}
