//go:build unix

package e2e

// Issue 9, holes 9, 12 and 15, run with the binary exactly as the issue gives them:
// `tandem once L dir:R --state-dir S`.

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestUserTempNamedFileKept is hole 12: a user's own file named like a temp file is not tandem's to delete,
// on a first sync or any later one, on either side.
func TestUserTempNamedFileKept(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, ".tandem-notes.part", "notes\n")
	p.write(p.L, "d/.tandem-draft.part", "draft\n")
	p.write(p.L, "d/a.txt", "a")
	p.write(p.R, ".tandem-remote.part", "the remote's own\n")
	for i := range 2 {
		d := p.sync()
		if i == 0 && len(d.Done) == 0 {
			t.Fatal("the first pass synced nothing")
		}
		for _, f := range []struct{ side, rel, want string }{{p.L, ".tandem-notes.part", "notes\n"},
			{p.L, "d/.tandem-draft.part", "draft\n"}, {p.R, ".tandem-remote.part", "the remote's own\n"}} {
			b, err := os.ReadFile(filepath.Join(f.side, filepath.FromSlash(f.rel)))
			if err != nil || string(b) != f.want {
				t.Fatalf("pass %d: %s = %q, %v; want it kept", i+1, f.rel, b, err)
			}
		}
	}
	if got := p.read(p.R, "d/a.txt"); got != "a" {
		t.Fatalf("R/d/a.txt = %q", got)
	}
	if exists(filepath.Join(p.R, ".tandem-notes.part")) {
		t.Fatal("a file with a reserved name was synced")
	}
}

// TestOwnFilesInSyncRoot is hole 9: with the local root = $HOME, holding the state dir, the config dir and the
// token dir, none of them is synced, and every pass is clean (no "changed since it was scanned" on the state
// database).
func TestOwnFilesInSyncRoot(t *testing.T) {
	t.Parallel()
	home, R := t.TempDir(), t.TempDir()
	S := filepath.Join(home, ".local", "state", "tandem")
	testenv.WriteFile(t, home, ".config/tandem/tokens/pcloud.json", []byte(`{"access_token":"secret"}`))
	testenv.WriteFile(t, home, ".config/tandem/config.yaml", []byte("pairs: []\n"))
	testenv.WriteFile(t, home, "Documents/a.txt", []byte("a"))
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=", "XDG_STATE_HOME="}
	for i := range 3 {
		r := testenv.RunWith(t, bin, testenv.RunOpts{Env: env}, "once", home, "dir:"+R, "--state-dir", S, "--json")
		if r.Code != 0 {
			t.Fatalf("pass %d: exit %d\n%s", i+1, r.Code, r)
		}
		if d := r.JSON(t); len(d.Problems) > 0 {
			t.Fatalf("pass %d: problems %+v", i+1, d.Problems)
		}
		testenv.WriteFile(t, home, fmt.Sprintf("Documents/b%d.txt", i), []byte("b"))
	}
	for _, own := range []string{".local/state/tandem", ".config/tandem/tokens/pcloud.json", ".config/tandem/config.yaml", ".config/tandem"} {
		if exists(filepath.Join(R, filepath.FromSlash(own))) {
			t.Fatalf("tandem's own %s was synced to the remote", own)
		}
	}
	if b, err := os.ReadFile(filepath.Join(R, "Documents", "b1.txt")); err != nil || string(b) != "b" {
		t.Fatalf("R/Documents/b1.txt = %q, %v", b, err)
	}
}

// TestSyncRootInUse is hole 15: a second tandem on the same local folder with another state database waits
// briefly and then stops with the pid of the first, as for the state database (TestStateInUse).
func TestSyncRootInUse(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a")
	p.sync()
	// This process is the first engine: it holds the root's lock (.tandem/lock, flock, the holder's pid in
	// it) as a running pass does.
	f, err := os.OpenFile(filepath.Join(p.L, ".tandem", "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	release := func() error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
	p.write(p.L, "b.txt", "b")
	other := t.TempDir()
	r := testenv.Run(t, bin, "once", p.L, "dir:"+p.R, "--state-dir", other)
	if r.Code != 1 {
		release()
		t.Fatalf("exit %d, want 1\n%s", r.Code, r)
	}
	mustContain(t, r.Stderr, "in use by another tandem process", "stderr")
	mustContain(t, r.Stderr, fmt.Sprintf("pid %d", os.Getpid()), "stderr")
	if exists(filepath.Join(p.R, "b.txt")) {
		t.Fatal("the locked-out pass synced anyway")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if r := testenv.Run(t, bin, "once", p.L, "dir:"+p.R, "--state-dir", other); r.Code != 0 {
		t.Fatalf("after the first let go: exit %d\n%s", r.Code, r)
	}
	if got := p.read(p.R, "b.txt"); got != "b" {
		t.Fatalf("R/b.txt = %q", got)
	}
}
