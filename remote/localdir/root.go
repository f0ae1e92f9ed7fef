package localdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

const markerText = `This folder belongs to tandem, the two-way sync daemon.

Its presence tells tandem that this directory is a sync root that is mounted and intact: if the folder is
missing, tandem stops instead of taking the empty or unmounted directory as "everything was deleted".
trash/ holds files tandem deleted or replaced here, by date; they are removed after the configured number of days.
`

// CheckRoot fails with remote.ErrRootMissing when the root is gone, was replaced or unmounted under an open Dir,
// or lacks its .tandem marker (emptied, or an unmounted mount point).
func (d *Dir) CheckRoot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rfi, err := d.fs.Lstat(".")
	if err != nil {
		return fmt.Errorf("%w: root %s is missing: %w", remote.ErrRootMissing, d.o.Label, err)
	}
	if d.rootPath != "" {
		// The open root follows the directory it was opened on; the path may now name another (a remount) or none.
		pfi, err := os.Stat(d.rootPath)
		if err != nil {
			return fmt.Errorf("%w: root %s is missing: %w", remote.ErrRootMissing, d.o.Label, err)
		}
		if dev, ino, _ := sysStat(pfi); ino != 0 && (dev != rfi.Dev || ino != rfi.Ino) {
			return fmt.Errorf("%w: root %s was replaced or remounted since it was opened", remote.ErrRootMissing, d.o.Label)
		}
	}
	mfi, err := d.fs.Lstat(remote.ReservedDir)
	if err == nil && mfi.IsDir() {
		return nil
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: root %s has no %s marker: was it unmounted or emptied?", remote.ErrRootMissing, d.o.Label, remote.ReservedDir)
	}
	return fmt.Errorf("root %s: marker: %w", d.o.Label, err)
}

// InitRoot creates the .tandem marker folder with a MARKER file explaining it, durably. Idempotent.
func (d *Dir) InitRoot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.mkdirAll(remote.ReservedDir); err != nil {
		return fmt.Errorf("init root %s: %w", d.o.Label, err)
	}
	if _, err := d.fs.Lstat(markerFile); err == nil {
		return nil
	}
	f, err := d.fs.Create(markerFile, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("init root %s: %w", d.o.Label, err)
	}
	_, err = f.Write([]byte(markerText))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.SyncDir(remote.ReservedDir)
	}
	if err != nil {
		return fmt.Errorf("init root %s: %w", d.o.Label, err)
	}
	return nil
}

// PurgeTrash removes the trash batches made before olderThan and returns how many it removed.
func (d *Dir) PurgeTrash(ctx context.Context, olderThan time.Time) (int, error) {
	names, err := d.fs.ReadDir(trashDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("purge trash of %s: %w", d.o.Label, err)
	}
	n := 0
	for _, b := range names {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		stamp, _, _ := strings.Cut(b, " ") // "20260301-101500 2" is the second batch of that second
		t, err := time.Parse(trashLayout, stamp)
		if err != nil || !t.Before(olderThan) {
			continue // not ours, or young enough
		}
		if err := d.removeAll(ctx, path.Join(trashDir, b)); err != nil {
			return n, fmt.Errorf("purge trash of %s: %w", d.o.Label, err)
		}
		if err := failpoint.Hit("localdir.purge.afterRemove"); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// removeAll removes n and everything below it without following symlinks. Only used inside .tandem/trash.
func (d *Dir) removeAll(ctx context.Context, n string) error {
	fi, err := d.fs.Lstat(n)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		kids, err := d.fs.ReadDir(n)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := d.removeAll(ctx, path.Join(n, k)); err != nil {
				return err
			}
		}
	}
	if err := d.fs.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// CleanTemp removes the temp files of one session (SetTempSession) that a crash left anywhere in the tree (not
// below ignored or invalid folders, where tandem never writes) and returns how many. Any other file, however it
// is named, stays: a user may keep a file called .tandem-notes.part. Call it when no Put of that session runs.
func (d *Dir) CleanTemp(ctx context.Context, session string) (int, error) {
	if session == "" {
		return 0, errors.New("clean temp files: no session named")
	}
	n := 0
	var errs []error
	var clean func(dir remote.Path) error
	clean = func(dir remote.Path) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		dn, _ := name(dir)
		names, err := d.fs.ReadDir(dn)
		if err != nil {
			if dir == remote.Root {
				return fmt.Errorf("clean temp files of %s: %w", d.o.Label, err)
			}
			d.lg.Debug("clean temp files: folder unreadable", zap.String("path", dir.Quoted()), zap.Error(err))
			return nil
		}
		for _, c := range names {
			if dir == remote.Root && c == remote.ReservedDir {
				continue
			}
			full := path.Join(dn, c)
			fi, err := d.fs.Lstat(full)
			if err != nil {
				continue
			}
			if swapOf(c, session) && fi.IsRegular() {
				// A replace stopped between its swap and its end (exchangeInto): this file is tandem's, the
				// version it replaced, or a change the user made at that moment. Never removed: trashed.
				tp, err := dir.Join(strings.TrimPrefix(c, "."))
				if err == nil {
					err = d.trashFrom(tp, full, fi)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("move %s to the trash: %w", remote.Escape(full), err))
					continue
				}
				d.lg.Warn("a replace did not finish: the file it swapped out is in the trash",
					zap.String("path", full), zap.String("trash name", tp.Base()))
				n++
				continue
			}
			if isTemp(c) {
				if !fi.IsRegular() || !tempOf(c, session) {
					continue
				}
				if err := d.fs.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("remove %s: %w", remote.Escape(full), err))
					continue
				}
				if err := failpoint.Hit("localdir.sweep.afterRemove"); err != nil { // before the folder is synced
					errs = append(errs, err)
					continue
				}
				// The caller forgets the session once this returns: the removal must outlive a power loss.
				if err := d.fs.SyncDir(dn); err != nil {
					errs = append(errs, fmt.Errorf("sync %s after removing a temp file: %w", remote.Escape(dn), err))
					continue
				}
				n++
				continue
			}
			p, err := dir.Join(c)
			if err != nil || !fi.IsDir() || (d.o.Skip != nil && d.o.Skip(p, true)) {
				continue
			}
			if err := clean(p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := clean(remote.Root); err != nil {
		return n, err
	}
	if n > 0 {
		d.lg.Info("removed leftover temp files", zap.Int("count", n))
	}
	// Folders where a failed Put removed its temp without a durable fsync: the walk found nothing there, but a
	// power loss could bring the file back after the caller forgot the session.
	d.tempMu.Lock()
	defer d.tempMu.Unlock()
	for dn := range d.tempDirty {
		if err := d.settleRemoval(dn); err != nil {
			errs = append(errs, fmt.Errorf("sync %s after removing a temp file: %w", remote.Escape(dn), err))
			continue
		}
		delete(d.tempDirty, dn)
	}
	return n, errors.Join(errs...)
}

// settleRemoval makes durable that a temp file removed from folder dn stays gone: dn's fsync, or, when dn is no
// folder any more (removed, or replaced by a file since), the fsync of the nearest folder above that still is
// one, which makes that removal or replacement durable with everything it held. Without the walk up, a folder
// replaced by a file kept the session's journal entry open for good (syncfaults seed 110571).
func (d *Dir) settleRemoval(dn string) error {
	for {
		err := d.fs.SyncDir(dn)
		if err == nil || (!errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR)) || dn == "." {
			return err
		}
		dn = path.Dir(dn)
	}
}
