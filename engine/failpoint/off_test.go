//go:build !failpoints

package failpoint

import (
	"testing"
)

// TestHitIsNoOp: without the build tag no plan is read, whatever the environment says.
func TestHitIsNoOp(t *testing.T) {
	t.Setenv("TANDEM_FAILPOINTS", "x=error;y=kill;z=panic")
	for _, name := range []string{"x", "y", "z", "commit.before"} {
		for range 3 {
			if err := Hit(name); err != nil {
				t.Fatalf("Hit(%q) = %v in the default build", name, err)
			}
		}
	}
}
