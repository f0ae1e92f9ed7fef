//go:build unix

package localdir

import "os"

func syncDir(f *os.File) error { return f.Sync() }
