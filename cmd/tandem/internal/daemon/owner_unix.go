//go:build unix

package daemon

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses a socket directory that another user owns (they could swap the socket).
func checkOwner(fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("owned by uid %d, not by us (uid %d): refusing to serve there", st.Uid, os.Getuid())
	}
	return nil
}
