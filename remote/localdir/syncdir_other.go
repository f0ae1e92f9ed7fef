//go:build !unix

package localdir

import "os"

// syncDir is a no-op: Windows cannot fsync a directory handle, and NTFS journals its metadata.
func syncDir(*os.File) error { return nil }
