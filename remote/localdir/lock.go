package localdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// ErrLocked: another process holds the root's lock (LockRoot); the error is a *LockedError.
var ErrLocked = errors.New("locked by another process")

// LockedError names the process that holds a root's lock.
type LockedError struct {
	Root string
	PID  string // "unknown" when the lock file does not say
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is %v (pid %s)", e.Root, ErrLocked, e.PID)
}
func (e *LockedError) Unwrap() error { return ErrLocked }

// lockFile is the root's lock, beside the marker; it holds the holder's pid.
const lockFile = remote.ReservedDir + "/lock"

// LockRoot takes the lock of the sync root at root (.tandem/lock), so that two tandem processes whose state
// databases differ (another --state-dir) never run passes on the same folder at once. It waits up to timeout
// for a holder to let go, then fails with ErrLocked naming the holder's pid. A root without .tandem (never
// synced, or unmounted) is not locked: creating the folder would pass for the root marker; the pass's own root
// check decides about such a root. release unlocks (the kernel also drops the lock when the process dies).
func LockRoot(root string, timeout time.Duration) (release func() error, err error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", root, err)
	}
	defer r.Close()
	if fi, err := r.Lstat(remote.ReservedDir); err != nil || !fi.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return func() error { return nil }, nil
		}
		return nil, fmt.Errorf("lock %s: %w", root, err)
	}
	f, err := r.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", root, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", root, err)
		}
		if ok {
			break
		}
		if !time.Now().Before(deadline) {
			pid := "unknown"
			if b, err := r.ReadFile(lockFile); err == nil {
				if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					pid = strconv.Itoa(n)
				}
			}
			f.Close()
			return nil, &LockedError{Root: root, PID: pid}
		}
		// Polling, as bbolt does for the state database's lock: flock offers no wait with a deadline.
		time.Sleep(50 * time.Millisecond)
	}
	// Best effort: the pid only names the holder in a second process's error.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() error {
		unlock(f)
		return f.Close()
	}, nil
}
