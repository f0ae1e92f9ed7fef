//go:build !linux

package localdir

import "os"

// openBeneath: openat2 is Linux's; elsewhere os.Root walks each path component by component.
func openBeneath(*os.Root) pathOps { return nil }

func syncFSReportsErrors() bool { return false }
