package localdir

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestGroupSyncSharesOneFsyncPerWave: callers arriving while a folder's fsync runs share the next fsync (one
// more, not one each), none of them returns before that fsync has ended, and each gets its error.
func TestGroupSyncSharesOneFsyncPerWave(t *testing.T) {
	var g groupSync
	var calls atomic.Int64
	release := make(chan error)
	fsync := func(string) error {
		calls.Add(1)
		return <-release
	}
	var returned atomic.Int64
	errs := make([]error, 9)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[0] = g.sync("d", fsync)
		returned.Add(1)
	}()
	waitFor(t, func() bool { return calls.Load() == 1 })
	for i := 1; i < len(errs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.sync("d", fsync)
			returned.Add(1)
		}()
	}
	waitFor(t, func() bool { return g.waiting("d") == len(errs) })
	release <- nil // the first fsync started before the others arrived: it covers only its own caller
	waitFor(t, func() bool { return calls.Load() == 2 })
	if n := returned.Load(); n != 1 {
		t.Fatalf("%d callers returned before the fsync that covers them ended, want 1", n)
	}
	boom := errors.New("boom")
	release <- boom
	wg.Wait()
	if n := calls.Load(); n != 2 {
		t.Errorf("%d fsyncs for %d callers in two waves, want 2", n, len(errs))
	}
	if errs[0] != nil {
		t.Errorf("first caller: %v", errs[0])
	}
	for i, err := range errs[1:] {
		if !errors.Is(err, boom) {
			t.Errorf("caller %d: %v, want the shared fsync's error", i+1, err)
		}
	}
	if g.waiting("d") != 0 || len(g.m) != 0 {
		t.Errorf("state left behind: %+v", g.m)
	}
	// Alone, a caller pays its own fsync.
	go func() { release <- nil }()
	if err := g.sync("d", fsync); err != nil || calls.Load() != 3 {
		t.Errorf("alone: err %v, %d fsyncs", err, calls.Load())
	}
}

// waitFor yields until cond holds; a condition that never holds ends in the test binary's timeout.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		runtime.Gosched()
	}
}

// TestOnDevReadsTheIDsDevice: SyncObserved counts a root's syncfs only for a file on the root's filesystem, which
// it reads from the caller's Entry.ID.
func TestOnDevReadsTheIDsDevice(t *testing.T) {
	for _, c := range []struct {
		id   string
		dev  uint64
		want bool
	}{
		{"2049:1234", 2049, true},
		{"2049:1234", 20, false},
		{"20:1234", 2049, false},
		{"", 2049, false},
		{"2049", 2049, false},
	} {
		if got := onDev(c.id, c.dev); got != c.want {
			t.Errorf("onDev(%q, %d) = %v, want %v", c.id, c.dev, got, c.want)
		}
	}
	if fi := (FileInfo{Dev: 7, Ino: 9}); !onDev(id(fi), 7) {
		t.Errorf("onDev(id(%+v), 7) = false", fi)
	}
}
