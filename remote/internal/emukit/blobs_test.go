package emukit

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBlobsSpoolPut(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"content", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b := NewBlobs(dir, "content")
	h := sha256.New()
	tmp, n, err := b.Spool(strings.NewReader("hello"), "up-*", h)
	if err != nil || n != 5 || filepath.Dir(tmp) != filepath.Join(dir, "tmp") || !strings.HasPrefix(filepath.Base(tmp), "up-") {
		t.Fatalf("spool: %q %d %v", tmp, n, err)
	}
	if len(h.Sum(nil)) != sha256.Size {
		t.Fatal("hash not fed")
	}
	if err := b.Put(tmp, "7"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.ReadFile("7"); err != nil || string(got) != "hello" || b.Path("7") != filepath.Join(dir, "content", "7") {
		t.Fatalf("read: %q %v", got, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("temp file still there after Put")
	}
	if err := b.Remove("7"); err != nil {
		t.Fatal(err)
	}
	if t1, t2 := b.TempPath(), b.TempPath(); filepath.Dir(t1) != filepath.Join(dir, "tmp") || t1 == t2 {
		t.Fatal("TempPath")
	}
}

func TestBlobsSpoolErrorRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	b := NewBlobs(dir, "content")
	boom := errors.New("boom")
	_, n, err := b.Spool(io.MultiReader(strings.NewReader("abc"), errReader{boom}), "up-*")
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("spool: %d %v", n, err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
