package localdir

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

var (
	_ remote.Syncer         = (*Dir)(nil)
	_ remote.SyncEpocher    = (*Dir)(nil)
	_ remote.ObservedSyncer = (*Dir)(nil)
	_ remote.Batcher        = (*Dir)(nil)
)

// ShareBarrier has a and b, two roots on one filesystem (a dir: pair on one disk), share one filesystem-wide
// sync between their writers: an upload's temp file on one side and its source on the other are then made
// durable by the same syncfs, and one side's waits count the other side's writers as a batch. It reports
// whether they do (not on two filesystems, nor where no syncfs is used). Call it before either is used.
func ShareBarrier(a, b *Dir) bool {
	if a == b || a.bar.syncfs == nil || b.bar.syncfs == nil || a.dev != b.dev {
		return false
	}
	b.bar = a.bar
	return true
}

// BeginBatch says that n writes of a batch (a round's transfers) are about to run: while it lasts, each of them
// shares a filesystem-wide sync when at least SyncFSBatch are announced, even when fewer are writing at that
// instant. The returned func ends the batch.
func (d *Dir) BeginBatch(n int) (end func()) {
	bar := d.bar
	id := bar.announce(n)
	var once sync.Once
	return func() { once.Do(func() { bar.endBatch(id) }) }
}

// SyncObserved is Sync for a file the caller observed at revision at before the last NewSyncEpoch and that is
// still at that revision: its bytes and name were on the filesystem then, so a shared syncfs that started since
// the epoch, run for any writer, made them durable already, and none is run for it alone (a first sync's upload
// waited on a third syncfs per file for bytes the Put's two had covered). A file no longer at it gets Sync.
// now is the caller's own Stat of p, taken after it last relied on the file (an upload's check that its source
// was not replaced): when it describes p, it stands for the stat SyncObserved would take, one path resolution
// fewer per upload. The zero Entry has p stat'ed here.
func (d *Dir) SyncObserved(ctx context.Context, p remote.Path, at string, now remote.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if now.Path != p || now.Path == "" {
		n, err := name(p)
		if err != nil {
			return err
		}
		fi, err := d.fs.Lstat(n)
		if err != nil || !fi.IsRegular() {
			return d.Sync(ctx, p)
		}
		now = entry(p, fi)
	}
	if now.Dir || now.Skip != "" || now.Rev != at || !onDev(now.ID, d.dev) {
		return d.Sync(ctx, p)
	}
	shared, err := d.sharedSince()
	switch {
	case !shared:
		return d.Sync(ctx, p)
	case err != nil:
		d.lg.Warn("a filesystem-wide sync failed: from now on every write fsyncs its own file and folders",
			zap.String("path", string(p)), zap.Error(err))
		return wrap("sync", p, err)
	}
	return nil
}

// sharedSince waits for a shared syncfs that started after the last NewSyncEpoch; shared is false when none
// serves (no batch in flight, the barrier broken), and the caller syncs by itself.
func (d *Dir) sharedSince() (shared bool, err error) {
	d.bar.enter()
	defer d.bar.leave()
	return d.bar.waitSince(d.barMark.Load(), func() error { return nil })
}

// Sync makes the file at p and its name durable: fsync of the file and of every folder up to the root. The engine calls it after uploading a
// file the user wrote and before recording the sync point: an editor that did not fsync would otherwise leave a
// base that a power loss can contradict, and the stale local bytes would then look like a new local edit.
func (d *Dir) Sync(ctx context.Context, p remote.Path) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := name(p)
	if err != nil {
		return err
	}
	d.bar.enter()
	defer d.bar.leave()
	f, err := d.fs.Open(n)
	if err != nil {
		return wrap("sync", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		err = wrap("sync", p, err)
	} else {
		err = d.durable("sync", p, fi.Dev, func() error {
			if err := f.Sync(); err != nil {
				return wrap("sync", p, err)
			}
			// Every folder up to the root: a name made durable in a folder whose own name is not would come back
			// after a power loss as whatever the parent held there before (an older file, nothing), below a
			// recorded base.
			return d.syncUp("sync", p.Dir(), false)
		})
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = wrap("sync", p, cerr)
	}
	return err
}
