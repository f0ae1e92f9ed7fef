package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// DaemonStatus is the part of `tandem status --json` (the daemon's GET /v1/status) the tests read.
type DaemonStatus struct {
	PID   int                `json:"pid"`
	Pairs []DaemonPairStatus `json:"pairs"`
}

// DaemonPairStatus is one pair of DaemonStatus.
type DaemonPairStatus struct {
	Name      string     `json:"name"`
	Remote    string     `json:"remote"`
	State     string     `json:"state"`
	Message   string     `json:"message"`
	Queue     int        `json:"queue"`
	Pending   bool       `json:"pending"`
	Passes    int        `json:"passes"`
	Problems  int        `json:"problems"`
	Conflicts int        `json:"conflicts"`
	LastError string     `json:"last_error"`
	LastSync  *time.Time `json:"last_sync"`
	Resynced  *time.Time `json:"resynced"`
	// LastRemoteListing, NextRemoteRelist: the remote's last complete listing and when the next is due.
	LastRemoteListing *time.Time `json:"last_remote_listing"`
	NextRemoteRelist  *time.Time `json:"next_remote_relist"`
	ReadOnly          bool       `json:"read_only"`
	LastPass          *struct {
		Uploaded   int    `json:"uploaded"`
		Downloaded int    `json:"downloaded"`
		Deleted    int    `json:"deleted"`
		Moved      int    `json:"moved"`
		Result     string `json:"result"`
	} `json:"last_pass"`
}

// Idle reports whether the pair is idle with nothing due: no queue, no pending pass.
func (p DaemonPairStatus) Idle() bool { return p.State == "idle" && !p.Pending && p.Queue == 0 }

// Daemon is a `tandem run --config <file>` subprocess. It is stopped with SIGTERM in t.Cleanup (SIGKILL if it is
// still running 10 s later), and its output is logged when the test failed.
type Daemon struct {
	t       testing.TB
	bin     string
	Config  string
	Env     []string
	cmd     *exec.Cmd
	log     *lockedBuffer
	exited  chan struct{}
	waitErr error
}

// StartDaemon starts `bin run --config conf` with env added to the environment.
func StartDaemon(t testing.TB, bin, conf string, env ...string) *Daemon {
	t.Helper()
	return StartDaemonArgs(t, bin, conf, nil, env...)
}

// StartDaemonArgs is StartDaemon with extra flags for `tandem run` (e.g. -v).
func StartDaemonArgs(t testing.TB, bin, conf string, args []string, env ...string) *Daemon {
	t.Helper()
	d := &Daemon{t: t, bin: bin, Config: conf, Env: env, log: &lockedBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"run", "--config", conf}, args...)...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start tandem run: %v", err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if err := d.Stop(10 * time.Second); err != nil {
			t.Errorf("%v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	return d
}

// Stop sends SIGTERM and waits up to timeout for the daemon to exit, then kills it. It returns an error if the
// daemon had to be killed or exited with a failure; stopping a stopped daemon does nothing.
func (d *Daemon) Stop(timeout time.Duration) error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.waitErr != nil {
			return fmt.Errorf("tandem run exited with %v after SIGTERM", d.waitErr)
		}
		return nil
	case <-time.After(timeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("tandem run still running %s after SIGTERM: killed", timeout)
	}
}

// Reload sends SIGHUP: the daemon re-reads its config file.
func (d *Daemon) Reload() error { return d.cmd.Process.Signal(syscall.SIGHUP) }

// Log is what the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }

// Status runs `tandem status --json --config <file>`.
func (d *Daemon) Status() (*DaemonStatus, error) {
	r := RunWith(d.t, d.bin, RunOpts{Env: d.Env}, "status", "--json", "--config", d.Config)
	if r.Code != 0 {
		return nil, fmt.Errorf("%s", r)
	}
	var s DaemonStatus
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		return nil, fmt.Errorf("%v: %s", err, r.Stdout)
	}
	return &s, nil
}

// WaitFor polls the status until cond holds and returns that status; it fails the test at the deadline or if the
// daemon exits.
func (d *Daemon) WaitFor(what string, timeout time.Duration, cond func(*DaemonStatus) bool) *DaemonStatus {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	var last *DaemonStatus
	var lastErr error
	for {
		select {
		case <-d.exited:
			d.t.Fatalf("the daemon exited (%v) while waiting for %s", d.waitErr, what)
		default:
		}
		s, err := d.Status()
		if err == nil && cond(s) {
			return s
		}
		if s != nil {
			last = s
		}
		lastErr = err
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out after %s waiting for %s; last status %s, %v", timeout, what, dumpJSON(last), lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dumpJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
