package localdir_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote/localdir"
)

// TestExactChangeProbe: the probe answers from what the filesystem does, not from where it runs. fakefs keeps a
// coarse clock (a change at the same instant keeps the ctime): not exact. With multigrain timestamps (a change
// after a stat always moves the ctime): exact. Before the root has its .tandem folder the answer is false and
// not kept; the probe's files are gone afterwards.
func TestExactChangeProbe(t *testing.T) {
	for _, multigrain := range []bool{false, true} {
		e := newEnv(t, "fake", localdir.Options{})
		e.fake.SetMultigrain(multigrain)
		// newEnv made the root a sync root; without its folder there is nowhere to probe.
		if err := e.fake.Rename(".tandem", "elsewhere"); err != nil {
			t.Fatal(err)
		}
		if e.d.ExactChange() {
			t.Fatalf("multigrain %v: exact before .tandem exists", multigrain)
		}
		if err := e.fake.Rename("elsewhere", ".tandem"); err != nil {
			t.Fatal(err)
		}
		if got := e.d.ExactChange(); got != multigrain {
			t.Errorf("multigrain %v: ExactChange = %v", multigrain, got)
		}
		// Kept: the filesystem's answer does not change while the Dir lives.
		e.fake.SetMultigrain(!multigrain)
		if got := e.d.ExactChange(); got != multigrain {
			t.Errorf("multigrain %v: ExactChange not kept: %v", multigrain, got)
		}
		if left := slices.DeleteFunc(e.names(), func(n string) bool { return !strings.Contains(n, "probe") }); len(left) > 0 {
			t.Errorf("multigrain %v: probe files left: %v", multigrain, left)
		}
	}
}

// TestExactChangeOnThisMachine logs what the probe finds on the real filesystem of the test's temp folder (Linux
// 6.13+ with ext4, xfs, btrfs or tmpfs: exact); it asserts only that it runs and cleans up.
func TestExactChangeOnThisMachine(t *testing.T) {
	e := newEnv(t, "os", localdir.Options{})
	t.Logf("ExactChange on %s: %v", e.root, e.d.ExactChange())
	if left := slices.DeleteFunc(e.names(), func(n string) bool { return !strings.Contains(n, "probe") }); len(left) > 0 {
		t.Errorf("probe files left: %v", left)
	}
}
