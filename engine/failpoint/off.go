//go:build !failpoints

package failpoint

// Hit is a no-op in the default build.
func Hit(string) error { return nil }
