package watcher

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"
)

// fakeStart runs a Watcher on a fake source and a fake clock and takes the start-up batch.
func fakeStart(t *testing.T, o Options) (*harness, *fakeSource, *clockwork.FakeClock) {
	t.Helper()
	clk := clockwork.NewFakeClock()
	o.Clock = clk
	if o.Debounce == 0 {
		o.Debounce = time.Second
	}
	f := newFake()
	h := start(t, t.TempDir(), o, func() (source, error) { return f, nil })
	if err := clk.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(o.Debounce)
	h.startup()
	return h, f, clk
}

func write(h *harness, rel string) fsnotify.Event {
	return fsnotify.Event{Name: h.path(rel), Op: fsnotify.Write}
}

// noBatch checks that nothing was sent. The loop has handled everything fed so far (feed ends with a
// barrier), and a cut batch would be waiting on the unbuffered out channel, so a non-blocking receive is
// enough; a timer fire still in flight is flushed by one more barrier.
func noBatch(t *testing.T, h *harness, f *fakeSource) {
	t.Helper()
	f.feed(t)
	f.feed(t)
	select {
	case b := <-h.out:
		t.Fatalf("unexpected batch %v", b)
	default:
	}
}

func TestDebounceTrailingEdge(t *testing.T) {
	h, f, clk := fakeStart(t, Options{})
	f.feed(t, write(h, "a"))
	clk.Advance(900 * time.Millisecond)
	noBatch(t, h, f)
	f.feed(t, write(h, "b"), write(h, "a"))
	clk.Advance(900 * time.Millisecond)
	noBatch(t, h, f) // quiet for 0.9s only: the burst goes on
	clk.Advance(100 * time.Millisecond)
	if b := h.next(); !slices.Equal(b, []Event{{Path: "a"}, {Path: "b"}}) {
		t.Errorf("batch = %v, want a and b once each", b)
	}
}

func TestContinuousWriterIsCutAtMaxWait(t *testing.T) {
	h, f, clk := fakeStart(t, Options{})
	// A write every half second never leaves a second of quiet; the batch must still go out 10 s after the
	// burst began. Feeding stops at 12 s with the last write just made, so only the max-wait rule can cut it.
	for range 25 {
		f.feed(t, write(h, "log"))
		clk.Advance(500 * time.Millisecond)
	}
	f.feed(t, write(h, "log"))
	if b := h.next(); !slices.Equal(b, []Event{{Path: "log"}}) {
		t.Errorf("batch = %v, want log", b)
	}
}

func TestSlowConsumerKeepsReading(t *testing.T) {
	h, f, clk := fakeStart(t, Options{})
	f.feed(t, write(h, "a"))
	clk.Advance(time.Second) // batch [a] is cut; nobody reads out yet
	// The loop keeps taking events while the send blocks: with unbuffered channels, these sends complete
	// only because it does.
	for i := range 100 {
		f.feed(t, write(h, fmt.Sprintf("n%03d", i)), write(h, "a"))
	}
	// Whether the timer's fire was taken before or among those events is up to the select; either way the
	// consumer gets everything, in few batches.
	var seen []Event
	for i := 0; !coversAll(want100("a")...)(seen); i++ {
		if i == 20 {
			t.Fatalf("after %d rounds got %v", i, names(seen))
		}
		clk.Advance(time.Second)
		select {
		case b := <-h.out:
			checkBatch(t, b)
			h.batches = append(h.batches, b)
			seen = append(seen, b...)
		case <-time.After(100 * time.Millisecond): // a poll step with a deadline (the round count)
		}
	}
	if n := len(h.batches) - 1; n > 3 {
		t.Errorf("%d batches for one burst and a blocked send: %v", n, h.batches[1:])
	}
}

func want100(extra ...string) []string {
	ps := slices.Clone(extra)
	for i := range 100 {
		ps = append(ps, fmt.Sprintf("n%03d", i))
	}
	return ps
}

func TestSubtreeAbsorbsEventsBelow(t *testing.T) {
	h, f, clk := fakeStart(t, Options{})
	h.mkdir("d/e")
	f.feed(t, write(h, "d/e/f"), write(h, "d/x"), write(h, "dx"), write(h, "d-y"))
	f.feed(t, fsnotify.Event{Name: h.path("d"), Op: fsnotify.Create})
	f.feed(t, write(h, "d/e/g"))
	clk.Advance(time.Second)
	want := []Event{{Path: "d", Subtree: true}, {Path: "d-y"}, {Path: "dx"}}
	if b := h.next(); !slices.Equal(b, want) {
		t.Errorf("batch = %v, want %v", b, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.added) != 3 { // root, d, d/e
		t.Errorf("watches added: %v", f.added)
	}
}

func TestMaxBatchWidensInsteadOfDropping(t *testing.T) {
	h, f, clk := fakeStart(t, Options{MaxBatch: 50})
	for i := range 200 {
		f.feed(t, write(h, fmt.Sprintf("big/%03d", i)))
	}
	f.feed(t, write(h, "small/one"), write(h, "top"))
	clk.Advance(time.Second)
	b := h.next()
	if len(b) > 50 {
		t.Errorf("batch of %d events, MaxBatch 50", len(b))
	}
	for _, p := range []string{"big/000", "big/199", "small/one", "top"} {
		if !covered(b, p) {
			t.Errorf("%s lost: %v", p, b)
		}
	}
}

func TestCompactOrder(t *testing.T) {
	m := map[string]bool{"a b": false, "a/b": false, "a": false, "a-c": false, "": false, "b/c/d": false,
		"b/c": true, "b/cd": false, "b/c/e/f": false}
	got := compact(m)
	want := []Event{{Path: ""}, {Path: "a"}, {Path: "a/b"}, {Path: "a b"}, {Path: "a-c"},
		{Path: "b/c", Subtree: true}, {Path: "b/cd"}}
	if !slices.Equal(got, want) {
		t.Errorf("compact = %v\nwant      %v", got, want)
	}
}

func TestPendingAdd(t *testing.T) {
	now := time.Unix(0, 0)
	p := newPending(100)
	p.add("a/b", false, now)
	p.add("a", true, now.Add(time.Second))
	p.add("a/c", false, now.Add(2*time.Second)) // under a pending subtree: not even stored
	p.add("a/b", false, now)
	if len(p.m) != 2 || !p.first.Equal(now) || !p.last.Equal(now) {
		t.Errorf("pending = %v first %v last %v", p.m, p.first, p.last)
	}
	if got := p.take(); !slices.Equal(got, []Event{{Path: "a", Subtree: true}}) {
		t.Errorf("take = %v", got)
	}
	if !p.empty() || p.take() != nil {
		t.Errorf("not empty after take")
	}
}

func TestCoarsenReachesRoot(t *testing.T) {
	m := map[string]bool{}
	for i := range 10 {
		m[fmt.Sprintf("d%d/f", i)] = false
	}
	if got := compact(coarsen(m, 1)); !slices.Equal(got, []Event{{Path: "", Subtree: true}}) {
		t.Errorf("coarsen to 1 = %v", got)
	}
	got := compact(coarsen(map[string]bool{"a/b/c/1": false, "a/b/c/2": false, "a/x": false}, 2))
	if want := []Event{{Path: "a/b/c", Subtree: true}, {Path: "a/x"}}; !slices.Equal(got, want) {
		t.Errorf("coarsen = %v, want %v (deepest first)", got, want)
	}
}
