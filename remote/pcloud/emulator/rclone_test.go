package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rclone runs the real rclone binary against the emulator. Missing rclone skips locally and fails in CI, where
// .ci/run installs it: the interop check must not silently vanish there.
type rcloneRunner struct {
	t    *testing.T
	bin  string
	env  []string
	args []string
}

func newRclone(t *testing.T, r *Running) *rcloneRunner {
	t.Helper()
	bin, err := exec.LookPath("rclone")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rclone is not installed: the pCloud interop test needs it in CI (apt-get install rclone)")
		}
		t.Skip("rclone not installed; skipping the interop test (it is required when CI=true)")
	}
	tok, _ := json.Marshal(map[string]string{"access_token": r.Token, "token_type": "bearer", "expiry": "0001-01-01T00:00:00Z"})
	cfg := filepath.Join(t.TempDir(), "rclone.conf")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"RCLONE_CONFIG_EMU_TYPE=pcloud",
		"RCLONE_CONFIG_EMU_HOSTNAME="+r.Host,
		"RCLONE_CONFIG_EMU_TOKEN="+string(tok),
	)
	// Trust comes from the emulator's CA only; certificate verification stays on.
	return &rcloneRunner{t: t, bin: bin, env: env, args: []string{"--config", cfg, "--ca-cert", r.CAFile,
		"--low-level-retries", "2", "--retries", "1"}}
}

func (rc *rcloneRunner) run(args ...string) string {
	rc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rc.bin, append(append([]string{}, rc.args...), args...)...)
	cmd.Env = rc.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		rc.t.Fatalf("rclone %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func (rc *rcloneRunner) version() string {
	out, err := exec.Command(rc.bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}

func writeTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"a.txt":                    []byte("hello from tandem\n"),
		"empty.bin":                nil,
		"sub/b.bin":                bytes.Repeat([]byte{0, 1, 2, 3, 250, 251}, 200000), // ~1.2 MB
		"sub/deeper/c.txt":         []byte("c"),
		"sub/with space & ü.txt":   []byte("unicode and spaces"),
		"other/same-name/x.json":   []byte(`{"k":1}`),
		"other/same-name/y.weird~": []byte("y"),
	}
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		if err := os.Chtimes(full, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestRcloneInterop(t *testing.T) {
	// rclone 1.60 lists recursively from folder 0 (--fast-list), which today's pCloud refuses.
	r := Start(t, Options{AllowRootRecursive: true})
	rc := newRclone(t, r)
	t.Logf("testing with %s", rc.version())

	src, back := t.TempDir(), t.TempDir()
	files := writeTree(t, src)

	rc.run("copy", src, "emu:tree")
	snap := r.Snapshot()
	for p, data := range files {
		e, ok := snap["/tree/"+p]
		if !ok || e.Size != int64(len(data)) {
			t.Errorf("emulator has %q = %+v after rclone copy", p, e)
		}
		if ok && !e.Modified.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
			t.Errorf("%q mtime %v", p, e.Modified)
		}
	}

	// lsjson, with and without fast-list (recursive listfolder), must agree with the tree.
	for _, extra := range [][]string{nil, {"--fast-list"}} {
		var items []struct {
			Path    string
			Size    int64
			IsDir   bool
			ModTime time.Time
		}
		out := rc.run(append([]string{"lsjson", "-R", "emu:tree"}, extra...)...)
		if err := json.Unmarshal([]byte(out), &items); err != nil {
			t.Fatalf("lsjson %v: %v\n%s", extra, err, out)
		}
		nFiles := 0
		for _, it := range items {
			if it.IsDir {
				continue
			}
			nFiles++
			if data, ok := files[it.Path]; !ok || int64(len(data)) != it.Size {
				t.Errorf("lsjson %v: unexpected %+v", extra, it)
			}
		}
		if nFiles != len(files) {
			t.Errorf("lsjson %v: %d files, want %d", extra, nFiles, len(files))
		}
	}
	if out := rc.run("ls", "emu:"); strings.Count(out, "\n") != len(files) {
		t.Errorf("rclone ls emu: listed\n%s", out)
	}

	// Hashes (md5 and sha1 against a non-eapi host) must match what rclone computes locally.
	rc.run("check", src, "emu:tree")
	rc.run("md5sum", "emu:tree")

	// Download and compare bytes.
	rc.run("copy", "emu:tree", back)
	for p, data := range files {
		got, err := os.ReadFile(filepath.Join(back, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%q differs after the round trip (%v)", p, err)
		}
	}
	rc.run("cat", "--offset", "3", "--count", "5", "emu:tree/a.txt") // Range request

	// Server-side copy, move (renamefile) and directory move (renamefolder), about (userinfo).
	rc.run("copyto", "emu:tree/a.txt", "emu:tree/a-copy.txt")
	rc.run("moveto", "emu:tree/a-copy.txt", "emu:tree/sub/a-moved.txt")
	rc.run("moveto", "emu:tree/other", "emu:tree/other-renamed")
	rc.run("about", "emu:")
	snap = r.Snapshot()
	if _, ok := snap["/tree/sub/a-moved.txt"]; !ok {
		t.Error("server-side copy + move did not land")
	}
	if _, ok := snap["/tree/other-renamed/same-name/x.json"]; !ok {
		t.Error("directory move did not land")
	}
	moves, recursive := 0, 0
	ops := map[string]int{}
	for _, e := range r.Log() {
		ops[e.Method+" "+e.Op]++
		if e.Op == "listfolder" && strings.Contains(e.Query, "recursive=1") {
			recursive++
		}
		if e.Op == "renamefile" || e.Op == "renamefolder" || e.Op == "copyfile" {
			moves++
		}
	}
	t.Logf("calls rclone made: %v", ops)
	if recursive == 0 {
		t.Error("--fast-list made no recursive listfolder call")
	}
	if moves < 3 {
		t.Errorf("rclone used %d server-side copy/move calls, want at least 3", moves)
	}

	// Delete files, then purge the rest.
	rc.run("delete", "emu:tree/sub/deeper")
	if _, ok := r.Snapshot()["/tree/sub/deeper/c.txt"]; ok {
		t.Error("rclone delete left the file")
	}
	rc.run("rmdir", "emu:tree/sub/deeper")
	rc.run("purge", "emu:tree")
	if snap := r.Snapshot(); len(snap) != 0 {
		t.Errorf("after purge the emulator still holds %v", keys(snap))
	}
}

func keys(m map[string]SnapEntry) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return fmt.Sprint(out)
}
