package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/conflict"
	"github.com/tandemsync/tandem/engine/ignore"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/state"
)

// realPair is two real folders synced through localdir on both sides, with a real store.
type realPair struct {
	t          *testing.T
	L, R       string
	st         *state.Store
	ldir, rdir *localdir.Dir
	opts       Options
}

func newRealPair(t *testing.T) *realPair {
	t.Helper()
	p := &realPair{t: t, L: t.TempDir(), R: t.TempDir()}
	lg := zaptest.NewLogger(t)
	st, err := state.Open(filepath.Join(t.TempDir(), "pair.db"), lg, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.st = st
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("state check: %v", err)
		}
		st.Close()
	})
	if p.ldir, err = localdir.Open(lg, p.L, localdir.Options{}); err != nil {
		t.Fatal(err)
	}
	if p.rdir, err = localdir.Open(lg, p.R, localdir.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ldir.Close(); p.rdir.Close() })
	p.opts = Options{Host: "testhost"}
	return p
}

func (p *realPair) pass() *Report {
	p.t.Helper()
	rep, err := testEngine(p.t, Deps{Local: p.ldir, Remote: p.rdir, Store: p.st}, p.opts).RunPass(context.Background())
	if err != nil {
		p.t.Fatalf("pass: %v", err)
	}
	if len(rep.Problems) > 0 {
		p.t.Fatalf("problems: %+v", rep.Problems)
	}
	return rep
}

func write(t *testing.T, root, rel, data string) {
	t.Helper()
	full := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFiles writes pairs of path and content below root, in order.
func writeFiles(t *testing.T, root string, pathData ...string) {
	t.Helper()
	if len(pathData)%2 != 0 {
		t.Fatalf("writeFiles: %q is not pairs of path and content", pathData)
	}
	for i := 0; i < len(pathData); i += 2 {
		write(t, root, pathData[i], pathData[i+1])
	}
}

// tree lists a folder as "path=content" and "path/" lines, without .tandem.
func tree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.Name() == remote.ReservedDir {
			return filepath.SkipDir
		}
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, _ := os.ReadFile(p)
		out = append(out, rel+"="+string(b))
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// conflict writes rel on both sides, with different content, and runs the pass that must report one conflict.
func (p *realPair) conflict(rel, localData, remoteData string) *Report {
	p.t.Helper()
	write(p.t, p.L, rel, localData)
	write(p.t, p.R, rel, remoteData)
	rep := p.pass()
	if len(rep.Conflicts) != 1 {
		p.t.Fatalf("want one conflict: %+v", rep.Conflicts)
	}
	return rep
}

// sync runs a pass and checks that it converged.
func (p *realPair) sync() {
	p.t.Helper()
	p.pass()
	p.converged()
}

func (p *realPair) converged() {
	p.t.Helper()
	if l, r := tree(p.t, p.L), tree(p.t, p.R); l != r {
		p.t.Fatalf("sides differ:\nlocal:\n%s\nremote:\n%s", l, r)
	}
	rep := p.pass()
	if len(rep.Done) != 0 {
		p.t.Fatalf("a pass after convergence did %+v", rep.Done)
	}
}

func TestPairBasics(t *testing.T) {
	p := newRealPair(t)
	writeFiles(t, p.L, "a.txt", "one", "docs/x/deep.txt", "deep")
	writeFiles(t, p.R, "r.txt", "from remote", "empty", "")
	p.sync()

	// Edits both ways.
	write(t, p.L, "a.txt", "one v2")
	write(t, p.R, "r.txt", "remote v2")
	p.sync()
	if got := tree(t, p.R); !strings.Contains(got, "a.txt=one v2") {
		t.Fatalf("edit not uploaded: %s", got)
	}

	// Conflict: keep both.
	p.conflict("a.txt", "local edit", "remote edit")
	p.converged()
	got := tree(t, p.L)
	if !strings.Contains(got, "a.txt=remote edit") || !strings.Contains(got, "(conflict testhost ") || !strings.Contains(got, "=local edit") {
		t.Fatalf("keep-both result:\n%s", got)
	}

	// Delete vs modify: modification wins.
	os.Remove(filepath.Join(p.L, "r.txt"))
	write(t, p.R, "r.txt", "remote v3")
	p.sync()
	if got := tree(t, p.L); !strings.Contains(got, "r.txt=remote v3") {
		t.Fatalf("modification lost: %s", got)
	}

	// Local folder move is a move on the other side.
	if err := os.Rename(filepath.Join(p.L, "docs"), filepath.Join(p.L, "papers")); err != nil {
		t.Fatal(err)
	}
	rep := p.pass()
	if tt := rep.Totals(); tt.MovedRemote != 1 || tt.Uploaded != 0 {
		t.Fatalf("folder move: %+v %+v", tt, rep.Done)
	}
	p.converged()

	// Delete propagates to the trash.
	os.Remove(filepath.Join(p.R, "empty"))
	p.sync()
	if _, err := os.Stat(filepath.Join(p.L, "empty")); !os.IsNotExist(err) {
		t.Fatal("delete not propagated")
	}

	// Type change: file replaced by a folder on one side.
	os.Remove(filepath.Join(p.L, "a.txt"))
	write(t, p.L, "a.txt/inner", "now a folder")
	p.sync()
}

func (p *realPair) scoped(sc *Scope) *Report {
	p.t.Helper()
	rep, err := testEngine(p.t, Deps{Local: p.ldir, Remote: p.rdir, Store: p.st}, p.opts).RunScoped(context.Background(), sc)
	if err != nil {
		p.t.Fatalf("scoped pass: %v", err)
	}
	if len(rep.Problems) > 0 {
		p.t.Fatalf("problems: %+v", rep.Problems)
	}
	return rep
}

// A scoped pass syncs what its scope names (and what lies below), leaves the rest to a full pass, and replays
// a folder move inside its scope as a move.
func TestScopedPass(t *testing.T) {
	p := newRealPair(t)
	writeFiles(t, p.L, "a.txt", "a", "dir/x.txt", "x")
	write(t, p.R, "b.txt", "b")
	write(t, p.L, "c.txt", "c")
	p.sync()

	write(t, p.L, "a.txt", "a2")
	write(t, p.R, "b.txt", "b2")
	// c.txt is not in the scope: a watcher that missed it leaves it to the full pass.
	writeFiles(t, p.L, "c.txt", "c2", "new/deep/n.txt", "n")
	rep := p.scoped(&Scope{
		Local:  []ScopePath{{Path: "a.txt"}, {Path: "new", Subtree: true}},
		Remote: []ScopePath{{Path: "b.txt"}},
	})
	got := tree(t, p.R)
	for _, want := range []string{"a.txt=a2", "new/deep/n.txt=n", "c.txt=c\n"} {
		if !strings.Contains(got+"\n", want) {
			t.Fatalf("after the scoped pass the remote lacks %q:\n%s\n%+v", want, got, rep.Done)
		}
	}
	if !strings.Contains(tree(t, p.L), "b.txt=b2") {
		t.Fatal("remote edit in scope not downloaded")
	}
	p.sync()

	if err := os.Rename(filepath.Join(p.L, "dir"), filepath.Join(p.L, "moved")); err != nil {
		t.Fatal(err)
	}
	rep = p.scoped(&Scope{Local: []ScopePath{{Path: "dir"}, {Path: "moved", Subtree: true}}})
	if tt := rep.Totals(); tt.MovedRemote != 1 || tt.Uploaded != 0 || tt.DeletedRemote != 0 {
		t.Fatalf("scoped folder move: %+v %+v", tt, rep.Done)
	}
	p.converged()

	// An invalid scope path falls back to a full pass rather than guessing.
	write(t, p.L, "z.txt", "z")
	p.scoped(&Scope{Local: []ScopePath{{Path: "../escape"}}})
	p.converged()
}

// The bandwidth limit paces transfers: a lower bound on the time (a slow machine only makes it longer).
func TestBandwidthLimit(t *testing.T) {
	p := newRealPair(t)
	write(t, p.L, "big.bin", strings.Repeat("x", 768<<10))
	p.opts.BandwidthLimit = 512 << 10
	start := time.Now()
	p.pass()
	// 768 KiB at 512 KiB/s with a 256 KiB burst needs at least one second.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("768 KiB at 512 KiB/s took %v", d)
	}
	p.converged()
}

// A transfer reports its bytes while it runs, for status and progress bars.
func TestProgressBytes(t *testing.T) {
	p := newRealPair(t)
	write(t, p.L, "big.bin", strings.Repeat("y", 3<<20+5))
	var mu sync.Mutex
	var seen []int64
	p.opts.Progress = func(ev Event) {
		if ev.Progress {
			mu.Lock()
			seen = append(seen, ev.Bytes)
			mu.Unlock()
		}
	}
	p.pass()
	if len(seen) != 3 || seen[0] != 1<<20 || seen[2] != 3<<20 {
		t.Fatalf("progress events %v, want one per MiB", seen)
	}
}

// A file rewritten between the pass's look and its upload is sent as it stands now (a stable snapshot: a fresh
// digest and a body that agrees with it), not failed as "changed since it was scanned": a file written more often
// than a pass takes would otherwise never sync. The next pass has nothing to do.
func TestUploadSendsASnapshotOfAFileChangedSinceTheScan(t *testing.T) {
	p := newRealPair(t)
	write(t, p.L, "busy.db", "v1")
	// Rewritten before each of the pass's first two upload attempts: a pass re-observes once after a failure, so
	// one rewrite alone would be caught up within the pass.
	n := 0
	p.opts.Progress = func(ev Event) {
		if ev.Action.Op == Upload && !ev.Done && !ev.Progress && n < 2 {
			n++
			write(t, p.L, "busy.db", fmt.Sprintf("v%d, written after the pass looked", n+1))
		}
	}
	rep := p.pass()
	if got, err := os.ReadFile(filepath.Join(p.R, "busy.db")); err != nil || string(got) != fmt.Sprintf("v%d, written after the pass looked", n+1) {
		t.Fatalf("remote busy.db = %q, %v; report %+v", got, err, rep)
	}
	p.opts.Progress = nil
	if rep := p.pass(); len(rep.Done) != 0 {
		t.Fatalf("the pass after the snapshot upload did %+v", rep.Done)
	}
}

// Issue 9 hole 7, seed 9545: a folder deleted on the other side and kept for the user's ignored files goes once
// nothing keeps it (the user removed those files, or a power loss took them before they reached the disk): a
// pass that lists it and finds only default junk, or nothing, finishes the other side's delete. While the
// ignored file is there, passes stay quiet (the check reads, it never tries a delete).
func TestPairKeptFolderGoesOnceEmptied(t *testing.T) {
	p := newRealPair(t)
	m, err := ignore.New([]string{"*.log"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ign := func(q remote.Path, dir bool) bool { return m.Ignored(string(q), dir) }
	p.ldir.Close()
	p.rdir.Close()
	lg := zaptest.NewLogger(t)
	// As the CLI opens them: Walk does not even show the ignored files.
	if p.ldir, err = localdir.Open(lg, p.L, localdir.Options{Skip: ign}); err != nil {
		t.Fatal(err)
	}
	if p.rdir, err = localdir.Open(lg, p.R, localdir.Options{Skip: ign}); err != nil {
		t.Fatal(err)
	}
	p.opts.Ignored, p.opts.Junk = ign, ignore.Junk
	write(t, p.L, "K/b.txt", "b")
	p.pass()
	write(t, p.L, "K/keep.log", "my log")
	if err := os.RemoveAll(filepath.Join(p.R, "K")); err != nil {
		t.Fatal(err)
	}
	rep := p.pass()
	if len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0].Reason, "kept") {
		t.Fatalf("K not reported as kept: %+v", rep.Skipped)
	}
	if rep := p.pass(); rep.Rounds != 0 || len(rep.Skipped) != 0 {
		t.Fatalf("a pass over the kept folder did %+v, skipped %+v", rep.Done, rep.Skipped)
	}
	if err := os.Remove(filepath.Join(p.L, "K", "keep.log")); err != nil {
		t.Fatal(err)
	}
	write(t, p.L, "K/.DS_Store", "finder junk")
	p.pass()
	if _, err := os.Lstat(filepath.Join(p.L, "K")); !os.IsNotExist(err) {
		t.Fatalf("local K still there (%v): nothing keeps it now", err)
	}
	p.converged()
}

// TestConflictPolicyLoserGoesToItsTrash: under local-wins and remote-wins the losing version goes to its own
// side's trash (the local .tandem/trash, the dir: remote's), never nowhere, and both sides end with the winner.
func TestConflictPolicyLoserGoesToItsTrash(t *testing.T) {
	for _, tc := range []struct {
		policy          conflict.Policy
		winner, loser   string
		loserTrashUnder func(p *realPair) string
	}{
		{conflict.LocalWins, "local edit", "remote edit", func(p *realPair) string { return p.R }},
		{conflict.RemoteWins, "remote edit", "local edit", func(p *realPair) string { return p.L }},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			p := newRealPair(t)
			write(t, p.L, "doc.txt", "base")
			p.sync()
			p.opts.Policy = tc.policy
			p.conflict("doc.txt", "local edit", "remote edit")
			p.sync()
			for _, root := range []string{p.L, p.R} {
				if b, err := os.ReadFile(filepath.Join(root, "doc.txt")); err != nil || string(b) != tc.winner {
					t.Errorf("%s/doc.txt = %q, %v, want the winner %q", root, b, err, tc.winner)
				}
			}
			found := false
			trash := filepath.Join(tc.loserTrashUnder(p), ".tandem", "trash")
			_ = filepath.WalkDir(trash, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if b, _ := os.ReadFile(path); string(b) == tc.loser {
						found = true
					}
				}
				return nil
			})
			if !found {
				t.Errorf("the losing version %q is not in %s", tc.loser, trash)
			}
		})
	}
}
