package remotetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// settleGrace is added to Fixture.Settle: the suite stops polling as soon as the expected state shows, so the
// grace only costs time on a failing side, and it keeps a loaded CI machine from failing a correct one.
const settleGrace = 2 * time.Second

func needFeed(t *testing.T, f Fixture) {
	t.Helper()
	if !f.R.Capabilities().Feed {
		t.Skip("Capabilities().Feed is false: the engine walks this side")
	}
}

func needOther(t *testing.T, f Fixture) remote.Remote {
	t.Helper()
	if f.Other == nil {
		t.Skip("fixture has no Other client")
	}
	return f.Other
}

func head(t *testing.T, r remote.Remote) remote.Cursor {
	t.Helper()
	cur, err := r.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return cur
}

// changes asks once. A long-polling side is asked the way the daemon asks it (remote.WithLongPoll), so it may
// block until something happens; it gets a deadline, and running out of it counts as "nothing new".
func changes(ctx context.Context, r remote.Remote, cur remote.Cursor, wait time.Duration) (remote.Batch, error) {
	if !r.Capabilities().LongPoll {
		return r.Changes(ctx, cur)
	}
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	b, err := r.Changes(remote.WithLongPoll(cctx), cur)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		return remote.Batch{Next: cur}, nil
	}
	return b, err
}

// pollEvery spaces the polls so a slow side gets about fifty of them within Settle.
func pollEvery(settle time.Duration) time.Duration {
	return min(max(settle/50, 10*time.Millisecond), 250*time.Millisecond)
}

// applyChange folds one change into a tree the way the engine would: a move carries its subtree along, a deleted
// folder takes its subtree with it.
func applyChange(tree map[remote.Path]node, c remote.Change) {
	p := c.Entry.Path
	if ignored(p) {
		return
	}
	removeTree := func(dir remote.Path) map[remote.Path]node {
		sub := map[remote.Path]node{}
		for q, n := range tree {
			if q.Within(dir) {
				sub[q] = n
				delete(tree, q)
			}
		}
		return sub
	}
	if c.Deleted {
		removeTree(p)
		return
	}
	if c.From != "" && c.From != p {
		for q, n := range removeTree(c.From) {
			tree[q.Rebase(c.From, p)] = n
		}
	}
	n := node{Dir: c.Entry.Dir}
	if !n.Dir {
		n.Size = c.Entry.Size
	}
	tree[p] = n
}

func testChanges(t *testing.T, f Fixture) {
	needFeed(t, f)
	o := needOther(t, f)
	ctx := t.Context()
	put(t, f.R, "keep.txt", []byte("keep"))
	put(t, f.R, "mod.txt", []byte("before"))
	put(t, f.R, "del.txt", []byte("del"))
	put(t, f.R, "mv.txt", []byte("mv"))
	mkdir(t, f.R, "dir")
	put(t, f.R, "dir/in.txt", []byte("inside"))
	mkdir(t, f.R, "gone")

	// Head before the walk, as the engine does: a change that falls between is seen twice, never missed.
	cur := head(t, f.R)
	tree, _ := walkTree(t, f.R, remote.Root)

	put(t, o, "new.txt", []byte("new"))
	put(t, o, "mod.txt", []byte("after, and longer")) // the size changes too, so the tree comparison sees it
	if _, err := o.Move(ctx, "mv.txt", "moved.txt", remote.Precondition{}); err != nil {
		t.Fatalf("Other: Move mv.txt: %v", err)
	}
	if err := o.Delete(ctx, "del.txt", remote.Precondition{}); err != nil {
		t.Fatalf("Other: Delete del.txt: %v", err)
	}
	mkdir(t, o, "nf")
	put(t, o, "nf/f.txt", []byte("in a new folder"))
	if _, err := o.Move(ctx, "dir", "dir2", remote.Precondition{}); err != nil {
		t.Fatalf("Other: Move dir: %v", err)
	}
	if err := o.Delete(ctx, "gone", remote.Precondition{}); err != nil {
		t.Fatalf("Other: Delete gone: %v", err)
	}
	want, _ := walkTree(t, o, remote.Root)

	deadline := time.Now().Add(f.Settle + settleGrace)
	every := pollEvery(f.Settle)
	var got []remote.Change
	for {
		b, err := changes(ctx, f.R, cur, every)
		if err != nil {
			t.Fatalf("Changes after %d changes: %v", len(got), err)
		}
		for _, c := range b.Changes {
			if !c.Deleted && c.Entry.Path == remote.Root {
				t.Errorf("a change names the root itself: %+v", c)
				continue
			}
			applyChange(tree, c)
		}
		got = append(got, b.Changes...)
		if b.Next != nil {
			cur = b.Next
		}
		d := diffTrees(tree, want)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the changes do not lead to Other's tree:\n%s\nchanges seen: %+v", f.Settle, d, got)
		}
		if len(b.Changes) == 0 {
			waitCtx(ctx, every)
		}
	}
}

// waitCtx pauses between polls of a side that runs on real time; it is a poll interval, never a blind wait for
// a result.
func waitCtx(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

func testChangesEmpty(t *testing.T, f Fixture) {
	needFeed(t, f)
	const wait = 300 * time.Millisecond
	quiet := func(cur remote.Cursor, what string) remote.Cursor {
		t.Helper()
		b, err := changes(t.Context(), f.R, cur, wait)
		if err != nil {
			t.Fatalf("Changes %s: %v", what, err)
		}
		for _, c := range b.Changes {
			if !ignored(c.Entry.Path) {
				t.Errorf("Changes %s reported %+v", what, c)
			}
		}
		if b.Next == nil {
			return cur
		}
		return b.Next
	}
	cur := quiet(head(t, f.R), "right after Head")

	// Then the common case: one change, read to its end, and the cursor that follows must be quiet.
	w := f.Other
	if w == nil {
		w = f.R
	}
	put(t, w, "x.txt", []byte("x"))
	deadline := time.Now().Add(f.Settle + settleGrace)
	every := pollEvery(f.Settle)
	for seen := false; !seen; {
		b, err := changes(t.Context(), f.R, cur, every)
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		for _, c := range b.Changes {
			seen = seen || c.Entry.Path == "x.txt"
		}
		if b.Next != nil {
			cur = b.Next
		}
		if !seen && time.Now().After(deadline) {
			t.Fatalf("x.txt did not show up in Changes within %v", f.Settle)
		}
		if !seen && len(b.Changes) == 0 {
			waitCtx(t.Context(), every)
		}
	}
	// A side may send a write as two events (create, then modify) across pages: one more answer may still be
	// about x.txt, but after that the feed must be quiet, never replaying what it already handed out.
	b, err := changes(t.Context(), f.R, cur, wait)
	if err != nil {
		t.Fatalf("Changes after x.txt: %v", err)
	}
	if !slices.ContainsFunc(b.Changes, func(c remote.Change) bool { return c.Entry.Path != "x.txt" && !ignored(c.Entry.Path) }) {
		if b.Next != nil {
			cur = b.Next
		}
		quiet(cur, "with the cursor after the last change")
		return
	}
	t.Errorf("Changes after x.txt reported %+v", b.Changes)
}

func testCursorExpiry(t *testing.T, f Fixture) {
	needFeed(t, f)
	if f.Expire == nil {
		t.Skip("fixture has no Expire: cursors cannot be killed on purpose")
	}
	cur := head(t, f.R)
	// Some history after the cursor, so even a side whose Expire only drops history has something to drop.
	w := f.Other
	if w == nil {
		w = f.R
	}
	put(t, w, "x.txt", []byte("x"))
	f.Expire()
	_, err := changes(t.Context(), f.R, cur, 2*time.Second)
	if !errors.Is(err, remote.ErrOutOfSync) {
		t.Fatalf("Changes with an expired cursor: got %v, want ErrOutOfSync", err)
	}
}
