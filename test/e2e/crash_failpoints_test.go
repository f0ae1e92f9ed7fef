package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

var fpBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// fpBinary builds cmd/tandem with -tags failpoints once per test process.
func fpBinary(t *testing.T) string {
	t.Helper()
	fpBuild.once.Do(func() {
		fpBuild.dir, fpBuild.err = os.MkdirTemp("", "tandem-e2e-fp-")
		if fpBuild.err != nil {
			return
		}
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			fpBuild.err = err
			return
		}
		fpBuild.bin = filepath.Join(fpBuild.dir, "tandem.fp")
		cmd := exec.Command("go", "build", "-tags", "failpoints", "-o", fpBuild.bin, "./cmd/tandem")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fpBuild.err = fmt.Errorf("go build -tags failpoints: %w\n%s", err, out)
		}
	})
	if fpBuild.err != nil {
		t.Fatal(fpBuild.err)
	}
	return fpBuild.bin
}

// TestKillAtFailpoints (CRASH-01, localdir backend) kills `tandem once` with a true SIGKILL at each named
// failpoint of the executor, at its 1st, 2nd and 3rd hit, on a workload with uploads, downloads, local deletes,
// a local folder move and a conflict. Plain passes must then converge: both trees equal, every version the test
// wrote still present (in the tree, as a conflict copy or in a trash), no temp file, and a last pass doing nothing.
func TestKillAtFailpoints(t *testing.T) {
	t.Parallel()
	fp := fpBinary(t)
	points := []string{
		"upload.afterPut", "download.beforePut", "download.afterPut", "delete.beforeCall", "delete.afterCall",
		"move.afterCall", "conflict.afterRename", "commit.before", "commit.after",
	}
	var mu sync.Mutex
	killed := 0
	t.Cleanup(func() { t.Logf("%d of %d runs died by SIGKILL at their failpoint", killed, 3*len(points)) })
	for _, name := range points {
		for nth := 1; nth <= 3; nth++ {
			t.Run(fmt.Sprintf("%s@%d", name, nth), func(t *testing.T) {
				t.Parallel()
				if killAtFailpoint(t, fp, name, nth) {
					mu.Lock()
					killed++
					mu.Unlock()
				}
			})
		}
	}
}

func killAtFailpoint(t *testing.T, fp, name string, nth int) bool {
	p := newPair(t)
	versions := map[string]string{} // sha256 -> what it is; every one must survive
	write := func(side, rel, data string, keep bool) {
		p.write(side, rel, data)
		if keep {
			versions[testenv.FileSHA256(t, filepath.Join(side, filepath.FromSlash(rel)))] = rel
		}
	}
	// A synced start: files to delete, folders to move, files to change on both sides (three of each, so
	// that every failpoint is reached at least three times).
	for i := range 3 {
		write(p.L, fmt.Sprintf("del/x%d.txt", i), fmt.Sprintf("to be deleted %d\n", i), true)
		for j := range 2 {
			write(p.L, fmt.Sprintf("mv%d/m%d.txt", i, j), fmt.Sprintf("moved file %d/%d\n", i, j), true)
		}
		write(p.L, fmt.Sprintf("c%d.txt", i), fmt.Sprintf("conflict base %d\n", i), false) // overwritten by the test
	}
	p.sync()

	for i := range 6 {
		write(p.L, fmt.Sprintf("up/u%d.txt", i), fmt.Sprintf("upload %d %s\n", i, name), true)
		write(p.R, fmt.Sprintf("down/d%d.txt", i), fmt.Sprintf("download %d %s %d\n", i, name, nth), true)
	}
	for i := range 3 {
		if err := os.Remove(filepath.Join(p.L, "del", fmt.Sprintf("x%d.txt", i))); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(p.L, fmt.Sprintf("mv%d", i)), filepath.Join(p.L, fmt.Sprintf("moved%d", i))); err != nil {
			t.Fatal(err)
		}
		write(p.L, fmt.Sprintf("c%d.txt", i), fmt.Sprintf("conflict %d: the local edit, longer\n", i), true)
		write(p.R, fmt.Sprintf("c%d.txt", i), fmt.Sprintf("conflict %d: the remote edit\n", i), true)
	}

	// The failpoint pass: dies by SIGKILL, or finishes if the point is not reached nth times.
	cmd := exec.Command(fp, "once", "--state-dir", p.SD, p.L, "dir:"+p.R)
	cmd.Env = append(os.Environ(), fmt.Sprintf("TANDEM_FAILPOINTS=%s=kill@%d", name, nth))
	out, err := cmd.CombinedOutput()
	died := false
	var ee *exec.ExitError
	switch {
	case err == nil:
		t.Logf("%s was not hit %d times; the pass finished", name, nth)
	case errors.As(err, &ee):
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("failpoint pass ended with %v, want SIGKILL or exit 0:\n%s", err, out)
		}
		died = true
	default:
		t.Fatal(err)
	}

	// Recovery: plain passes until one exits 0.
	ok := false
	var last testenv.Result
	for range 4 {
		if last = p.once(); last.Code == 0 {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatalf("no recovery pass exited 0 in 4 tries:\n%s", last)
	}

	tree := testenv.SameTree(t, p.L, p.R)
	have := map[string]bool{}
	for _, h := range tree {
		have[h] = true
	}
	for _, side := range []string{p.L, p.R} {
		for _, h := range testenv.TrashFiles(t, side) {
			have[h] = true
		}
		if tf := testenv.TempFiles(t, side); len(tf) > 0 {
			t.Errorf("temp files left: %v", tf)
		}
	}
	var lost []string
	for h, what := range versions {
		if !have[h] {
			lost = append(lost, what)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("versions lost: %v\ntree: %v", lost, tree)
	}
	for i := range 6 {
		for _, rel := range []string{fmt.Sprintf("up/u%d.txt", i), fmt.Sprintf("down/d%d.txt", i), fmt.Sprintf("moved%d/m1.txt", i%3)} {
			if _, ok := tree[rel]; !ok {
				t.Errorf("%s missing after recovery", rel)
			}
		}
	}
	d := p.sync()
	if len(d.Done) != 0 || len(d.Conflicts) != 0 {
		t.Errorf("a pass after recovery did something: %+v %+v", d.Done, d.Conflicts)
	}
	return died
}
