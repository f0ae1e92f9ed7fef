package localdir

import "sync"

// groupSync shares folder fsyncs between concurrent writers: every Put syncs its folder and each folder above it
// up to the root, so with many transfers in flight the same folders (the root above all) were fsynced once per
// file, in series on each. A caller needs an fsync of the folder that starts after it arrived (one that was
// already running may have missed its rename); all callers waiting meanwhile share the next one, and each gets
// that fsync's error. Alone, a caller pays exactly one fsync, as before.
type groupSync struct {
	mu sync.Mutex
	m  map[string]*folderSync
}

type folderSync struct {
	cond    sync.Cond
	users   int    // callers between arrival and return; the entry is dropped when none is left
	running bool   // an fsync is in flight; it has number started
	started uint64 // fsyncs started so far
	done    uint64 // the last fsync that ended
	failed  map[uint64]error
}

// sync runs fsync (the FS's SyncDir of folder n) or waits for one that started after the call.
func (g *groupSync) sync(n string, fsync func(string) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]*folderSync{}
	}
	f := g.m[n]
	if f == nil {
		f = &folderSync{}
		f.cond.L = &g.mu
		g.m[n] = f
	}
	f.users++
	defer func() {
		if f.users--; f.users == 0 {
			delete(g.m, n)
		}
	}()
	need := f.started + 1 // the first fsync to start after now
	for f.done < need {
		if f.running {
			f.cond.Wait()
			continue
		}
		f.running = true
		f.started++
		seq := f.started
		g.mu.Unlock()
		err := fsync(n)
		g.mu.Lock()
		f.running, f.done = false, seq
		if err != nil {
			if f.failed == nil {
				f.failed = map[uint64]error{}
			}
			f.failed[seq] = err
		}
		f.cond.Broadcast()
	}
	return f.failed[need]
}

// waiting reports how many callers are inside sync for folder n (tests).
func (g *groupSync) waiting(n string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.m[n]; f != nil {
		return f.users
	}
	return 0
}
