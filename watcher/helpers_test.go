package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor bounds every real-time wait: tests never sleep, they wait for a batch with a deadline.
const waitFor = 10 * time.Second

// harness runs a Watcher on root and keeps every batch it sends.
type harness struct {
	t       *testing.T
	w       *Watcher
	root    string
	out     chan []Event
	batches [][]Event
}

// start runs a Watcher and waits for its start-up batch (the root Subtree), so every watch is in place when
// it returns. src, if set, replaces fsnotify; a nil Clock in o means the real clock.
func start(t *testing.T, root string, o Options, src func() (source, error)) *harness {
	t.Helper()
	w, err := New(zaptest.NewLogger(t), root, o)
	if err != nil {
		t.Fatal(err)
	}
	if src != nil {
		w.newSource = src
	}
	h := &harness{t: t, w: w, root: root, out: make(chan []Event)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, h.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// next returns the next batch, checking what every batch must hold: sorted depth-first, each path once, nothing
// below a Subtree event of the same batch.
func (h *harness) next() []Event {
	h.t.Helper()
	select {
	case b := <-h.out:
		h.batches = append(h.batches, b)
		checkBatch(h.t, b)
		return b
	case <-time.After(waitFor):
		h.t.Fatalf("no batch within %v; batches so far: %v", waitFor, h.batches)
		return nil
	}
}

func checkBatch(t *testing.T, b []Event) {
	t.Helper()
	if len(b) == 0 {
		t.Errorf("empty batch sent")
	}
	for i := 1; i < len(b); i++ {
		if comparePath(b[i-1].Path, b[i].Path) >= 0 {
			t.Errorf("batch not sorted or holds a path twice: %v", b)
		}
	}
	for _, s := range b {
		if !s.Subtree {
			continue
		}
		for _, e := range b {
			if e.Path != s.Path && under(e.Path, s.Path) {
				t.Errorf("batch holds %q below Subtree %q: %v", e.Path, s.Path, b)
			}
		}
	}
}

// until reads batches until ok holds for the events seen since the call, and returns those events.
func (h *harness) until(what string, ok func(seen []Event) bool) []Event {
	h.t.Helper()
	var seen []Event
	deadline := time.After(waitFor)
	for !ok(seen) {
		select {
		case b := <-h.out:
			h.batches = append(h.batches, b)
			checkBatch(h.t, b)
			seen = append(seen, b...)
		case <-deadline:
			h.t.Fatalf("waiting for %s: not seen within %v; got %v", what, waitFor, seen)
		}
	}
	return seen
}

// startup waits for the first batch and checks it is the root rescan.
func (h *harness) startup() {
	h.t.Helper()
	if b := h.next(); !slices.Equal(b, []Event{{Path: "", Subtree: true}}) {
		h.t.Fatalf("first batch = %v, want the root Subtree", b)
	}
}

// covered reports whether a change to p is reported by seen: p itself or a Subtree event above it.
func covered(seen []Event, p string) bool {
	for _, e := range seen {
		if e.Path == p || (e.Subtree && under(p, e.Path)) {
			return true
		}
	}
	return false
}

func coversAll(ps ...string) func([]Event) bool {
	return func(seen []Event) bool {
		for _, p := range ps {
			if !covered(seen, p) {
				return false
			}
		}
		return true
	}
}

func has(seen []Event, p string) bool {
	return slices.ContainsFunc(seen, func(e Event) bool { return e.Path == p })
}

func (h *harness) path(rel string) string { return filepath.Join(h.root, filepath.FromSlash(rel)) }

func (h *harness) write(rel, body string) {
	h.t.Helper()
	if err := os.WriteFile(h.path(rel), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) mkdir(rel string) {
	h.t.Helper()
	if err := os.MkdirAll(h.path(rel), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) rename(from, to string) {
	h.t.Helper()
	if err := os.Rename(h.path(from), h.path(to)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) remove(rel string) {
	h.t.Helper()
	if err := os.RemoveAll(h.path(rel)); err != nil {
		h.t.Fatal(err)
	}
}

// waitWatched polls Watched with a deadline: the loop updates it asynchronously.
func (h *harness) waitWatched(want int) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for h.w.Watched() != want {
		if time.Now().After(deadline) {
			h.t.Fatalf("Watched() = %d, want %d", h.w.Watched(), want)
		}
		time.Sleep(2 * time.Millisecond) // a poll step with a deadline, not a wait for something to happen
	}
}

func mkTree(t testing.TB, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeSource stands in for fsnotify where a test must produce what a machine cannot on demand (overflow) or
// control time exactly. Its channels are unbuffered, so a completed send means the loop took the event.
type fakeSource struct {
	ev   chan fsnotify.Event
	errs chan error

	mu    sync.Mutex
	added []string
}

func newFake() *fakeSource {
	return &fakeSource{ev: make(chan fsnotify.Event), errs: make(chan error)}
}

func (f *fakeSource) Add(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, p)
	return nil
}
func (f *fakeSource) Remove(string) error           { return nil }
func (f *fakeSource) Events() <-chan fsnotify.Event { return f.ev }
func (f *fakeSource) Errors() <-chan error          { return f.errs }
func (f *fakeSource) Close() error                  { return nil }

// outside is a path the loop drops; sending it after an event proves the loop finished handling that event,
// because the loop handles one event at a time.
const outside = "/nonexistent-outside-the-root"

func (f *fakeSource) feed(t *testing.T, evs ...fsnotify.Event) {
	t.Helper()
	for _, e := range append(evs, fsnotify.Event{Name: outside, Op: fsnotify.Write}) {
		select {
		case f.ev <- e:
		case <-time.After(waitFor):
			t.Fatalf("loop did not take event %v", e)
		}
	}
}

func (f *fakeSource) fail(t *testing.T, err error) {
	t.Helper()
	select {
	case f.errs <- err:
	case <-time.After(waitFor):
		t.Fatalf("loop did not take error %v", err)
	}
	f.feed(t) // barrier
}

// limitSource is the real fsnotify with inotify_add_watch failing with ENOSPC once left adds are used up, as
// it does at fs.inotify.max_user_watches.
type limitSource struct {
	source
	left int // touched by Run's goroutine only
}

func (s *limitSource) Add(p string) error {
	if s.left <= 0 {
		return fmt.Errorf("add watch %s: %w", p, syscall.ENOSPC)
	}
	s.left--
	return s.source.Add(p)
}

func names(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Path)
		if e.Subtree {
			b.WriteString("/**")
		}
		b.WriteString(" ")
	}
	return b.String()
}
