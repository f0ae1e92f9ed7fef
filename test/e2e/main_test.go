// Package e2e runs the real tandem binary on real temporary folders: every scenario of the Foundation issue,
// the safety stops and kill -9 recovery. TestMain builds the binary once.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = testenv.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if fpBuild.dir != "" { // the failpoints binary, shared by every test that calls fpBinary
		os.RemoveAll(fpBuild.dir)
	}
	os.Exit(code)
}

// pair is a local folder L synced with a dir: remote R, with its own state dir.
type pair struct {
	t        *testing.T
	L, R, SD string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	return &pair{t: t, L: t.TempDir(), R: t.TempDir(), SD: t.TempDir()}
}

// once runs `tandem once` on the pair with extra flags.
func (p *pair) once(flags ...string) testenv.Result {
	p.t.Helper()
	args := append([]string{"once", "--state-dir", p.SD}, flags...)
	return testenv.Run(p.t, bin, append(args, p.L, "dir:"+p.R)...)
}

// sync runs a pass that must succeed and returns its JSON document.
func (p *pair) sync(flags ...string) testenv.Doc {
	p.t.Helper()
	r := p.once(append([]string{"--json"}, flags...)...)
	if r.Code != 0 {
		p.t.Fatalf("pass failed:\n%s", r)
	}
	d := r.JSON(p.t)
	if !d.OK || d.ExitCode != 0 || len(d.Problems) > 0 {
		p.t.Fatalf("pass not ok:\n%s", r)
	}
	return d
}

// converged checks both sides are equal, then that one more pass does nothing. It returns the common tree.
func (p *pair) converged() map[string]string {
	p.t.Helper()
	tree := testenv.SameTree(p.t, p.L, p.R)
	d := p.sync()
	if len(d.Done) != 0 || len(d.Conflicts) != 0 {
		p.t.Fatalf("a pass after convergence did something: %+v %+v", d.Done, d.Conflicts)
	}
	for _, side := range []string{p.L, p.R} {
		if tf := testenv.TempFiles(p.t, side); len(tf) > 0 {
			p.t.Fatalf("temp files left: %v", tf)
		}
	}
	return tree
}

func (p *pair) write(side, rel, data string) {
	p.t.Helper()
	testenv.WriteFile(p.t, side, rel, []byte(data))
}

func (p *pair) read(side, rel string) string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(side, filepath.FromSlash(rel)))
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func mustContain(t *testing.T, s, want, what string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Fatalf("%s does not mention %q:\n%s", what, want, s)
	}
}
