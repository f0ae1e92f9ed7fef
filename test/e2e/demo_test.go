package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestDemo runs `tandem demo` as `make demo` does and checks it syncs with the embedded pCloud emulator and ends
// in sync (its third pass does nothing) with one conflict copy.
func TestDemo(t *testing.T) {
	t.Parallel()
	ws := filepath.Join(t.TempDir(), "demo")
	r := testenv.Run(t, bin, "demo", "--dir", ws)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"! conflict notes/todo.txt", "→ move remote photos/cat.jpg → photos/cat-on-sofa.jpg",
		"← move local music/song.mp3 → music/favourite.mp3", "Already in sync", "What happened", "pcloud:/Sync",
		"pCloud emulator"} {
		mustContain(t, r.Stdout, want, "demo output")
	}
	tree := testenv.Contents(t, filepath.Join(ws, "laptop"))
	copies := 0
	for p := range tree {
		if strings.Contains(p, "(conflict ") {
			copies++
		}
	}
	if copies != 1 {
		t.Fatalf("tree = %v, want one conflict copy", tree)
	}
	// A second demo into the same (now non-empty) folder is refused as a usage error.
	if r := testenv.Run(t, bin, "demo", "--dir", ws); r.Code != 2 {
		t.Fatalf("demo into a used folder: %s", r)
	}
}
