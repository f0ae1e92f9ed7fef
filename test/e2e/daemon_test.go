package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// daemonStatus mirrors the parts of `tandem status --json` (GET /v1/status) the tests read.
type daemonStatus struct {
	PID   int `json:"pid"`
	Pairs []struct {
		Name, Local, Remote, State, Message string
		Watcher                             string
		NextFullScan                        *time.Time `json:"next_full_scan"`
		Problems                            int
		Queue                               int
		Pending                             bool
		Passes                              int
		LastError                           string     `json:"last_error"`
		LastSync                            *time.Time `json:"last_sync"`
		Transfers                           []struct {
			Path, Op string
			Total    int64
		}
		PassBytesTotal int64 `json:"pass_bytes_total"`
		LastPass       *struct {
			TookMS         int64 `json:"took_ms"`
			Scope, Reason  string
			Paths          int
			Uploaded       int
			Downloaded     int
			Deleted, Moved int
		} `json:"last_pass"`
	} `json:"pairs"`
}

// lockedBuffer collects a running daemon's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonPair is a config with one dir: pair and a `tandem run` on it.
type daemonPair struct {
	t              *testing.T
	L, R, SD, Conf string
	bin            string   // "" = the plain build
	env            []string // added to the daemon's environment
	cmd            *exec.Cmd
	log            *lockedBuffer
	exited         chan struct{}
	waitErr        error
}

func newDaemonPair(t *testing.T) *daemonPair {
	t.Helper()
	base := t.TempDir()
	d := &daemonPair{t: t, L: filepath.Join(base, "L"), R: filepath.Join(base, "R"), SD: filepath.Join(base, "S"),
		Conf: filepath.Join(base, "config.yaml")}
	for _, p := range []string{d.L, d.R} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf("state_dir: %s\npairs:\n  - name: docs\n    local: %s\n    remote: dir:%s\n", d.SD, d.L, d.R)
	if err := os.WriteFile(d.Conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *daemonPair) start() {
	d.t.Helper()
	d.log = &lockedBuffer{}
	b := bin
	if d.bin != "" {
		b = d.bin
	}
	d.cmd = exec.Command(b, "run", "--config", d.Conf)
	d.cmd.Env = append(os.Environ(), d.env...)
	d.cmd.Stderr = d.log
	d.cmd.Stdout = d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	cmd, exited := d.cmd, d.exited
	go func() {
		d.waitErr = cmd.Wait()
		close(exited)
	}()
	d.t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if d.t.Failed() {
			d.t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	d.waitFor("the daemon's first pass", 30*time.Second, func(s *daemonStatus) bool {
		return len(s.Pairs) == 1 && s.Pairs[0].State == "idle" && s.Pairs[0].LastSync != nil
	})
}

// stop sends sig and returns how long the daemon took to exit.
func (d *daemonPair) stop(sig syscall.Signal) time.Duration {
	d.t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("daemon still running 20 s after %v", sig)
	}
	return time.Since(start)
}

func (d *daemonPair) tandem(args ...string) testenv.Result {
	d.t.Helper()
	return testenv.Run(d.t, bin, append(args, "--config", d.Conf)...)
}

func (d *daemonPair) status() (*daemonStatus, error) {
	r := d.tandem("status", "--json")
	if r.Code != 0 {
		return nil, fmt.Errorf("%s", r)
	}
	var s daemonStatus
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		return nil, fmt.Errorf("%v: %s", err, r.Stdout)
	}
	return &s, nil
}

// waitFor polls the status until cond holds, failing the test at the deadline.
func (d *daemonPair) waitFor(what string, timeout time.Duration, cond func(*daemonStatus) bool) *daemonStatus {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	var last *daemonStatus
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			d.t.Fatalf("daemon exited (%v) while waiting for %s", d.waitErr, what)
		default:
		}
		s, err := d.status()
		if err == nil && cond(s) {
			return s
		}
		last, lastErr = s, err
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("timed out waiting for %s; last status %+v %v", what, last, lastErr)
	return nil
}

// waitFile polls until path holds want.
func waitFile(t *testing.T, path, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && string(b) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(path)
	t.Fatalf("%s does not hold %q after %s: %q %v", path, want, timeout, b, err)
}

func idle(s *daemonStatus) bool {
	return len(s.Pairs) == 1 && s.Pairs[0].State == "idle" && !s.Pairs[0].Pending && s.Pairs[0].Queue == 0
}

func TestDaemonSyncsBothWaysWhileRunning(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	testenv.WriteFile(t, d.L, "before.txt", []byte("written before start"))
	d.start()
	waitFile(t, filepath.Join(d.R, "before.txt"), "written before start", 10*time.Second)

	// The socket is private: 0600 inside a 0700 directory.
	sock := filepath.Join(d.SD, "run", "tandem.sock")
	for p, want := range map[string]os.FileMode{filepath.Dir(sock): 0o700, sock: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}

	testenv.WriteFile(t, d.L, "docs/local.txt", []byte("from the local side"))
	waitFile(t, filepath.Join(d.R, "docs", "local.txt"), "from the local side", 10*time.Second)
	testenv.WriteFile(t, d.R, "docs/remote.txt", []byte("from the remote side"))
	waitFile(t, filepath.Join(d.L, "docs", "remote.txt"), "from the remote side", 10*time.Second)
	// An editor's atomic save (write a temp file, rename it over the original) arrives as the new content.
	testenv.WriteFile(t, d.L, "docs/.local.txt.swp", []byte("edited"))
	if err := os.Rename(filepath.Join(d.L, "docs", ".local.txt.swp"), filepath.Join(d.L, "docs", "local.txt")); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(d.R, "docs", "local.txt"), "edited", 10*time.Second)

	// Pause: a change is seen (pending) but not synced; resume syncs it.
	if r := d.tandem("pause", "docs"); r.Code != 0 || !strings.Contains(r.Stdout, "paused docs") {
		t.Fatalf("pause:\n%s", r)
	}
	testenv.WriteFile(t, d.L, "while-paused.txt", []byte("waits"))
	d.waitFor("the paused pair to see the change", 10*time.Second, func(s *daemonStatus) bool {
		return s.Pairs[0].State == "paused" && s.Pairs[0].Pending
	})
	if exists(filepath.Join(d.R, "while-paused.txt")) {
		t.Fatal("a paused pair synced")
	}
	if r := d.tandem("status"); r.Code != 0 || !strings.Contains(r.Stdout, "paused") || !strings.Contains(r.Stdout, "tandem resume docs") {
		t.Fatalf("status while paused:\n%s", r)
	}
	if r := d.tandem("resume"); r.Code != 0 || !strings.Contains(r.Stdout, "resumed docs") {
		t.Fatalf("resume:\n%s", r)
	}
	waitFile(t, filepath.Join(d.R, "while-paused.txt"), "waits", 10*time.Second)
	if r := d.tandem("pause", "nosuch"); r.Code != 1 || !strings.Contains(r.Stderr, `no pair named "nosuch"`) {
		t.Fatalf("pause of an unknown pair:\n%s", r)
	}
	if r := d.tandem("rescan"); r.Code != 0 {
		t.Fatalf("rescan:\n%s", r)
	}
	d.waitFor("idle", 10*time.Second, idle)
	if r := d.tandem("conflicts"); r.Code != 0 || !strings.Contains(r.Stdout, "no conflicts") {
		t.Fatalf("conflicts:\n%s", r)
	}
	if m := d.tandem("status", "--watch", "--count", "2", "--interval", "10ms"); m.Code != 0 || strings.Count(m.Stdout, "PAIR") != 2 {
		t.Fatalf("status --watch:\n%s", m)
	}

	// SIGHUP: a second pair added to the file starts; the first keeps running.
	L2, R2 := filepath.Join(filepath.Dir(d.L), "L2"), filepath.Join(filepath.Dir(d.L), "R2")
	if err := os.Mkdir(L2, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, L2, "second.txt", []byte("second pair"))
	if r := d.tandem("add", "--name", "second", L2, "dir:"+R2); r.Code != 0 || !strings.Contains(r.Stdout, "kill -HUP") {
		t.Fatalf("add:\n%s", r)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(R2, "second.txt"), "second pair", 10*time.Second)

	took := d.stop(syscall.SIGTERM)
	if took > 5*time.Second {
		t.Errorf("SIGTERM took %s, want at most 5 s", took)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after a clean stop: %v", err)
	}
	if r := d.tandem("status"); r.Code != 1 || !strings.Contains(r.Stderr, "tandem is not running (start it with: tandem run, or tandem service start)") {
		t.Fatalf("status with no daemon:\n%s", r)
	}
	if r := d.tandem("conflicts"); r.Code != 0 || !strings.Contains(r.Stdout, "no conflicts") {
		t.Fatalf("conflicts without a daemon (read-only state):\n%s", r)
	}
	testenv.SameTree(t, d.L, d.R)
}

// TestDaemonScopedPassesOnALargeTree: with 5,000 files tracked, edits on either side, a new folder, a move
// and a delete propagate while the daemon runs, each through a pass scoped to what the watchers reported
// (status says so); `tandem rescan` runs a full pass.
func TestDaemonScopedPassesOnALargeTree(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	const files, folders = 5000, 50
	rel := func(i int) string { return fmt.Sprintf("d%02d/f%04d.txt", i%folders, i) }
	for i := range files {
		testenv.WriteFile(t, d.L, rel(i), []byte(fmt.Sprintf("file %d\n", i)))
	}
	if r := testenv.Run(t, bin, "once", "--state-dir", d.SD, d.L, "dir:"+d.R); r.Code != 0 {
		t.Fatalf("first sync:\n%s", r)
	}
	d.start()
	s := d.waitFor("idle after start-up", 30*time.Second, idle)
	if lp := s.Pairs[0].LastPass; lp == nil || lp.Scope != "full" || lp.Reason != "start-up" {
		t.Fatalf("start-up pass: %+v", lp)
	}
	t.Logf("start-up (full) pass over %d files: %d ms", files, s.Pairs[0].LastPass.TookMS)
	scoped := func(what string) {
		t.Helper()
		s := d.waitFor("idle after "+what, 30*time.Second, idle)
		lp := s.Pairs[0].LastPass
		if lp == nil || lp.Scope != "scoped" {
			t.Fatalf("the last pass after %s was not scoped: %+v", what, lp)
		}
		t.Logf("%s: last pass scoped to %d paths, %d ms", what, lp.Paths, lp.TookMS)
	}

	testenv.WriteFile(t, d.L, rel(357), []byte("edited locally"))
	waitFile(t, filepath.Join(d.R, rel(357)), "edited locally", 10*time.Second)
	scoped("a local edit")
	testenv.WriteFile(t, d.R, rel(4242), []byte("edited remotely"))
	waitFile(t, filepath.Join(d.L, rel(4242)), "edited remotely", 10*time.Second)
	scoped("a remote edit")

	// A new folder with files in it (the watcher reports the folder as a subtree to rescan).
	if err := os.MkdirAll(filepath.Join(d.L, "new", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		testenv.WriteFile(t, d.L, fmt.Sprintf("new/sub/n%02d.txt", i), []byte(fmt.Sprintf("new %d", i)))
	}
	waitFile(t, filepath.Join(d.R, "new", "sub", "n19.txt"), "new 19", 10*time.Second)
	scoped("a new folder")

	// A move within the tree and a delete.
	if err := os.Rename(filepath.Join(d.L, rel(100)), filepath.Join(d.L, "d01", "moved.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d.L, rel(200))); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(d.R, "d01", "moved.txt"), "file 100\n", 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for exists(filepath.Join(d.R, rel(100))) || exists(filepath.Join(d.R, rel(200))) {
		if time.Now().After(deadline) {
			t.Fatal("the move's source or the deleted file is still on the remote")
		}
		time.Sleep(10 * time.Millisecond)
	}
	scoped("a move and a delete")

	if r := d.tandem("rescan"); r.Code != 0 {
		t.Fatalf("rescan:\n%s", r)
	}
	// An editor's save, vim style (the file renamed to a backup, the new content written, the backup removed),
	// is one upload and no delete on the remote.
	mark := len(d.log.String())
	target := filepath.Join(d.L, rel(500))
	if err := os.Rename(target, target+"~"); err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, d.L, rel(500), []byte("saved by an editor"))
	if err := os.Remove(target + "~"); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(d.R, rel(500)), "saved by an editor", 10*time.Second)
	time.Sleep(200 * time.Millisecond) // our own write's echo
	d.waitFor("idle after an editor's save", 30*time.Second, idle)
	if up, del := passTotals(d.log.String()[mark:]); up != 1 || del != 0 {
		t.Fatalf("an editor's save cost %d uploads and %d deletes, want 1 and 0:\n%s", up, del, d.log.String()[mark:])
	}

	// The log, not last_pass: a scoped pass may follow for events (our own writes) seen during the full one.
	d.waitFor("a full pass for the rescan", 30*time.Second, func(s *daemonStatus) bool {
		return idle(s) && strings.Contains(d.log.String(), `"scope": "full", "reason": "rescan requested"`)
	})
	testenv.SameTree(t, d.L, d.R)
}

var passDone = regexp.MustCompile(`pass done.*"up": (\d+).*"deleted": (\d+)`)

// passTotals sums the uploads and deletes of the "pass done" lines of a daemon log.
func passTotals(log string) (up, deleted int) {
	for _, m := range passDone.FindAllStringSubmatch(log, -1) {
		u, _ := strconv.Atoi(m[1])
		d, _ := strconv.Atoi(m[2])
		up, deleted = up+u, deleted+d
	}
	return up, deleted
}

// TestDaemonSigtermMidTransfer is CRASH-03 for the daemon: SIGTERM while a large file is being uploaded stops
// within 5 s and leaves no partial file under the real name; the next run converges with nothing lost.
func TestDaemonSigtermMidTransfer(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	d.start()
	big := filepath.Join(d.L, "big.bin")
	// Written beside the pair and renamed in, so the daemon never sees a half-written file: a file that is still
	// growing may legitimately be synced as it stood, which is not what this test is about.
	staged := filepath.Join(filepath.Dir(d.L), "big.staged")
	sum := testenv.WriteRandom(t, staged, 512<<20, 42)
	if err := os.Rename(staged, big); err != nil {
		t.Fatal(err)
	}
	s := d.waitFor("the upload to show in status", 60*time.Second, func(s *daemonStatus) bool {
		p := s.Pairs[0]
		return p.State == "syncing" && len(p.Transfers) == 1 && p.Transfers[0].Path == "big.bin" && p.Transfers[0].Op == "upload"
	})
	if tr := s.Pairs[0].Transfers[0]; tr.Total != 512<<20 || s.Pairs[0].PassBytesTotal != 512<<20 {
		t.Errorf("transfer = %+v, pass bytes %d", tr, s.Pairs[0].PassBytesTotal)
	}
	took := d.stop(syscall.SIGTERM)
	t.Logf("SIGTERM mid-transfer: the daemon exited after %s", took)
	if took > 5*time.Second {
		t.Errorf("SIGTERM mid-transfer took %s, want at most 5 s", took)
	}
	if exists(filepath.Join(d.R, "big.bin")) {
		// The rename may have won the race with the signal: then it must be whole.
		if got := testenv.FileSHA256(t, filepath.Join(d.R, "big.bin")); got != sum {
			t.Fatalf("a partial file is visible under the real name")
		}
	}
	d.start()
	d.waitFor("convergence after the restart", 60*time.Second, func(s *daemonStatus) bool {
		return idle(s) && exists(filepath.Join(d.R, "big.bin"))
	})
	if got := testenv.FileSHA256(t, filepath.Join(d.R, "big.bin")); got != sum {
		t.Fatal("the remote copy differs")
	}
	if tf := testenv.TempFiles(t, d.R); len(tf) > 0 {
		t.Fatalf("temp files left: %v", tf)
	}
	testenv.SameTree(t, d.L, d.R)
}

func TestConfigCheckNamesFileLineField(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yaml")
	testenv.WriteFile(t, dir, "config.yaml", []byte(`pairs:
  - local: /srv/a
    remote: dir:/srv/b
  - local: /srv/c
    remote: pcloudd:/Sync
    colour: blue
`))
	r := testenv.Run(t, bin, "config", "check", "--config", conf)
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.Code, r)
	}
	for _, want := range []string{conf + `:5: pairs[1].remote: unknown scheme "pcloudd"`, conf + ":6: pairs[1].colour: unknown key"} {
		mustContain(t, r.Stdout, want, "config check output")
	}
	if r := testenv.Run(t, bin, "config", "check", "extra", "--config", conf); r.Code != 2 {
		t.Fatalf("extra argument: exit %d, want 2:\n%s", r.Code, r)
	}
	// tandem run refuses the same file with the same problems.
	if r := testenv.Run(t, bin, "run", "--config", conf); r.Code != 1 || !strings.Contains(r.Stderr, "pairs[1].remote") {
		t.Fatalf("run on a broken config:\n%s", r)
	}
}

// TestSystemdUnit renders the unit `tandem service install` writes (through kardianos/service, forced to
// systemd, into a throw-away HOME; the enable step fails without systemctl, after the file is written) and
// checks it, and the shipped packaging/tandem.service, with `systemd-analyze verify` in system mode. These
// machines do not run systemd as PID 1, so user-mode verification and a real start/stop cannot run here.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are Linux only")
	}
	home := t.TempDir()
	conf := filepath.Join(home, "config.yaml")
	testenv.WriteFile(t, home, "config.yaml", []byte("pairs: []\n"))
	cmd := exec.Command(bin, "service", "install", "--init", "linux-systemd", "--config", conf)
	cmd.Env = append(os.Environ(), "HOME="+home, "PATH="+t.TempDir())
	out, _ := cmd.CombinedOutput()
	unit := filepath.Join(home, ".config", "systemd", "user", "tandem.service")
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatalf("no unit written: %v\n%s", err, out)
	}
	s := string(data)
	for _, want := range []string{"ExecStart=" + bin + ` "run" "--service" "--config" "` + conf + `"`,
		"ExecReload=/bin/kill -HUP $MAINPID", "WantedBy=default.target", "Restart=on-failure"} {
		mustContain(t, s, want, "the rendered unit")
	}
	if strings.Contains(s, "{{") || strings.Contains(s, "@WANTED_BY@") {
		t.Fatalf("unrendered template parts:\n%s", s)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the unit was rendered but not verified")
	}
	_, self, _, _ := runtime.Caller(0)
	shipped, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "packaging", "tandem.service"))
	if err != nil {
		t.Fatal(err)
	}
	vdir := t.TempDir()
	testenv.WriteFile(t, vdir, "rendered/tandem.service", data)
	testenv.WriteFile(t, vdir, "shipped/tandem.service", bytes.ReplaceAll(shipped, []byte("/usr/bin/tandem"), []byte(bin)))
	for _, f := range []string{"rendered/tandem.service", "shipped/tandem.service"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		v := exec.CommandContext(ctx, analyze, "verify", "--system", filepath.Join(vdir, f))
		vout, err := v.CombinedOutput()
		cancel()
		if err != nil || len(bytes.TrimSpace(vout)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s\n--- unit:\n%s", f, err, vout, data)
		}
	}
}

// TestCrossCompile keeps the launchd and Windows service paths compiling.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	for _, goos := range []string{"darwin", "windows"} {
		cmd := exec.Command("go", "build", "-o", os.DevNull, "./cmd/tandem")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build ./cmd/tandem: %v\n%s", goos, err, out)
		}
	}
}
