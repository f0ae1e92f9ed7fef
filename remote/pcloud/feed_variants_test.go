package pcloud

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// drain reads Changes from cur until an empty batch and returns every change and the last cursor.
func drainChanges(t *testing.T, r *Client, cur remote.Cursor) ([]remote.Change, remote.Cursor) {
	t.Helper()
	var all []remote.Change
	for i := 0; i < 50; i++ {
		b, err := r.Changes(context.Background(), cur)
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		cur = b.Next
		if len(b.Changes) == 0 {
			return all, cur
		}
		all = append(all, b.Changes...)
	}
	t.Fatal("Changes never ran dry")
	return nil, nil
}

// Issue 10 item 1: a diff answered with 5000 (or 4000) more often than one request's retries is retried on the
// same diffid, not turned into a lost cursor (which would make the engine list the whole tree).
func TestDiffTemporaryErrorIsNotOutOfSync(t *testing.T) {
	t.Parallel()
	for _, code := range []int{4000, 5000} {
		run, r, other := pair(t, emulator.Options{}, Options{MaxAttempts: 2})
		ctx := context.Background()
		cur, err := r.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, other, "a.txt", []byte("a"), remote.Precondition{})
		if err := run.SetFaults(emukit.Rule{Match: "^diff$", Times: 7, Action: emukit.Action{Do: emulator.HookResult, Code: code}}); err != nil {
			t.Fatal(err)
		}
		b, err := r.Changes(ctx, cur)
		if err != nil {
			t.Fatalf("result %d: Changes: %v (a temporary refusal is not a lost cursor)", code, err)
		}
		if len(b.Changes) != 1 || b.Changes[0].Entry.Path != "a.txt" {
			t.Fatalf("result %d: changes %+v", code, b.Changes)
		}
	}
}

// Issue 10 item 3: a reply shorter than limit is not the end. With limit 2, a folder created and deleted by
// another client fills the first page and is dropped from it (the documented default), so the page comes back
// empty; the file uploaded after it must still be reported by the same Changes call.
func TestDiffShortPageIsNotTheEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, r, other := pair(t, emulator.Options{}, Options{DiffLimit: 2})
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Mkdir(ctx, "tmp"); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, "tmp", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "after.txt", []byte("x"), remote.Precondition{})
	b, err := r.Changes(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range b.Changes {
		found = found || c.Entry.Path == "after.txt"
	}
	if !found {
		t.Fatalf("after.txt not reported after a short page: %+v", b.Changes)
	}
}

// Issue 10 item 2: pCloud compacts old history silently (the default variant). A cursor not read for more
// than 5 months is answered with ErrOutOfSync, so the engine lists and reconciles; a younger one is used.
func TestOldCursorIsNotTrusted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run, r, other := pair(t, emulator.Options{}, Options{})
	mustPut(t, other, "gone.txt", []byte("g"), remote.Precondition{})
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, "gone.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	run.DropHistory() // the delete vanishes with the create: nothing tells the client
	r.skew.Store(int64(149 * 24 * time.Hour))
	if _, err := r.Changes(ctx, cur); err != nil {
		t.Fatalf("a 149-day-old cursor: %v", err)
	}
	r.skew.Store(int64(151 * 24 * time.Hour))
	_, err = r.Changes(ctx, cur)
	if !errors.Is(err, remote.ErrOutOfSync) || !strings.Contains(err.Error(), "6 months") {
		t.Fatalf("a 151-day-old cursor: %v, want ErrOutOfSync naming the compaction", err)
	}
}

// Issue 10 item 6, the crash form: tandem made folder X (and recorded it) but died before committing the
// cursor; another client then renamed X to Y. Read from the old cursor, the feed must report X and then the
// move X -> Y with its From, never Y as a second, unrelated folder with X's id.
func TestFolderRenamedAfterOwnMkdirArrivesAsMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, r, other := pair(t, emulator.Options{}, Options{})
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x, err := r.Mkdir(ctx, "X")
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "X/f.txt", []byte("f"), remote.Precondition{})
	if _, err := other.Move(ctx, "X", "Y", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	fresh := newClient(t, nil, "/Sync", Options{Endpoint: r.base.String(), Token: r.o.Token})
	all, _ := drainChanges(t, fresh, cur)
	paths := map[remote.Path]string{} // last id seen at each path, after applying moves
	for _, c := range all {
		if c.From != "" {
			delete(paths, c.From)
		}
		if c.Deleted {
			delete(paths, c.Entry.Path)
			continue
		}
		if c.Entry.Dir {
			paths[c.Entry.Path] = c.Entry.ID
		}
	}
	n := 0
	for p, id := range paths {
		if id == x.ID {
			n++
			if p != "Y" {
				t.Errorf("folder %s ends at %q", x.ID, p)
			}
		}
	}
	if n != 1 {
		t.Fatalf("folder %s has %d paths after the changes %+v", x.ID, n, all)
	}
}
