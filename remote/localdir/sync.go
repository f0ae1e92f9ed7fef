package localdir

import (
	"context"

	"github.com/tandemsync/tandem/remote"
)

var (
	_ remote.Syncer      = (*Dir)(nil)
	_ remote.SyncEpocher = (*Dir)(nil)
)

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
