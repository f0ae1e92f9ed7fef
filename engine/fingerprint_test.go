package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 9 hole 1: a rewrite in place that keeps size and mtime (touch -r, cp -p, rsync -t) is an edit: the next
// pass uploads it, and a later remote edit is a conflict, not a download over it.
func TestPairInPlaceEditKeepsSizeAndMTime(t *testing.T) {
	p := newRealPair(t)
	old := time.Now().Add(-time.Hour).Truncate(time.Second) // well outside the racy window
	f := filepath.Join(p.L, "notes.txt")
	write(t, p.L, "notes.txt", "version-1\n")
	if err := os.Chtimes(f, old, old); err != nil {
		t.Fatal(err)
	}
	p.pass()
	if got := tree(t, p.R); got != "notes.txt=version-1\n" {
		t.Fatalf("remote after the first pass:\n%s", got)
	}
	// Same size, old mtime put back.
	if err := os.WriteFile(f, []byte("version-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, old, old); err != nil {
		t.Fatal(err)
	}
	rep := p.pass()
	if len(rep.Done) != 1 || rep.Done[0].Op != Upload {
		t.Fatalf("pass after the in-place edit did %+v, want one upload", rep.Done)
	}
	if got := tree(t, p.R); got != "notes.txt=version-2\n" {
		t.Fatalf("remote after the in-place edit:\n%s", got)
	}
	p.converged()
}
