package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/state"
	"github.com/tandemsync/tandem/test/testenv"
)

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a")
	p.write(p.L, "dir/b.txt", "b")
	p.write(p.R, "c.txt", "c")
	check := func(stage string) testenv.Doc {
		t.Helper()
		before := []map[string]testenv.Entry{testenv.Snapshot(t, p.L), testenv.Snapshot(t, p.R)}
		markers := []bool{exists(filepath.Join(p.L, ".tandem")), exists(filepath.Join(p.R, ".tandem"))}
		r := p.once("--dry-run", "--json")
		if r.Code != 0 {
			t.Fatalf("%s: %s", stage, r)
		}
		after := []map[string]testenv.Entry{testenv.Snapshot(t, p.L), testenv.Snapshot(t, p.R)}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: --dry-run changed a side:\nbefore %v\nafter  %v", stage, before, after)
		}
		if m := []bool{exists(filepath.Join(p.L, ".tandem")), exists(filepath.Join(p.R, ".tandem"))}; !reflect.DeepEqual(m, markers) {
			t.Fatalf("%s: --dry-run created a root marker", stage)
		}
		d := r.JSON(t)
		if !d.DryRun || len(d.Done) != 0 || len(d.Planned) == 0 {
			t.Fatalf("%s: dry run doc: planned %+v done %+v", stage, d.Planned, d.Done)
		}
		return d
	}
	d := check("first sync")
	ops := map[string]int{}
	for _, a := range d.Planned {
		ops[a.Op]++
		if a.Reason == "" {
			t.Errorf("planned %+v has no reason", a)
		}
	}
	if ops["upload"] != 2 || ops["download"] != 1 {
		t.Fatalf("planned ops %v", ops)
	}
	p.sync()
	// Changes of every kind, including a delete and a conflict.
	p.write(p.L, "a.txt", "a2")
	p.write(p.R, "a.txt", "a3")
	os.Remove(filepath.Join(p.L, "dir/b.txt"))
	p.write(p.R, "new.txt", "n")
	os.Rename(filepath.Join(p.R, "c.txt"), filepath.Join(p.R, "c2.txt"))
	check("changes on both sides")
	// The text plan lists each action with its reason.
	r := p.once("--dry-run")
	mustContain(t, r.Stdout, "Plan (dry run", "dry-run output")
	mustContain(t, r.Stdout, "deleted locally", "dry-run output")
	mustContain(t, r.Stdout, "nothing changed", "dry-run output")
	// A real pass afterwards still does all of it.
	p.sync()
	p.converged()
}

// schemaKeys is the documented --json schema (README.md).
var schemaKeys = []string{"pair", "local", "remote", "dry_run", "ok", "exit_code", "notes", "planned", "done",
	"conflicts", "skipped", "problems", "totals", "took_ms", "error"}

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a")
	p.write(p.R, "b.txt", "bb")
	if err := os.Symlink("/etc/passwd", filepath.Join(p.L, "link")); err != nil {
		t.Fatal(err)
	}
	r := p.once("--json")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.Stdout)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := append([]string(nil), schemaKeys...)
	sort.Strings(want)
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	types := map[string]string{"pair": "string", "local": "string", "remote": "string", "dry_run": "bool",
		"ok": "bool", "exit_code": "float64", "notes": "[]interface {}", "planned": "[]interface {}",
		"done": "[]interface {}", "conflicts": "[]interface {}", "skipped": "[]interface {}",
		"problems": "[]interface {}", "totals": "map[string]interface {}", "took_ms": "float64", "error": "string"}
	for k, typ := range types {
		if got := fmt.Sprintf("%T", m[k]); got != typ {
			t.Errorf("%s is %s, want %s", k, got, typ)
		}
	}
	d := r.JSON(t)
	local, _ := filepath.EvalSymlinks(p.L)
	remoteRoot, _ := filepath.EvalSymlinks(p.R)
	if d.Local != local || d.Remote != "dir:"+remoteRoot || d.Pair != state.PairID(local, "dir:"+remoteRoot) {
		t.Errorf("pair fields: %q %q %q", d.Pair, d.Local, d.Remote)
	}
	if !d.OK || d.ExitCode != 0 || d.Error != "" {
		t.Errorf("ok=%v exit=%d error=%q", d.OK, d.ExitCode, d.Error)
	}
	for _, x := range d.Done {
		if x.Op == "" || x.Path == "" {
			t.Errorf("done entry %+v", x)
		}
	}
	if d.Totals["uploaded"] != 1 || d.Totals["downloaded"] != 1 || d.Totals["up_bytes"] != 1 || d.Totals["down_bytes"] != 2 {
		t.Errorf("totals = %v", d.Totals)
	}
	if len(d.Skipped) != 1 || d.Skipped[0].Path != "link" || !strings.Contains(d.Skipped[0].Reason, "symlink") {
		t.Errorf("skipped = %+v, want the symlink", d.Skipped)
	}
	// Failures get the same document, with the exit code.
	r = testenv.Run(t, bin, "once", "--json", "--state-dir", p.SD, filepath.Join(p.L, "missing"), "dir:"+p.R)
	e := r.JSON(t)
	if r.Code != 2 || e.ExitCode != 2 || e.OK || e.Error == "" {
		t.Fatalf("usage error doc: %s", r)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	file := filepath.Join(p.L, "file.txt")
	p.write(p.L, "file.txt", "x")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing local dir", []string{"once", filepath.Join(p.L, "nope"), "dir:" + p.R}, 2, "does not exist"},
		{"local is a file", []string{"once", file, "dir:" + p.R}, 2, "not a directory"},
		{"unknown scheme", []string{"once", p.L, "ftp:/x"}, 2, `unknown scheme "ftp"`},
		{"no scheme", []string{"once", p.L, p.R}, 2, "want scheme:path"},
		{"remote parent missing", []string{"once", p.L, "dir:" + filepath.Join(p.R, "a", "b")}, 2, "nor its parent"},
		{"overlapping roots", []string{"once", p.L, "dir:" + filepath.Join(p.L, "sub")}, 2, "overlap"},
		{"one argument", []string{"once", p.L}, 2, "accepts 2 arg"},
		{"bad flag", []string{"once", "--no-such-flag", p.L, "dir:" + p.R}, 2, "unknown flag"},
		{"bad policy", []string{"once", "--conflict", "coin-toss", p.L, "dir:" + p.R}, 2, "keep-both"},
		{"bad max-delete", []string{"once", "--max-delete", "0", p.L, "dir:" + p.R}, 2, "--max-delete"},
		{"unknown command", []string{"sink"}, 2, "unknown command"},
		{"version", []string{"version"}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{}, c.args...)
			if args[0] == "once" {
				args = append([]string{"once", "--state-dir", p.SD}, args[1:]...)
			}
			r := testenv.Run(t, bin, args...)
			if r.Code != c.code {
				t.Fatalf("exit %d, want %d\n%s", r.Code, c.code, r)
			}
			if c.msg != "" {
				mustContain(t, r.Stderr, c.msg, "stderr")
			}
		})
	}
	r := testenv.Run(t, bin, "version")
	mustContain(t, r.Stdout, "tandem dev (go1.", "version")
	if exists(filepath.Join(p.R, ".tandem")) {
		t.Fatal("a usage error touched the remote")
	}
}

func TestStateInUse(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a")
	d := p.sync()
	st, err := state.Open(filepath.Join(p.SD, d.Pair+".db"), nil, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p.write(p.L, "b.txt", "b")
	r := p.once()
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r)
	}
	mustContain(t, r.Stderr, "in use by another tandem process", "stderr")
	mustContain(t, r.Stderr, fmt.Sprintf("pid %d", os.Getpid()), "stderr")
	if r.Took > 5*time.Second {
		t.Fatalf("the second opener waited %s", r.Took)
	}
	if exists(filepath.Join(p.R, "b.txt")) {
		t.Fatal("the locked-out pass synced anyway")
	}
}

func TestCorruptStateAndResync(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a1")
	p.write(p.L, "keep.txt", "k")
	p.write(p.R, "r.txt", "r1")
	d := p.sync()
	db := filepath.Join(p.SD, d.Pair+".db")
	garbage := []byte(strings.Repeat("this is not a bbolt file ", 2000))
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	// Both sides change while the state is broken; and one file is deleted locally, which a base-less merge
	// must bring back rather than delete remotely.
	p.write(p.L, "a.txt", "a2 local")
	p.write(p.R, "a.txt", "a3 remote")
	p.write(p.R, "new-remote.txt", "n")
	os.Remove(filepath.Join(p.L, "keep.txt"))
	r := p.once()
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r)
	}
	mustContain(t, r.Stderr, "--resync", "stderr")
	mustContain(t, r.Stderr, "corrupt", "stderr")

	d = p.sync("--resync")
	if len(d.Notes) == 0 || !strings.Contains(d.Notes[0], "moved to") {
		t.Fatalf("notes = %q, want the moved-aside path", d.Notes)
	}
	if d.Totals["deleted_local"]+d.Totals["deleted_remote"] != 0 {
		t.Fatalf("a base-less merge deleted something: %+v", d.Done)
	}
	tree := p.converged()
	// Nothing lost: both versions of a.txt, the restored keep.txt, both new files.
	var aVersions []string
	for path := range tree {
		if strings.HasPrefix(path, "a") && strings.HasSuffix(path, ".txt") {
			aVersions = append(aVersions, p.read(p.L, path))
		}
	}
	sort.Strings(aVersions)
	if !reflect.DeepEqual(aVersions, []string{"a2 local", "a3 remote"}) {
		t.Fatalf("versions of a.txt = %q", aVersions)
	}
	for _, f := range []string{"keep.txt", "r.txt", "new-remote.txt"} {
		if _, ok := tree[f]; !ok {
			t.Errorf("%s lost", f)
		}
	}
	matches, _ := filepath.Glob(db + ".broken-*")
	if len(matches) != 1 {
		t.Fatalf("moved-aside database: %v", matches)
	}
	// --resync on a healthy database keeps the base: nothing to do.
	d = p.sync("--resync")
	if len(d.Done) != 0 {
		t.Fatalf("resync of a healthy pair did %+v", d.Done)
	}
}

func TestRootMarkerSafety(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"local", "remote"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			p := newPair(t)
			for i := range 5 {
				p.write(p.L, fmt.Sprintf("f%d.txt", i), "content")
			}
			p.sync()
			emptied, other := p.L, p.R
			if side == "remote" {
				emptied, other = p.R, p.L
			}
			before := testenv.Snapshot(t, other)
			ents, _ := os.ReadDir(emptied)
			for _, e := range ents {
				if err := os.RemoveAll(filepath.Join(emptied, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
			r := p.once()
			if r.Code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.Code, r)
			}
			mustContain(t, r.Stderr, "marker", "stderr")
			if after := testenv.Snapshot(t, other); !reflect.DeepEqual(before, after) {
				t.Fatalf("the other side changed after its partner was emptied")
			}
			if len(testenv.TrashFiles(t, other)) != 0 {
				t.Fatal("files were sent to the trash")
			}
		})
	}
}

func TestRemoteRootRemoved(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a")
	p.sync()
	if err := os.RemoveAll(p.R); err != nil {
		t.Fatal(err)
	}
	before := testenv.Snapshot(t, p.L)
	r := p.once()
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r)
	}
	mustContain(t, r.Stderr, "missing", "stderr")
	if exists(p.R) {
		t.Fatal("a vanished remote root was re-created after the pair had synced")
	}
	if !reflect.DeepEqual(before, testenv.Snapshot(t, p.L)) {
		t.Fatal("local side changed")
	}
}

func TestBigDeleteGuard(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for i := range 20 {
		p.write(p.L, fmt.Sprintf("docs/f%02d.txt", i), fmt.Sprintf("file %d", i))
	}
	p.sync()
	want := map[string]bool{}
	for i := range 15 {
		name := fmt.Sprintf("docs/f%02d.txt", i)
		want[testenv.FileSHA256(t, filepath.Join(p.L, name))] = true
		os.Remove(filepath.Join(p.L, name))
	}
	before := testenv.Snapshot(t, p.R)
	r := p.once()
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r)
	}
	mustContain(t, r.Stderr, "--allow-deletes", "stderr")
	if !reflect.DeepEqual(before, testenv.Snapshot(t, p.R)) {
		t.Fatal("the remote changed although the guard stopped the pass")
	}
	d := p.sync("--allow-deletes")
	if d.Totals["deleted_remote"] != 15 {
		t.Fatalf("deleted %d remotely, want 15", d.Totals["deleted_remote"])
	}
	tree := p.converged()
	if len(tree) != 6 { // docs/ and 5 files
		t.Fatalf("tree = %v", tree)
	}
	trash := testenv.TrashFiles(t, p.R)
	got := map[string]bool{}
	for _, h := range trash {
		got[h] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("remote trash holds %d distinct files, want the 15 deleted ones: %v", len(got), trash)
	}
}

func TestNewRemoteFolder(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.R = filepath.Join(p.R, "new-cloud-folder")
	p.write(p.L, "a.txt", "a")
	// A dry run plans the first sync but does not create the folder.
	r := p.once("--dry-run", "--json")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	d := r.JSON(t)
	if len(d.Planned) != 1 || d.Planned[0].Op != "upload" || exists(p.R) {
		t.Fatalf("planned %+v, created %v", d.Planned, exists(p.R))
	}
	p.sync()
	if got := p.read(p.R, "a.txt"); got != "a" {
		t.Fatalf("a.txt = %q", got)
	}
	p.converged()
}

func TestIgnoreFile(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, ".tandemignore", "build/\n*.log\n")
	p.write(p.L, "src/main.go", "package main")
	p.write(p.L, "build/out.bin", "binary")
	p.write(p.L, "debug.log", "log")
	p.write(p.L, "notes.txt~", "editor backup")
	p.write(p.R, "remote.log", "remote log")
	p.sync()
	for _, f := range []string{"build", "debug.log", "notes.txt~"} {
		if exists(filepath.Join(p.R, f)) {
			t.Errorf("ignored %s reached the remote", f)
		}
	}
	if exists(filepath.Join(p.L, "remote.log")) {
		t.Error("ignored remote.log reached the local side")
	}
	if got := p.read(p.R, ".tandemignore"); !strings.Contains(got, "build/") {
		t.Errorf("the ignore file itself is synced: %q", got)
	}
	// Ignored is never deleted: un-ignoring later syncs them, ignoring a synced file deletes nothing.
	p.write(p.L, ".tandemignore", "build/\nsrc/\n")
	d := p.sync()
	if d.Totals["deleted_local"]+d.Totals["deleted_remote"] != 0 {
		t.Fatalf("ignoring deleted: %+v", d.Done)
	}
	if !exists(filepath.Join(p.R, "src/main.go")) || !exists(filepath.Join(p.L, "remote.log")) || !exists(filepath.Join(p.R, "debug.log")) {
		t.Fatal("a newly ignored file vanished, or an un-ignored one was not synced")
	}
}

// TestResyncAfterEmptiedRootAsAdvised follows the advice of the root-marker stop ("if this is a new start, run
// tandem once --resync"). A user who really starts over in an emptied folder must get out of the stop that way,
// safely: a merge without a base brings the other side's files back and deletes nothing. Today --resync keeps
// the base on a healthy database, so the pass stops again with the same advice: a loop with no way out short of
// deleting the state database by hand.
func TestResyncAfterEmptiedRootAsAdvised(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a")
	p.sync()
	if err := os.RemoveAll(p.L); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p.L, 0o755); err != nil {
		t.Fatal(err)
	}
	r := p.once()
	if r.Code != 1 {
		t.Fatalf("%s", r)
	}
	mustContain(t, r.Stderr, "--resync", "the stop's advice")
	r = p.once("--resync")
	if r.Code != 0 {
		t.Fatalf("following the advice did not get the pair going again:\n%s", r)
	}
	if got := p.read(p.L, "a.txt"); got != "a" {
		t.Fatalf("a.txt = %q", got)
	}
	p.converged()
}
