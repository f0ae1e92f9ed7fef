package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

const (
	daemonFiles   = 100_000
	daemonFolders = 1_000
	edits         = 50
)

// BenchmarkDaemon measures `tandem run` tracking 100,000 files on a dir: remote: propagation latency of 50
// local and 50 remote edits (p50/p99, from the write until the other side holds the new bytes), then the idle
// cost over one minute (CPU seconds, context switches, anonymous memory). Run with `make bench`. The log also
// says how the daemon's passes went (scoped to the watchers' paths or full, and their durations).
func BenchmarkDaemon(b *testing.B) {
	if testing.Short() {
		b.Skip("-short")
	}
	base := b.TempDir()
	L, R, SD := filepath.Join(base, "L"), filepath.Join(base, "R"), filepath.Join(base, "S")
	start := time.Now()
	old := time.Now().Add(-time.Hour)
	for i := range daemonFiles {
		p := filepath.Join(L, fmt.Sprintf("d%04d", i%daemonFolders), fmt.Sprintf("f%06d.txt", i))
		if i < daemonFolders {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("tree of %d files written in %s", daemonFiles, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if r := testenv.Run(b, bin, "once", "--state-dir", SD, L, "dir:"+R); r.Code != 0 {
		b.Fatalf("first sync:\n%s", r)
	}
	b.Logf("first sync (tandem once) took %s", time.Since(start).Round(time.Millisecond))
	conf := filepath.Join(base, "config.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("state_dir: %s\npairs:\n  - {name: big, local: %s, remote: \"dir:%s\"}\n", SD, L, R)), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", conf)
	logf, err := os.Create(filepath.Join(base, "daemon.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start = time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	first := waitIdle(b, conf, 10*time.Minute)
	b.Logf("daemon start-up (watches + first pass over %d files) took %s; the pass: %s", daemonFiles,
		time.Since(start).Round(time.Millisecond), first)

	b.ResetTimer()
	up := propagate(b, conf, L, R, "local")
	down := propagate(b, conf, R, L, "remote")
	b.StopTimer()
	for _, x := range []struct {
		name string
		d    []time.Duration
	}{{"up", up}, {"down", down}} {
		slices.Sort(x.d)
		p50, p99 := x.d[len(x.d)/2], x.d[(len(x.d)*99+99)/100-1]
		b.ReportMetric(float64(p50.Milliseconds()), x.name+"-p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), x.name+"-p99-ms")
		b.Logf("%s: p50 %s p99 %s (min %s max %s)", x.name, p50, p99, x.d[0], x.d[len(x.d)-1])
	}

	// Idle: one minute with nothing happening.
	waitIdle(b, conf, time.Minute)
	pid := cmd.Process.Pid
	cpu0, sw0 := procCPU(b, pid), procSwitches(b, pid)
	time.Sleep(time.Minute)
	cpu1, sw1 := procCPU(b, pid), procSwitches(b, pid)
	rss := procStatusKB(b, pid, "RssAnon")
	b.ReportMetric(cpu1-cpu0, "idle-cpu-s/min")
	b.ReportMetric(float64(sw1-sw0), "idle-wakeups/min")
	b.ReportMetric(float64(rss)/1024, "RssAnon-MiB")
	b.Logf("idle minute: %.3f s CPU, %d context switches, RssAnon %.1f MiB", cpu1-cpu0, sw1-sw0, float64(rss)/1024)
}

// propagate makes edits on from and times each until to holds it, waiting for the daemon to settle between.
// It logs the passes the edits cost.
func propagate(b *testing.B, conf, from, to, side string) []time.Duration {
	var out []time.Duration
	var scoped, full []int64
	passes := passCount(b, conf)
	for i := range edits {
		rel := filepath.Join(fmt.Sprintf("d%04d", (i*37)%daemonFolders), fmt.Sprintf("f%06d.txt", (i*37)%daemonFolders+i*daemonFolders))
		want := fmt.Sprintf("%s edit %d at %d\n", side, i, time.Now().UnixNano())
		t0 := time.Now()
		if err := os.WriteFile(filepath.Join(from, rel), []byte(want), 0o644); err != nil {
			b.Fatal(err)
		}
		deadline := t0.Add(5 * time.Minute)
		for {
			if got, err := os.ReadFile(filepath.Join(to, rel)); err == nil && string(got) == want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s edit %d of %s did not arrive", side, i, rel)
			}
			time.Sleep(time.Millisecond)
		}
		out = append(out, time.Since(t0))
		lp := waitIdle(b, conf, 5*time.Minute)
		// Settle: the daemon's own write comes back as a watcher event of the other side a debounce later
		// and costs one more (no-op) pass; the next edit should not land in it.
		time.Sleep(150 * time.Millisecond)
		waitIdle(b, conf, 5*time.Minute)
		if lp.Scope == "full" {
			full = append(full, lp.TookMS)
		} else {
			scoped = append(scoped, lp.TookMS)
		}
	}
	n := passCount(b, conf) - passes
	b.Logf("%s edits: %d passes in all (%.1f per edit); the first pass seen after each edit: %d scoped (took p50 %d ms), %d full %v",
		side, n, float64(n)/edits, len(scoped), median(scoped), len(full), full)
	return out
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// lastPass is the part of the status's last_pass the benchmark logs.
type lastPass struct {
	TookMS int64  `json:"took_ms"`
	Scope  string `json:"scope"`
	Reason string `json:"reason"`
	Paths  int    `json:"paths"`
}

func (p lastPass) String() string {
	if p.Scope == "full" {
		return fmt.Sprintf("full (%s), %d ms", p.Reason, p.TookMS)
	}
	return fmt.Sprintf("%s over %d paths, %d ms", p.Scope, p.Paths, p.TookMS)
}

type benchStatus struct {
	Pairs []struct {
		State    string
		Pending  bool
		Passes   int
		LastSync *time.Time `json:"last_sync"`
		LastPass *lastPass  `json:"last_pass"`
	}
}

func status(b *testing.B, conf string) (benchStatus, bool) {
	r := testenv.Run(b, bin, "status", "--json", "--config", conf)
	var s benchStatus
	return s, r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &s) == nil && len(s.Pairs) == 1
}

func passCount(b *testing.B, conf string) int {
	s, ok := status(b, conf)
	if !ok {
		b.Fatal("no status")
	}
	return s.Pairs[0].Passes
}

// waitIdle waits until the daemon is idle with nothing pending and returns its last pass.
func waitIdle(b *testing.B, conf string, timeout time.Duration) lastPass {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, ok := status(b, conf); ok && s.Pairs[0].State == "idle" && !s.Pairs[0].Pending &&
			s.Pairs[0].LastSync != nil && s.Pairs[0].LastPass != nil {
			return *s.Pairs[0].LastPass
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("daemon not idle in time")
	return lastPass{}
}

// procCPU is utime+stime of pid in seconds.
func procCPU(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// procSwitches is voluntary+nonvoluntary context switches of all of pid's threads: each is a wakeup.
func procSwitches(b *testing.B, pid int) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		n += procStatusKBFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid), "voluntary_ctxt_switches")
		n += procStatusKBFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid), "nonvoluntary_ctxt_switches")
	}
	return n
}

func procStatusKB(b *testing.B, pid int, key string) int64 {
	return procStatusKBFile(fmt.Sprintf("/proc/%d/status", pid), key)
}

func procStatusKBFile(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
