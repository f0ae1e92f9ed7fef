package vboxx

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/vboxx/emulator"
	"github.com/tandemsync/tandem/state"
)

// Engine passes against the emulator: what the feed's shape (differences between two states, not events) means
// for the engine's stored view.

// enginePair is a local folder synced with a vBoxx folder through the engine, with a real store.
type enginePair struct {
	t  *testing.T
	L  string
	st *state.Store
	ld *localdir.Dir
}

func newEnginePair(t *testing.T) *enginePair {
	t.Helper()
	p := &enginePair{t: t, L: t.TempDir()}
	st, err := state.Open(filepath.Join(t.TempDir(), "pair.db"), quiet(t), state.Options{})
	mustDo(t, err)
	p.st = st
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("state check: %v", err)
		}
		st.Close()
	})
	p.ld, err = localdir.Open(quiet(t), p.L, localdir.Options{})
	mustDo(t, err)
	t.Cleanup(func() { p.ld.Close() })
	return p
}

func (p *enginePair) pass(r remote.Remote) (*engine.Report, error) {
	e, err := engine.New(engine.Deps{Local: p.ld, Remote: r, Store: p.st, Logger: zaptest.NewLogger(p.t)},
		engine.Options{Host: "testhost"})
	mustDo(p.t, err)
	return e.RunPass(context.Background())
}

func (p *enginePair) write(rel, data string) {
	full := filepath.Join(p.L, filepath.FromSlash(rel))
	mustDo(p.t, os.MkdirAll(filepath.Dir(full), 0o755))
	mustDo(p.t, os.WriteFile(full, []byte(data), 0o644))
}

// killAfter is the client of a `tandem once` killed once a remote write of its kind (op: "Put" or "Move") was
// committed and before the pass read the feed past it (confirmWrites): every Changes call after such a write
// fails, so the cursor stays before the write while the store already holds what the write made.
type killAfter struct {
	*Client
	op  string
	hit bool
}

var errKilled = errors.New("killed")

func (k *killAfter) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time,
	pre remote.Precondition) (remote.Entry, error) {
	ent, err := k.Client.Put(ctx, p, body, size, mtime, pre)
	k.hit = k.hit || (err == nil && k.op == "Put")
	return ent, err
}

func (k *killAfter) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	ent, err := k.Client.Move(ctx, from, to, pre)
	k.hit = k.hit || (err == nil && k.op == "Move")
	return ent, err
}

func (k *killAfter) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	if k.hit {
		return remote.Batch{}, errKilled
	}
	return k.Client.Changes(ctx, cur)
}

// TestStaleRevisionAfterMoveIsRelearned (torture vboxx seed 365366): tandem replays a local rename on the server
// and dies before its feed moves past it; another client then renames the file again, and the user edits it
// under the name tandem gave it. The feed, from the old cursor, reports one move from the name before tandem's
// rename to the newest name, so the store's record at tandem's name (the one the executor wrote) was never
// dropped: every later pass tried to replace a file that is not there, failed its precondition ("changed since
// revision N") and planned the same upload again. The passes must converge, with the edit on both sides.
func TestStaleRevisionAfterMoveIsRelearned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.open("/T")
	p := newEnginePair(t)
	p.write("d/a.txt", "version one")
	if _, err := p.pass(c); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	mustDo(t, os.Rename(filepath.Join(p.L, "d", "a.txt"), filepath.Join(p.L, "d", "b.txt")))
	k := &killAfter{Client: c, op: "Move"}
	if _, err := p.pass(k); !errors.Is(err, errKilled) {
		t.Fatalf("the pass with the kill: %v", err)
	}
	if !k.hit {
		t.Fatal("the local rename was not replayed on the server")
	}
	other := e.open("/T")
	_, err := other.Move(t.Context(), "d/b.txt", "d/c.txt", remote.Precondition{})
	mustDo(t, err)
	p.write("d/b.txt", "version two, edited")

	p.converge(c, "version two, edited")
}

// converge runs passes until one has no problems (at most two), then checks that one more does nothing, that
// both sides hold the same files and that every version in want is on them.
func (p *enginePair) converge(c *Client, want ...string) {
	t := p.t
	t.Helper()
	var last *engine.Report
	for i := range 2 {
		rep, err := p.pass(c)
		if err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
		last = rep
	}
	if len(last.Problems) > 0 {
		t.Fatalf("the passes keep failing: %+v", last.Problems)
	}
	rep, err := p.pass(c)
	if err != nil || len(rep.Done) > 0 || len(rep.Problems) > 0 {
		t.Fatalf("the pass after convergence: %v, done %+v, problems %+v", err, rep.Done, rep.Problems)
	}
	local := map[string]string{}
	mustDo(t, filepath.WalkDir(p.L, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(p.L, path)
		if strings.HasPrefix(rel, ".tandem") {
			return nil
		}
		b, err := os.ReadFile(path)
		local[filepath.ToSlash(rel)] = string(b)
		return err
	}))
	remoteFiles := map[string]string{}
	mustDo(t, c.Walk(t.Context(), remote.Root, func(ent remote.Entry) error {
		if ent.Dir || strings.HasPrefix(string(ent.Path), ".tandem") {
			return nil
		}
		remoteFiles[string(ent.Path)] = read(t, c, string(ent.Path))
		return nil
	}))
	if len(local) != len(remoteFiles) {
		t.Fatalf("the sides differ: local %v, remote %v", local, remoteFiles)
	}
	have := map[string]bool{}
	for p, data := range local {
		if remoteFiles[p] != data {
			t.Fatalf("the sides differ at %s: local %v, remote %v", p, local, remoteFiles)
		}
		have[data] = true
	}
	for _, v := range want {
		if !have[v] {
			t.Fatalf("%q is on neither side: %v", v, local)
		}
	}
}

// TestStaleRevisionAfterUploadIsRelearned: tandem uploads a new file and dies before its feed moves past it;
// another client deletes the file, which a feed of differences between two states never mentions (the file
// was not there at the old cursor and is not there now); the user edits it. The upload of the edit fails its
// precondition (the stored revision is of a file that is gone): the engine must look at the path and plan from
// what is there (here: nothing, so the edit is uploaded as a new file), not fail the same way on every pass.
func TestStaleRevisionAfterUploadIsRelearned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.open("/T")
	p := newEnginePair(t)
	p.write("keep.txt", "kept")
	if _, err := p.pass(c); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	p.write("a.txt", "version one")
	k := &killAfter{Client: c, op: "Put"}
	if _, err := p.pass(k); !errors.Is(err, errKilled) || !k.hit {
		t.Fatalf("the pass with the kill: %v (uploaded: %v)", err, k.hit)
	}
	mustDo(t, e.open("/T").Delete(t.Context(), "a.txt", remote.Precondition{}))
	p.write("a.txt", "version two, edited")
	p.converge(c, "version two, edited")
}

// TestStaleNameAfterMoveIsDropped: as TestStaleRevisionAfterMoveIsRelearned without the edit, so no action
// fails and nothing looks at the path again: the feed's move from the name before tandem's rename must carry
// the record tandem wrote at its own name along, or the old name stays on the local side for good while every
// pass finds nothing to do.
func TestStaleNameAfterMoveIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	c := e.open("/T")
	p := newEnginePair(t)
	p.write("d/a.txt", "version one")
	if _, err := p.pass(c); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	mustDo(t, os.Rename(filepath.Join(p.L, "d", "a.txt"), filepath.Join(p.L, "d", "b.txt")))
	k := &killAfter{Client: c, op: "Move"}
	if _, err := p.pass(k); !errors.Is(err, errKilled) || !k.hit {
		t.Fatalf("the pass with the kill: %v (moved: %v)", err, k.hit)
	}
	_, err := e.open("/T").Move(t.Context(), "d/b.txt", "d/c.txt", remote.Precondition{})
	mustDo(t, err)
	p.converge(c, "version one")
	if _, err := os.Stat(filepath.Join(p.L, "d", "b.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old name is still on the local side: %v", err)
	}
}
