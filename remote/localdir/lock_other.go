//go:build !unix

package localdir

import "os"

// Without flock the root is not locked; the state database's own lock still stops a second process that uses
// the same database.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) {}
