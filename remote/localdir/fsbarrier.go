package localdir

import "sync"

// fsBarrier shares one filesystem-wide sync (Linux syncfs) between the writers in flight. A first sync of 10,000
// small files made three fsyncs per file (the temp, its folder, the source of an upload), each a journal commit
// and a device flush, and spent most of its time waiting on them (7.4 s, against 3.1 s with no sync at all, on a
// fresh ext4); a syncfs makes everything written before it durable at the cost of about one of them.
//
// A writer that needs its writes durable calls wait with its own fsyncs as the fallback. When fewer than min
// writers are in flight (the daemon's single edits) it runs them: a syncfs also flushes whatever else the user is
// writing on that filesystem, which must not delay a lone file. Otherwise it waits for a syncfs that starts after
// the call, sharing it with every writer that arrived meanwhile.
//
// Errors: the syncfs runs on one descriptor the FS holds from its start, and Linux (5.8 and later; the FS offers
// SyncFS only there) reports to it every write-back error of the filesystem since it was opened, once. The
// writers waiting on the failing syncfs get its error; from then on the barrier is broken and every writer runs
// its own fsyncs, which report an error of its own file to it whoever saw the filesystem's error first. So an
// error never goes to a syncfs whose writers do not hear of it: a writer whose bytes a failed write-back lost
// either waited on the syncfs that reported it or comes later and fsyncs its file itself.
type fsBarrier struct {
	syncfs func() error // nil: the FS has none
	min    int          // fewest writers in flight for a shared syncfs

	mu       sync.Mutex
	cond     sync.Cond
	inflight int
	batches  map[uint64]int // writes announced by the batches running (BeginBatch), by batch
	nextID   uint64
	running  bool
	started  uint64 // syncfs calls started
	done     uint64 // the last one that ended
	failed   uint64 // the one that failed (0: none): the barrier is broken from then on
	err      error
}

func newFSBarrier(syncfs func() error, min int) *fsBarrier {
	b := &fsBarrier{syncfs: syncfs, min: min}
	b.cond.L = &b.mu
	return b
}

// enter counts a writer in flight until the matching leave.
func (b *fsBarrier) enter() {
	b.mu.Lock()
	b.inflight++
	b.mu.Unlock()
}

func (b *fsBarrier) leave() {
	b.mu.Lock()
	b.inflight--
	b.mu.Unlock()
}

// wait makes durable everything the caller wrote to the filesystem before the call: through a shared syncfs that
// starts after the call, or through own (the caller's fsyncs) when no batch is in flight or the barrier is
// broken. shared: the outcome is a syncfs's, not own's.
func (b *fsBarrier) wait(own func() error) (shared bool, err error) {
	b.mu.Lock()
	if b.syncfs == nil || b.failed != 0 || max(b.inflight, b.largestBatch()) < b.min {
		b.mu.Unlock()
		return false, own()
	}
	return b.await(b.started+1, own) // the first syncfs to start after now
}

// announce starts a batch of n writes a caller runs and returns its id for endBatch. A batch's writers are not all
// inside a write at once (they read their sources, commit, wait on each other), so counting only those inside
// left a first sync's writes fsyncing alone whenever fewer than min happened to be. The largest batch running
// counts, not their sum: the two roots of a pair sharing the barrier announce the same round's transfers.
func (b *fsBarrier) announce(n int) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batches == nil {
		b.batches = map[uint64]int{}
	}
	b.nextID++
	b.batches[b.nextID] = n
	return b.nextID
}

// endBatch ends batch id (announce).
func (b *fsBarrier) endBatch(id uint64) {
	b.mu.Lock()
	delete(b.batches, id)
	b.mu.Unlock()
}

// largestBatch is the largest batch running; b.mu is held.
func (b *fsBarrier) largestBatch() int {
	n := 0
	for _, m := range b.batches {
		n = max(n, m)
	}
	return n
}

// mark numbers the syncfs calls started so far: each numbered above it starts after this call (waitSince).
func (b *fsBarrier) mark() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

// waitSince is wait for what the caller wrote before mark was taken: any shared syncfs that started after the
// mark covers it, one that has ended already too, so a caller whose bytes another writer's syncfs made durable
// waits for nothing. With none started since the mark it is wait.
func (b *fsBarrier) waitSince(mark uint64, own func() error) (shared bool, err error) {
	b.mu.Lock()
	if b.syncfs != nil && b.failed == 0 && b.started > mark {
		return b.await(mark+1, own)
	}
	b.mu.Unlock()
	return b.wait(own)
}

// await waits, b.mu held (and released on return), until syncfs number need has ended, running it if it has not
// started; own serves instead once the barrier broke on another syncfs.
func (b *fsBarrier) await(need uint64, own func() error) (shared bool, err error) {
	for b.done < need {
		if b.failed != 0 && b.failed != need {
			b.mu.Unlock()
			return false, own()
		}
		if b.running {
			b.cond.Wait()
			continue
		}
		b.running = true
		b.started++
		seq := b.started
		b.mu.Unlock()
		err := b.syncfs()
		b.mu.Lock()
		b.running, b.done = false, seq
		if err != nil && b.failed == 0 {
			b.failed, b.err = seq, err
		}
		b.cond.Broadcast()
	}
	if b.failed == need {
		err = b.err
	}
	b.mu.Unlock()
	return true, err
}

// broken reports whether a syncfs failed, so that every writer now runs its own fsyncs (tests, logs).
func (b *fsBarrier) broken() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed != 0
}
