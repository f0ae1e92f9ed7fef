package localdir

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

// checkPre checks pre against what is at p now (fi, or statErr from its Lstat), for a write or delete that
// replaces a file. A folder or anything that is not a regular file is never replaced.
func checkPre(op string, p remote.Path, fi FileInfo, statErr error, pre remote.Precondition) error {
	if errors.Is(statErr, fs.ErrNotExist) {
		if pre.Rev != "" {
			return conflict(op, p, "gone since last seen")
		}
		return nil
	}
	if statErr != nil {
		return statErr
	}
	switch {
	case fi.IsDir():
		return conflict(op, p, "a folder is there")
	case !fi.IsRegular():
		return conflict(op, p, kind(fi)+" is there")
	case pre.Absent:
		return conflict(op, p, "a file is already there")
	case pre.Rev != "" && rev(fi) != pre.Rev:
		return conflict(op, p, "changed since last seen")
	}
	return nil
}

// lstat is Lstat of a validated path, with the error wrapped.
func (d *Dir) lstat(op string, p remote.Path) (FileInfo, error) {
	n, _ := name(p)
	fi, err := d.fs.Lstat(n)
	if err != nil {
		return fi, wrap(op, p, err)
	}
	return fi, nil
}

// folder checks that p exists and is a folder (the parent of a write).
func (d *Dir) folder(op string, p remote.Path) error {
	fi, err := d.lstat(op, p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: %w: not a folder", op, p.Quoted(), remote.ErrConflict)
	}
	return nil
}

// Put writes body to p by the durable write protocol: a temp file in p's folder (O_EXCL, 0600), the body
// digested while written, fsync, the mode (the replaced file's, else 0644 less the umask), mtime set on the temp
// (never through the real name, which could be swapped for a symlink), the precondition re-checked, rename over
// p, fsync of the folder and every folder above it. A new file (pre.Absent) where the folder can (Unnamer,
// canUnnamed) is written the same way with no name at all instead of a temp name, and linked in as p, which
// fails if anything took p meanwhile (putUnnamed). With a batch of writes in flight, each of the two fsync steps
// is one syncfs shared with the batch instead (durable, fsBarrier). A body that yields other than size bytes
// (size < 0: unknown) is remote.ErrCorrupt, and a body read error (a remote.Verifier's included) aborts. After
// any error the temp (or unnamed) file is gone and p untouched; a failing sync after the rename (or link) is the
// one exception: p then holds the new content, not yet durably. The Entry has Hash set (Options.Hash).
func (d *Dir) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return remote.Entry{}, err
	}
	n, err := name(p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("put: %w", err)
	}
	if p == remote.Root {
		return remote.Entry{}, fmt.Errorf("put %s: %w: the root is a folder", d.o.Label, remote.ErrConflict)
	}
	dn, base := path.Split(n)
	dn = path.Clean(dn) // "." for the root
	dir, err := d.putFolder(p, dn, pre)
	if err != nil {
		return remote.Entry{}, err
	}
	defer dir.Close()
	// A body that digests itself in this side's algorithm (the engine's Verifier) is not digested a second
	// time: both digests would read the very buffers written to the file (a 256 MiB upload digested three
	// times spent two thirds of its CPU in SHA-256).
	var h hash.Hash // nil: the body's digest serves
	v, digested := body.(*remote.Verifier)
	if !digested || v.Algo() != d.o.Hash {
		if h, err = remote.NewDigest(d.o.Hash); err != nil {
			return remote.Entry{}, fmt.Errorf("put %s: %w", p.Quoted(), err)
		}
	}
	d.bar.enter()
	defer d.bar.leave()
	var e remote.Entry
	// A new file written unnamed is not checked before the transfer: its link fails if anything is at p, and a
	// lookup in a folder that other writers change waits on its lock.
	if f := d.createUnnamed(dir, pre); f != nil {
		e, err = d.putUnnamed(ctx, p, dir, f, base, body, size, mtime, pre, h)
	} else {
		// Fail before the transfer, not only after it; the check that counts is the one just before the rename.
		fi, serr := lstatIn(dir, base, p)
		if err := checkPre("put", p, fi, serr, pre); err != nil {
			return remote.Entry{}, err
		}
		if _, byPath := dir.(pathFolder); byPath {
			if err := d.folder("put", p.Dir()); err != nil {
				return remote.Entry{}, err
			}
		}
		// Never widen: a file that replaces one keeps that file's permission bits (a 0600 secret edited elsewhere
		// stays 0600); a new file gets 0644 less the process umask, as an editor would create it. The engine sets
		// a `dir:` source's own mode afterwards (Chmod) where both sides keep modes.
		mode := newFileMode()
		if serr == nil && fi.IsRegular() {
			mode = fi.Mode.Perm()
		}
		e, err = d.putTemp(ctx, p, dn, dir, base, body, size, mtime, pre, h, mode)
	}
	if err != nil {
		return remote.Entry{}, err
	}
	if h != nil {
		e.Hash = remote.Sum(d.o.Hash, h)
	} else {
		e.Hash = v.Sum()
	}
	return e, nil
}

// putTemp is Put through a temp file in folder dir (dn, its name): created, written, renamed into place (put),
// and dropped on failure. mode: the permission bits of the new file.
func (d *Dir) putTemp(ctx context.Context, p remote.Path, dn string, dir Folder, base string, body io.Reader,
	size int64, mtime time.Time, pre remote.Precondition, h hash.Hash, mode fs.FileMode) (remote.Entry, error) {
	tmp, f, err := d.createTemp(dir)
	if err != nil {
		return remote.Entry{}, d.diskFull(p, size, wrap("put", p, err))
	}
	e, err := d.put(ctx, p, dir, base, tmp, f, body, size, mtime, pre, h, mode)
	if errors.Is(err, errKeptTemp) {
		// The session stays journaled (TempLeft), so CleanTemp moves that file to the trash.
		d.lg.Error("a file that changed during a replace is left under a temp name; it goes to the trash",
			zap.String("folder", dn), zap.Error(err))
		d.markTempLeft(dn)
		return remote.Entry{}, err
	}
	if err != nil {
		d.dropTemp(dn, path.Join(dn, tmp))
		// After the removal, so that the free space it reports is what the user has.
		return remote.Entry{}, d.diskFull(p, size, err)
	}
	return e, nil
}

// lstatIn is a Put's Lstat of its target p, entry base of dir, with the error wrapped as lstat's.
func lstatIn(dir Folder, base string, p remote.Path) (FileInfo, error) {
	fi, err := dir.Lstat(base)
	if err != nil {
		return fi, wrap("put", p, err)
	}
	return fi, nil
}

// putFolder opens the folder of a Put's target p (dn, its name) for the Put's steps. Where it cannot be opened,
// the path checks say why, as without a folder handle: gone since last seen, no parent, a file in its place.
func (d *Dir) putFolder(p remote.Path, dn string, pre remote.Precondition) (Folder, error) {
	dir, err := d.openFolder(dn)
	if err == nil {
		return dir, nil
	}
	fi, serr := d.lstat("put", p)
	if cerr := checkPre("put", p, fi, serr, pre); cerr != nil {
		return nil, cerr
	}
	if ferr := d.folder("put", p.Dir()); ferr != nil {
		return nil, ferr
	}
	return nil, wrap("put", p, err)
}

// dropTemp removes the temp file of a failed Put and makes the removal durable. The engine closes the session's
// journal entry once no temp can be left, and the sweep after a crash finds temp files only through that entry:
// an unlink a power loss undoes would bring back a temp file nothing sweeps any more (lazydisk seeds 9858,
// 9976). A folder whose removal or fsync failed is remembered (TempLeft) until CleanTemp has synced it.
func (d *Dir) dropTemp(dn, tmp string) {
	// After a successful rename the temp name is free, so this only ever removes our own partial file.
	err := d.fs.Remove(tmp)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err == nil {
		err = d.fsyncs.sync(dn, d.fs.SyncDir)
	}
	if err != nil {
		d.lg.Warn("temp file may be left behind; CleanTemp removes it", zap.String("path", tmp), zap.Error(err))
		d.markTempLeft(dn)
	}
}

// markTempLeft remembers folder dn as one where a temp or swap file may be left (TempLeft, CleanTemp).
func (d *Dir) markTempLeft(dn string) {
	d.tempMu.Lock()
	defer d.tempMu.Unlock()
	if d.tempDirty == nil {
		d.tempDirty = map[string]bool{}
	}
	d.tempDirty[dn] = true
}

// TempLeft reports whether a failed Put may have left a temp file, or removed one not yet durably: the engine
// then keeps the session's journal entry, so that the next pass's CleanTemp finds what a power loss brings back.
func (d *Dir) TempLeft() bool {
	d.tempMu.Lock()
	defer d.tempMu.Unlock()
	return len(d.tempDirty) > 0
}

func (d *Dir) put(ctx context.Context, p remote.Path, dir Folder, base, tmp string, f File, body io.Reader, size int64,
	mtime time.Time, pre remote.Precondition, h hash.Hash, mode fs.FileMode) (remote.Entry, error) {
	err := d.fill(ctx, p, f, body, size, h, mode)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = wrap("put", p, cerr)
	}
	if err != nil {
		return remote.Entry{}, err
	}
	if !mtime.IsZero() {
		if err := dir.Chtimes(tmp, mtime); err != nil {
			return remote.Entry{}, wrap("put", p, err)
		}
	}
	// The temp's stat is the result: rename keeps inode, size and mtime. It moves the ctime, so p is stat'ed
	// again after the rename (restat).
	tfi, err := dir.Lstat(tmp)
	if err != nil {
		return remote.Entry{}, wrap("put", p, err)
	}
	left, err := renameInto(dir, tmp, base, p, pre, tfi)
	if left != "" {
		// The replaced file, swapped out (it goes, as a rename would have dropped it), or tandem's own file
		// after a swap back; a removal that fails is left to CleanTemp, as a failed Put's temp file is.
		n, _ := name(p)
		dn := path.Dir(n)
		d.dropTemp(dn, path.Join(dn, left))
	}
	if err != nil {
		return remote.Entry{}, err
	}
	if err := failpoint.Hit("localdir.put.afterRename"); err != nil { // before the folder is synced
		return remote.Entry{}, err
	}
	if err := d.durable("put", p, tfi.Dev, func() error { return d.syncUp("put", p.Dir(), true) }); err != nil {
		return remote.Entry{}, err
	}
	return entry(p, restat(dir.Lstat, base, tfi)), nil
}

// fill writes body (size bytes, -1: unknown; another length is remote.ErrCorrupt) to f, a Put's new file,
// digesting it into h (nil: the body digests itself), makes it durable and gives it the permission bits mode:
// every step before the file takes its name. f stays open.
func (d *Dir) fill(ctx context.Context, p remote.Path, f File, body io.Reader, size int64, h hash.Hash, mode fs.FileMode) error {
	src := body
	if size >= 0 {
		src = io.LimitReader(body, size+1) // one byte more tells a longer body without reading it all
	}
	var dst io.Writer = f
	if h != nil {
		dst = io.MultiWriter(f, h)
	}
	got, err := copyBuffered(dst, ctxReader{ctx, src})
	if err == nil && size >= 0 && got != size {
		err = fmt.Errorf("%w: body has %s bytes, want %d", remote.ErrCorrupt, more(got, size), size)
	}
	if err != nil {
		return wrap("put", p, err)
	}
	wfi, err := f.Stat() // for its filesystem
	if err != nil {
		return wrap("put", p, err)
	}
	// Every byte is written: from here the Put waits on syncs, sharing them with the writes its worker starts
	// meanwhile (remote.Yield).
	remote.Yield(ctx)
	if err := d.durable("put", p, wfi.Dev, func() error {
		if err := f.Sync(); err != nil {
			return wrap("put", p, err)
		}
		return nil
	}); err != nil {
		return err
	}
	// An unnamed file is created with its mode (createUnnamed): a chmod only where the folder's default ACL or
	// another umask gave it another. Through the open file: resolving a name again cost a walk of its path.
	if wfi.Mode.Perm() == mode.Perm() {
		return nil
	}
	if err := f.Chmod(mode); err != nil {
		return wrap("put", p, err)
	}
	return nil
}

// createUnnamed starts a Put the unnamed way (putUnnamed) where it serves: a new file (a link replaces nothing),
// in a folder that can (Unnamer), on a root where links of unnamed files work (canUnnamed). nil: the Put takes
// a temp file, as it does where creating one fails (a folder on another filesystem without O_TMPFILE, and any
// error the temp file's way then reports in its own words).
func (d *Dir) createUnnamed(dir Folder, pre remote.Precondition) File {
	u, ok := dir.(Unnamer)
	if !ok || !pre.Absent || !d.canUnnamed() {
		return nil
	}
	// Created with the mode it will have (fill then skips the chmod): nobody opens a file without a name, and
	// it gets one only complete and durable. A temp file, visible by its name while it fills, is 0600 until then.
	f, err := u.CreateUnnamed(newFileMode())
	if err != nil {
		d.lg.Debug("no unnamed file; a temp file instead", zap.Error(err))
		return nil
	}
	return f
}

// putUnnamed is Put of a new file p, entry base of dir, through f, an unnamed file in dir (createUnnamed):
// written and made durable (fill), then linked in as base, which fails if anything took base since Put's check
// (as the temp file's rename without replace does). Until the link f has no name: a failed Put closes it and
// nothing is left, nor does a power loss leave anything to sweep. After the link, as after the temp file's
// rename, the folders up to the root are made durable.
func (d *Dir) putUnnamed(ctx context.Context, p remote.Path, dir Folder, f File, base string, body io.Reader, size int64,
	mtime time.Time, pre remote.Precondition, h hash.Hash) (remote.Entry, error) {
	err := d.fill(ctx, p, f, body, size, h, newFileMode())
	if err == nil {
		err = failpoint.Hit("localdir.put.beforeLink") // the file is complete and synced, and has no name yet
	}
	var fi FileInfo
	if err == nil {
		fi, err = dir.(Unnamer).LinkNew(f, base, mtime)
		if errors.Is(err, fs.ErrExist) {
			cur, serr := lstatIn(dir, base, p)
			if err = checkPre("put", p, cur, serr, pre); err == nil {
				err = conflict("put", p, "a file is already there")
			}
		} else if err != nil {
			err = wrap("put", p, err)
		}
	}
	// Unlinked, the file is gone once closed, and gives its space back before diskFull reads the free space.
	// Linked, a close error says nothing of the bytes, made durable before the link.
	_ = f.Close()
	if err != nil {
		return remote.Entry{}, d.diskFull(p, size, err)
	}
	if err := failpoint.Hit("localdir.put.afterLink"); err != nil { // before the folder is synced
		return remote.Entry{}, err
	}
	if err := d.durable("put", p, fi.Dev, func() error { return d.syncUp("put", p.Dir(), true) }); err != nil {
		return remote.Entry{}, err
	}
	// The link moved the ctime: the fingerprint is the stat taken after it.
	return entry(p, restat(dir.Lstat, base, fi)), nil
}

// renameInto renames a Put's complete temp file tmp (stat ours) to base, its target p, in folder dir, if p
// still meets pre. "Nothing there" is checked by the rename itself where the folder can (NoReplacer): a file
// created at p after a check and before the rename would be replaced, and lost, by a plain rename. A file there
// is swapped out and checked after the swap (exchangeInto). left names a file in dir the caller removes (the
// file swapped out, or tandem's own after a swap back); "" for none (a failed Put still drops tmp).
func renameInto(dir Folder, tmp, base string, p remote.Path, pre remote.Precondition, ours FileInfo) (left string, err error) {
	if err := failpoint.Hit("localdir.put.beforeRename"); err != nil { // the temp is complete and synced
		return "", err
	}
	if nr, ok := dir.(NoReplacer); ok && pre.Absent {
		err := nr.RenameNoReplace(tmp, base)
		switch {
		case err == nil:
			return "", nil
		case errors.Is(err, fs.ErrExist):
			fi, serr := lstatIn(dir, base, p)
			if cerr := checkPre("put", p, fi, serr, pre); cerr != nil {
				return "", cerr
			}
			return "", conflict("put", p, "a file is already there")
		case !errors.Is(err, errors.ErrUnsupported):
			return "", wrap("put", p, err)
		}
	}
	fi, serr := lstatIn(dir, base, p)
	if err := checkPre("put", p, fi, serr, pre); err != nil {
		return "", err
	}
	if ex, ok := dir.(Exchanger); ok && serr == nil && fi.IsRegular() {
		return exchangeInto(ex, dir, tmp, base, p, pre, ours)
	}
	if err := dir.Rename(tmp, base); err != nil {
		return "", wrap("put", p, err)
	}
	return "", nil
}

// exchangeInto puts the temp file tmp (stat ours) at base in place of the file there in one atomic swap, then
// checks the file that came out against pre. A change made after the last check (an editor's save renamed
// over base, a write in place) would have been destroyed by a plain rename; here that file is swapped back and
// the Put is a conflict, so the next pass sees the change. The swap runs under a swap name (swapSuffix): a
// crash between the swap and its end leaves a file that may be the user's change, which CleanTemp trashes
// rather than removes. Where the folder cannot swap, the file is renamed over base after the last check.
func exchangeInto(ex Exchanger, dir Folder, tmp, base string, p remote.Path, pre remote.Precondition, ours FileInfo) (left string, err error) {
	swap := strings.TrimSuffix(tmp, remote.TempSuffix) + swapSuffix
	if err := dir.Rename(tmp, swap); err != nil {
		return "", wrap("put", p, err)
	}
	if err := ex.RenameExchange(swap, base); err != nil {
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			fi, serr := lstatIn(dir, base, p)
			if err := checkPre("put", p, fi, serr, pre); err != nil {
				return swap, err
			}
			if err := dir.Rename(swap, base); err != nil {
				return swap, wrap("put", p, err)
			}
			return "", nil
		case errors.Is(err, fs.ErrNotExist): // base went away after the check
			fi, serr := lstatIn(dir, base, p)
			if cerr := checkPre("put", p, fi, serr, pre); cerr != nil {
				return swap, cerr
			}
			return swap, conflict("put", p, "the file was removed at the last moment")
		}
		return swap, wrap("put", p, err)
	}
	if old, err := dir.Lstat(swap); err == nil && swappedOut(old, pre) {
		return swap, nil
	}
	// Changed at the last moment: put it back, then make sure the swap name holds our file again (a second
	// change between the two swaps would now sit there) before the caller drops it.
	if err := ex.RenameExchange(swap, base); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", keepAside(dir, swap, base, p, fmt.Errorf("put it back: %w", err))
	} else if err != nil { // base removed in between: the changed file goes back to its free name
		rename := dir.Rename
		if nr, ok := dir.(NoReplacer); ok {
			rename = nr.RenameNoReplace // and replaces nothing created there since
		}
		if err := rename(swap, base); err != nil {
			return "", keepAside(dir, swap, base, p, fmt.Errorf("put it back: %w", err))
		}
		return "", conflict("put", p, "the file changed at the last moment")
	}
	if now, err := dir.Lstat(swap); err != nil || now.Ino != ours.Ino || now.Dev != ours.Dev {
		return "", keepAside(dir, swap, base, p, errors.New("the swap name holds another file after the swap back"))
	}
	return swap, conflict("put", p, "the file changed at the last moment")
}

// errKeptTemp: a Put's swap name holds a user's file it could neither put back nor rename (keepAside): it must
// not be dropped; CleanTemp moves it to the trash.
var errKeptTemp = errors.New("a changed file is left under the temp name")

// swappedOut reports whether old, the file an exchange took out, is the one pre names. The exchange itself moved
// its ctime, so the rest of the fingerprint is compared: an editor's save (another inode) or a write in place
// (its mtime, its size) after the last check shows; only a rewrite in place that keeps the size and sets the
// mtime back, within the microseconds between the check and the swap, does not.
func swappedOut(old FileInfo, pre remote.Precondition) bool {
	if !old.IsRegular() {
		return false
	}
	if pre.Rev == "" {
		return true
	}
	want, ok := remote.ParseFingerprint(pre.Rev)
	got := fingerprint(old)
	return ok && got.Size == want.Size && got.MTime == want.MTime && got.Inode == want.Inode
}

// keepAside gives a user's file found at a Put's swap name tmp (a change that raced the Put's swaps) a visible
// name beside base and returns the Put's error; where that fails, errKeptTemp. The name is taken by the rename
// itself where the folder can (NoReplacer): a file the user made under that name after a check would be
// replaced, and lost, by a plain rename.
func keepAside(dir Folder, tmp, base string, p remote.Path, why error) error {
	nr, noReplace := dir.(NoReplacer)
	for i := 1; i <= 100; i++ {
		name := fmt.Sprintf("%s (kept by tandem %d)", base, i)
		var err error
		if noReplace {
			err = nr.RenameNoReplace(tmp, name)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			noReplace = !errors.Is(err, errors.ErrUnsupported)
		}
		if !noReplace {
			if _, lerr := dir.Lstat(name); !errors.Is(lerr, fs.ErrNotExist) {
				continue
			}
			err = dir.Rename(tmp, name)
		}
		if err == nil {
			return fmt.Errorf("put %s: %w: the file changed during the replace; a version of it is kept as %q (%v)",
				p.Quoted(), remote.ErrConflict, name, why)
		}
		break
	}
	return fmt.Errorf("put %s: %w: the file changed during the replace and a version of it sits under the temp name %q: %v",
		p.Quoted(), errKeptTemp, tmp, why)
}

// restat is the stat of n after tandem renamed the file it stat'ed as before to n: a rename moves the ctime, so
// the fingerprint recorded must be the one taken after it. When n no longer holds that file (another inode, size
// or mtime: someone wrote meanwhile) the stat from before is kept; its ctime matches nothing, so the next scan
// hashes the file again instead of taking another writer's bytes for ours.
func restat(lstat func(string) (FileInfo, error), n string, before FileInfo) FileInfo {
	after, err := lstat(n)
	if err != nil || !after.IsRegular() || after.Ino != before.Ino || after.Size != before.Size ||
		!after.ModTime.Equal(before.ModTime) {
		return before
	}
	return after
}

// more prints a wrong byte count; with the LimitReader, size+1 means "more than size".
func more(got, size int64) string {
	if got > size {
		return "more than " + strconv.FormatInt(size, 10)
	}
	return strconv.FormatInt(got, 10)
}

// createTemp creates a fresh .tandem-<session>-<16 hex>.part in dir and returns its name there.
func (d *Dir) createTemp(dir Folder) (string, File, error) {
	var err error
	prefix := remote.TempPrefix
	if s := d.tempSession(); s != "" {
		prefix += s + "-"
	}
	for range 8 {
		tmp := fmt.Sprintf("%s%016x%s", prefix, d.o.Rand(), remote.TempSuffix)
		var f File
		f, err = dir.Create(tmp, 0o600)
		if err == nil {
			return tmp, f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", nil, err
		}
	}
	return "", nil, fmt.Errorf("no free temp name: %w", err)
}

// NewSyncEpoch tells Sync and the writes that everything the caller relies on was observed before now, so a
// folder fsync made after now (and the folder unchanged since) covers it: see groupSync.covered.
func (d *Dir) NewSyncEpoch() {
	d.fsyncs.newEpoch()
	d.barMark.Store(d.bar.mark())
}

func (d *Dir) syncDir(op string, p remote.Path) error {
	n, _ := name(p)
	if err := d.fsyncs.sync(n, d.fs.SyncDir); err != nil {
		return wrap(op+": sync folder", p, err)
	}
	return nil
}

// durable makes what the caller wrote on filesystem dev durable: one syncfs shared with the other writes in
// flight where that is the root's filesystem and a batch is writing (fsBarrier), else own, the caller's fsyncs.
// The shared sync's error is wrapped with op and p; own's is returned as it is.
func (d *Dir) durable(op string, p remote.Path, dev uint64, own func() error) error {
	if dev != d.dev {
		return own()
	}
	shared, err := d.bar.wait(own)
	if shared && err != nil {
		d.lg.Warn("a filesystem-wide sync failed: from now on every write fsyncs its own file and folders",
			zap.String("path", string(p)), zap.Error(err))
		return wrap(op, p, err)
	}
	return err
}

// syncUp makes folder p and every folder above it durable: a file's name is only as durable as the names of
// the folders it sits in (a folder the user created and nobody synced yet would vanish in a power loss, and the
// file the engine recorded as written into it with it). fresh: p itself just changed (a rename into it) and
// needs its own fsync; every other folder is skipped when an fsync since the caller's observation covers it.
func (d *Dir) syncUp(op string, p remote.Path, fresh bool) error {
	for {
		if n, _ := name(p); fresh || !d.fsyncs.covered(n) {
			if err := d.syncDir(op, p); err != nil {
				return err
			}
		}
		fresh = false
		if p == remote.Root {
			return nil
		}
		p = p.Dir()
	}
}

// Mkdir creates folder p; its parent must exist. An existing folder is success, a file there ErrConflict.
func (d *Dir) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return remote.Entry{}, err
	}
	n, err := name(p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("mkdir: %w", err)
	}
	exists := func() (remote.Entry, bool, error) {
		fi, err := d.lstat("mkdir", p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return remote.Entry{}, false, nil
		case err != nil:
			return remote.Entry{}, true, err
		case !fi.IsDir():
			return remote.Entry{}, true, conflict("mkdir", p, "a file is there")
		}
		return entry(p, fi), true, nil
	}
	if e, ok, err := exists(); ok {
		return e, err
	}
	d.bar.enter()
	defer d.bar.leave()
	if err := d.fs.Mkdir(n, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if e, ok, err := exists(); ok {
				return e, err
			}
		}
		return remote.Entry{}, wrap("mkdir", p, err)
	}
	fi, err := d.lstat("mkdir", p)
	if err != nil {
		return remote.Entry{}, err
	}
	// The new name is durable once its parent is: that folder's fsync, or a syncfs shared with the other
	// folders of a batch being created (durable).
	if err := d.durable("mkdir", p, fi.Dev, func() error { return d.syncDir("mkdir", p.Dir()) }); err != nil {
		return remote.Entry{}, err
	}
	return entry(p, fi), nil
}

// checkSource checks pre against file or folder p (the source of a move or a delete): a folder has no Rev, so
// only a zero Rev matches it.
func checkSource(op string, p remote.Path, fi FileInfo, pre remote.Precondition) error {
	switch {
	case pre.Absent:
		return conflict(op, p, "it exists")
	case fi.IsDir() && pre.Rev != "":
		return conflict(op, p, "a folder is there")
	case !fi.IsDir() && pre.Rev != "" && rev(fi) != pre.Rev:
		return conflict(op, p, "changed since last seen")
	}
	return nil
}

// source stats the source of a move or delete; a symlink or special file there is a conflict (never ours).
func (d *Dir) source(op string, p remote.Path, pre remote.Precondition) (FileInfo, error) {
	fi, err := d.stat(op, p)
	if errors.Is(err, remote.ErrUnavailable) {
		return fi, conflict(op, p, kind(fi)+" is there")
	}
	if err != nil {
		return fi, err
	}
	return fi, checkSource(op, p, fi, pre)
}

// Move renames from to to, keeping the ID. pre is checked on from; to must be absent (ErrConflict) and its
// parent must exist. Where the FS renames without replacing (NoReplacer: Linux, the fake), the rename itself
// refuses a name taken meanwhile; elsewhere a file created at to between the check and the rename could still be
// replaced (os.Root offers no RENAME_NOREPLACE), a window as small as the engine's own re-check.
func (d *Dir) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return remote.Entry{}, err
	}
	fn, err := name(from)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move: %w", err)
	}
	tn, err := name(to)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("move: %w", err)
	}
	if from == remote.Root || to == remote.Root || to.Within(from) {
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w: into itself or the root", from.Quoted(), to.Quoted(), remote.ErrInvalidName)
	}
	fi, err := d.source("move", from, pre)
	if err != nil {
		return remote.Entry{}, err
	}
	if _, err := d.fs.Lstat(tn); err == nil {
		return remote.Entry{}, conflict("move to", to, "the name is taken")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return remote.Entry{}, wrap("move to", to, err)
	}
	if err := d.folder("move to", to.Dir()); err != nil {
		return remote.Entry{}, err
	}
	if err := d.renameFree(fn, tn); errors.Is(err, fs.ErrExist) {
		return remote.Entry{}, conflict("move to", to, "the name was taken meanwhile")
	} else if err != nil {
		return remote.Entry{}, wrap("move to "+to.Quoted()+" from", from, err)
	}
	if err := failpoint.Hit("localdir.move.afterRename"); err != nil {
		return remote.Entry{}, err
	}
	// The target folder up to the root, as Put does: a folder the user made and nobody synced would take the
	// moved file with it in a power loss, while the source's removal (synced below) would stay.
	if err := d.syncUp("move", to.Dir(), true); err != nil {
		return remote.Entry{}, err
	}
	if from.Dir() != to.Dir() {
		if err := d.syncDir("move", from.Dir()); err != nil {
			return remote.Entry{}, err
		}
	}
	if !fi.IsDir() {
		fi = restat(d.fs.Lstat, tn, fi)
	}
	return entry(to, fi), nil
}

// renameFree renames fn to tn, which must be free: without replacing where the FS can (an error matching
// fs.ErrExist when tn is taken), else a plain rename (the caller checked just before).
func (d *Dir) renameFree(fn, tn string) error {
	if nr, ok := d.fs.(NoReplacer); ok {
		if err := nr.RenameNoReplace(fn, tn); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	return d.fs.Rename(fn, tn)
}

// Delete moves file p to .tandem/trash/<batch>/<p> (batch: the clock's UTC time, YYYYMMDD-HHMMSS), or removes
// folder p when it is empty (remote.ErrNotEmpty otherwise: user data is never removed recursively). A root
// without its .tandem folder is remote.ErrRootMissing: the trash would otherwise recreate the marker.
func (d *Dir) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := name(p)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if p == remote.Root {
		return fmt.Errorf("delete %s: %w: the root itself", d.o.Label, remote.ErrInvalidName)
	}
	fi, err := d.source("delete", p, pre)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return d.trash(p, fi)
	}
	names, err := d.fs.ReadDir(n)
	if err != nil {
		return wrap("delete", p, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("delete %s: %w (%d entries)", p.Quoted(), remote.ErrNotEmpty, len(names))
	}
	if err := d.fs.Remove(n); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("delete %s: %w: %w", p.Quoted(), remote.ErrNotEmpty, err)
		}
		return wrap("delete", p, err)
	}
	return d.syncDir("delete", p.Dir())
}

// errInTheWay: a trash folder path is blocked by a file of an earlier batch in the same second.
var errInTheWay = errors.New("a file is in the way")

func (d *Dir) trash(p remote.Path, fi FileInfo) error {
	n, _ := name(p)
	return d.trashFrom(p, n, fi)
}

// trashFrom is trash for the file at n (a name under the root), trashed as p: CleanTemp's swap files, whose
// names are reserved, go to the trash under a visible one.
func (d *Dir) trashFrom(p remote.Path, n string, fi FileInfo) error {
	if mfi, err := d.fs.Lstat(remote.ReservedDir); err != nil || !mfi.IsDir() {
		return fmt.Errorf("delete %s: %w: no %s folder to hold the trash (run InitRoot)", p.Quoted(), remote.ErrRootMissing, remote.ReservedDir)
	}
	d.trashMu.Lock() // picking a free trash name and renaming into it is one step
	defer d.trashMu.Unlock()
	stamp := d.o.Clock.Now().UTC().Format(trashLayout)
	var dir string
	for i := 1; ; i++ {
		batch := stamp
		if i > 1 {
			batch += " " + strconv.Itoa(i)
		}
		dir = path.Join(trashDir, batch, string(p.Dir()))
		err := d.mkdirAll(dir)
		if err == nil {
			break
		}
		if !errors.Is(err, errInTheWay) || i >= 100 {
			return wrap("delete: trash folder for", p, err)
		}
	}
	dest, err := d.freeName(dir, p.Base())
	if err != nil {
		return wrap("delete: trash name for", p, err)
	}
	// Last look just before the act: what goes to the trash is exactly what the caller saw.
	now, err := d.fs.Lstat(n)
	if err != nil {
		return wrap("delete", p, err)
	}
	if !now.IsRegular() || now.Ino != fi.Ino || rev(now) != rev(fi) {
		return conflict("delete", p, "changed since last seen")
	}
	if err := failpoint.Hit("localdir.trash.beforeRename"); err != nil { // the trash folder exists
		return err
	}
	if err := d.fs.Rename(n, dest); err != nil {
		return wrap("delete: move to trash", p, err)
	}
	if err := failpoint.Hit("localdir.trash.afterRename"); err != nil {
		return err
	}
	if err := d.fs.SyncDir(dir); err != nil {
		return wrap("delete: sync trash folder for", p, err)
	}
	return d.syncDir("delete", p.Dir())
}

// mkdirAll creates folder dn (tandem's own, under .tandem) component by component, each made durable in its
// parent before it is used.
func (d *Dir) mkdirAll(dn string) error {
	cur := "."
	for _, c := range splitName(dn) {
		next := path.Join(cur, c)
		fi, err := d.fs.Lstat(next)
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			return fmt.Errorf("%s: %w", next, errInTheWay)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		default:
			if err := d.fs.Mkdir(next, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := d.fs.SyncDir(cur); err != nil {
				return err
			}
		}
		cur = next
	}
	return nil
}

func splitName(n string) []string {
	var out []string
	for n != "." && n != "" {
		out = append([]string{path.Base(n)}, out...)
		n = path.Dir(n)
	}
	return out
}

// freeName returns dir/base, or "name 2.ext", "name 3.ext", ... when that is taken.
func (d *Dir) freeName(dir, base string) (string, error) {
	ext := path.Ext(base)
	stem := base[:len(base)-len(ext)]
	if stem == "" { // ".bashrc" has no extension
		stem, ext = base, ""
	}
	for i := 1; i < 10000; i++ {
		cand := base
		if i > 1 {
			cand = stem + " " + strconv.Itoa(i) + ext
		}
		full := path.Join(dir, cand)
		if _, err := d.fs.Lstat(full); errors.Is(err, fs.ErrNotExist) {
			return full, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: no free name", path.Join(dir, base))
}

// TrashJunk is for a folder delete that its leftovers block: every regular file directly in folder p whose
// name junk accepts (OS and editor droppings tandem ignores by default) goes to the trash, like any deleted
// file; what else is in p is returned (Path and Dir set; a name that is no valid Path comes escaped), so the
// caller can tell a folder kept for the user's ignored files from one that gained new content.
func (d *Dir) TrashJunk(ctx context.Context, p remote.Path, junk func(name string) bool) ([]remote.Entry, error) {
	return d.children(ctx, "clear", p, junk)
}

// Entries lists what is directly in folder p (Path, Dir, and Skip for what is no folder or regular file; a name
// that is no valid Path comes escaped),
// whatever Options.Skip says: unlike Walk it shows the user's ignored files. It changes nothing; the engine
// reads with it whether a folder it kept for ignored files still holds any.
func (d *Dir) Entries(ctx context.Context, p remote.Path) ([]remote.Entry, error) {
	return d.children(ctx, "list", p, nil)
}

// children lists folder p for TrashJunk and Entries, trashing the regular files junk accepts (none if nil).
func (d *Dir) children(ctx context.Context, op string, p remote.Path, junk func(name string) bool) ([]remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := name(p)
	if err != nil || p == remote.Root {
		return nil, fmt.Errorf("%s %s: %w", op, p.Quoted(), remote.ErrInvalidName)
	}
	names, err := d.fs.ReadDir(n)
	if err != nil {
		return nil, wrap(op, p, err)
	}
	var left []remote.Entry
	for _, c := range names {
		cp, jerr := p.Join(c)
		if jerr != nil {
			left = append(left, remote.Entry{Path: remote.Path(remote.Escape(joinRaw(p, c))), Skip: jerr.Error()})
			continue
		}
		fi, err := d.fs.Lstat(string(cp))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, wrap(op, cp, err)
		}
		if junk != nil && fi.IsRegular() && junk(c) {
			if err := d.trash(cp, fi); err != nil {
				return nil, err
			}
			continue
		}
		left = append(left, remote.Entry{Path: cp, Dir: fi.IsDir(), Skip: kind(fi)})
	}
	return left, nil
}

// Chmod sets the permission bits of file or folder p, if a file still holds pre's revision (a folder has none).
// Only the 0o777 bits are set: setuid, setgid and sticky bits are never carried.
func (d *Dir) Chmod(ctx context.Context, p remote.Path, mode fs.FileMode, pre remote.Precondition) (remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return remote.Entry{}, err
	}
	n, err := name(p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("chmod: %w", err)
	}
	fi, err := d.stat("chmod", p)
	if err != nil {
		return remote.Entry{}, err
	}
	if !fi.IsDir() {
		if err := checkPre("chmod", p, fi, nil, pre); err != nil {
			return remote.Entry{}, err
		}
	}
	if err := d.fs.Chmod(n, mode.Perm()); err != nil {
		return remote.Entry{}, wrap("chmod", p, err)
	}
	after, err := d.stat("chmod", p)
	if err != nil {
		return remote.Entry{}, err
	}
	if after.Ino != fi.Ino {
		return remote.Entry{}, conflict("chmod", p, "replaced meanwhile")
	}
	return entry(p, after), nil
}
