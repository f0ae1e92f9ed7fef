//go:build !failpoints

package failpoint

// Hit is a no-op in the default build.
func Hit(string) error { return nil }

// Int returns def in the default build.
func Int(_ string, def int64) int64 { return def }
