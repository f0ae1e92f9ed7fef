package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
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

// Issue 9 hole 6: a folder move needs a file that came along. rm -rf d; mkdir n; a new n/f: n got the inode d
// freed (and n/f the one d/f freed), but nothing inside came along: delete d (its files to the trash) and
// create n, never move the remote d to n (the new n/f would then overwrite the old d/f's content, in no trash).
func TestFolderMoveNeedsMoreThanTheInode(t *testing.T) {
	d, nd := dir("d"), dir("n")
	nd.ID = d.ID
	f := file("d/f", "old report")
	lookup := lookupByID(d, f)
	for _, tc := range []struct {
		name string
		nf   *state.Record
		want []string
	}{
		{"inode reused, new content: delete and create", file("n/f", "new report"),
			[]string{"mkdir-remote n", "upload n/f", "delete-remote d/f", "delete-remote d"}},
		{"a file came along: move", file("n/f", "old report"), []string{"move-remote d -> n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.nf.ID = f.ID // reused too, or moved along
			checkPlan(t, []row{
				{"d", base(d, d), nil, d},
				{"d/f", base(f, f), nil, f},
				{"n", nil, nd, nil},
				{"n/f", nil, tc.nf, nil},
			}, lookup, tc.want)
		})
	}
	// The same on the remote side (a dir: remote reuses inodes too).
	rnf := file("n/f", "new report")
	rnf.ID = f.ID
	checkPlan(t, []row{
		{"d", base(d, d), d, nil},
		{"d/f", base(f, f), f, nil},
		{"n", nil, nil, nd},
		{"n/f", nil, nil, rnf},
	}, lookup, []string{"mkdir-local n", "download n/f", "delete-local d/f", "delete-local d"})
}

// Issue 9 hole 5: "both sides already agree" is recorded only over local bytes that are durable. A file the user
// wrote (nothing synced) that the remote already holds: the first pass records the sync point without any
// transfer; a power loss right after must not leave an empty or older file under that sync point. On a disk with
// multigrain timestamps the scan leaves the new file undigested (digestLater) and the pass compares the two
// copies instead, which must end the same way: one action, no upload of what the remote holds already.
func TestRecordMakesLocalBytesDurable(t *testing.T) {
	for seed := range uint64(20) {
		p := newFakeDiskPair(t, seed, 7)
		multigrain := seed%2 == 0
		p.ffs.SetMultigrain(multigrain)
		ffs, mem, e := p.ffs, p.mem, p.e
		data := []byte("the same report on both sides\n")
		if err := ffs.WriteFile("report.txt", data); err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile("report.txt", data); err != nil {
			t.Fatal(err)
		}
		want := Record
		if multigrain {
			want = Compare
		}
		rep, err := e.RunPass(context.Background())
		if err != nil || len(rep.Done) != 1 || rep.Done[0].Op != want {
			t.Fatalf("seed %d: first pass = %+v, %v; want one %v", seed, rep, err, want)
		}
		ffs.Crash()
		got, err := ffs.ReadFile("report.txt")
		p.st.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("seed %d: after a power loss the recorded file holds %q (%v), want %q", seed, got, err, data)
		}
	}
}

// Lazydisk seed 5099: a file deleted locally while the delete guard holds its delete back keeps its sync point but
// loses its local record; written again with the synced content, it is in sync with nothing to transfer, so the
// scan that records it must make it durable. Otherwise a power loss keeps the delete, takes the new file, and the
// next pass sends the delete although tandem had recorded the file as in sync.
func TestRecreatedFileUnderBaseMadeDurable(t *testing.T) {
	ctx := context.Background()
	lost := 0
	for seed := range uint64(10) {
		p := newFakeDiskPair(t, seed, 11)
		ffs, e := p.ffs, p.e
		content := func(i int) []byte { return fmt.Appendf(nil, "report %02d, synced\n", i) }
		for i := range 12 {
			if err := ffs.WriteFile(fmt.Sprintf("f%02d", i), content(i)); err != nil {
				t.Fatal(err)
			}
		}
		p.pass(ctx)
		ffs.Sync()
		for i := range 12 {
			if err := ffs.Remove(fmt.Sprintf("f%02d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.RunPass(ctx); !errors.Is(err, ErrBigDelete) {
			t.Fatalf("seed %d: the pass after 12 of 12 deletes = %v, want the big-delete stop", seed, err)
		}
		p.clk.Advance(time.Second)
		if err := ffs.WriteFile("f00", content(0)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.RunPass(ctx); !errors.Is(err, ErrBigDelete) {
			t.Fatalf("seed %d: the pass after the re-creation = %v, want the big-delete stop", seed, err)
		}
		ffs.Crash()
		got, err := ffs.ReadFile("f00")
		p.st.Close()
		if err != nil || !bytes.Equal(got, content(0)) {
			t.Logf("seed %d: after a power loss f00 holds %q (%v), want %q", seed, got, err, content(0))
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of 10 seeds: the file recorded as in sync did not survive a power loss", lost)
	}
}

// Lazydisk seed 8624: a downloaded file written again by its user with the same content within the same clock tick
// keeps its whole fingerprint, so only the racy rule re-hashes it. That scan finds the base's digest and records
// the file as checked: the bytes it read must be durable first. Otherwise a power loss leaves the rewrite torn
// (empty), which the next pass uploads over the remote copy, the only one left.
func TestRacyRewriteUnderBaseMadeDurable(t *testing.T) {
	ctx := context.Background()
	want := []byte("the remote's report\n")
	lost := 0
	for seed := range uint64(20) {
		p := newFakeDiskPair(t, seed, 13)
		// The clock has not moved since the download: size, mtime, ctime and inode all stay as they were.
		p.rewriteWithinDownloadTick(ctx, seed, want, want)
		p.clk.Advance(5 * time.Second) // past the racy window: this scan's record is trusted from now on
		p.pass(ctx)
		if !p.survives(ctx, seed, "f", want) {
			lost++
		}
		p.st.Close()
	}
	if lost > 0 {
		t.Fatalf("%d of 20 seeds: the re-hashed file recorded as in sync did not survive a power loss", lost)
	}
}

// Lazydisk seed 10191: as 8624, but the rewrite within the download's clock tick holds new content. The racy
// re-hash records it and ends the racy window; were those bytes not durable, a power loss would put the old
// content back under the very fingerprint just recorded, the scan would trust the new digest, and the pass would
// record the upload's content as in sync on both sides although the local file holds the old one.
func TestRacyRewriteNewContentMadeDurable(t *testing.T) {
	ctx := context.Background()
	old, edit := []byte("the remote's report\n"), []byte("the user's rewrite!\n")
	diverged := 0
	for seed := range uint64(20) {
		p := newFakeDiskPair(t, seed, 17)
		ffs, mem, e := p.ffs, p.mem, p.e
		p.rewriteWithinDownloadTick(ctx, seed, old, edit)
		p.clk.Advance(5 * time.Second) // past the racy window: this scan's record is trusted from now on
		// The upload's own fsync of f fails (a crash there, in seed 10191): the edit reached the remote, the pass
		// did not record it.
		ffs.SetFault(func(op, name string) error {
			if op == "sync" && name == "f" {
				return syscall.EIO
			}
			return nil
		})
		_, _ = e.RunPass(ctx)
		ffs.SetFault(nil)
		ffs.Crash()
		for range 2 {
			p.pass(ctx)
		}
		l, lerr := ffs.ReadFile("f")
		r, rerr := mem.ReadFile("f")
		if lerr != nil || rerr != nil || !bytes.Equal(l, r) {
			t.Logf("seed %d: after a power loss and two passes local f holds %q (%v), remote %q (%v)", seed, l, lerr, r, rerr)
			diverged++
		}
		p.st.Close()
	}
	if diverged > 0 {
		t.Fatalf("%d of 20 seeds: the sides differ although the engine records them in sync", diverged)
	}
}

// fakeDiskPair is an engine between a fake disk (power losses, faults) and a memory remote at a standing clock,
// the fixture of the durability tests, one per seed.
type fakeDiskPair struct {
	t   *testing.T
	clk *clockwork.FakeClock
	ffs *fakefs.FS
	mem *memremote.Mem
	st  *state.Store
	e   *Engine
}

// newFakeDiskPair builds the pair for one seed; stream tells the tests' random sources apart. The caller closes
// p.st where its test needs it closed.
func newFakeDiskPair(t *testing.T, seed, stream uint64) *fakeDiskPair {
	t.Helper()
	p := &fakeDiskPair{t: t, clk: startClock()}
	ffs, ldir := fakeDisk(p.clk, rand.New(rand.NewPCG(seed, stream)), nil, seed%2 == 1, false)
	p.ffs = ffs
	p.mem = memremote.New(p.clk, memremote.Options{Label: "mem"})
	var err error
	if p.st, err = state.Open(filepath.Join(t.TempDir(), "pair.db"), zap.NewNop(), state.Options{}); err != nil {
		t.Fatal(err)
	}
	p.e = testEngine(t, Deps{Clock: p.clk, Local: ldir, Remote: p.mem, Store: p.st, Logger: zap.NewNop()},
		Options{Host: "testhost"})
	return p
}

// pass runs a pass that must not fail.
func (p *fakeDiskPair) pass(ctx context.Context) {
	p.t.Helper()
	if _, err := p.e.RunPass(ctx); err != nil {
		p.t.Fatal(err)
	}
}

// survives cuts the power and reports whether the local name still holds want; one more pass follows, after
// which the remote copy is logged if it does not hold want (the caller counts the losses).
func (p *fakeDiskPair) survives(ctx context.Context, seed uint64, name string, want []byte) bool {
	p.t.Helper()
	p.ffs.Crash()
	got, err := p.ffs.ReadFile(name)
	ok := err == nil && bytes.Equal(got, want)
	if !ok {
		p.t.Logf("seed %d: after a power loss %s holds %q (%v), want %q", seed, name, got, err, want)
	}
	p.pass(ctx)
	if r, err := p.mem.ReadFile(name); err != nil || !bytes.Equal(r, want) {
		p.t.Logf("seed %d: the remote copy now holds %q (%v), want %q", seed, r, err, want)
	}
	return ok
}

// rewriteWithinDownloadTick has the pass download f (remote content) and the user write f again (local content,
// of the same size) within the same clock tick: size, mtime, ctime and inode stay as the download left them.
func (p *fakeDiskPair) rewriteWithinDownloadTick(ctx context.Context, seed uint64, onRemote, onLocal []byte) {
	p.t.Helper()
	if err := p.mem.WriteFile("f", onRemote); err != nil {
		p.t.Fatal(err)
	}
	p.pass(ctx)
	before, err := p.ffs.Lstat("f")
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.ffs.WriteFile("f", onLocal); err != nil {
		p.t.Fatal(err)
	}
	if after, err := p.ffs.Lstat("f"); err != nil || !after.ModTime.Equal(before.ModTime) || after.CTime != before.CTime ||
		after.Ino != before.Ino || after.Size != before.Size {
		p.t.Fatalf("seed %d: the rewrite moved the fingerprint (%+v, %v): the case needs a standing clock", seed, after, err)
	}
}

// lookupByID finds each record's path by its ID, whichever side's index is asked: what the stored sync points
// would answer for these records.
func lookupByID(recs ...*state.Record) idLookup {
	return func(_ state.Index, id string) (remote.Path, bool) {
		for _, r := range recs {
			if r.ID == id {
				return r.Path, true
			}
		}
		return "", false
	}
}

// Lazydisk seed 170389: a synced file written again by its user with the same content, then its folder moved. The
// pass replays the folder's move on the remote and carries the file's sync point to the new path, where it
// stands on the rewritten bytes: nothing will transfer them, so they must be durable before the move is sent.
// The move's own fsync covers the folder's name, not the bytes of the files inside; a power loss that keeps the
// rename and tears the rewrite leaves an empty file, which the next pass uploads over the remote copy, the only
// one left.
func TestRewriteInMovedFolderMadeDurable(t *testing.T) {
	ctx := context.Background()
	want := []byte("the report, synced and written again\n")
	lost := 0
	for seed := range uint64(20) {
		p := newFakeDiskPair(t, seed, 19)
		ffs := p.ffs
		if err := ffs.MkdirAll("d"); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"d/f", "d/g"} {
			if err := ffs.WriteFile(f, want); err != nil {
				t.Fatal(err)
			}
		}
		p.pass(ctx)
		ffs.Sync()
		p.clk.Advance(5 * time.Second)
		// Past the racy window: the sync points' records are trusted from now on.
		p.pass(ctx)
		// The same bytes again: a new mtime, nothing to upload.
		if err := ffs.WriteFile("d/f", want); err != nil {
			t.Fatal(err)
		}
		if err := ffs.Rename("d", "e"); err != nil {
			t.Fatal(err)
		}
		p.clk.Advance(5 * time.Second)
		synced := map[string]int{}
		var mu sync.Mutex // transfers and the walk's hashing run in parallel
		ffs.SetFault(func(op, name string) error {
			if op == "sync" {
				mu.Lock()
				synced[name]++
				mu.Unlock()
			}
			return nil
		})
		rep, err := p.e.RunPass(ctx)
		ffs.SetFault(nil)
		if err != nil || len(rep.Done) != 1 || rep.Done[0].Op != MoveRemote {
			t.Fatalf("seed %d: the pass after the move = %+v, %v; want one move-remote", seed, rep, err)
		}
		if synced["e/g"] > 0 { // a folder move costs no fsync per file whose bytes are still the synced ones
			t.Fatalf("seed %d: the untouched e/g was fsync'd %d times by the move", seed, synced["e/g"])
		}
		if !p.survives(ctx, seed, "e/f", want) {
			lost++
		}
		p.st.Close()
	}
	if lost > 0 {
		t.Fatalf("%d of 20 seeds: the rewritten file in the moved folder did not survive a power loss", lost)
	}
}

// TestConflictCopyMadeDurable (lazydisk seed 281115): both sides changed a synced file; the local change was
// never fsync'd by the program that wrote it. Keep-both renames the local file aside; a power loss right after
// (here: the pass dies creating the download's file) must not leave a copy with older bytes than the ones the
// conflict was decided on: the user's edit would be gone and the copy junk.
func TestConflictCopyMadeDurable(t *testing.T) {
	base, theirs, mine := []byte("the base version\n"), []byte("the remote edit\n"), []byte("the local edit, unsynced\n")
	lost := 0
	for seed := range uint64(20) {
		p := newFakeDiskPair(t, seed, 23)
		ffs := p.ffs
		if err := ffs.WriteFile("f", base); err != nil {
			t.Fatal(err)
		}
		p.pass(context.Background())
		ffs.Sync()
		p.clk.Advance(5 * time.Second)
		p.pass(context.Background())
		if err := p.mem.WriteFile("f", theirs); err != nil {
			t.Fatal(err)
		}
		if err := ffs.WriteFile("f", mine); err != nil {
			t.Fatal(err)
		}
		p.clk.Advance(5 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		ffs.SetFault(func(op, name string) error {
			// The download's file: a temp file, or an unnamed one in its folder (the root).
			if (op == "create" && strings.HasSuffix(name, remote.TempSuffix)) || (op == "tmpfile" && name == ".") {
				cancel() // the process dies here: nothing after the rename aside runs
				return context.Canceled
			}
			return nil
		})
		_, err := p.e.RunPass(ctx)
		ffs.SetFault(nil)
		cancel()
		if err == nil {
			t.Fatalf("seed %d: the pass did not reach the download after the rename aside", seed)
		}
		ffs.Crash()
		var copies []string
		names, err := ffs.ReadDir(".")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "f (conflict") {
				copies = append(copies, n)
			}
		}
		if len(copies) != 1 {
			t.Fatalf("seed %d: conflict copies %q after the power loss; want one (the rename aside is durable)", seed, copies)
		}
		if got, err := ffs.ReadFile(copies[0]); err != nil || !bytes.Equal(got, mine) {
			t.Logf("seed %d: the conflict copy holds %q (%v), want the local edit %q", seed, got, err, mine)
			lost++
		}
		p.st.Close()
	}
	if lost > 0 {
		t.Fatalf("%d of 20 seeds: the local edit renamed aside as a conflict copy did not survive a power loss", lost)
	}
}
