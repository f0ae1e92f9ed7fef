package pcloud

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
	"github.com/tandemsync/tandem/state"
)

// errKilled stands for a kill -9: the process is gone before it reads the feed past its own writes.
var errKilled = errors.New("test: the tandem process was killed here")

// dyingClient is the pCloud client of a tandem process that dies right after its remote writes: once it has
// written, the feed is never read again, so the pass ends before the cursor passes those writes. The store
// keeps what the pass committed, as after a kill -9 (a commit is a bbolt transaction: in or out).
type dyingClient struct {
	*Client
	wrote atomic.Bool
}

func (d *dyingClient) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time,
	pre remote.Precondition) (remote.Entry, error) {
	ent, err := d.Client.Put(ctx, p, body, size, mtime, pre)
	d.wrote.Store(true)
	return ent, err
}

func (d *dyingClient) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	ent, err := d.Client.Mkdir(ctx, p)
	d.wrote.Store(true)
	return ent, err
}

func (d *dyingClient) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	ent, err := d.Client.Move(ctx, from, to, pre)
	d.wrote.Store(true)
	return ent, err
}

func (d *dyingClient) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	if d.wrote.Load() {
		return remote.Batch{}, errKilled
	}
	return d.Client.Changes(ctx, cur)
}

// crashPair is a local folder and a pCloud emulator folder synced by engine passes over one state store; each
// pass is a new process: a new client (no memory of the last one) and a new engine.
type crashPair struct {
	t     *testing.T
	run   *emulator.Running
	other *Client // another client of the account
	L     string
	st    *state.Store
}

func newCrashPair(t *testing.T) *crashPair {
	t.Helper()
	run, _, other := pair(t, emulator.Options{}, Options{})
	c := &crashPair{t: t, run: run, other: other, L: t.TempDir()}
	st, err := state.Open(filepath.Join(t.TempDir(), "pair.db"), zaptest.NewLogger(t), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.st = st
	t.Cleanup(func() { _ = st.Close() })
	return c
}

// pass runs one engine pass as a fresh process; dying: the process is killed after its first remote write.
func (c *crashPair) pass(dying bool) (*engine.Report, error) {
	c.t.Helper()
	lg := zaptest.NewLogger(c.t, zaptest.Level(zap.WarnLevel))
	local, err := localdir.Open(lg, c.L, localdir.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	defer local.Close()
	var r remote.Remote = newClient(c.t, c.run, "/Sync", Options{})
	if dying {
		r = &dyingClient{Client: r.(*Client)}
	}
	e, err := engine.New(engine.Deps{Local: local, Remote: r, Store: c.st, Logger: lg}, engine.Options{Host: "testhost"})
	if err != nil {
		c.t.Fatal(err)
	}
	return e.RunPass(context.Background())
}

func (c *crashPair) okPass() *engine.Report {
	c.t.Helper()
	rep, err := c.pass(false)
	if err != nil {
		c.t.Fatalf("pass: %v", err)
	}
	if len(rep.Problems) > 0 {
		c.t.Fatalf("problems: %+v", rep.Problems)
	}
	return rep
}

func (c *crashPair) dyingPass() {
	c.t.Helper()
	if _, err := c.pass(true); !errors.Is(err, errKilled) {
		c.t.Fatalf("the dying pass ended with %v, want it killed after its writes", err)
	}
}

func (c *crashPair) lwrite(rel, data string) {
	c.t.Helper()
	full := filepath.Join(c.L, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// localPaths lists the local folder (without .tandem) as sorted paths, folders with a trailing slash.
func (c *crashPair) localPaths() []string {
	c.t.Helper()
	var out []string
	err := filepath.WalkDir(c.L, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.L, p)
		switch {
		case rel == ".":
			return nil
		case d.Name() == remote.ReservedDir:
			return filepath.SkipDir
		case d.IsDir():
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// remotePaths lists the remote folder as another client sees it.
func (c *crashPair) remotePaths() []string {
	c.t.Helper()
	var out []string
	err := c.other.Walk(context.Background(), remote.Root, func(e remote.Entry) error {
		p := string(e.Path)
		if e.Dir {
			p += "/"
		}
		if !strings.HasPrefix(p, remote.ReservedDir) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// converged: both sides list the same paths, and one more pass does nothing.
func (c *crashPair) converged() {
	c.t.Helper()
	if l, r := strings.Join(c.localPaths(), " "), strings.Join(c.remotePaths(), " "); l != r {
		c.t.Fatalf("sides differ:\nlocal:  %s\nremote: %s", l, r)
	}
	if rep := c.okPass(); len(rep.Done) != 0 {
		c.t.Fatalf("a pass after convergence did %+v", rep.Done)
	}
}

// TestOwnCreateDeletedByOtherAfterCrash (torture bug P2, seed 561752): tandem uploads a file and creates a
// folder with a file inside, and is killed before it reads the feed past its own writes. Another client then
// deletes all of it. pCloud leaves out events that cancel each other inside one `diff` reply (documented:
// create then delete), so the feed read by the next process never names those items: without a durable note
// of tandem's own writes, the local copies stayed for good while the remote had nothing. The next pass must
// see them gone and take the local copies (equal to the base) to the trash.
func TestOwnCreateDeletedByOtherAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCrashPair(t)
	c.lwrite("keep.txt", "kept")
	c.okPass() // the first sync: a cursor and a base
	c.lwrite("new.txt", "made by tandem")
	c.lwrite("newdir/inner.txt", "inside a folder tandem made")
	c.dyingPass()
	if got := strings.Join(c.remotePaths(), " "); got != "keep.txt new.txt newdir/ newdir/inner.txt" {
		t.Fatalf("after the dying pass the remote holds %q", got)
	}
	for _, p := range []remote.Path{"new.txt", "newdir/inner.txt", "newdir"} {
		if err := c.other.Delete(ctx, p, remote.Precondition{}); err != nil {
			t.Fatalf("another client deletes %s: %v", p, err)
		}
	}
	rep := c.okPass()
	if got := strings.Join(c.localPaths(), " "); got != "keep.txt" {
		t.Fatalf("after the next pass the local side holds %q, want only keep.txt (done %+v)", got, rep.Done)
	}
	c.converged()
}

// TestOwnMoveDeletedByOtherAfterCrash: the same for a move tandem made of a file the feed already knew. Its
// modifyfile and the other client's deletefile do not cancel each other (no create among them), so the feed
// names the delete at the new path; this guards that it stays so (the durable note covers the move's target
// too).
func TestOwnMoveDeletedByOtherAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCrashPair(t)
	c.lwrite("keep.txt", "kept")
	c.lwrite("old.txt", "moved by tandem")
	c.okPass()
	if err := os.Rename(filepath.Join(c.L, "old.txt"), filepath.Join(c.L, "moved.txt")); err != nil {
		t.Fatal(err)
	}
	c.dyingPass()
	if got := strings.Join(c.remotePaths(), " "); got != "keep.txt moved.txt" {
		t.Fatalf("after the dying pass the remote holds %q", got)
	}
	if err := c.other.Delete(ctx, "moved.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	c.okPass()
	if got := strings.Join(c.localPaths(), " "); got != "keep.txt" {
		t.Fatalf("after the next pass the local side holds %q, want only keep.txt", got)
	}
	c.converged()
}
