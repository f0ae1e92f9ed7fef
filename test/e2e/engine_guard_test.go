package e2e

// Issue 9, holes 2, 3, 4, 7 and 13, end to end with the binary: the big-delete guard and the root check on
// every round and across the daemon's passes, --max-delete NaN, ignored files in a folder deleted on the other
// side, and skipped paths (symlinks, special files, names tandem cannot hold) that must never read as deletes.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// countFiles counts the regular files below root outside tandem's .tandem folder.
func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	for _, e := range testenv.Snapshot(t, root) {
		if !e.Dir {
			n++
		}
	}
	return n
}

// Hole 2: `mv D E`, then delete 25 of its 30 files. Round 0 only moves D to E; the 25 deletes came in round 1,
// where no guard looked.
func TestGuardMoveThenDeleteAcrossRounds(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for i := range 30 {
		p.write(p.L, fmt.Sprintf("D/f%02d.txt", i), fmt.Sprintf("file %d\n", i))
	}
	p.sync()
	if err := os.Rename(filepath.Join(p.L, "D"), filepath.Join(p.L, "E")); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := os.Remove(filepath.Join(p.L, fmt.Sprintf("E/f%02d.txt", i))); err != nil {
			t.Fatal(err)
		}
	}
	r := p.once()
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1 (the guard)\n%s", r.Code, r)
	}
	mustContain(t, r.Stderr, "would delete 25 of 30", "stderr")
	mustContain(t, r.Stderr, "--allow-deletes", "stderr")
	if n := countFiles(t, p.R); n != 30 {
		t.Fatalf("the remote holds %d files, want all 30", n)
	}
	if tr := testenv.TrashFiles(t, p.R); len(tr) != 0 {
		t.Fatalf("remote trash holds %d files although the guard stopped the pass", len(tr))
	}
	d := p.sync("--allow-deletes")
	if d.Totals["deleted_remote"] != 25 {
		t.Fatalf("deleted %d remotely with --allow-deletes, want 25", d.Totals["deleted_remote"])
	}
	p.converged()
}

// Hole 2: with a failing upload and the local root emptied (marker included) during round 0, round 1 deleted
// every remote file and exited 0. The failpoints build stops the process (SIGSTOP) after its first upload;
// the test empties the local root, then lets it go on.
func TestRootEmptiedMidPassStopsLaterRounds(t *testing.T) {
	t.Parallel()
	fp := fpBinary(t)
	p := newPair(t)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		p.write(p.L, n+".txt", "old "+n+"\n")
	}
	p.sync()
	p.write(p.L, "n1.txt", "new 1\n")
	p.write(p.L, "n2.txt", "new 2\n")
	cmd := exec.Command(fp, "once", "--state-dir", p.SD, "--parallel", "1", p.L, "dir:"+p.R)
	cmd.Env = append(os.Environ(), "TANDEM_FAILPOINTS=upload.afterPut=stop@1")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitStopped(t, cmd.Process.Pid)
	ents, err := os.ReadDir(p.L)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(p.L, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1 (root marker gone during the pass)\n%s", code, out.String())
	}
	mustContain(t, out.String(), "during the pass", "output")
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if got := p.read(p.R, n+".txt"); got != "old "+n+"\n" {
			t.Fatalf("remote %s.txt = %q", n, got)
		}
	}
	if tr := testenv.TrashFiles(t, p.R); len(tr) != 0 {
		t.Fatalf("remote trash holds %d files: the emptied root was taken as deletes", len(tr))
	}
}

// waitStopped waits until process pid is in the stopped state (SIGSTOP from a failpoint), every thread of it:
// the main thread's state alone can show the stop before the others have taken it.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if allStopped(t, pid) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never stopped at its failpoint", pid)
}

// allStopped reports whether every thread of process pid is stopped.
func allStopped(t *testing.T, pid int) bool {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false // a thread that just exited: look again
		}
		// "tid (comm) S ...": the state follows the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i < 0 || len(s) <= i+2 || s[i+2] != 'T' {
			return false
		}
	}
	return len(tasks) > 0
}

// Hole 4: --max-delete NaN switched the guard off (exit 0, 30 of 30 deleted).
func TestMaxDeleteRejectsNonFinite(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for i := range 30 {
		p.write(p.L, fmt.Sprintf("f%02d.txt", i), fmt.Sprintf("file %d\n", i))
	}
	p.sync()
	for i := range 30 {
		os.Remove(filepath.Join(p.L, fmt.Sprintf("f%02d.txt", i)))
	}
	for _, v := range []string{"NaN", "nan", "Inf", "-Inf", "+Inf", "0", "-1", "100.5", "1e999"} {
		r := p.once("--max-delete", v)
		if r.Code != 2 {
			t.Fatalf("--max-delete %s: exit %d, want 2\n%s", v, r.Code, r)
		}
		mustContain(t, r.Stderr, "--max-delete", "stderr")
	}
	if n := countFiles(t, p.R); n != 30 {
		t.Fatalf("the remote holds %d files, want 30", n)
	}
	// The config file: the same values are problems, and `tandem run` refuses the file.
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yaml")
	testenv.WriteFile(t, dir, "config.yaml", []byte(fmt.Sprintf(
		"state_dir: %s\npairs:\n  - local: %s\n    remote: dir:%s\n    max_delete: NaN\n", p.SD, p.L, p.R)))
	r := testenv.Run(t, bin, "config", "check", "--config", conf)
	if r.Code == 0 {
		t.Fatalf("config check accepted max_delete: NaN\n%s", r)
	}
	mustContain(t, r.Stdout+r.Stderr, conf+":5: pairs[0].max_delete", "config check output")
	if r := testenv.Run(t, bin, "run", "--config", conf); r.Code == 0 || !strings.Contains(r.Stderr, "max_delete") {
		t.Fatalf("run on max_delete: NaN:\n%s", r)
	}
}

// Hole 7: the remote deletes D; the local D also holds .DS_Store (ignored by default): the folder delete failed
// "folder not empty" and every later pass exited 1. A folder that holds files the user chose to ignore is kept,
// reported once, and the pass exits 0.
func TestIgnoredFilesInAFolderDeletedRemotely(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.write(p.L, ".tandemignore", "*.log\n")
	p.write(p.L, "D/a.txt", "a\n")
	p.write(p.L, "K/b.txt", "b\n")
	p.sync()
	p.write(p.L, "D/.DS_Store", "finder junk")
	p.write(p.L, "K/keep.log", "my log, ignored on purpose\n")
	for _, d := range []string{"D", "K"} {
		if err := os.RemoveAll(filepath.Join(p.R, d)); err != nil {
			t.Fatal(err)
		}
	}
	r := p.once("--json")
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r)
	}
	doc := r.JSON(t)
	if exists(filepath.Join(p.L, "D")) {
		t.Fatal("local D still exists: the default-ignored .DS_Store blocked its delete")
	}
	trash := strings.Join(trashNames(t, p.L), "\n")
	for _, want := range []string{"D/a.txt", "D/.DS_Store", "K/b.txt"} {
		if !strings.Contains(trash, want) {
			t.Fatalf("local trash lacks %s:\n%s", want, trash)
		}
	}
	if got := p.read(p.L, "K/keep.log"); got != "my log, ignored on purpose\n" {
		t.Fatalf("K/keep.log = %q", got)
	}
	kept := false
	for _, s := range doc.Skipped {
		if s.Path == "K" && strings.Contains(s.Reason, "kept") && strings.Contains(s.Reason, "keep.log") {
			kept = true
		}
	}
	if !kept {
		t.Fatalf("K not reported as kept: %+v", doc.Skipped)
	}
	// Once: the next pass is quiet, exits 0, and does not re-create K on the remote.
	d := p.sync()
	if len(d.Done) != 0 || len(d.Skipped) != 0 {
		t.Fatalf("the next pass did something or reported again: done %+v skipped %+v", d.Done, d.Skipped)
	}
	if exists(filepath.Join(p.R, "K")) {
		t.Fatal("K was re-created on the remote")
	}
	// A new file in K is synced as usual, with its folder.
	p.write(p.L, "K/new.txt", "new\n")
	p.sync()
	if got := p.read(p.R, "K/new.txt"); got != "new\n" {
		t.Fatalf("remote K/new.txt = %q", got)
	}
}

// trashNames lists the paths inside root's trash batches (the batch folder stripped).
func trashNames(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	base := filepath.Join(root, ".tandem", "trash")
	_ = filepath.Walk(base, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(base, path)
		parts := strings.SplitN(filepath.ToSlash(rel), "/", 2)
		if len(parts) == 2 {
			out = append(out, parts[1])
		}
		return nil
	})
	return out
}

// Hole 13: a folder replaced by a symlink (moved to another disk, a link left in its place) counted as
// deleted: every remote Photos/* went to the trash. The same for a special file, on either side, and for a
// remote folder renamed to a name tandem cannot hold.
func TestSkippedPathIsNeverADelete(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for _, d := range []string{"Photos", "Music", "Docs", "Old"} {
		for i := range 3 {
			p.write(p.L, fmt.Sprintf("%s/%d.txt", d, i), fmt.Sprintf("%s %d\n", d, i))
		}
	}
	p.sync()
	before := testenv.Contents(t, p.R)
	elsewhere := t.TempDir()
	// Local Photos moved to another disk, a symlink in its place; local Music replaced by a FIFO.
	if err := os.Rename(filepath.Join(p.L, "Photos"), filepath.Join(elsewhere, "Photos")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "Photos"), filepath.Join(p.L, "Photos")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(p.L, "Music")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(p.L, "Music"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Remote Docs replaced by a symlink; remote Old renamed to a name tandem cannot hold (a backslash).
	rdocs := t.TempDir()
	if err := os.Rename(filepath.Join(p.R, "Docs"), filepath.Join(rdocs, "Docs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(rdocs, "Docs"), filepath.Join(p.R, "Docs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(p.R, "Old"), filepath.Join(p.R, `Old\2025`)); err != nil {
		t.Fatal(err)
	}
	r := p.once("--json")
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r)
	}
	doc := r.JSON(t)
	if len(doc.Done) != 0 {
		t.Fatalf("the pass acted on skipped paths: %+v", doc.Done)
	}
	skipped := map[string]string{}
	for _, s := range doc.Skipped {
		skipped[s.Side+":"+s.Path] = s.Reason
	}
	for _, want := range []string{"local:Photos", "local:Music", "remote:Docs", "remote:Old"} {
		if _, ok := skipped[want]; !ok {
			t.Errorf("%s not listed as skipped: %v", want, skipped)
		}
	}
	for _, d := range []string{"Photos", "Music"} {
		for i := range 3 {
			if got := p.read(p.R, fmt.Sprintf("%s/%d.txt", d, i)); got != fmt.Sprintf("%s %d\n", d, i) {
				t.Errorf("remote %s/%d.txt = %q", d, i, got)
			}
		}
	}
	for _, d := range []string{"Docs", "Old"} {
		for i := range 3 {
			if got := p.read(p.L, fmt.Sprintf("%s/%d.txt", d, i)); got != fmt.Sprintf("%s %d\n", d, i) {
				t.Errorf("local %s/%d.txt = %q", d, i, got)
			}
		}
	}
	if tr := testenv.TrashFiles(t, p.R); len(tr) != 0 {
		t.Errorf("remote trash holds %d files", len(tr))
	}
	if tr := testenv.TrashFiles(t, p.L); len(tr) != 0 {
		t.Errorf("local trash holds %d files", len(tr))
	}
	// Put everything back: the next pass finds both sides as they were, and nothing to do.
	for _, x := range []string{filepath.Join(p.L, "Photos"), filepath.Join(p.L, "Music"), filepath.Join(p.R, "Docs")} {
		if err := os.Remove(x); err != nil {
			t.Fatal(err)
		}
	}
	for _, mv := range [][2]string{{filepath.Join(elsewhere, "Photos"), filepath.Join(p.L, "Photos")},
		{filepath.Join(rdocs, "Docs"), filepath.Join(p.R, "Docs")}, {filepath.Join(p.R, `Old\2025`), filepath.Join(p.R, "Old")}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		p.write(p.L, fmt.Sprintf("Music/%d.txt", i), fmt.Sprintf("Music %d\n", i))
	}
	d := p.sync()
	for _, x := range d.Done {
		if strings.HasPrefix(x.Op, "delete") {
			t.Fatalf("a delete after putting things back: %+v", d.Done)
		}
	}
	if !reflect.DeepEqual(testenv.Contents(t, p.R), before) {
		t.Errorf("remote differs from before")
	}
	p.converged()
}

// Hole 3: the daemon divided scoped passes by files plus folders, and each scoped pass had its own budget:
// 100 files each in its own folder, 60 deleted locally, and the daemon deleted 60 remote files; deleted one by
// one, each its own scoped pass, 80 of 100 went through. Now the deletes of the last delete_window count
// together: the pair stops in error before more than half of the files are gone from the remote.
func TestDaemonRollingDeleteBudget(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	for i := range 100 {
		testenv.WriteFile(t, d.L, fmt.Sprintf("f%03d/x.txt", i), []byte(fmt.Sprintf("file %d\n", i)))
	}
	d.start()
	d.waitFor("the first pass to upload 100 files", 60*time.Second, func(s *daemonStatus) bool {
		return idle(s) && countFiles(t, d.R) == 100
	})
	stopped := -1
	for i := range 80 {
		if err := os.Remove(filepath.Join(d.L, fmt.Sprintf("f%03d/x.txt", i))); err != nil {
			t.Fatal(err)
		}
		remotePath := filepath.Join(d.R, fmt.Sprintf("f%03d/x.txt", i))
		s := d.waitFor(fmt.Sprintf("delete %d to reach the remote or stop", i), 30*time.Second, func(s *daemonStatus) bool {
			return s.Pairs[0].State == "error" || (!exists(remotePath) && idle(s))
		})
		if s.Pairs[0].State == "error" {
			if !strings.Contains(s.Pairs[0].Message, "--allow-deletes") {
				t.Fatalf("error state without the guard's hint: %q", s.Pairs[0].Message)
			}
			stopped = i
			break
		}
	}
	if stopped < 0 {
		t.Fatalf("80 of 100 files deleted one by one: the guard never stopped (remote holds %d)", countFiles(t, d.R))
	}
	if n := countFiles(t, d.R); n < 50 {
		t.Fatalf("the remote holds %d of 100 files: more than half were deleted", n)
	}
	t.Logf("stopped at delete %d; remote holds %d files", stopped+1, countFiles(t, d.R))
}

// Hole 3, the bulk case: 100 files each in its own folder, 60 deleted at once: `once` stopped, the daemon
// (scoped passes divided by files plus folders) deleted 60 remote files.
func TestDaemonBulkDeleteInFolders(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	for i := range 100 {
		testenv.WriteFile(t, d.L, fmt.Sprintf("f%03d/x.txt", i), []byte(fmt.Sprintf("file %d\n", i)))
	}
	d.start()
	d.waitFor("the first pass to upload 100 files", 60*time.Second, func(s *daemonStatus) bool {
		return idle(s) && countFiles(t, d.R) == 100
	})
	for i := range 60 {
		if err := os.Remove(filepath.Join(d.L, fmt.Sprintf("f%03d/x.txt", i))); err != nil {
			t.Fatal(err)
		}
	}
	s := d.waitFor("the guard to stop the pair", 30*time.Second, func(s *daemonStatus) bool {
		return s.Pairs[0].State == "error"
	})
	mustContain(t, s.Pairs[0].Message, "--allow-deletes", "status message")
	if n := countFiles(t, d.R); n < 50 {
		t.Fatalf("the remote holds %d of 100 files after the stop", n)
	}
}

// Hole 13 in the daemon: a folder replaced by a symlink is listed as skipped in `tandem status`, and its remote
// copy stays.
func TestDaemonListsSkippedFolder(t *testing.T) {
	t.Parallel()
	d := newDaemonPair(t)
	for i := range 3 {
		testenv.WriteFile(t, d.L, fmt.Sprintf("Photos/%d.jpg", i), []byte(fmt.Sprintf("photo %d\n", i)))
	}
	d.start()
	d.waitFor("the first pass", 30*time.Second, func(s *daemonStatus) bool { return idle(s) && countFiles(t, d.R) == 3 })
	elsewhere := t.TempDir()
	if err := os.Rename(filepath.Join(d.L, "Photos"), filepath.Join(elsewhere, "Photos")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "Photos"), filepath.Join(d.L, "Photos")); err != nil {
		t.Fatal(err)
	}
	type skipStatus struct {
		Pairs []struct {
			State   string
			Skipped []struct{ Path, Side, Reason string }
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := d.tandem("status", "--json")
		var st skipStatus
		if r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &st) == nil && len(st.Pairs) == 1 {
			found := false
			for _, sk := range st.Pairs[0].Skipped {
				found = found || (sk.Path == "Photos" && sk.Side == "local")
			}
			if found {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Photos never listed as skipped in status:\n%s", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := d.tandem("status"); !strings.Contains(r.Stdout, "skipped local Photos") {
		t.Fatalf("status text does not list the skipped folder:\n%s", r)
	}
	for i := range 3 {
		if !exists(filepath.Join(d.R, fmt.Sprintf("Photos/%d.jpg", i))) {
			t.Fatalf("remote Photos/%d.jpg deleted while the local folder was a symlink", i)
		}
	}
	if tr := testenv.TrashFiles(t, d.R); len(tr) != 0 {
		t.Fatalf("remote trash holds %d files", len(tr))
	}
}
