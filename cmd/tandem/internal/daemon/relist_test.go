package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
)

// TestRelistTimerRepairsFeedHoles: an edit the remote's feed never reports arrives with the complete listing
// the daemon makes remote_relist_interval after the last one, with no event and no safety-net pass (an hour
// away) to start it.
func TestRelistTimerRepairsFeedHoles(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	if err := mem.WriteFile("edit.txt", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	feed := &memremote.FeedHoles{Mem: mem, Hide: map[remote.Path]bool{"edit.txt": true}}
	local, cl := startDaemonWith(t, feed, zaptest.NewLogger(t), func(c *config.Config) { c.RemoteRelistInterval = 2 * time.Second }, nil)
	s0 := waitState(t, cl, "the first pass", func(s PairStatus) bool {
		b, err := os.ReadFile(filepath.Join(local, "edit.txt"))
		return s.State == StateIdle && s.LastRemoteListing != nil && err == nil && string(b) == "v1"
	})
	if s0.NextRemoteRelist == nil || !s0.NextRemoteRelist.Equal(s0.LastRemoteListing.Add(2*time.Second)) {
		t.Errorf("next relist %v, want 2s after the last listing %v", s0.NextRemoteRelist, s0.LastRemoteListing)
	}
	if err := mem.WriteFile("edit.txt", []byte("v2, which the feed never reports")); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, cl, "the hidden edit", func(s PairStatus) bool {
		b, err := os.ReadFile(filepath.Join(local, "edit.txt"))
		return err == nil && string(b) == "v2, which the feed never reports" && s.State == StateIdle
	})
	if !s.LastRemoteListing.After(*s0.LastRemoteListing) {
		t.Errorf("last remote listing %v, want after %v", s.LastRemoteListing, s0.LastRemoteListing)
	}
	if s.Resynced != nil {
		t.Errorf("a timed relist shows as resynced (a lost cursor): %v", s.Resynced)
	}
}

// TestRelistDueSurvivesRestartAndReload: when the next complete listing is due follows the last one, which the
// state database keeps: a restarted daemon does not list again at once, nor put the listing off by a whole
// interval. SIGHUP's reload applies a new interval at once (a listing already due under it happens in the
// reload's pass) and off turns it off; the field never needs a restart.
func TestRelistDueSurvivesRestartAndReload(t *testing.T) {
	sd, err := os.MkdirTemp("", "tandem-d-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sd) })
	local := t.TempDir()
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	if err := mem.WriteFile("a.txt", []byte("a")); err != nil {
		t.Fatal(err)
	}
	lg := zaptest.NewLogger(t)
	var d *Daemon
	hourly := func(c *config.Config) { c.RemoteRelistInterval = time.Hour }
	keep := func(x *Daemon) { d = x }
	cl, stop := runDaemon(t, sd, local, mem, lg, hourly, keep)
	s := waitState(t, cl, "the first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastRemoteListing != nil })
	t0 := *s.LastRemoteListing
	stop()

	cl, stop = runDaemon(t, sd, local, mem, lg, hourly, keep)
	t.Cleanup(stop)
	s = waitState(t, cl, "the restart's first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	if s.LastRemoteListing == nil || !s.LastRemoteListing.Equal(t0) {
		t.Fatalf("after a restart the last listing is %v, want the one before the restart, %v", s.LastRemoteListing, t0)
	}
	if s.NextRemoteRelist == nil || !s.NextRemoteRelist.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after a restart the next relist is due %v, want an hour after the last listing, %v", s.NextRemoteRelist, t0.Add(time.Hour))
	}

	reload := func(iv time.Duration) {
		d.Reload(&config.Config{RemoteRelistInterval: iv,
			Pairs: []config.Pair{{Name: "p", Local: local, Remote: "mem:/", PollInterval: time.Second}}})
	}
	reload(2 * time.Hour)
	waitState(t, cl, "the next relist two hours after the last listing", func(s PairStatus) bool {
		return s.NextRemoteRelist != nil && s.NextRemoteRelist.Equal(t0.Add(2*time.Hour))
	})
	reload(time.Millisecond) // the config's minimum is an hour; the daemon takes what it is given
	waitState(t, cl, "a listing in the reload's pass", func(s PairStatus) bool {
		return s.LastRemoteListing != nil && s.LastRemoteListing.After(t0) && s.State == StateIdle
	})
	reload(config.RelistOff)
	waitState(t, cl, "no relist due once it is off", func(s PairStatus) bool {
		return s.NextRemoteRelist == nil && s.State == StateIdle
	})
	if f := restartFields(&config.Config{}, &config.Config{RemoteRelistInterval: time.Hour}); len(f) != 0 {
		t.Errorf("a changed remote_relist_interval needs a restart: %v", f)
	}
}
