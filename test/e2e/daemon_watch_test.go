package e2e

// Issue 13, the daemon as users meet it: a root that goes away and comes back is watched again, a file that keeps
// changing still syncs, a new pCloud pair hears remote changes from its first minute, and SIGHUP applies
// full_scan_interval (or says a field needs a restart).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestDaemonRootComesBack: the remote folder, then the local one, is moved away and back while the daemon runs.
// While a root is away the pair is never reported idle and the status names the unwatched side; once the root
// is back (after `tandem resume` for the remote, by itself for the local one) its watcher is re-armed: a file
// created there afterwards syncs within seconds, in both directions.
func TestDaemonRootComesBack(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	d.start()
	for i, c := range []struct {
		side, root string
		resume     bool
	}{{"remote", d.R, true}, {"local", d.L, false}} {
		away := c.root + ".away"
		if err := os.Rename(c.root, away); err != nil {
			t.Fatal(err)
		}
		s := d.waitFor("the "+c.side+" watcher to report the folder gone", 10*time.Second, func(s *daemonStatus) bool {
			return strings.Contains(s.Pairs[0].Watcher, c.side+" folder")
		})
		if p := s.Pairs[0]; p.State == "idle" {
			t.Fatalf("%s root away: the pair is reported idle: %+v", c.side, p)
		}
		if err := os.Rename(away, c.root); err != nil {
			t.Fatal(err)
		}
		if c.resume {
			if r := d.tandem("resume"); r.Code != 0 {
				t.Fatalf("resume:\n%s", r)
			}
		}
		s = d.waitFor("the "+c.side+" folder to be watched again", 10*time.Second, func(s *daemonStatus) bool {
			return idle(s) && s.Pairs[0].Watcher == ""
		})
		if lp := s.Pairs[0].LastPass; lp == nil || lp.Scope != "full" {
			t.Fatalf("the pass after the %s root came back was not a full one: %+v", c.side, lp)
		}
		// Both directions, each through the watchers only (no pass is due otherwise for an hour).
		fromR, fromL := fmt.Sprintf("from-remote-%d.txt", i), fmt.Sprintf("from-local-%d.txt", i)
		testenv.WriteFile(t, d.R, fromR, []byte("created in R after it came back"))
		waitFile(t, filepath.Join(d.L, fromR), "created in R after it came back", 10*time.Second)
		testenv.WriteFile(t, d.L, fromL, []byte("created in L after it came back"))
		waitFile(t, filepath.Join(d.R, fromL), "created in L after it came back", 10*time.Second)
	}
	testenv.SameTree(t, d.L, d.R)
}

var passLine = regexp.MustCompile(`(?m)^(\S+ \S+)\s.*pass done.*"scope": "(\w+)".*"took_ms": (\d+)`)

// passSpan is one "pass done" line of a daemon log: when the pass began and ended, and whether it was full.
type passSpan struct {
	begin, end time.Time
	full       bool
}

func passSpans(t *testing.T, log string) []passSpan {
	t.Helper()
	var out []passSpan
	for _, m := range passLine.FindAllStringSubmatch(log, -1) {
		end, err := time.ParseInLocation("2006-01-02 15:04:05.000", m[1], time.Local)
		if err != nil {
			t.Fatalf("log time %q: %v", m[1], err)
		}
		var ms int64
		fmt.Sscan(m[3], &ms)
		out = append(out, passSpan{begin: end.Add(-time.Duration(ms) * time.Millisecond), end: end, full: m[2] == "full"})
	}
	return out
}

// TestDaemonBusyFileIsNotStarved: a file rewritten every 20 ms while every full pass is made slow (a failpoint
// holds each full observation 1 s), so a full pass always finds it changed since it looked. It must still reach
// the other side while the writer goes on (sent from a stable snapshot; a failed path is retried by a pass over
// that path, not another full pass), and the daemon never runs two full passes back to back, not even for two
// rescans asked for one right after the other.
func TestDaemonBusyFileIsNotStarved(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	d.bin = fpBinary(t)
	d.env = []string{"TANDEM_FAILPOINTS=observe.fullWalk=sleep(1000)"}
	testenv.WriteFile(t, d.L, "busy.db", []byte("version 000000\n"))
	d.start()
	waitFile(t, filepath.Join(d.R, "busy.db"), "version 000000\n", 10*time.Second)

	// Rewritten in place (same size, so no reader ever sees it empty), as a database or a log is.
	f, err := os.OpenFile(filepath.Join(d.L, "busy.db"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := 0
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := f.WriteAt([]byte(fmt.Sprintf("version %06d\n", i)), 0); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			last = i
			mu.Unlock()
		}
	})
	stopWriter := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
			f.Close()
		}
	}
	defer stopWriter()
	mark, rescanAt := len(d.log.String()), time.Now()
	// A full pass finds the file changed after it looked (the failpoint holds it 1 s after its walk).
	if r := d.tandem("rescan"); r.Code != 0 {
		t.Fatalf("rescan:\n%s", r)
	}
	// A second rescan while that pass runs: it used to start the moment the first ended.
	d.waitFor("the rescan's pass to run", 20*time.Second, func(s *daemonStatus) bool {
		return s.Pairs[0].State == "scanning" || s.Pairs[0].State == "syncing"
	})
	if r := d.tandem("rescan"); r.Code != 0 {
		t.Fatalf("rescan:\n%s", r)
	}
	d.waitFor("both rescans' passes", 30*time.Second, func(s *daemonStatus) bool {
		return strings.Count(d.log.String()[mark:], `"reason": "rescan requested"`) >= 2
	})
	// It must arrive while the writer keeps going.
	target := filepath.Join(d.R, "busy.db")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(target)
		n := 0
		if err == nil {
			fmt.Sscanf(string(b), "version %06d\n", &n)
		}
		if n > 0 {
			mu.Lock()
			t.Logf("%s after the rescan, the remote holds version %d while the writer is at %d",
				time.Since(rescanAt).Round(time.Millisecond), n, last)
			mu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a file rewritten every 20 ms never reached the other side while it kept changing (remote: %q %v)", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWriter()
	mu.Lock()
	final := fmt.Sprintf("version %06d\n", last)
	mu.Unlock()
	waitFile(t, target, final, 20*time.Second)
	d.waitFor("idle", 20*time.Second, idle)

	spans := passSpans(t, d.log.String())
	full := 0
	for i, p := range spans {
		if !p.full {
			continue
		}
		full++
		if i > 0 && spans[i-1].full {
			prev := spans[i-1]
			if gap := p.begin.Sub(prev.end); gap < prev.end.Sub(prev.begin)/2 {
				t.Errorf("full passes back to back: one ended %s, the next began %s later (the first took %s)",
					prev.end.Format("15:04:05.000"), gap, prev.end.Sub(prev.begin))
			}
		}
	}
	t.Logf("%d passes, %d full", len(spans), full)
}

// TestDaemonPCloudFirstMinute: a pCloud pair that has never synced before hears a remote change within seconds
// of its first pass, not only after one poll interval (60 s by default).
func TestDaemonPCloudFirstMinute(t *testing.T) {
	t.Parallel()
	var p provider
	for _, q := range providers {
		if q.name == "pcloud" {
			p = q
		}
	}
	e := newPenv(t, p)
	endpoint, caFile := loginForDaemon(t, e)
	e.lwrite("docs/a.txt", "a1 on the laptop")
	conf := writeProviderConfig(t, p, e.L, endpoint, caFile, time.Minute)
	d := testenv.StartDaemon(t, bin, conf, "XDG_CONFIG_HOME="+e.xdg)
	d.WaitFor("the first pass", arrivalTimeout, func(s *testenv.DaemonStatus) bool {
		return len(s.Pairs) == 1 && s.Pairs[0].Idle() && s.Pairs[0].LastSync != nil
	})
	waitRemote(t, e, "docs/a.txt", "a1 on the laptop")
	start := time.Now()
	e.rwrite("cloud/new.txt", "c1 from another device in the first minute")
	waitFile(t, filepath.Join(e.L, "cloud", "new.txt"), "c1 from another device in the first minute", 15*time.Second)
	t.Logf("a remote change in the first minute arrived after %s", time.Since(start).Round(time.Millisecond))
}

// TestDaemonReloadFullScanInterval: SIGHUP applies a changed full_scan_interval at once (status shows when the
// next safety-net scan is due), both shorter and longer; a changed field that needs a restart is named in the
// log.
func TestDaemonReloadFullScanInterval(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	base, err := os.ReadFile(d.Conf)
	if err != nil {
		t.Fatal(err)
	}
	setConf := func(extra string) {
		t.Helper()
		if err := os.WriteFile(d.Conf, append([]byte(extra), base...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setConf("full_scan_interval: 1h\n")
	d.start()
	due := func(s *daemonStatus, lo, hi time.Duration) bool {
		n := s.Pairs[0].NextFullScan
		return n != nil && time.Until(*n) > lo && time.Until(*n) <= hi
	}
	d.waitFor("the next scan within the hour", 10*time.Second, func(s *daemonStatus) bool { return due(s, 50*time.Minute, time.Hour) })

	setConf("full_scan_interval: 1m\n")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitFor("the next scan within a minute after SIGHUP", 10*time.Second, func(s *daemonStatus) bool { return due(s, 0, time.Minute) })

	setConf("full_scan_interval: 2h\nmetrics_addr: 127.0.0.1:0\n")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitFor("the next scan in two hours after SIGHUP", 10*time.Second, func(s *daemonStatus) bool {
		return due(s, 110*time.Minute, 2*time.Hour)
	})
	d.waitFor("the reload to say metrics_addr needs a restart", 10*time.Second, func(*daemonStatus) bool {
		return strings.Contains(d.log.String(), "metrics_addr changed: it takes effect when tandem restarts")
	})
	if strings.Contains(d.log.String(), "full_scan_interval changed: it takes effect") {
		t.Fatalf("full_scan_interval was reported as needing a restart:\n%s", d.log.String())
	}
}
