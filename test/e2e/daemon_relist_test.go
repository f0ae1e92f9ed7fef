package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestDaemonRemoteRelist: remote_relist_interval as users meet it. `tandem config check` refuses 0, a negative,
// a word and an interval under an hour, naming file, line and field, and `tandem run` refuses the file; off is
// accepted. A pCloud pair shows when its remote was last listed completely and when the next listing is due
// (the interval after it); SIGHUP applies a new interval at once, without a restart; a restarted daemon keeps
// the last listing's time (it does not list again, nor count the interval from its own start).
func TestDaemonRemoteRelist(t *testing.T) {
	t.Parallel()
	var p provider
	for _, q := range providers {
		if q.name == "pcloud" {
			p = q
		}
	}
	e := newPenv(t, p)
	endpoint, caFile := loginForDaemon(t, e)
	e.lwrite("docs/a.txt", "a1")
	conf := writeProviderConfig(t, p, e.L, endpoint, caFile, time.Minute)
	base, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	setConf := func(v string) {
		t.Helper()
		if err := os.WriteFile(conf, append([]byte("remote_relist_interval: "+v+"\n"), base...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"0", "-1h", "daily", "30m"} {
		setConf(bad)
		r := testenv.Run(t, bin, "config", "check", "--config", conf)
		if r.Code != 1 {
			t.Fatalf("config check of remote_relist_interval: %s: exit %d, want 1\n%s", bad, r.Code, r)
		}
		mustContain(t, r.Stdout, conf+":1: remote_relist_interval: ", "config check output")
		if r := testenv.Run(t, bin, "run", "--config", conf); r.Code != 1 || !strings.Contains(r.Stderr, "remote_relist_interval") {
			t.Fatalf("run with remote_relist_interval: %s:\n%s", bad, r)
		}
	}
	setConf("off")
	if r := testenv.Run(t, bin, "config", "check", "--config", conf); r.Code != 0 {
		t.Fatalf("config check of remote_relist_interval: off:\n%s", r)
	}

	setConf("2h")
	env := "XDG_CONFIG_HOME=" + e.xdg
	d := testenv.StartDaemon(t, bin, conf, env)
	due := func(iv time.Duration) func(*testenv.DaemonStatus) bool {
		return func(s *testenv.DaemonStatus) bool {
			if len(s.Pairs) != 1 { // the daemon lists its pairs (starting) from its first answer on
				t.Fatalf("the status lists %d pairs, want 1: %+v", len(s.Pairs), s.Pairs)
			}
			q := s.Pairs[0]
			return q.Idle() && q.LastRemoteListing != nil && q.NextRemoteRelist != nil &&
				q.NextRemoteRelist.Equal(q.LastRemoteListing.Add(iv))
		}
	}
	s := d.WaitFor("the first pass, and the next listing due 2h after it", arrivalTimeout, due(2*time.Hour))
	listed := *s.Pairs[0].LastRemoteListing
	setConf("5h")
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	d.WaitFor("the next listing due 5h after the last after SIGHUP", 20*time.Second, due(5*time.Hour))
	if strings.Contains(d.Log(), "remote_relist_interval changed: it takes effect") {
		t.Fatalf("remote_relist_interval was reported as needing a restart:\n%s", d.Log())
	}
	if err := d.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	d = testenv.StartDaemon(t, bin, conf, env)
	s = d.WaitFor("the restart's first pass", arrivalTimeout, due(5*time.Hour))
	if got := *s.Pairs[0].LastRemoteListing; !got.Equal(listed) {
		t.Fatalf("after a restart the last complete listing is %v, want the first pass's, %v", got, listed)
	}
}
