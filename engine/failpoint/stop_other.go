//go:build failpoints && !linux && !windows

package failpoint

import (
	"os"
	"syscall"
)

// stopSelf stops the process (see the stop action in Hit); without a thread-directed kill other threads may run
// on briefly.
func stopSelf() { _ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) }
