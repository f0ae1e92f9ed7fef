package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// sample is a result with one of everything, names with a control byte and both Unicode spellings included.
func sample() *result {
	res := &result{Pair: "0123456789abcdef0123456789abcdef", Local: "/home/ana/Documents", Remote: "dir:/mnt/nas/Documents"}
	res.Done = []doneJSON{
		{Op: "upload", Path: "report.txt", Bytes: 3},
		{Op: "download", Path: "music/song.mp3", Bytes: 5 << 20},
		{Op: "move-remote", Path: "a.txt", To: "archive/a.txt"},
		{Op: "move-local", Path: "b.txt", To: "b2.txt"},
		{Op: "mkdir-local", Path: "shared"},
		{Op: "delete-remote", Path: "old\x1b[31m.txt"},
		{Op: "delete-local", Path: "gone.txt"},
		{Op: "record", Path: "same.txt"},
		{Op: "upload", Path: "caf\u00e9.txt", Bytes: 1536},
		{Op: "upload", Path: "cafe\u0301.txt", Bytes: 0},
	}
	res.Conflicts = []conflictJSON{
		{Path: "notes/todo.txt", Copy: "notes/todo (conflict laptop 2026-03-01 101500).txt", Kept: "both", Reason: "both sides changed differently"},
		{Path: "x", Copy: "x (conflict laptop 2026-03-01 101500)", Kept: "both", Type: true, Reason: "file on one side, folder on the other"},
		{Path: "y.txt", Kept: "remote", Reason: "both sides changed differently"},
	}
	res.Skipped = []skipJSON{{Path: "link", Side: "local", Reason: "symlink (not followed)"}}
	res.Problems = []problemJSON{{Op: "upload", Path: "locked.db", Error: "upload locked.db: permission denied"}}
	res.Totals = totalsJSON{Uploaded: 3, Downloaded: 1, UpBytes: 1539, DownBytes: 5 << 20, DeletedLocal: 1, DeletedRemote: 1,
		MovedLocal: 1, MovedRemote: 1, Other: 2}
	res.finish(fmt.Errorf("%w: 1 failed", errProblems), 1234*time.Millisecond)
	return res
}

func TestTextOutput(t *testing.T) {
	var b bytes.Buffer
	if err := (textPrinter{}).print(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "once.txt", b.Bytes())
	if strings.Contains(b.String(), "\x1b") {
		t.Fatal("a control byte of a file name reached the terminal")
	}
}

// writeCounter counts the writes it takes; fail: each write fails after taking the bytes.
type writeCounter struct {
	writes int
	bytes  int
	fail   error
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes++
	w.bytes += len(b)
	return len(b), w.fail
}

// A first sync's report has a line per file: it goes out in a few large writes, not one system call per line,
// and a failing output is still reported.
func TestTextOutputIsBuffered(t *testing.T) {
	res := &result{Pair: "p", Local: "/l", Remote: "dir:/r"}
	for i := range 5000 {
		res.Done = append(res.Done, doneJSON{Op: "upload", Path: fmt.Sprintf("d/f%05d.bin", i), Bytes: 100})
	}
	res.finish(nil, time.Second)
	var plain bytes.Buffer
	if err := (textPrinter{}).print(&plain, res); err != nil {
		t.Fatal(err)
	}
	var w writeCounter
	if err := (textPrinter{}).print(&w, res); err != nil {
		t.Fatal(err)
	}
	if w.bytes != plain.Len() || w.writes > plain.Len()/(32<<10)+1 {
		t.Fatalf("%d lines went out in %d writes (%d bytes, want %d)", len(res.Done), w.writes, w.bytes, plain.Len())
	}
	bad := writeCounter{fail: errors.New("stdout closed")}
	if err := (textPrinter{}).print(&bad, res); err == nil || !strings.Contains(err.Error(), "stdout closed") {
		t.Fatalf("a failing output: %v", err)
	}
}

func TestJSONOutput(t *testing.T) {
	var b bytes.Buffer
	if err := (jsonPrinter{}).print(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "once.json", b.Bytes())
}

func TestDryRunOutput(t *testing.T) {
	res := &result{Pair: "p", Local: "/l", Remote: "dir:/r", DryRun: true}
	res.Planned = []plannedJSON{
		{Op: "move-remote", Path: "a.txt", To: "b/a.txt", Reason: "moved locally"},
		{Op: "mkdir-remote", Path: "b", Reason: "parent of a kept path"},
		{Op: "upload", Path: "new.txt", Reason: "new local file"},
		{Op: "delete-local", Path: "old.txt", Reason: "deleted remotely"},
	}
	res.Notes = []string{"/r does not exist yet: a real pass creates it"}
	res.finish(nil, 20*time.Millisecond)
	var b bytes.Buffer
	if err := (textPrinter{}).print(&b, res); err != nil {
		t.Fatal(err)
	}
	golden(t, "dry-run.txt", b.Bytes())
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{usagef("bad"), 2},
		{fmt.Errorf("wrapped: %w", usagef("bad")), 2},
		{fmt.Errorf("%w: %w: too many", engine.ErrSafetyStop, engine.ErrBigDelete), 1},
		{fmt.Errorf("x: %w", state.ErrInUse), 1},
		{fmt.Errorf("x: %w", state.ErrCorrupt), 1},
		{fmt.Errorf("x: %w", state.ErrNewerSchema), 1},
		{errProblems, 1},
		{errors.New("disk on fire"), 1},
		{context.Canceled, 1},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestNormaliseSpec(t *testing.T) {
	reg := NewRegistry()
	dir := t.TempDir()
	real, _ := filepath.EvalSymlinks(dir)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"dir:" + dir, "dir:" + dir + "/", "dir:" + link, "dir:" + dir + "/./"} {
		_, _, norm, err := normaliseSpec(reg, spec)
		if err != nil || norm != "dir:"+real {
			t.Errorf("normaliseSpec(%q) = %q, %v; want %q", spec, norm, err, "dir:"+real)
		}
	}
	// A folder that does not exist yet resolves through its parent.
	if _, _, norm, err := normaliseSpec(reg, "dir:"+filepath.Join(link, "new")); err != nil || norm != "dir:"+filepath.Join(real, "new") {
		t.Errorf("new folder: %q, %v", norm, err)
	}
	for _, bad := range []string{"nope", "ftp:/x", "dir:", "dir:" + filepath.Join(dir, "a", "b")} {
		if _, _, _, err := normaliseSpec(reg, bad); !IsUsage(err) {
			t.Errorf("normaliseSpec(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/a", "/a/b", false}, {"/..x", "/", true}} {
		if got := within(c.p, c.dir); got != c.want {
			t.Errorf("within(%q, %q) = %v", c.p, c.dir, got)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestOnceInProcess runs the command tree as main does, with a test App, on two real folders.
func TestOnceInProcess(t *testing.T) {
	l, r, sd := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(l, "a.txt"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
		Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
		IsTerminal: func(io.Writer) bool { return false }}
	code := Execute(context.Background(), app, []string{"once", "--state-dir", sd, l, "dir:" + r})
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "↑ upload a.txt (3 B)") {
		t.Fatalf("output:\n%s", out.String())
	}
	if b, err := os.ReadFile(filepath.Join(r, "a.txt")); err != nil || string(b) != "abc" {
		t.Fatalf("remote a.txt = %q, %v", b, err)
	}
	out.Reset()
	errb.Reset()
	if code := Execute(context.Background(), app, []string{"once", l}); code != 2 || !strings.Contains(errb.String(), "--help") {
		t.Fatalf("one argument: exit %d, stderr %q", code, errb.String())
	}
}

// TestProgressOnTerminal: with a terminal on stderr a pass with work draws a bar there and nothing on stdout
// but the report; a pass with no work draws nothing.
func TestProgressOnTerminal(t *testing.T) {
	l, r, sd := t.TempDir(), t.TempDir(), t.TempDir()
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(l, fmt.Sprintf("f%d", i)), bytes.Repeat([]byte("x"), 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
		Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
		IsTerminal: func(io.Writer) bool { return true }}
	if code := Execute(context.Background(), app, []string{"once", "--state-dir", sd, l, "dir:" + r}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "actions") {
		t.Fatalf("no progress on stderr: %q", errb.String())
	}
	errb.Reset()
	if code := Execute(context.Background(), app, []string{"once", "--state-dir", sd, l, "dir:" + r}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if errb.Len() != 0 {
		t.Fatalf("a no-change pass drew %q", errb.String())
	}
}

// Without an app key, `tandem login verizon` says how to register one, and fails before any network call.
func TestLoginVerizonWithoutAppKey(t *testing.T) {
	t.Setenv("TANDEM_VERIZON_CLIENT_ID", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	var out, errb bytes.Buffer
	app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
		Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
		IsTerminal: func(io.Writer) bool { return false }}
	code := Execute(context.Background(), app, []string{"login", "verizon", "--no-browser", "--token-dir", t.TempDir()})
	if code == 0 || !strings.Contains(errb.String(), "ThingSpace") || !strings.Contains(errb.String(), "--client-id") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestUsageErrors (issue 13 items 9 and 12): every usage problem exits 2 with a message on stderr, and with
// --json stdout holds exactly one JSON document carrying that exit code, whichever step refused the command line.
func TestUsageErrors(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	l, r := t.TempDir(), t.TempDir()
	cases := [][]string{
		{"once", "--json", "--bogus", l, "dir:" + r},
		{"once", "--json", "--parallel", "abc", l, "dir:" + r},
		{"once", "--json", l},
		{"once", "--json", l, "dir:" + r, "extra"},
		{"once", "--json", "--bwlimit", "0.1", l, "dir:" + r},
		{"once", "--json", "--bwlimit", "1e3", l, "dir:" + r},
		{"once", "--json", "--bwlimit", "99999999999999999999", l, "dir:" + r},
		{"once", "--json", "--endpoint", "notaurl", l, "pcloud:/X"},
		{"once", "--json=true", "--ca-file", filepath.Join(l, "missing.pem"), l, "pcloud:/X"},
		{"status", "--json", "--bogus"},
		{"--json", "bogus-command"},
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
			Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
			IsTerminal: func(io.Writer) bool { return false }}
		code := Execute(context.Background(), app, args)
		if code != ExitUsage || !strings.Contains(errb.String(), "tandem: ") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 with a message", args, code, errb.String())
			continue
		}
		dec := json.NewDecoder(&out)
		var doc struct {
			OK       *bool  `json:"ok"`
			ExitCode int    `json:"exit_code"`
			Error    string `json:"error"`
		}
		if err := dec.Decode(&doc); err != nil || doc.OK == nil || *doc.OK || doc.ExitCode != ExitUsage || doc.Error == "" {
			t.Errorf("%q: stdout is not one failure document with exit_code 2: %v %q", args, err, out.String())
			continue
		}
		if dec.More() {
			t.Errorf("%q: more than one document on stdout: %q", args, out.String())
		}
	}
}

// TestVerboseLogsEveryFile (issue 13 item 8): -v logs every file transferred or deleted at debug level; without
// it nothing but warnings reach stderr.
func TestVerboseLogsEveryFile(t *testing.T) {
	l, r, sd := t.TempDir(), t.TempDir(), t.TempDir()
	for dir, name := range map[string]string{l: "up.txt", r: "down.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("abc"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &App{Registry: NewRegistry(), NewLogger: ConsoleLogger, Stdout: &out, Stderr: &errb, Now: time.Now,
			Hostname: func() (string, error) { return "testhost", nil }, IsTerminal: func(io.Writer) bool { return false }}
		if code := Execute(context.Background(), app, append([]string{"once", "--state-dir", sd}, append(args, l, "dir:"+r)...)); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return errb.String()
	}
	logs := run("-v")
	for _, want := range []string{"upload\t{\"remote\": \"dir:" + r + "\", \"path\": \"up.txt\", \"bytes\": 3}",
		"download\t{\"remote\": \"dir:" + r + "\", \"path\": \"down.txt\", \"bytes\": 3}"} {
		if !strings.Contains(logs, want) {
			t.Errorf("-v log lacks %q:\n%s", want, logs)
		}
	}
	if err := os.Remove(filepath.Join(l, "up.txt")); err != nil {
		t.Fatal(err)
	}
	if logs := run("--verbose"); !strings.Contains(logs, "delete-remote\t{\"remote\": \"dir:"+r+"\", \"path\": \"up.txt\"}") {
		t.Errorf("--verbose log lacks the delete:\n%s", logs)
	}
	if err := os.WriteFile(filepath.Join(l, "again.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if logs := run(); logs != "" {
		t.Errorf("without -v stderr holds %q", logs)
	}
}

// TestNoPreviousState (issue 13 item 11): a pass without a sync point (first sync, or a state database that was
// deleted or emptied) says so in notes, text and JSON; a state path that cannot be a database names the cause.
func TestNoPreviousState(t *testing.T) {
	l, r, sd := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(l, "a.txt"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
			Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
			IsTerminal: func(io.Writer) bool { return false }}
		code := Execute(context.Background(), app, append([]string{"once"}, append(args, l, "dir:"+r)...))
		return out.String(), errb.String(), code
	}
	const note = "no previous sync state"
	if out, _, code := run("--state-dir", sd); code != 0 || !strings.Contains(out, "note: "+note) {
		t.Fatalf("first sync: exit %d, output lacks the note:\n%s", code, out)
	}
	if out, _, code := run("--state-dir", sd); code != 0 || strings.Contains(out, note) {
		t.Fatalf("second sync: exit %d, output:\n%s", code, out)
	}
	dbs, _ := filepath.Glob(filepath.Join(sd, "*.db"))
	if len(dbs) != 1 {
		t.Fatalf("databases %v", dbs)
	}
	if err := os.Remove(dbs[0]); err != nil {
		t.Fatal(err)
	}
	out, _, code := run("--state-dir", sd, "--json")
	var doc struct{ Notes []string }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if len(doc.Notes) != 1 || !strings.Contains(doc.Notes[0], note) || !strings.Contains(doc.Notes[0], "come back") {
		t.Fatalf("notes after the database was deleted: %q", doc.Notes)
	}

	// A folder where the database belongs.
	if err := os.Remove(dbs[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dbs[0], 0o700); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run("--state-dir", sd); code != 1 || !strings.Contains(errs, dbs[0]+" is a folder") {
		t.Errorf("a folder in the way: exit %d, %q", code, errs)
	}
	// A file where the state dir belongs.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run("--state-dir", file); code != 1 || !strings.Contains(errs, file+" is not a folder") {
		t.Errorf("a file as the state dir: exit %d, %q", code, errs)
	}
	// An immutable state dir (chattr +i: root on a file system that has the attribute).
	imm := t.TempDir()
	if err := exec.Command("chattr", "+i", imm).Run(); err != nil {
		t.Logf("no immutable attribute here (%v): that case is not tested", err)
		return
	}
	defer exec.Command("chattr", "-i", imm).Run()
	if _, errs, code := run("--state-dir", imm); code != 1 || !strings.Contains(errs, "immutable") || !strings.Contains(errs, "--state-dir") {
		t.Errorf("an immutable state dir: exit %d, %q", code, errs)
	}
}

// TestStatusShowsBytesInFlight (issue 13 item 7): the text status counts a running transfer's bytes, as --json
// does, instead of "0 B of 300.0 MiB" until it ends; with and without the bar (--watch on a terminal).
func TestStatusShowsBytesInFlight(t *testing.T) {
	now := time.Now()
	st := &daemon.Status{PID: 1, Pairs: []daemon.PairStatus{{Name: "docs", Local: "/l", Remote: "dir:/r", State: daemon.StateSyncing,
		PassBytesTotal: 300 << 20, Transfers: []daemon.Transfer{{Path: "big.bin", Op: "upload", Total: 300 << 20, Done: 100 << 20, Started: now}}}}}
	for _, bars := range []bool{false, true} {
		var b bytes.Buffer
		printStatus(&b, st, now, bars)
		out := b.String()
		if !strings.Contains(out, "big.bin (100.0 MiB of 300.0 MiB") {
			t.Errorf("bars %v: the transfer line lacks its bytes:\n%s", bars, out)
		}
		if strings.Contains(out, "0 B of 300.0 MiB") {
			t.Errorf("bars %v: the pass line ignores the bytes in flight:\n%s", bars, out)
		}
		if !bars && !strings.Contains(out, "100.0 MiB of 300.0 MiB,") && !strings.Contains(out, "  100.0 MiB of 300.0 MiB\n") {
			t.Errorf("the pass line lacks the bytes:\n%s", out)
		}
	}
}

// TestProgressUnits (issue 13 item 13): the bars speak MiB and MiB/s, like the text beside them, never MB.
func TestProgressUnits(t *testing.T) {
	var errb bytes.Buffer
	app := &App{Stderr: &errb, IsTerminal: func(io.Writer) bool { return true }}
	p := newProgress(app, onceOpts{})
	a := engine.Action{Op: engine.Upload, Path: "big.bin", Local: &state.Record{Entry: remote.Entry{Size: 50 << 20}}}
	p.event(engine.Event{Action: a})
	p.event(engine.Event{Action: a, Progress: true, Bytes: 20 << 20})
	p.event(engine.Event{Action: a, Done: true})
	p.mu.Lock()
	out := p.bar.String()
	p.mu.Unlock()
	st := daemon.PairStatus{PassBytesTotal: 300 << 20, PassBytesDone: 100 << 20}
	out += "\n" + passBar(st, true)
	if !strings.Contains(out, "MiB") || regexp.MustCompile(`[0-9.]+ ?[KMG]B\b`).MatchString(out) {
		t.Errorf("units differ from MiB:\n%q", out)
	}
}

// TestSkippedNameAsStored (issue 13 item 13): a local name with a control character is skipped; JSON gives the
// stored name (JSON escapes the byte itself), the text output a quoted one, and both name the side.
func TestSkippedNameAsStored(t *testing.T) {
	l, r, sd := t.TempDir(), t.TempDir(), t.TempDir()
	name := "bad\x01name.txt"
	if err := os.WriteFile(filepath.Join(l, name), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
			Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
			IsTerminal: func(io.Writer) bool { return false }}
		if code := Execute(context.Background(), app, append([]string{"once", "--state-dir", sd}, append(args, l, "dir:"+r)...)); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return out.String()
	}
	var doc struct {
		Skipped []struct{ Path, Side, Reason string }
	}
	if err := json.Unmarshal([]byte(run("--json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Skipped) != 1 || doc.Skipped[0].Path != name || doc.Skipped[0].Side != "local" {
		t.Fatalf("skipped = %+v, want the stored name %q on the local side", doc.Skipped, name)
	}
	if text := run(); !strings.Contains(text, `~ skipped local "bad\x01name.txt": `) || strings.Contains(text, "\x01") {
		t.Fatalf("text output:\n%q", text)
	}
	for _, p := range []string{"plain.txt", `"quoted but printable"`, `"bad\xffutf8"`} {
		if got := storedName(p); got != p {
			t.Errorf("storedName(%q) = %q, want it unchanged", p, got)
		}
	}
}

// TestFailureReportedOnce (issue 13 item 13): an action that fails is listed once in the report, not also as a
// warning log line beside it (-v shows the log line).
func TestFailureReportedOnce(t *testing.T) {
	l, r, sd := t.TempDir(), t.TempDir(), t.TempDir()
	run := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		app := &App{Registry: NewRegistry(), NewLogger: ConsoleLogger, Stdout: &out, Stderr: &errb, Now: time.Now,
			Hostname: func() (string, error) { return "testhost", nil }, IsTerminal: func(io.Writer) bool { return false }}
		code := Execute(context.Background(), app, append([]string{"once", "--state-dir", sd}, append(args, l, "dir:"+r)...))
		return out.String(), errb.String(), code
	}
	if _, errs, code := run(); code != 0 {
		t.Fatalf("first pass: exit %d %s", code, errs)
	}
	if err := os.WriteFile(filepath.Join(l, "new.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An immutable remote folder refuses the upload (root included); needs chattr and a file system with it.
	if err := exec.Command("chattr", "+i", r).Run(); err != nil {
		t.Skipf("no immutable attribute here: %v", err)
	}
	defer exec.Command("chattr", "-i", r).Run()
	out, errs, code := run()
	if code != 1 || strings.Count(out, "! failed") != 1 || !strings.Contains(out, "upload new.txt") {
		t.Fatalf("exit %d, want the failure listed once:\n%s", code, out)
	}
	if strings.Contains(errs, "WARN") || strings.Contains(errs, "action failed") {
		t.Errorf("the failure was also logged as a warning:\n%s", errs)
	}
	if _, errs, _ := run("-v"); !strings.Contains(errs, "action failed") {
		t.Errorf("-v does not show the failure's log line:\n%s", errs)
	}
}
