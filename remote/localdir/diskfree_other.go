//go:build !unix

package localdir

// freeBytes: unknown here; the disk-full message then leaves the free space out.
func freeBytes(string) (int64, bool) { return 0, false }
