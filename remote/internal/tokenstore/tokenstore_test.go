package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "tokens")
	p := File(dir, "pcloud", "")
	if err := Load(p, &struct{}{}); !errors.Is(err, ErrNoLogin) {
		t.Fatalf("missing file: %v", err)
	}
	type tok struct{ Access string }
	if err := Save(p, tok{"secret"}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes file %o dir %o under umask 0", fi.Mode().Perm(), di.Mode().Perm())
	}
	var got tok
	if err := Load(p, &got); err != nil || got.Access != "secret" {
		t.Fatalf("load: %v %v", got, err)
	}
	os.Chmod(p, 0o644)
	err := Load(p, &got)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) {
		t.Fatalf("a 0644 token file must be refused with the fix: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}
