package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestKilledPassConverges kills `tandem once` with SIGKILL at several points of a first sync that copies large
// and many small files both ways (and, once, kills the recovery pass too). Delays count from the moment the
// first large file's temp file appears, so every kill lands while content is being copied. The next passes must converge with
// every file on both sides, byte for byte, no temp file left, and a final pass that does nothing.
func TestKilledPassConverges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		first, second time.Duration // second: kill the first recovery pass too
	}{
		{first: 0},
		{first: 50 * time.Millisecond},
		{first: 200 * time.Millisecond},
		{first: 600 * time.Millisecond},
		{first: 100 * time.Millisecond, second: 100 * time.Millisecond},
	}
	for i, c := range cases {
		name := fmt.Sprintf("kill-at-%s", c.first)
		if c.second > 0 {
			name += fmt.Sprintf("-and-%s", c.second)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t)
			want := map[string]string{}
			want["large/up.bin"] = testenv.WriteRandom(t, filepath.Join(p.L, "large/up.bin"), 48<<20, uint64(100+i))
			want["large/down.bin"] = testenv.WriteRandom(t, filepath.Join(p.R, "large/down.bin"), 32<<20, uint64(200+i))
			for j := range 300 {
				side, prefix := p.L, "l"
				if j%3 == 0 {
					side, prefix = p.R, "r"
				}
				rel := fmt.Sprintf("many/%s%02d/f%03d.txt", prefix, j%10, j)
				want[rel] = testenv.WriteRandom(t, filepath.Join(side, filepath.FromSlash(rel)), int64(100+j*37), uint64(j))
			}
			killAfter := func(d time.Duration) {
				cmd := exec.Command(bin, "once", "--state-dir", p.SD, p.L, "dir:"+p.R)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				copying := func() bool {
					for _, dir := range []string{filepath.Join(p.L, "large"), filepath.Join(p.R, "large")} {
						if len(testenv.TempFiles(t, dir)) > 0 {
							return true
						}
					}
					return false
				}
				deadline := time.Now().Add(30 * time.Second)
				for !copying() && time.Now().Before(deadline) {
					select {
					case err := <-done:
						t.Logf("pass ended by itself before a copy was seen: %v", err)
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
				select {
				case err := <-done:
					t.Logf("pass ended by itself before the kill at %s: %v", d, err)
					return
				case <-time.After(d):
				}
				if err := cmd.Process.Kill(); err != nil {
					t.Logf("kill: %v", err)
				}
				<-done
			}
			killAfter(c.first)
			if c.second > 0 {
				killAfter(c.second)
			}
			// Say where the kill landed, so a run that only ever kills before or after the copies is visible.
			t.Logf("after the kill: %d temp files, %d/%d paths on the remote, %d/%d locally",
				len(testenv.TempFiles(t, p.L))+len(testenv.TempFiles(t, p.R)),
				len(testenv.Contents(t, p.R)), len(want), len(testenv.Contents(t, p.L)), len(want))
			var last testenv.Result
			for attempt := 0; attempt < 3; attempt++ {
				if last = p.once(); last.Code == 0 {
					break
				}
			}
			if last.Code != 0 {
				t.Fatalf("no clean pass after the kill:\n%s", last)
			}
			tree := p.converged()
			for rel, sum := range want {
				if tree[rel] != sum {
					t.Errorf("%s: got %.12s, want %.12s", rel, tree[rel], sum)
				}
			}
			for _, side := range []string{p.L, p.R} {
				if tf := testenv.TempFiles(t, side); len(tf) > 0 {
					t.Errorf("temp files left in %s: %v", side, tf)
				}
			}
		})
	}
}
