package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestStatusOtherUser (issue 13 item 7): `tandem status` run by another uid against a running daemon is told
// permission denied, not "tandem is not running".
func TestStatusOtherUser(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if os.Getuid() != 0 || err != nil {
		t.Skip("needs root and setpriv to run tandem status as uid 65534")
	}
	// Everything uid 65534 needs to reach is world-readable; the daemon's run folder stays 0700.
	base, err := os.MkdirTemp("", "tandem-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(base, "tandem")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, data, 0o755); err != nil {
		t.Fatal(err)
	}
	L, R, SD := filepath.Join(base, "L"), filepath.Join(base, "R"), filepath.Join(base, "sd")
	for _, d := range []string{L, R, SD} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(base, "config.yaml")
	if err := os.WriteFile(conf, []byte("state_dir: "+SD+"\npairs:\n  - {name: docs, local: "+L+", remote: \"dir:"+R+"\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testenv.StartDaemon(t, bin, conf)
	d.WaitFor("idle", time.Minute, func(s *testenv.DaemonStatus) bool { return len(s.Pairs) == 1 && s.Pairs[0].Idle() })
	out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", pub, "status", "--config", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied") || strings.Contains(string(out), "not running") {
		t.Fatalf("another uid: %v\n%s", err, out)
	}
}
