package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

func TestFirstSyncBothWays(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "from laptop")
	p.write(p.L, "docs/deep/b.md", "bee")
	p.write(p.R, "c.txt", "from cloud")
	p.write(p.R, "music/d.mp3", strings.Repeat("la", 5000))
	p.write(p.L, "both/same.txt", "same")
	p.write(p.R, "both/same.txt", "same")
	d := p.sync()
	ops := d.Ops()
	if ops["upload"] != 2 || ops["download"] != 2 {
		t.Fatalf("ops = %v, want 2 uploads and 2 downloads", ops)
	}
	if len(d.Conflicts) != 0 {
		t.Fatalf("identical files became conflicts: %+v", d.Conflicts)
	}
	tree := p.converged()
	for _, want := range []string{"a.txt", "docs/deep/b.md", "c.txt", "music/d.mp3", "both/same.txt"} {
		if _, ok := tree[want]; !ok {
			t.Errorf("%s missing after sync", want)
		}
	}
	for _, root := range []string{p.L, p.R} {
		if !exists(filepath.Join(root, ".tandem")) {
			t.Errorf("%s has no .tandem root marker", root)
		}
	}
}

func TestEditsBothWays(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "l.txt", "v1")
	p.write(p.L, "r.txt", "v1")
	p.write(p.L, "new/", "")
	os.Remove(filepath.Join(p.L, "new"))
	p.sync()
	p.write(p.L, "l.txt", "v2 from laptop, longer")
	p.write(p.R, "r.txt", "v2") // same size as before: only mtime and content differ
	p.write(p.L, "sub/l2.txt", "new locally")
	p.write(p.R, "sub2/r2.txt", "new remotely")
	d := p.sync()
	if ops := d.Ops(); ops["upload"] != 2 || ops["download"] != 2 {
		t.Fatalf("ops = %v, want 2 up, 2 down", ops)
	}
	if got := p.read(p.R, "l.txt"); got != "v2 from laptop, longer" {
		t.Fatalf("remote l.txt = %q", got)
	}
	if got := p.read(p.L, "r.txt"); got != "v2" {
		t.Fatalf("local r.txt = %q", got)
	}
	p.converged()
}

func TestConflictKeepsBothVersions(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "notes/todo.txt", "base")
	p.sync()
	p.write(p.L, "notes/todo.txt", "laptop version")
	p.write(p.R, "notes/todo.txt", "cloud version!")
	d := p.sync()
	if len(d.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v, want 1", d.Conflicts)
	}
	c := d.Conflicts[0]
	host, _ := os.Hostname()
	if c.Path != "notes/todo.txt" || c.Kept != "both" || !strings.Contains(c.Copy, "(conflict "+host+" ") {
		t.Fatalf("conflict = %+v, want a copy named with host %q", c, host)
	}
	tree := p.converged()
	for _, side := range []string{p.L, p.R} {
		if got := p.read(side, "notes/todo.txt"); got != "cloud version!" {
			t.Errorf("%s: todo.txt = %q, want the remote version at the name", side, got)
		}
		if got := p.read(side, c.Copy); got != "laptop version" {
			t.Errorf("%s: %s = %q, want the local version in the copy", side, c.Copy, got)
		}
	}
	if len(tree) != 3 {
		t.Fatalf("tree = %v", tree)
	}
	// The text output names both places.
	p.write(p.L, "x.txt", "1")
	p.sync()
	p.write(p.L, "x.txt", "22")
	p.write(p.R, "x.txt", "333")
	r := p.once()
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	mustContain(t, r.Stdout, "! conflict x.txt", "text output")
	mustContain(t, r.Stdout, "local version:  x (conflict "+host, "text output")
}

func TestDeleteVersusModify(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "a.txt", "a1")
	p.write(p.L, "b.txt", "b1")
	p.sync()
	os.Remove(filepath.Join(p.L, "a.txt"))
	p.write(p.R, "a.txt", "a2 edited in the cloud")
	os.Remove(filepath.Join(p.R, "b.txt"))
	p.write(p.L, "b.txt", "b2 edited on the laptop")
	p.sync()
	tree := p.converged()
	if got := p.read(p.L, "a.txt"); got != "a2 edited in the cloud" {
		t.Errorf("a.txt = %q: the remote modification must win over the local delete", got)
	}
	if got := p.read(p.R, "b.txt"); got != "b2 edited on the laptop" {
		t.Errorf("b.txt = %q: the local modification must win over the remote delete", got)
	}
	if len(tree) != 2 {
		t.Errorf("tree = %v", tree)
	}
}

func TestMoveIsNotRetransferred(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"local", "remote"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			testMove(t, side, "archive/video-2026.bin", true)
		})
	}
}

// TestMoveIntoNewFolder is the same move with a destination folder that does not exist on the other side yet.
// The engine runs moves (phase 0) before folder creates (phase 1), so the first attempt fails with "not found"
// and logs a warning, although a later round of the same pass succeeds (before engine f9a0f08 the failure was
// also reported as a problem, exit 1).
func TestMoveIntoNewFolder(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"local", "remote"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			testMove(t, side, "new-folder/video-2026.bin", false)
		})
	}
}

func testMove(t *testing.T, side, to string, folderExists bool) {
	p := newPair(t)
	sum := testenv.WriteRandom(t, filepath.Join(p.L, "big/video.bin"), 5<<20, 42)
	p.write(p.L, "big/small.txt", "s")
	if folderExists {
		p.write(p.L, "archive/keep.txt", "k")
	}
	p.sync()
	root, op := p.L, "move-remote"
	if side == "remote" {
		root, op = p.R, "move-local"
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, to)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "big/video.bin"), filepath.Join(root, to)); err != nil {
		t.Fatal(err)
	}
	r := p.once("--json", "-v")
	if r.Code != 0 {
		t.Fatalf("pass failed:\n%s", r)
	}
	// A move is one action that succeeds: no failed first attempt (logged at info: -v shows it).
	if strings.Contains(r.Stderr, "action failed") {
		t.Fatalf("the move failed before it succeeded:\n%s", r.Stderr)
	}
	d := r.JSON(t)
	ops := d.Ops()
	if ops[op] != 1 || ops["upload"] != 0 || ops["download"] != 0 {
		t.Fatalf("done = %+v, want one %s and no transfer", d.Done, op)
	}
	tree := p.converged()
	if tree[to] != sum {
		t.Fatalf("moved file content differs")
	}
	if _, ok := tree["big/video.bin"]; ok {
		t.Fatalf("old name still there")
	}
}

func TestTypeChange(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "x", "x was a file")
	p.write(p.L, "d/f.txt", "d was a folder")
	p.sync()
	// Locally the file x becomes a folder; remotely the folder d becomes a file.
	os.Remove(filepath.Join(p.L, "x"))
	p.write(p.L, "x/inside.txt", "now a folder")
	os.RemoveAll(filepath.Join(p.R, "d"))
	p.write(p.R, "d", "now a file")
	p.sync()
	tree := p.converged()
	if tree["x"] != "dir" || tree["d"] == "dir" {
		t.Fatalf("tree = %v: want x a folder and d a file", tree)
	}
	if got := p.read(p.R, "x/inside.txt"); got != "now a folder" {
		t.Fatalf("x/inside.txt = %q", got)
	}
	if got := p.read(p.L, "d"); got != "now a file" {
		t.Fatalf("d = %q", got)
	}
	// The replaced versions went to the trash, not away.
	trashHas := func(root, content string) bool {
		for _, h := range testenv.TrashFiles(t, root) {
			if h == testenv.Contents(t, mkTree(t, content))["f"] {
				return true
			}
		}
		return false
	}
	if !trashHas(p.R, "x was a file") || !trashHas(p.L, "d was a folder") {
		t.Fatalf("replaced versions not in the trash: remote %v local %v", testenv.TrashFiles(t, p.R), testenv.TrashFiles(t, p.L))
	}
}

// mkTree makes a folder holding one file "f" with content, to get its digest the same way.
func mkTree(t *testing.T, content string) string {
	d := t.TempDir()
	testenv.WriteFile(t, d, "f", []byte(content))
	return d
}

func TestTypeChangeOnBothSidesKeepsBoth(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "y.txt", "base")
	p.sync()
	os.Remove(filepath.Join(p.L, "y.txt"))
	p.write(p.L, "y.txt/in.txt", "folder on the laptop")
	p.write(p.R, "y.txt", "file edited in the cloud")
	d := p.sync()
	if len(d.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v", d.Conflicts)
	}
	tree := p.converged()
	var copies int
	for path, h := range tree {
		if strings.Contains(path, "(conflict ") && h != "dir" {
			copies++
		}
	}
	if tree["y.txt"] != "dir" || copies != 1 {
		t.Fatalf("tree = %v: want the folder at y.txt and the file in a conflict copy", tree)
	}
}

func TestEmptyFilesAndFolders(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, "empty.txt", "")
	p.write(p.R, "also-empty", "")
	for _, d := range []string{filepath.Join(p.L, "empty-dir/nested"), filepath.Join(p.R, "remote-empty-dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.sync()
	tree := p.converged()
	for _, want := range []string{"empty.txt", "also-empty", "empty-dir/nested", "remote-empty-dir"} {
		if _, ok := tree[want]; !ok {
			t.Errorf("%s missing: %v", want, tree)
		}
	}
	// An empty file that gets content, and one that loses it.
	p.write(p.R, "empty.txt", "not empty any more")
	p.write(p.L, "also-empty", "x")
	p.sync()
	p.write(p.L, "also-empty", "")
	p.sync()
	p.converged()
	if got := p.read(p.R, "also-empty"); got != "" {
		t.Fatalf("also-empty = %q, want empty", got)
	}
}

func TestLargeFile200MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 400 MiB")
	}
	t.Parallel()
	p := newPair(t)
	path := filepath.Join(p.L, "large.bin")
	sum := testenv.WriteRandom(t, path, 200<<20, 7)
	t.Cleanup(func() { os.Remove(path); os.Remove(filepath.Join(p.R, "large.bin")) })
	d := p.sync()
	if d.Totals["up_bytes"] != 200<<20 {
		t.Fatalf("totals = %v", d.Totals)
	}
	if got := testenv.FileSHA256(t, filepath.Join(p.R, "large.bin")); got != sum {
		t.Fatalf("remote copy sha256 %s, want %s", got, sum)
	}
	p.converged()
}

func TestUnicodeNFCAndNFD(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	nfc, nfd := "caf\u00e9.txt", "cafe\u0301.txt"
	p.write(p.L, nfc, "composed")
	p.write(p.L, nfd, "decomposed")
	p.write(p.R, "r\u00e9sum\u00e9/cv.txt", "composed folder")
	p.write(p.R, "re\u0301sume\u0301/cv.txt", "decomposed folder")
	p.write(p.R, "日本語/ファイル.txt", "cjk")
	p.sync()
	tree := p.converged()
	for name, want := range map[string]string{nfc: "composed", nfd: "decomposed",
		"r\u00e9sum\u00e9/cv.txt": "composed folder", "re\u0301sume\u0301/cv.txt": "decomposed folder",
		"日本語/ファイル.txt": "cjk"} {
		for _, side := range []string{p.L, p.R} {
			if got := p.read(side, name); got != want {
				t.Errorf("%s: %q = %q, want %q", side, name, got, want)
			}
		}
	}
	if len(tree) != 8 {
		t.Fatalf("tree has %d entries, want 8 (no spelling merged or lost): %v", len(tree), tree)
	}
}
