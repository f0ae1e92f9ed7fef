package localdir_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
)

// TestDiskFullSaysWhatAndWhere (issue 14 item 7, RELIABILITY F3): a write that runs out of space names the file,
// how much space it needs and where, matches remote.ErrDiskFull and ENOSPC, and leaves no temp file and the old
// content in place.
func TestDiskFullSaysWhatAndWhere(t *testing.T) {
	for _, op := range []string{"write", "sync"} {
		t.Run(op, func(t *testing.T) {
			e := newEnv(t, "fake", localdir.Options{})
			e.mkdir("docs")
			e.write("docs/big.bin", "old")
			e.fake.SetFault(func(o, name string) error {
				if o == op && strings.Contains(name, remote.TempPrefix) {
					return syscall.ENOSPC
				}
				return nil
			})
			body := bytes.Repeat([]byte("x"), 3<<20)
			_, err := e.d.Put(context.Background(), "docs/big.bin", bytes.NewReader(body), int64(len(body)), time.Time{},
				remote.Precondition{})
			if !errors.Is(err, remote.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Put = %v, want ErrDiskFull and ENOSPC", err)
			}
			for _, want := range []string{"cannot write docs/big.bin", "3.0 MiB", "3145728 bytes", "docs"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
			if got, _ := e.read("docs/big.bin"); got != "old" {
				t.Errorf("docs/big.bin = %q, want the old content", got)
			}
			for _, n := range e.names() {
				if strings.Contains(n, remote.TempPrefix) {
					t.Errorf("temp file left: %s", n)
				}
			}
		})
	}
}

// TestDiskFullOnTmpfs is the same on a real file system: the test re-runs itself in `unshare -Urm` with a 1 MiB
// tmpfs mounted over a temp folder (nothing changes on the host), writes 2 MiB there and checks that the message
// names the folder and the space free in it, and that the temp file is gone.
func TestDiskFullOnTmpfs(t *testing.T) {
	if dir := os.Getenv("TANDEM_TEST_TMPFS"); dir != "" {
		d, err := localdir.Open(nil, dir, localdir.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		body := bytes.Repeat([]byte("x"), 2<<20)
		_, err = d.Put(context.Background(), "big.bin", bytes.NewReader(body), int64(len(body)), time.Time{},
			remote.Precondition{})
		if !errors.Is(err, remote.ErrDiskFull) {
			t.Fatalf("Put = %v, want ErrDiskFull", err)
		}
		for _, want := range []string{"it needs 2.0 MiB (2097152 bytes) in " + dir + ", where 1.0 MiB (1048576 bytes) is free"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("left in the full folder: %v", ents)
		}
		t.Log(err)
		return
	}
	if err := exec.Command("unshare", "-Urm", "true").Run(); err != nil {
		t.Skipf("unshare -Urm unavailable here (%v): TestDiskFullSaysWhatAndWhere covers the message", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("unshare", "-Urm", "sh", "-c", `mount -t tmpfs -o size=1m tmpfs "$1" && exec "$0" -test.run='^TestDiskFullOnTmpfs$' -test.count=1 -test.v`,
		os.Args[0], dir)
	cmd.Env = append(os.Environ(), "TANDEM_TEST_TMPFS="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("in the namespace: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
