package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

// TestRelistRepairsFeedHoles: changes the feed never reports (an edit, a delete, a move) stay unseen by passes
// that read the feed, full ones included; ListRemoteNext makes the next pass list the remote completely, and
// its differences with the stored view are planned like feed changes: the edit is downloaded, the delete goes
// to the local trash, the move is a local move. The request is used once; LastListing says when the remote was
// last listed completely, across engines (it is in the store).
func TestRelistRepairsFeedHoles(t *testing.T) {
	ctx := context.Background()
	r := newRelistRig(t)
	clk, local, mem, feed := r.clk, r.local, r.mem, r.feed
	for _, f := range []string{"edit.txt", "gone.txt", "from.txt", "keep1.txt", "keep2.txt", "keep3.txt"} {
		if err := mem.WriteFile(f, []byte(f+" v1")); err != nil {
			t.Fatal(err)
		}
	}
	e := r.engine(t)
	t0 := clk.Now()
	if rep, err := e.RunPass(ctx); err != nil || !rep.FullListing || len(rep.Problems) > 0 {
		t.Fatalf("first pass: %v %+v", err, rep)
	}
	if at, err := e.LastListing(); err != nil || !at.Equal(t0) {
		t.Fatalf("last listing after the first pass: %v %v, want %v", at, err, t0)
	}

	clk.Advance(time.Hour)
	for _, p := range []remote.Path{"edit.txt", "gone.txt", "from.txt", "to.txt"} {
		feed.Hide[p] = true
	}
	if err := mem.WriteFile("edit.txt", []byte("edit.txt v2, unseen by the feed")); err != nil {
		t.Fatal(err)
	}
	if err := mem.Remove("gone.txt"); err != nil {
		t.Fatal(err)
	}
	if err := mem.Rename("from.txt", "to.txt"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	rep, err := e.RunPass(ctx)
	if err != nil || rep.FullListing || len(rep.Done) != 0 {
		t.Fatalf("a full pass through the feed: %v listing=%v done=%+v", err, rep.FullListing, rep.Done)
	}
	if b, _ := local.ReadFile("edit.txt"); string(b) != "edit.txt v1" {
		t.Fatalf("the feed-only pass saw the hidden edit: %q", b)
	}

	e.ListRemoteNext()
	t1 := clk.Now()
	rep, err = e.RunPass(ctx)
	if err != nil || !rep.FullListing || len(rep.Problems) > 0 {
		t.Fatalf("the relisting pass: %v listing=%v %+v", err, rep.FullListing, rep.Problems)
	}
	if rep.Resynced {
		t.Error("a relist on request is reported as an out-of-sync cursor (resynced)")
	}
	if b, err := local.ReadFile("edit.txt"); err != nil || string(b) != "edit.txt v2, unseen by the feed" {
		t.Errorf("edit.txt after the relist: %q %v", b, err)
	}
	if _, err := local.Stat(ctx, "gone.txt"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("gone.txt, deleted remotely unseen, is still local: %v", err)
	}
	if b, err := local.ReadFile("to.txt"); err != nil || string(b) != "from.txt v1" {
		t.Errorf("to.txt after the relist: %q %v", b, err)
	}
	if _, err := local.Stat(ctx, "from.txt"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("from.txt, moved remotely unseen, is still local: %v", err)
	}
	if at, err := e.LastListing(); err != nil || !at.Equal(t1) {
		t.Fatalf("last listing after the relist: %v %v, want %v", at, err, t1)
	}
	clk.Advance(time.Minute)
	if rep, err := e.RunPass(ctx); err != nil || rep.FullListing || len(rep.Done) != 0 {
		t.Fatalf("the pass after: %v listing=%v done=%+v (the request is for one pass)", err, rep.FullListing, rep.Done)
	}
	e2 := r.engine(t)
	if at, err := e2.LastListing(); err != nil || !at.Equal(t1) {
		t.Fatalf("a new engine on the store: last listing %v %v, want %v", at, err, t1)
	}
}

// TestRelistDeletesPassTheGuard: what a relist finds missing is a remote delete like any other: most files
// missing stops the pass at the big-delete guard, and nothing local is deleted.
func TestRelistDeletesPassTheGuard(t *testing.T) {
	ctx := context.Background()
	r := newRelistRig(t)
	clk, local, mem, feed := r.clk, r.local, r.mem, r.feed
	for i := range 20 {
		if err := mem.WriteFile(fmt.Sprintf("f%02d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	e := r.engine(t)
	if _, err := e.RunPass(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	for i := range 15 {
		p := fmt.Sprintf("f%02d", i)
		feed.Hide[remote.Path(p)] = true
		if err := mem.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	e.ListRemoteNext()
	if _, err := e.RunPass(ctx); !errors.Is(err, ErrBigDelete) {
		t.Fatalf("relist finding 15 of 20 files gone: %v, want the big-delete guard", err)
	}
	for i := range 20 {
		if _, err := local.Stat(ctx, remote.Path(fmt.Sprintf("f%02d", i))); err != nil {
			t.Fatalf("f%02d: %v", i, err)
		}
	}
}

// relistRig is the pair the relist tests share: a remote whose feed can hide changes, and one store.
type relistRig struct {
	clk   *clockwork.FakeClock
	local *memremote.Mem
	mem   *memremote.Mem
	feed  *memremote.FeedHoles
	st    *state.Store
}

func newRelistRig(t *testing.T) *relistRig {
	t.Helper()
	clk, local, mem := memPair(memremote.Options{})
	return &relistRig{
		clk:   clk,
		local: local,
		mem:   mem,
		feed:  &memremote.FeedHoles{Mem: mem, Hide: map[remote.Path]bool{}},
		st:    memStore(t),
	}
}

// engine is a new engine over the rig's sides and store (a second one sees what the first stored).
func (r *relistRig) engine(t *testing.T) *Engine {
	t.Helper()
	return testEngine(t, Deps{Clock: r.clk, Local: r.local, Remote: r.feed, Store: r.st}, Options{})
}
