//go:build !linux && !darwin

package localdir

import "io/fs"

// sysStat has no inode on these platforms: IDs are left empty (no move detection) rather than made up.
func sysStat(fs.FileInfo) (dev, ino uint64, ctime int64) { return 0, 0, 0 }
