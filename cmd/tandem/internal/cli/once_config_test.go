package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/state"
)

// TestMain keeps every test away from the user's own config file: `tandem once` reads the default one.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-cli-test-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// onceConfigEnv is a local folder with a.txt and secret.txt, an empty remote folder, and fresh config and
// state homes (the config file is not written).
type onceConfigEnv struct {
	t                    *testing.T
	l, r, cfg, stateHome string
}

func newOnceConfigEnv(t *testing.T) *onceConfigEnv {
	t.Helper()
	e := &onceConfigEnv{t: t, l: t.TempDir(), r: t.TempDir(), stateHome: t.TempDir()}
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("XDG_STATE_HOME", e.stateHome)
	e.cfg = filepath.Join(cfgHome, "tandem", "config.yaml")
	for name, body := range map[string]string{"a.txt": "abc", "secret.txt": "KEY=1"} {
		if err := os.WriteFile(filepath.Join(e.l, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *onceConfigEnv) writeConfig(body string) {
	e.t.Helper()
	if err := os.MkdirAll(filepath.Dir(e.cfg), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.cfg, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *onceConfigEnv) once(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	app := &App{Registry: NewRegistry(), NewLogger: func(io.Writer, bool) *zap.Logger { return zap.NewNop() },
		Stdout: &out, Stderr: &errb, Now: time.Now, Hostname: func() (string, error) { return "testhost", nil },
		IsTerminal: func(io.Writer) bool { return false }}
	code := Execute(context.Background(), app, append(append([]string{"once"}, args...), e.l, "dir:"+e.r))
	return out.String(), errb.String(), code
}

func (e *onceConfigEnv) onRemote(name string) bool {
	_, err := os.Lstat(filepath.Join(e.r, name))
	return err == nil
}

// The pair id `tandem once` gives e's folders (both are symlink-free temp dirs).
func (e *onceConfigEnv) db(dir string) string {
	l, _ := filepath.EvalSymlinks(e.l)
	r, _ := filepath.EvalSymlinks(e.r)
	return filepath.Join(dir, state.PairID(l, "dir:"+r)+".db")
}

// A configured pair's ignore patterns apply to `tandem once` on the same folders, as the daemon applies them,
// and the output says which pair of which file was used; without the config the file is synced.
func TestOnceUsesConfigIgnore(t *testing.T) {
	e := newOnceConfigEnv(t)
	e.writeConfig(fmt.Sprintf("pairs:\n  - name: docs\n    local: %s\n    remote: dir:%s\n    ignore: [\"secret.txt\"]\n", e.l, e.r))
	out, errs, code := e.once()
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errs)
	}
	if !e.onRemote("a.txt") || e.onRemote("secret.txt") {
		t.Fatalf("remote a.txt %v, secret.txt %v: want a.txt only", e.onRemote("a.txt"), e.onRemote("secret.txt"))
	}
	want := fmt.Sprintf("note: using pair \"docs\" of %s: its ignore patterns;", e.cfg)
	if !strings.Contains(out, want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	out, _, code = e.once("--json")
	var doc struct{ Notes []string }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || len(doc.Notes) != 1 ||
		!strings.HasPrefix(doc.Notes[0], `using pair "docs"`) {
		t.Fatalf("--json: exit %d, %v, notes %q", code, err, doc.Notes)
	}

	// Without the config the same command copies the file.
	e2 := newOnceConfigEnv(t)
	if out, errs, code := e2.once(); code != 0 || !e2.onRemote("secret.txt") || strings.Contains(out, "using pair") {
		t.Fatalf("without a config: exit %d, secret.txt on the remote %v:\n%s\n%s", code, e2.onRemote("secret.txt"), out, errs)
	}
}

// The config's state_dir holds the database of a configured pair when --state-dir is absent, so once and the
// daemon share it; --state-dir still wins.
func TestOnceUsesConfigStateDir(t *testing.T) {
	e := newOnceConfigEnv(t)
	sd := filepath.Join(t.TempDir(), "state")
	cfg := filepath.Join(t.TempDir(), "other.yaml")
	body := fmt.Sprintf("state_dir: %s\npairs:\n  - local: %s\n    remote: dir:%s\n", sd, e.l, e.r)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := e.once("--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(e.db(sd)); err != nil {
		t.Fatalf("no database in the config's state_dir: %v", err)
	}
	if _, err := os.Stat(e.db(filepath.Join(e.stateHome, "tandem"))); err == nil {
		t.Fatal("a database in the default state dir too")
	}
	if !strings.Contains(out, "its ignore patterns and state_dir;") {
		t.Fatalf("the note does not name state_dir:\n%s", out)
	}
	flagDir := t.TempDir()
	out, _, code = e.once("--config", cfg, "--state-dir", flagDir)
	if _, err := os.Stat(e.db(flagDir)); err != nil || code != 0 || !strings.Contains(out, "--state-dir overrides its state_dir") {
		t.Fatalf("--state-dir: exit %d, database %v:\n%s", code, err, out)
	}
}

// A config file with problems stops `tandem once` before anything is written: exit 1 (as `tandem run` and
// `tandem config check` report a bad config), the file and its problems named. An explicit --config that does
// not exist is a usage error.
func TestOnceBadConfig(t *testing.T) {
	for name, body := range map[string]string{
		"syntax":  "pairs: [\n",
		"invalid": "pairs:\n  - local: relative/folder\n    remote: bogus:/x\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newOnceConfigEnv(t)
			e.writeConfig(body)
			out, errs, code := e.once()
			if code != ExitError || !strings.Contains(errs, "config file "+e.cfg+" has problems") ||
				!strings.Contains(errs, "\n  "+e.cfg+":") || !strings.Contains(errs, "tandem config check") ||
				!strings.Contains(errs, "--config") || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errs)
			}
			if ents, err := os.ReadDir(e.r); err != nil || len(ents) != 0 {
				t.Fatalf("remote folder holds %v (%v)", ents, err)
			}
			if ents, _ := os.ReadDir(e.stateHome); len(ents) != 0 {
				t.Fatalf("state home holds %v", ents)
			}
			out, _, code = e.once("--json")
			var doc struct {
				ExitCode int    `json:"exit_code"`
				Error    string `json:"error"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil || code != ExitError || doc.ExitCode != ExitError ||
				!strings.Contains(doc.Error, e.cfg) {
				t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
			}
		})
	}
	e := newOnceConfigEnv(t)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, errs, code := e.once("--config", missing); code != ExitUsage || !strings.Contains(errs, missing) {
		t.Fatalf("a missing --config: exit %d, %q", code, errs)
	}
}

// A config whose pair has other folders changes nothing: its ignore patterns and state_dir are not used.
func TestOnceOtherConfigPair(t *testing.T) {
	e := newOnceConfigEnv(t)
	ol, or, sd := t.TempDir(), t.TempDir(), t.TempDir()
	e.writeConfig(fmt.Sprintf("state_dir: %s\npairs:\n  - local: %s\n    remote: dir:%s\n    ignore: [\"secret.txt\"]\n  - local: %s\n    remote: dir:%s/sub\n    ignore: [\"secret.txt\"]\n",
		sd, ol, e.r, e.l, or))
	out, errs, code := e.once()
	if code != 0 || !e.onRemote("secret.txt") || strings.Contains(out, "using pair") {
		t.Fatalf("exit %d, secret.txt on the remote %v:\n%s\n%s", code, e.onRemote("secret.txt"), out, errs)
	}
	if _, err := os.Stat(e.db(filepath.Join(e.stateHome, "tandem"))); err != nil {
		t.Fatalf("no database in the default state dir: %v", err)
	}
	if ents, _ := os.ReadDir(sd); len(ents) != 0 {
		t.Fatalf("the config's state_dir holds %v", ents)
	}
}
