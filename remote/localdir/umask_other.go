//go:build !linux

package localdir

import "io/fs"

// newFileMode is the mode of a file that is new on this side: 0644 less the usual umask (022). Other systems
// offer no way to read the umask without changing it.
func newFileMode() fs.FileMode { return 0o644 }
