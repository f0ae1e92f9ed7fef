package fakefs

import (
	"slices"
	"syscall"
)

// SyncDir implements localdir.FS: folder name's pending name ops (and its own data ops) become durable.
func (f *FS) SyncDir(name string) error {
	if err := f.begin("syncdir", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, n, err := f.resolve(name)
	if err == nil && !n.isDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return perr("syncdir", name, err)
	}
	f.force(ino, func(o *op) bool { return o.touches(ino) || (o.dataOp() && o.ino == ino) })
	return nil
}

// force marks the pending ops sel picks durable (an fsync of inode synced, 0: everything), then folds the
// forced head of the log into the durable state (those ops survive any crash, whatever prefix it picks).
func (f *FS) force(synced uint64, sel func(*op) bool) {
	// Backwards, so that a forced link of a reused number forces every earlier op of the number's earlier lives
	// (its unlink, the rename over its name, a folder's emptying): a replayed state never holds the old name and
	// the new one. The same when the fsync'd inode, or the file a forced op acts on, is a life whose link is
	// still pending (its name not yet durable): a journaling filesystem commits an inode's release before its
	// reuse, so the old name never shows the new inode's bytes or entries (seed 1348) nor the new name the old
	// file's (seed 106).
	need := map[uint64]bool{}
	born := map[uint64]uint64{} // number -> the life a forced op acted on, its link not yet passed
	if n := f.live[synced]; synced != 0 && n != nil && n.gen != 0 {
		born[synced] = n.gen
	}
	for i := len(f.pending) - 1; i >= 0; i-- {
		o := f.pending[i]
		if sel(o) || need[o.ino] || (o.over != 0 && need[o.over]) ||
			(!o.dataOp() && (need[o.dir] || (o.kind == opRename && need[o.dir2]))) {
			o.forced = true
		}
		switch {
		case o.begins() && (o.forced || (o.gen != 0 && born[o.ino] == o.gen)):
			need[o.ino] = true
			delete(born, o.ino)
		case o.forced && o.gen != 0 && !need[o.ino] && born[o.ino] == 0 && o.kind != opUnlink:
			born[o.ino] = o.gen
		}
		// An exchange also names the other file: that file's own link must come with it.
		if o.kind == opExchange && o.forced && o.gen2 != 0 && !need[o.over] && born[o.over] == 0 {
			born[o.over] = o.gen2
		}
	}
	i := 0
	for i < len(f.pending) && f.pending[i].forced {
		f.durable.apply(f.pending[i])
		i++
	}
	f.pending = slices.Delete(f.pending, 0, i)
}

// SyncFS implements localdir.FSSyncer: every pending op becomes durable, as syncfs(2) makes everything written
// to the filesystem durable.
func (f *FS) SyncFS() error {
	if err := f.begin("syncfs", "."); err != nil {
		return err
	}
	f.Sync()
	return nil
}

// Sync makes everything durable, as a clean shutdown does.
func (f *FS) Sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.force(0, func(*op) bool { return true })
}

// Pending is the number of ops a Crash could still lose.
func (f *FS) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// Crash models a power loss: the durable state, plus a random prefix (possibly empty) of the pending ops, plus
// every forced op after that prefix, in log order, becomes the new durable state and the live tree. Files open
// before the crash fail from then on.
func (f *FS) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	keep := f.rnd.IntN(len(f.pending) + 1)
	for i, o := range f.pending {
		if i < keep || o.forced {
			f.durable.apply(o)
		}
	}
	f.durable.gc(f.root)
	f.pending = nil
	f.live = f.durable.clone()
	f.gen++
	f.free, f.open = nil, map[uint64]int{}
	clear(f.queried) // the queried flags live in memory only; the floor stays, as the clock does not go back
	for ino := range f.unreadable {
		if f.live[ino] == nil {
			delete(f.unreadable, ino)
		}
	}
}
