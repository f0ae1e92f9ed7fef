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

// TestRemoteOverlapRefused (issue 13 item 4): two pairs on one dir: remote, a remote inside another pair's local
// folder and a remote inside another pair's remote are refused by `add`, `config check` and `run`, naming both
// pairs; cloud remotes overlap on the same provider and account, with names folded as the provider folds them.
func TestRemoteOverlapRefused(t *testing.T) {
	base := t.TempDir()
	mk := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	l1, l2, l3, l4, r := mk("l1"), mk("l2"), mk("l3"), mk("l4"), mk("r")
	conf := filepath.Join(base, "config.yaml")
	add := func(args ...string) testenv.Result {
		return testenv.Run(t, bin, append([]string{"add", "--config", conf}, args...)...)
	}
	if res := add("--name", "first", l1, "dir:"+r); res.Code != 0 {
		t.Fatalf("first add failed:\n%s", res)
	}
	before, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ local, remote, want string }{
		{l2, "dir:" + r, "is the remote folder of pairs[0] (\"first\")"},
		{l3, "dir:" + filepath.Join(l1, "inside"), "lies inside the local folder of pairs[0] (\"first\")"},
		{l4, "dir:" + filepath.Join(r, "inner"), "lies inside the remote folder of pairs[0] (\"first\")"},
	} {
		res := add("--name", "second", c.local, c.remote)
		if res.Code != 1 || !strings.Contains(res.Stderr, c.want) || !strings.Contains(res.Stderr, `pairs[1] ("second")`) {
			t.Errorf("add %s %s: want exit 1 naming both pairs (%q):\n%s", c.local, c.remote, c.want, res)
		}
	}
	if after, _ := os.ReadFile(conf); string(after) != string(before) {
		t.Fatalf("a refused add changed the config:\n%s", after)
	}

	// The same cases written by hand, plus cloud remotes: config check lists each, run refuses to start.
	sd := filepath.Join(base, "state")
	bad := filepath.Join(base, "bad.yaml")
	src := "state_dir: " + sd + "\npairs:\n" +
		"  - {name: one, local: " + l1 + ", remote: dir:" + r + "}\n" +
		"  - {name: two, local: " + l2 + ", remote: dir:" + r + "/}\n" +
		"  - {name: three, local: " + l3 + ", remote: dir:" + l1 + "/inside}\n" +
		"  - {name: four, local: " + l4 + ", remote: dir:" + r + "/inner}\n" +
		"  - {name: v1, local: " + mk("v1") + ", remote: vboxx:/Root/Docs}\n" +
		"  - {name: v2, local: " + mk("v2") + ", remote: vboxx:/root/docs/sub}\n" +
		"  - {name: p1, local: " + mk("p1") + ", remote: pcloud:/Photos}\n" +
		"  - {name: p2, local: " + mk("p2") + ", remote: pcloud:/photos}\n" +
		"  - {name: p3, local: " + mk("p3") + ", remote: pcloud:/Photos, account: other}\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	wants := []string{
		`pairs[1].remote: pairs[1] ("two") syncs into ` + r + `, which is the remote folder of pairs[0] ("one")`,
		`pairs[2].remote: pairs[2] ("three") syncs into ` + filepath.Join(l1, "inside") + `, which lies inside the local folder of pairs[0] ("one")`,
		`pairs[3].remote: pairs[3] ("four") syncs into ` + filepath.Join(r, "inner") + `, which lies inside the remote folder of pairs[0] ("one")`,
		`pairs[5].remote: pairs[5] ("v2") syncs into vboxx:/root/docs/sub, which lies inside the remote folder of pairs[4] ("v1")`,
	}
	res := testenv.Run(t, bin, "config", "check", "--config", bad)
	if res.Code != 1 {
		t.Fatalf("config check: want exit 1:\n%s", res)
	}
	for _, w := range wants {
		mustContain(t, res.Stdout, w, "config check")
	}
	for _, not := range []string{"pairs[7].remote", "pairs[8].remote"} {
		if strings.Contains(res.Stdout, not) {
			t.Errorf("%s reported (pCloud tells case apart; another account is another folder):\n%s", not, res)
		}
	}
	res = testenv.Run(t, bin, "run", "--config", bad)
	if res.Code != 1 {
		t.Fatalf("run: want exit 1 before starting:\n%s", res)
	}
	for _, w := range wants {
		mustContain(t, res.Stderr, w, "run")
	}
	if ents, _ := os.ReadDir(sd); len(ents) != 0 {
		t.Fatalf("a refused start left %v in the state dir", ents)
	}
}
