//go:build failpoints && linux

package failpoint

import (
	"os"
	"syscall"
)

// stopSelf stops the process from this thread (see the stop action in Hit).
func stopSelf() { _ = syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGSTOP) }
