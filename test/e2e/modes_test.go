package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func chmod(t *testing.T, path string, m fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, m); err != nil {
		t.Fatal(err)
	}
}

// TestModesBetweenLocalFolders (issue 13 item 6): between two local folders (a dir: remote) permission bits
// are carried both ways, and a chmod alone is a change that moves only the bits.
func TestModesBetweenLocalFolders(t *testing.T) {
	p := newPair(t)
	p.write(p.L, "secret.txt", "key")
	chmod(t, filepath.Join(p.L, "secret.txt"), 0o600)
	p.write(p.L, "run.sh", "#!/bin/sh\n")
	chmod(t, filepath.Join(p.L, "run.sh"), 0o755)
	p.write(p.L, "priv/notes.txt", "n")
	chmod(t, filepath.Join(p.L, "priv/notes.txt"), 0o640)
	chmod(t, filepath.Join(p.L, "priv"), 0o700)
	p.write(p.R, "down.sh", "#!/bin/sh\necho\n")
	chmod(t, filepath.Join(p.R, "down.sh"), 0o750)
	p.sync()
	for rel, want := range map[string]fs.FileMode{"secret.txt": 0o600, "run.sh": 0o755, "priv/notes.txt": 0o640, "priv": 0o700} {
		if got := mode(t, filepath.Join(p.R, rel)); got != want {
			t.Errorf("remote %s: mode %o, want %o", rel, got, want)
		}
	}
	if got := mode(t, filepath.Join(p.L, "down.sh")); got != 0o750 {
		t.Errorf("local down.sh: mode %o, want 0750", got)
	}
	p.converged()

	// A chmod on either side is a change, carried without a transfer.
	chmod(t, filepath.Join(p.L, "secret.txt"), 0o640)
	chmod(t, filepath.Join(p.R, "run.sh"), 0o700)
	d := p.sync()
	ops := d.Ops()
	if ops["chmod-remote"] != 1 || ops["chmod-local"] != 1 || ops["upload"]+ops["download"] != 0 {
		t.Fatalf("want one chmod each way and no transfer, got %+v", d.Done)
	}
	if got := mode(t, filepath.Join(p.R, "secret.txt")); got != 0o640 {
		t.Errorf("remote secret.txt: mode %o, want 0640", got)
	}
	if got := mode(t, filepath.Join(p.L, "run.sh")); got != 0o700 {
		t.Errorf("local run.sh: mode %o, want 0700", got)
	}
	p.converged()

	// An edit carries the mode with the bytes; a 0600 file edited on the other side stays 0600.
	chmod(t, filepath.Join(p.L, "secret.txt"), 0o600)
	p.sync()
	p.write(p.R, "secret.txt", "new key")
	p.sync()
	if got, gotR := mode(t, filepath.Join(p.L, "secret.txt")), mode(t, filepath.Join(p.R, "secret.txt")); got != 0o600 || gotR != 0o600 {
		t.Errorf("secret.txt after a remote edit: local %o, remote %o, want 0600 both", got, gotR)
	}
	p.converged()
}

// TestModesNeverWidenFromCloud (issue 13 item 6): a cloud keeps no modes; what comes down never widens a
// local file's mode: a 0600 file edited remotely stays 0600, a new file gets 0644 less the umask.
func TestModesNeverWidenFromCloud(t *testing.T) {
	old := syscall.Umask(0o027) // the binary inherits it; this test does not run in parallel
	defer syscall.Umask(old)
	e := newPenv(t, providers[0]) // pCloud
	e.lwrite("secret.txt", "key")
	chmod(t, filepath.Join(e.L, "secret.txt"), 0o600)
	e.sync()
	e.rwrite("secret.txt", "new key")
	e.rwrite("new.txt", "fresh")
	e.sync()
	if e.lread("secret.txt") != "new key" {
		t.Fatal("the remote edit did not arrive")
	}
	if got := mode(t, filepath.Join(e.L, "secret.txt")); got != 0o600 {
		t.Errorf("secret.txt after a remote edit: mode %o, want 0600", got)
	}
	if got := mode(t, filepath.Join(e.L, "new.txt")); got != 0o640 {
		t.Errorf("new.txt from the cloud: mode %o, want 0644 less the umask 027 = 0640", got)
	}
	// A local chmod is no change towards a cloud that keeps no modes: nothing is uploaded again.
	chmod(t, filepath.Join(e.L, "new.txt"), 0o600)
	if d := e.sync(); len(d.Done) != 0 {
		t.Fatalf("a chmod towards a cloud did %+v", d.Done)
	}
}

// TestDaemonCarriesChmod (issue 13 item 6): under `tandem run`, a chmod alone on either side reaches the other.
func TestDaemonCarriesChmod(t *testing.T) {
	d := newDaemonPair(t)
	testenv.WriteFile(t, d.L, "run.sh", []byte("#!/bin/sh\n"))
	d.start()
	waitMode := func(path string, want fs.FileMode) {
		t.Helper()
		d.waitFor(fmt.Sprintf("%s at mode %o", path, want), time.Minute, func(*daemonStatus) bool {
			fi, err := os.Lstat(path)
			return err == nil && fi.Mode().Perm() == want
		})
	}
	waitMode(filepath.Join(d.R, "run.sh"), 0o644&^umaskOf(t))
	chmod(t, filepath.Join(d.L, "run.sh"), 0o755)
	waitMode(filepath.Join(d.R, "run.sh"), 0o755)
	chmod(t, filepath.Join(d.R, "run.sh"), 0o700)
	waitMode(filepath.Join(d.L, "run.sh"), 0o700)
}

// umaskOf is the test process's umask (the daemon inherits it).
func umaskOf(t *testing.T) fs.FileMode {
	t.Helper()
	f := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(f, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ mode(t, f)
}
