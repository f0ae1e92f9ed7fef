package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EmuInfo is the JSON line `tandem emulate <provider> --json` prints (remote/emulate.Info).
type EmuInfo struct {
	Provider     string `json:"provider"`
	Endpoint     string `json:"endpoint"`
	URL          string `json:"url"`
	HTTPSURL     string `json:"https_url"`
	Host         string `json:"host"`
	AdminURL     string `json:"admin_url"`
	CAFile       string `json:"ca_file"`
	DataDir      string `json:"data_dir"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	// Verizon: the OAuth app registered with the emulator.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURL  string `json:"redirect_url"`
}

// LogEntry is one request of an emulator's request log (GET /log on the admin URL).
type LogEntry struct {
	Time     time.Time     `json:"time"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Op       string        `json:"op"`
	Query    string        `json:"query"`
	Status   int           `json:"status"`
	BytesIn  int64         `json:"bytesIn"`
	BytesOut int64         `json:"bytesOut"`
	Took     time.Duration `json:"took"`
	Fault    string        `json:"fault"`
}

// Emulator is a running `tandem emulate` subprocess. It is stopped (SIGTERM, then SIGKILL) in t.Cleanup.
type Emulator struct {
	EmuInfo
	cmd    *exec.Cmd
	stderr *lockedBuffer
	http   *http.Client
	done   chan struct{}
}

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

// StartEmulator runs `bin emulate provider --json --data <temp dir> extra...` and waits for its JSON line.
func StartEmulator(t testing.TB, bin, provider string, extra ...string) *Emulator {
	t.Helper()
	data := filepath.Join(t.TempDir(), "emu-"+provider)
	args := append([]string{"emulate", provider, "--json", "--data", data}, extra...)
	// TANDEM_EMU_VARIANT_<PROVIDER>=NAME[,NAME] runs every emulator of that provider under those variants (the
	// soak runs the e2e suite once per variant this way).
	if v := os.Getenv(VariantEnv(provider)); v != "" {
		args = append(args, "--variant", v)
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{cmd: cmd, stderr: &lockedBuffer{}, http: &http.Client{Timeout: 30 * time.Second},
		done: make(chan struct{})}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tandem emulate %s: %v", provider, err)
	}
	go func() { _ = cmd.Wait(); close(e.done) }()
	t.Cleanup(e.stop)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		if err := json.Unmarshal([]byte(s), &e.EmuInfo); err != nil {
			t.Fatalf("tandem emulate %s printed %q, not its JSON line: %v\nstderr:\n%s", provider, s, err, e.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tandem emulate %s printed nothing in 30 s\nstderr:\n%s", provider, e.stderr)
	}
	if e.CAFile != "" && !filepath.IsAbs(e.CAFile) {
		e.CAFile = filepath.Join(data, e.CAFile)
	}
	return e
}

// VariantEnv is the environment variable that selects provider's emulator variants for a whole test run.
func VariantEnv(provider string) string { return "TANDEM_EMU_VARIANT_" + strings.ToUpper(provider) }

func (e *Emulator) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// Stderr is what the emulator printed on standard error so far.
func (e *Emulator) Stderr() string { return e.stderr.String() }

// Post sends body (may be "") to the admin URL's path with method POST and fails the test unless it answers
// 2xx. It returns the answer's body.
func (e *Emulator) Post(t testing.TB, path, body string) []byte {
	t.Helper()
	return e.admin(t, http.MethodPost, path, body)
}

// TryPost is Post for a request that may be refused: it returns the answer and whether it was 2xx.
func (e *Emulator) TryPost(t testing.TB, path, body string) (string, bool) {
	t.Helper()
	resp, err := e.http.Post(e.AdminURL+path, "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + ": " + string(b), resp.StatusCode/100 == 2
}

func (e *Emulator) admin(t testing.TB, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, e.AdminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b
}

// SetFaults replaces the emulator's fault plan with plan (YAML or JSON, emukit's format).
func (e *Emulator) SetFaults(t testing.TB, plan string) {
	t.Helper()
	e.admin(t, http.MethodPost, "/faults", plan)
}

// AddFaults appends the rules of plan to the live fault plan.
func (e *Emulator) AddFaults(t testing.TB, plan string) {
	t.Helper()
	e.admin(t, http.MethodPost, "/faults?append=1", plan)
}

// FaultStatus is one live rule with its counters (GET /faults).
type FaultStatus struct {
	Rule    map[string]any `json:"rule"`
	Matched int            `json:"matched"`
	Fired   int            `json:"fired"`
}

// Faults returns the live rules with how often each matched and fired.
func (e *Emulator) Faults(t testing.TB) []FaultStatus {
	t.Helper()
	var out []FaultStatus
	if err := json.Unmarshal(e.admin(t, http.MethodGet, "/faults", ""), &out); err != nil {
		t.Fatalf("GET /faults: %v", err)
	}
	return out
}

// ClearFaults drops every fault rule.
func (e *Emulator) ClearFaults(t testing.TB) {
	t.Helper()
	e.admin(t, http.MethodDelete, "/faults", "")
}

// Log returns the request log, oldest first.
func (e *Emulator) Log(t testing.TB) []LogEntry {
	t.Helper()
	var out []LogEntry
	if err := json.Unmarshal(e.admin(t, http.MethodGet, "/log", ""), &out); err != nil {
		t.Fatalf("GET /log: %v", err)
	}
	return out
}

// ClearLog empties the request log.
func (e *Emulator) ClearLog(t testing.TB) {
	t.Helper()
	e.admin(t, http.MethodDelete, "/log", "")
}

// OpCounts counts log entries by op.
func OpCounts(log []LogEntry) map[string]int {
	m := map[string]int{}
	for _, x := range log {
		m[x.Op]++
	}
	return m
}

// RunOpts are the extras RunWith adds to Run.
type RunOpts struct {
	Env   []string // added to the environment, "K=V"
	Stdin string
}

// RunWith is Run with extra environment variables and a standard input.
func RunWith(t testing.TB, bin string, o RunOpts, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdin = strings.NewReader(o.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: args, Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run tandem %v: %v", args, err)
	}
	return r
}
