package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

// refusing wraps a remote whose change feed refuses the login.
type refusing struct{ remote.Remote }

func (refusing) Changes(context.Context, remote.Cursor) (remote.Batch, error) {
	return remote.Batch{}, remote.ErrUnauthorized
}

// startDaemon runs a daemon with one pair: a local folder and the given feed remote.
func startDaemon(t *testing.T, rem remote.Remote) (local string, cl *Client) {
	t.Helper()
	return startDaemonWith(t, rem, zaptest.NewLogger(t), nil, nil)
}

// startDaemonWith is startDaemon with a logger of the caller's and hooks to adjust the config before the daemon
// reads it and the daemon before it runs (either may be nil).
func startDaemonWith(t *testing.T, rem remote.Remote, lg *zap.Logger, conf func(*config.Config), setup func(*Daemon)) (local string, cl *Client) {
	t.Helper()
	local = t.TempDir()
	sd, err := os.MkdirTemp("", "tandem-d-") // short: unix socket paths are limited to ~108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sd) })
	cl, stop := runDaemon(t, sd, local, rem, lg, conf, setup)
	t.Cleanup(stop)
	return local, cl
}

// runDaemon runs a daemon with one pair, local and rem, on the state dir sd, until stop (which reports the
// daemon's error). conf adjusts the config before New reads it, setup the daemon before it runs.
func runDaemon(t *testing.T, sd, local string, rem remote.Remote, lg *zap.Logger, conf func(*config.Config), setup func(*Daemon)) (cl *Client, stop func()) {
	t.Helper()
	open := func(ctx context.Context, lg *zap.Logger, p config.Pair) (*PairDeps, error) {
		st, err := state.Open(filepath.Join(sd, "pair.db"), lg, state.Options{})
		if err != nil {
			return nil, err
		}
		ld, err := localdir.Open(lg, local, localdir.Options{})
		if err != nil {
			return nil, err
		}
		return &PairDeps{Local: local, Spec: rem.String(), Remote: rem, Store: st,
			Ignored: func(string, bool) bool { return false },
			NewEngine: func(allow bool, progress func(engine.Event)) (*engine.Engine, error) {
				return engine.New(engine.Deps{Local: ld, Remote: rem, Store: st, Logger: lg},
					engine.Options{AllowDeletes: allow, Progress: progress})
			},
			Close: func() error { ld.Close(); return st.Close() },
		}, nil
	}
	cfg := &config.Config{Pairs: []config.Pair{{Name: "p", Local: local, Remote: "mem:/", PollInterval: time.Second}}}
	if conf != nil {
		conf(cfg)
	}
	d, err := New(Options{Config: cfg, StateDir: sd, Open: open, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	return NewClient(sd), func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

func waitState(t *testing.T, cl *Client, what string, cond func(PairStatus) bool) PairStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last PairStatus
	for time.Now().Before(deadline) {
		if s, err := cl.Status(context.Background()); err == nil && len(s.Pairs) == 1 {
			if last = s.Pairs[0]; cond(last) {
				return last
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last %+v", what, last)
	return last
}

func TestPollerKicksAPassOnRemoteNews(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	local, cl := startDaemon(t, mem)
	waitState(t, cl, "the first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	body := "from the feed"
	if _, err := mem.Put(context.Background(), "news.txt", strings.NewReader(body), int64(len(body)), time.Now(), remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(local, "news.txt")); err == nil && string(b) == body {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote change never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := waitState(t, cl, "idle", func(s PairStatus) bool { return s.State == StateIdle && !s.Pending })
	if s.CursorAge < 0 || s.CursorAge > 10 {
		t.Errorf("cursor age %g", s.CursorAge)
	}
	m, err := cl.Metrics(context.Background())
	if err != nil || !strings.Contains(m, `tandem_actions_total{op="download",pair="p"} 1`) || !strings.Contains(m, `tandem_pairs{state="idle"} 1`) {
		t.Fatalf("metrics: %v\n%s", err, m)
	}
}

func TestRefusedLoginStopsThePair(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	_, cl := startDaemon(t, refusing{mem})
	s := waitState(t, cl, "login-required", func(s PairStatus) bool { return s.State == StateLoginRequired })
	if !strings.Contains(s.Message, "tandem resume p") {
		t.Errorf("message %q does not say how to go on", s.Message)
	}
	passes := s.Passes
	if _, err := cl.Rescan(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	if s := waitState(t, cl, "status", func(PairStatus) bool { return true }); s.Passes != passes || s.State != StateLoginRequired {
		t.Errorf("a rescan ran a pass while login is required: %+v", s)
	}
}

func TestRedact(t *testing.T) {
	var buf bytes.Buffer
	lg, closeLog, err := NewLogger(LogOptions{Console: &buf})
	if err != nil {
		t.Fatal(err)
	}
	lg.Info("GET https://api.example/list?access_token=SECRET1&x=1",
		zap.String("access_token", "SECRET2"),
		zap.Error(errors.New(`Get "https://h/?auth=SECRET3": EOF`)),
		zap.String("header", "Authorization: Bearer SECRET4"),
		zap.Stringer("tok", remote.Secret("SECRET5")),
		zap.String("path", "plain/file.txt"))
	closeLog()
	out := buf.String()
	for _, s := range []string{"SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5"} {
		if strings.Contains(out, s) {
			t.Errorf("%s leaked:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "plain/file.txt") {
		t.Errorf("an innocent field was redacted:\n%s", out)
	}
}

// TestSocketRefusesOtherUsers is SEC-05's peer-credential half: with the socket's modes loosened, a process
// of another uid connects but gets no answer.
func TestSocketRefusesOtherUsers(t *testing.T) {
	setpriv, err1 := exec.LookPath("setpriv")
	py, err2 := "/usr/bin/python3", error(nil) // a system python another uid can run (not a shim under /root)
	if _, err := os.Stat(py); err != nil {
		err2 = err
	}
	if os.Getuid() != 0 || err1 != nil || err2 != nil {
		t.Skip("needs root, setpriv and python3 to connect as uid 65534")
	}
	dir, err := os.MkdirTemp("", "tandem-sock-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "run", "tandem.sock")
	core, logs := observer.New(zap.WarnLevel)
	ln, err := listenUnix(sock, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			c.Read(buf)
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nsecret status"))
			c.Close()
		}
	}()
	for _, p := range []string{dir, filepath.Dir(sock), sock} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	script := `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print("connected")
try:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n"); print(repr(s.recv(100)))
except OSError as e:
    print("refused", e)`
	run := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Logf("%v: %v", args, err)
		}
		return string(out)
	}
	if out := run(py, "-c", script, sock); !strings.Contains(out, "secret status") {
		t.Fatalf("our own uid was refused: %s", out)
	}
	if out := run(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", script, sock); !strings.Contains(out, "connected") || strings.Contains(out, "secret") {
		t.Fatalf("uid 65534 did not connect, or got an answer: %s", out)
	}
	// The refusal is logged with the peer's uid: Accept logs before it closes the connection, and the client
	// above saw the close.
	refused := logs.FilterMessageSnippet("refused a connection").All()
	if len(refused) == 0 {
		t.Fatalf("the refused peer was not logged: %v", logs.All())
	}
	if e := refused[0]; !strings.Contains(fmt.Sprint(e.ContextMap()), "65534") {
		t.Fatalf("refusal logged without the uid: %v", e.ContextMap())
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	dir, err := os.MkdirTemp("", "tandem-sock-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "run", "tandem.sock")
	ln, err := listenUnix(sock, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(sock, zap.NewNop()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second listener: %v, want ErrRunning", err)
	}
	// A killed daemon leaves its socket file behind: nobody answers it.
	ln.(*peerListener).Listener.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left for the test: %v", err)
	}
	ln, err = listenUnix(sock, zap.NewNop())
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
}

// longPoll makes a feed remote long-poll: Changes called for a long poll waits until the feed has news.
type longPoll struct{ remote.Remote }

func (l longPoll) Capabilities() remote.Capabilities {
	c := l.Remote.Capabilities()
	c.LongPoll = true
	return c
}

func (l longPoll) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	for {
		b, err := l.Remote.Changes(ctx, cur)
		if err != nil || !remote.LongPollAllowed(ctx) || len(b.Changes) > 0 {
			return b, err
		}
		select { // the server's side of a long poll, as a test double: look again shortly
		case <-ctx.Done():
			return remote.Batch{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestPollerStartsWithTheFirstCursor: a new pair has no change cursor until its first pass lists the remote; the
// long-polling poller must follow the feed from the moment that pass ends, not one poll interval (here an hour)
// later.
func TestPollerStartsWithTheFirstCursor(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	local, cl := startDaemonWith(t, longPoll{mem}, zaptest.NewLogger(t), func(c *config.Config) {
		c.Pairs[0].PollInterval = time.Hour
	}, nil)
	waitState(t, cl, "the first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	body := "news in the first minute"
	if _, err := mem.Put(context.Background(), "first.txt", strings.NewReader(body), int64(len(body)), time.Now(), remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, "the remote change", func(PairStatus) bool {
		b, err := os.ReadFile(filepath.Join(local, "first.txt"))
		return err == nil && string(b) == body
	})
}

// TestRootMissingAdvice (issue 13 item 7): a root that lost its marker stops the pair with one piece of advice
// that works while the daemon holds the database: not a bare `tandem once --resync`, which would find the
// database in use.
func TestRootMissingAdvice(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	if _, err := mem.Put(context.Background(), "a.txt", strings.NewReader("a"), 1, time.Now(), remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	local, cl := startDaemon(t, mem)
	waitState(t, cl, "the file downloaded", func(s PairStatus) bool {
		_, err := os.Stat(filepath.Join(local, "a.txt"))
		return s.State == StateIdle && err == nil
	})
	if err := os.RemoveAll(filepath.Join(local, remote.ReservedDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Rescan(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, cl, "the safety stop", func(s PairStatus) bool { return s.State == StateError })
	if !strings.Contains(s.Message, "stop tandem, run `tandem once --resync`") || !strings.Contains(s.Message, "--state-dir") ||
		strings.Count(s.Message, "tandem once --resync") != 1 || !strings.Contains(s.Message, "tandem resume p") {
		t.Errorf("message %q: want one piece of advice that names stopping tandem first", s.Message)
	}
}

// TestBigDeleteAdvice (issue 13 item 7): the big-delete stop gives the daemon's way through, not also the one
// of `tandem once`.
func TestBigDeleteAdvice(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	ctx := context.Background()
	for i := range 20 {
		b := "x"
		if _, err := mem.Put(ctx, remote.Path(fmt.Sprintf("f%02d", i)), strings.NewReader(b), 1, time.Now(), remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	local, cl := startDaemon(t, mem)
	waitState(t, cl, "the files downloaded", func(s PairStatus) bool {
		m, _ := filepath.Glob(filepath.Join(local, "f*"))
		return s.State == StateIdle && len(m) == 20
	})
	for i := range 20 {
		if err := os.Remove(filepath.Join(local, fmt.Sprintf("f%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Rescan(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, cl, "the guard", func(s PairStatus) bool { return s.State == StateError })
	if !strings.Contains(s.Message, "tandem resume --allow-deletes p") || strings.Contains(s.Message, "run again with --allow-deletes") {
		t.Errorf("message %q: want only the daemon's advice", s.Message)
	}
}

// TestDialErrors (issue 13 item 7): a socket another user's daemon owns (permission denied) is not reported as
// "not running"; a socket nobody listens on is.
func TestDialErrors(t *testing.T) {
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	if err := dialError("/s", fmt.Errorf("Get: %w", denied)); errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "permission denied") ||
		!strings.Contains(err.Error(), "another user") {
		t.Errorf("EACCES: %v", err)
	}
	for _, e := range []syscall.Errno{syscall.ENOENT, syscall.ECONNREFUSED} {
		gone := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", e)}
		if err := dialError("/s", gone); !errors.Is(err, ErrNotRunning) {
			t.Errorf("%v: %v", e, err)
		}
	}
}
