package localdir

import (
	"errors"
	"io/fs"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

var _ remote.ExactChanger = (*Dir)(nil)

// probeFile is where ExactChange tries the filesystem's timestamps: tandem's own folder, never synced.
const probeFile = remote.ReservedDir + "/ctime-probe"

// ExactChange reports whether every change to a file made after its stat was read moves its ctime on this
// root's filesystem, as Linux 6.13's multigrain timestamps guarantee: a coarse clock tick (4 ms) no longer hides a
// same-size rewrite that puts the mtime back, so the engine need not hash a file again because its ctime is
// recent (the racy-git rule, which made the first pass after a first sync read every file the sync wrote).
//
// It is observed, not assumed from a kernel version: in tandem's folder, a file is stat'ed, written and stat'ed
// again, and every such change must move the ctime; and two files created back to back, unstat'ed, must share a
// ctime at least once, which shows that the clock is coarse there and the first test meant something (a
// filesystem whose every stamp differs, or a run slow enough to cross a tick between every call, proves
// nothing). The answer is kept once a probe ran; until the root has its .tandem folder it is false.
func (d *Dir) ExactChange() bool {
	d.exactMu.Lock()
	defer d.exactMu.Unlock()
	if d.exactKnown {
		return d.exact
	}
	if fi, err := d.fs.Lstat(remote.ReservedDir); err != nil || !fi.IsDir() {
		return false
	}
	exact, err := d.probeExact()
	d.exactKnown, d.exact = true, exact && err == nil
	d.lg.Debug("ctime probe", zap.Bool("exact", d.exact), zap.Error(err))
	return d.exact
}

func (d *Dir) probeExact() (bool, error) {
	const tries = 32
	a, b := probeFile+"-a", probeFile+"-b"
	clean := func() {
		for _, n := range []string{a, b} {
			if err := d.fs.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
				d.lg.Warn("ctime probe left behind", zap.String("path", n), zap.Error(err))
			}
		}
	}
	clean()
	defer clean()
	// Two files created back to back without a stat between: a coarse clock gives them the same ctime.
	coarse := false
	for range tries {
		ca, err := d.createdAt(a)
		if err != nil {
			return false, err
		}
		cb, err := d.createdAt(b)
		if err != nil {
			return false, err
		}
		clean()
		if coarse = ca == cb; coarse {
			break
		}
	}
	if !coarse {
		return false, nil
	}
	f, err := d.fs.Create(a, 0o600)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for range tries {
		before, err := f.Stat()
		if err != nil {
			return false, err
		}
		if _, err := f.Write([]byte{0}); err != nil {
			return false, err
		}
		after, err := f.Stat()
		if err != nil {
			return false, err
		}
		if after.CTime == before.CTime {
			return false, nil
		}
	}
	return true, nil
}

// createdAt creates file n (exclusively) and returns its ctime.
func (d *Dir) createdAt(n string) (int64, error) {
	f, err := d.fs.Create(n, 0o600)
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return fi.CTime, err
}
