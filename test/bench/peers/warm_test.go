package main

import (
	"os"
	"path/filepath"
	"testing"
)

// warm reads every byte of every file of the tree (and nothing else: a symlink is not followed).
func TestWarmReadsTheWholeTree(t *testing.T) {
	root := t.TempDir()
	var want int64
	for i, size := range []int{0, 1, 4096, 3<<20 + 17} {
		dir := filepath.Join(root, "d", string(rune('a'+i)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		want += int64(size)
	}
	if err := os.Symlink(filepath.Join(root, "d", "d", "f"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := warm(root)
	if err != nil || got != want {
		t.Fatalf("warm = %d, %v; want %d bytes", got, err, want)
	}
	if _, err := warm(filepath.Join(root, "gone")); err == nil {
		t.Fatal("warm of a missing tree: no error")
	}
}
