package localdir

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/tandemsync/tandem/remote"
)

// diskFull turns a write that ran out of space (ENOSPC, or EDQUOT for a quota) into an error that says what the
// user must free: how much the file needs and on which folder's file system, with the space free there when the
// file system can say. Other errors pass unchanged.
func (d *Dir) diskFull(p remote.Path, size int64, err error) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return err
	}
	where := d.o.Label + "/" + string(p.Dir())
	if p.Dir() == remote.Root {
		where = d.o.Label
	}
	free := ""
	if d.rootPath != "" {
		where = filepath.Join(d.rootPath, filepath.FromSlash(string(p.Dir())))
		if n, ok := freeBytes(d.rootPath); ok {
			free = ", where " + sizeText(n) + " is free"
		}
	}
	need := "its size is unknown"
	if size >= 0 {
		need = "it needs " + sizeText(size)
	}
	return fmt.Errorf("%w: cannot write %s: %s in %s%s (free space there, or make room and the next pass retries): %w",
		remote.ErrDiskFull, p.Quoted(), need, where, free, err)
}

// sizeText is n in binary units with the exact byte count: "3.0 MiB (3145728 bytes)".
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", v, "KMGTP"[i], n)
}
