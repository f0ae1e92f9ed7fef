package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestJSONOnEveryExit (issue 13 item 9): with --json, stdout holds exactly one JSON document on every exit,
// usage errors included, and usage errors exit 2 (item 12).
func TestJSONOnEveryExit(t *testing.T) {
	p := newPair(t)
	for _, args := range [][]string{
		{"once", "--json", "--bogus", p.L, "dir:" + p.R},
		{"once", "--json", "--parallel", "abc", p.L, "dir:" + p.R},
		{"once", "--json", p.L},
		{"once", "--json", "--state-dir", p.SD, "--bwlimit", "0.1", p.L, "dir:" + p.R},
		{"once", "--json", "--state-dir", p.SD, "--bwlimit", "1e3", p.L, "dir:" + p.R},
		{"once", "--json", "--state-dir", p.SD, "--bwlimit", "99999999999999999999", p.L, "dir:" + p.R},
		{"once", "--json", "--state-dir", p.SD, "--endpoint", "notaurl", p.L, "pcloud:/X"},
	} {
		r := testenv.Run(t, bin, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "tandem: ") {
			t.Errorf("want exit 2 with a message:\n%s", r)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(r.Stdout))
		var d testenv.Doc
		if err := dec.Decode(&d); err != nil || d.OK || d.ExitCode != 2 || d.Error == "" || d.Done == nil || d.Notes == nil {
			t.Errorf("stdout is not one failure document (exit_code 2, lists present): %v\n%s", err, r)
			continue
		}
		if dec.More() {
			t.Errorf("more than one document on stdout:\n%s", r)
		}
	}
	if ents, _ := os.ReadDir(p.SD); len(ents) != 0 {
		t.Fatalf("usage errors left %v in the state dir", ents)
	}
}

// TestFailedStartLeavesNothing (issue 13 item 10): `tandem once L pcloud:/X` without a login fails and leaves
// no state database (nor a state dir it created) behind.
func TestFailedStartLeavesNothing(t *testing.T) {
	l := t.TempDir()
	sd := filepath.Join(t.TempDir(), "state")
	xdg := t.TempDir() // no login in it
	env := []string{"XDG_CONFIG_HOME=" + xdg, "XDG_STATE_HOME=" + filepath.Join(t.TempDir(), "xdgstate")}
	r := testenv.RunWith(t, bin, testenv.RunOpts{Env: env}, "once", "--state-dir", sd, l, "pcloud:/X")
	if r.Code != 1 || !strings.Contains(r.Stderr, "tandem login pcloud") {
		t.Fatalf("want exit 1 naming tandem login:\n%s", r)
	}
	if exists(sd) {
		ents, _ := os.ReadDir(sd)
		t.Fatalf("a failed start left the state dir %s behind: %v", sd, ents)
	}
	if ents, _ := os.ReadDir(l); len(ents) != 0 {
		t.Fatalf("a failed start left %v in the local folder", ents)
	}
	// The default state dir too.
	r = testenv.RunWith(t, bin, testenv.RunOpts{Env: env}, "once", "--json", l, "pcloud:/X")
	if d := r.JSON(t); r.Code != 1 || d.ExitCode != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(env[1][len("XDG_STATE_HOME="):], "tandem")); len(ents) != 0 {
		t.Fatalf("a failed start left %v in the default state dir", ents)
	}
}
