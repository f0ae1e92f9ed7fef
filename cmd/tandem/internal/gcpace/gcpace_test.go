package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// gcPercent reads the current GOGC percent (SetGCPercent returns the one it replaces).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestPercentFollowsTheLiveHeap(t *testing.T) {
	if got := Percent(8<<20, Knee); got != Small {
		t.Errorf("8 MiB live: %d, want %d", got, Small)
	}
	if got := Percent(Knee, Knee); got != Large {
		t.Errorf("live at the knee: %d, want %d", got, Large)
	}
}

// TestPacerLowersThePercentForALargeLiveHeap runs the real pacer with a knee of 1 MiB: once 8 MiB are live and a
// collection has run, the default applies; once they are dropped, the larger percent is back.
func TestPacerLowersThePercentForALargeLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	stop := start(1 << 20)
	defer stop()
	if got := gcPercent(); got != Small {
		t.Fatalf("after start: GOGC %d, want %d", got, Small)
	}
	live := make([][]byte, 8)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	// The check runs on the finalizer goroutine after a collection: collect until it has seen the heap.
	for i := 0; i < 1000 && gcPercent() != Large; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if got := gcPercent(); got != Large {
		t.Fatalf("with 8 MiB live: GOGC %d, want %d", got, Large)
	}
	runtime.KeepAlive(live)
	live = nil
	for i := 0; i < 1000 && gcPercent() != Small; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if got := gcPercent(); got != Small {
		t.Fatalf("after the heap was dropped: GOGC %d, want %d", got, Small)
	}
}

func TestUserGOGCStands(t *testing.T) {
	t.Setenv("GOGC", "150")
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	stop := start(1 << 20)
	defer stop()
	if got := gcPercent(); got != 150 {
		t.Errorf("GOGC=150 set by the user: percent %d after start", got)
	}
}
