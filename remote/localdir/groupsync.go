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

	// Fsyncs that later callers may count as theirs (covered). clock numbers every folder fsync started; epoch
	// is clock at the caller's last newEpoch (before it, nothing counts); good holds, per folder, the last
	// fsync started after the epoch that succeeded, with the folder's stat taken just before it.
	stat     func(string) (FileInfo, error)
	clock    uint64
	epoch    uint64
	epochSet bool
	good     map[string]goodSync
}

type goodSync struct {
	seq uint64
	fi  FileInfo
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
		g.clock++
		at, track := g.clock, g.epochSet && g.stat != nil
		g.mu.Unlock()
		var fi FileInfo
		var err error
		if track {
			fi, err = g.stat(n)
		}
		if err == nil {
			err = fsync(n)
		}
		g.mu.Lock()
		f.running, f.done = false, seq
		if err != nil {
			if f.failed == nil {
				f.failed = map[uint64]error{}
			}
			f.failed[seq] = err
			delete(g.good, n) // a failed folder fsync may have lost what an earlier one made durable
		} else if track && at > g.epoch && at > g.good[n].seq {
			if g.good == nil {
				g.good = map[string]goodSync{}
			}
			g.good[n] = goodSync{seq: at, fi: fi}
		}
		f.cond.Broadcast()
	}
	return f.failed[need]
}

// newEpoch starts an epoch: from now on, a folder fsync that starts and succeeds counts for every entry the
// caller observed before this call, as long as the folder has not changed since (covered). The engine calls it
// after observing a round and before acting on it; before the first call nothing is covered.
func (g *groupSync) newEpoch() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epoch, g.epochSet, g.good = g.clock, true, nil
}

// covered reports whether folder n needs no fsync for entries observed before the epoch: an fsync of it started
// after the epoch and succeeded, and its stat (inode, ctime, mtime) is what it was just before that fsync, so
// no entry in it changed since and it is the same folder (not one the user removed and made again). Such an
// fsync made every entry observed before the epoch durable; a first sync of 10,000 files then pays one fsync per
// folder and level, not one per file and level. Entries tandem itself creates are never left to this: their
// own folder is fsynced after them (Put, Move, Mkdir).
func (g *groupSync) covered(n string) bool {
	g.mu.Lock()
	gs, ok := g.good[n]
	ok = ok && g.epochSet && gs.seq > g.epoch
	g.mu.Unlock()
	if !ok {
		return false
	}
	fi, err := g.stat(n)
	return err == nil && fi.IsDir() && fi.Ino == gs.fi.Ino && fi.Dev == gs.fi.Dev && fi.CTime == gs.fi.CTime &&
		fi.ModTime.Equal(gs.fi.ModTime) && fi.Mode == gs.fi.Mode
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
