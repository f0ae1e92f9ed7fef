package watcher

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	usernsEnv   = "TANDEM_WATCHER_IN_USERNS"
	userLimit   = "/proc/sys/user/max_inotify_watches"
	nsWatchMax  = 16
	nsTreeWidth = 100
)

// TestInotifyWatchLimit is LOCAL-05 at package level: the kernel's own limit, not an injected error. The
// test binary re-runs itself under `unshare -Ur`, where /proc/sys/user/max_inotify_watches belongs to the new
// user namespace: lowering it there leaves the host's limit alone (RELIABILITY.md, "Privileged bits").
func TestInotifyWatchLimit(t *testing.T) {
	if os.Getenv(usernsEnv) == "1" {
		inUserns(t)
		return
	}
	if err := exec.Command("unshare", "-Ur", "true").Run(); err != nil {
		t.Skipf("unshare -Ur unavailable here (%v): the watch-limit path is covered by TestWatchLimit only", err)
	}
	before, err := os.ReadFile(userLimit)
	if err != nil {
		t.Skipf("no %s: %v", userLimit, err)
	}
	cmd := exec.Command("unshare", "-Ur", os.Args[0], "-test.run=^TestInotifyWatchLimit$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), usernsEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("in the namespace:\n%s", lastLines(out.String(), 15))
	if err != nil {
		t.Fatalf("namespaced run: %v", err)
	}
	if strings.Contains(out.String(), "--- SKIP") {
		t.Fatalf("namespaced run skipped")
	}
	after, err := os.ReadFile(userLimit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("host %s changed: %q → %q", userLimit, before, after)
	}
}

func inUserns(t *testing.T) {
	if err := os.WriteFile(userLimit, fmt.Appendf(nil, "%d\n", nsWatchMax), 0o644); err != nil {
		t.Fatalf("set %s: %v", userLimit, err)
	}
	root := t.TempDir()
	for i := range nsTreeWidth {
		mkTree(t, root, fmt.Sprintf("d%03d", i))
	}
	h := start(t, root, fast, nil)
	h.startup()

	d := h.w.Degraded()
	if !strings.Contains(d, "fs.inotify.max_user_watches") || !strings.Contains(d, "sysctl") {
		t.Errorf("Degraded() = %q, want the limit and the sysctl to raise", d)
	}
	if n := h.w.Watched(); n == 0 || n > nsWatchMax {
		t.Errorf("Watched() = %d, want 1..%d", n, nsWatchMax)
	}
	t.Logf("watched %d of %d folders; Degraded: %s", h.w.Watched(), nsTreeWidth+1, d)

	// A watched folder still reports precisely; a folder made now is left to a rescan.
	h.write("d000/f", "x")
	h.mkdir("new")
	h.until("d000/f and new", func(s []Event) bool {
		return has(s, "d000/f") && slices.Contains(s, Event{Path: "new", Subtree: true})
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
