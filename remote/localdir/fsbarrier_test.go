package localdir

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// parkCounter is the barrier's cond.L: sync.Cond.Wait unlocks it once after queueing the caller for the next
// Broadcast and locks it again once woken, so the count tells how many callers are parked in wait, with no field
// added to the barrier.
type parkCounter struct {
	mu     *sync.Mutex
	parked atomic.Int64
}

func (p *parkCounter) Lock()   { p.mu.Lock(); p.parked.Add(-1) }
func (p *parkCounter) Unlock() { p.parked.Add(1); p.mu.Unlock() }

// countParked makes b's cond count its parked callers.
func countParked(b *fsBarrier) *parkCounter {
	p := &parkCounter{mu: &b.mu}
	b.cond.L = p
	return p
}

// heldSyncFS is a syncfs each call of which blocks until the test sends its result, logging its start and end
// on a logical clock.
type heldSyncFS struct {
	clock   *atomic.Int64
	calls   atomic.Int64
	release chan error
	free    atomic.Bool // calls from now on succeed at once (a bug's extra syncfs fails its test, not hangs it)
	mu      sync.Mutex
	starts  []int64
	ends    []int64
}

func newHeldSyncFS(clock *atomic.Int64) *heldSyncFS {
	return &heldSyncFS{clock: clock, release: make(chan error)}
}

func (h *heldSyncFS) syncfs() error {
	h.mu.Lock()
	h.starts = append(h.starts, h.clock.Add(1))
	h.mu.Unlock()
	h.calls.Add(1)
	var err error
	if !h.free.Load() {
		err = <-h.release
	}
	h.mu.Lock()
	h.ends = append(h.ends, h.clock.Add(1))
	h.mu.Unlock()
	return err
}

// TestFSBarrierBatchSharesOneSyncFS: writers that arrive while a syncfs runs all wait for the next one, which
// they share (two syncfs for twenty writers), none returns before a syncfs that started after its call has
// ended, and none runs its own fsyncs.
func TestFSBarrierBatchSharesOneSyncFS(t *testing.T) {
	var clock atomic.Int64
	h := newHeldSyncFS(&clock)
	b := newFSBarrier(h.syncfs, 1)
	p := countParked(b)
	type result struct {
		call, ret int64
		shared    bool
		err       error
	}
	res := make([]result, 20)
	var owns atomic.Int64
	own := func() error { owns.Add(1); return errors.New("own fsyncs ran") }
	var wg sync.WaitGroup
	run := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.enter()
			defer b.leave()
			res[i].call = clock.Add(1)
			res[i].shared, res[i].err = b.wait(own)
			res[i].ret = clock.Add(1)
		}()
	}
	run(0)
	waitFor(t, func() bool { return h.calls.Load() == 1 }) // the first syncfs, held
	for i := 1; i < len(res); i++ {
		run(i)
	}
	waitFor(t, func() bool { return p.parked.Load() == int64(len(res)-1) })
	// The held syncfs started before the others called, so it covers only the first; the next one runs at once.
	h.free.Store(true)
	h.release <- nil
	wg.Wait()
	if n := h.calls.Load(); n != 2 {
		t.Errorf("%d syncfs for one writer and a batch of %d queued behind it, want 2", n, len(res)-1)
	}
	if n := owns.Load(); n != 0 {
		t.Errorf("own fsyncs ran %d times in a batch", n)
	}
	for i, r := range res {
		if r.err != nil || !r.shared {
			t.Errorf("writer %d: shared %v, err %v; want a shared success", i, r.shared, r.err)
		}
		covered := false
		for j, s := range h.starts {
			if s > r.call && h.ends[j] < r.ret {
				covered = true
			}
		}
		if !covered {
			t.Errorf("writer %d (call at %d, return at %d) returned before any syncfs that started after its call "+
				"had ended (syncfs starts %v, ends %v)", i, r.call, r.ret, h.starts, h.ends)
		}
	}
	if b.broken() {
		t.Error("broken after successful syncfs")
	}
}

// TestFSBarrierLoneWriterRunsOwn: below min writers in flight, a writer runs its own fsyncs and never syncfs
// (which would make it wait for whatever else is being written on the filesystem).
func TestFSBarrierLoneWriterRunsOwn(t *testing.T) {
	var syncfs, owns atomic.Int64
	b := newFSBarrier(func() error { syncfs.Add(1); return nil }, 8)
	b.enter()
	defer b.leave()
	shared, err := b.wait(func() error { owns.Add(1); return nil })
	if shared || err != nil || owns.Load() != 1 || syncfs.Load() != 0 {
		t.Errorf("lone writer: shared %v, err %v, %d own, %d syncfs; want its own fsyncs only", shared, err,
			owns.Load(), syncfs.Load())
	}
}

// TestFSBarrierNoSyncFSRunsOwn: an FS without SyncFS leaves every writer to its own fsyncs, batch or not, and
// their errors come back as they are.
func TestFSBarrierNoSyncFSRunsOwn(t *testing.T) {
	b := newFSBarrier(nil, 1)
	for range 3 {
		b.enter()
	}
	ownErr := errors.New("own")
	for i := range 3 {
		shared, err := b.wait(func() error { return ownErr })
		if shared || err != ownErr {
			t.Errorf("call %d: shared %v, err %v; want own's error, not shared", i, shared, err)
		}
	}
}

// TestFSBarrierFailureBreaksIt: the writers waiting on a failing syncfs get its error; a writer that queued
// while it ran (it needs the next syncfs) and every later writer run their own fsyncs instead, and own's error
// comes back as it is. No syncfs runs once one failed: its error was reported to the descriptor once, so a
// later one would succeed over bytes a writer lost.
func TestFSBarrierFailureBreaksIt(t *testing.T) {
	var clock atomic.Int64
	h := newHeldSyncFS(&clock)
	b := newFSBarrier(h.syncfs, 1)
	p := countParked(b)
	type result struct {
		shared bool
		err    error
	}
	var owns atomic.Int64
	never := func() error { owns.Add(1); return errors.New("own fsyncs ran") }
	var wg sync.WaitGroup
	start := func(r *result, own func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.enter()
			defer b.leave()
			r.shared, r.err = b.wait(own)
		}()
	}
	// first runs syncfs 1 (held); a and c queue behind it and share syncfs 2, which fails.
	var first, a, c, late result
	start(&first, never)
	waitFor(t, func() bool { return h.calls.Load() == 1 })
	start(&a, never)
	start(&c, never)
	waitFor(t, func() bool { return p.parked.Load() == 2 })
	h.release <- nil
	waitFor(t, func() bool { return h.calls.Load() == 2 && p.parked.Load() == 1 })
	// late arrives during the failing syncfs: it needs syncfs 3, which never runs.
	lateErr := errors.New("late's own fsync")
	var lateOwn atomic.Int64
	start(&late, func() error { lateOwn.Add(1); return lateErr })
	waitFor(t, func() bool { return p.parked.Load() == 2 })
	h.free.Store(true)
	h.release <- syscall.EIO
	wg.Wait()

	if first.err != nil || !first.shared {
		t.Errorf("first writer: shared %v, err %v; want a shared success", first.shared, first.err)
	}
	for name, r := range map[string]result{"a": a, "c": c} {
		if !errors.Is(r.err, syscall.EIO) || !r.shared {
			t.Errorf("writer %s on the failing syncfs: shared %v, err %v; want its EIO, shared", name, r.shared, r.err)
		}
	}
	if owns.Load() != 0 {
		t.Errorf("%d writers covered by a syncfs ran their own fsyncs", owns.Load())
	}
	if late.err != lateErr || late.shared || lateOwn.Load() != 1 {
		t.Errorf("writer queued during the failing syncfs: shared %v, err %v, own ran %d times; want its own fsyncs' "+
			"error as is", late.shared, late.err, lateOwn.Load())
	}
	if !b.broken() {
		t.Fatal("not broken after a failed syncfs")
	}
	// Later writers, a batch of them included, run their own fsyncs; no syncfs runs again.
	for range 3 {
		b.enter()
	}
	for i := range 3 {
		var ran bool
		shared, err := b.wait(func() error { ran = true; return nil })
		if shared || err != nil || !ran {
			t.Errorf("writer %d after the failure: shared %v, err %v, own ran %v; want its own fsyncs", i, shared, err, ran)
		}
	}
	for range 3 {
		b.leave()
	}
	if n := h.calls.Load(); n != 2 {
		t.Errorf("%d syncfs, want 2: none after the failure", n)
	}
}

// TestDurableOtherFilesystemRunsOwn: a file on another filesystem than the root's (a mount below it) is not
// covered by the root's syncfs, so it runs its own fsyncs at once, even while a batch waits on a syncfs.
func TestDurableOtherFilesystemRunsOwn(t *testing.T) {
	var clock atomic.Int64
	h := newHeldSyncFS(&clock)
	b := newFSBarrier(h.syncfs, 1)
	p := countParked(b)
	d := &Dir{bar: b, dev: 7}
	var wg sync.WaitGroup
	var rootErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.enter()
		defer b.leave()
		rootErr = d.durable("put", "a", 7, func() error { return errors.New("own fsyncs ran on the root's filesystem") })
	}()
	waitFor(t, func() bool { return h.calls.Load() == 1 })

	b.enter()
	var own atomic.Bool
	ownErr := errors.New("mount's own fsync")
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = d.durable("put", "mnt/b", 8, func() error { own.Store(true); return ownErr })
	}()
	// Either own runs, or (the bug) the call parks behind the held syncfs.
	waitFor(t, func() bool { return own.Load() || p.parked.Load() > 0 })
	if !own.Load() {
		t.Error("a file on another filesystem waited for the root's syncfs instead of running its own fsyncs")
		h.release <- nil
		waitFor(t, func() bool { return h.calls.Load() == 2 })
	} else {
		<-done
		if err != ownErr {
			t.Errorf("durable on another filesystem: %v, want own's error as is", err)
		}
	}
	h.release <- nil
	wg.Wait()
	<-done
	b.leave()
	if rootErr != nil {
		t.Errorf("writer on the root's filesystem: %v", rootErr)
	}
}
