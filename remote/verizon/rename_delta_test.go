package verizon

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// TestRenameBesideADeleteIsNotLost: under the default reading a delta shows a renamed file at its new path and
// nothing at its old one. A genuine delete in the same delta must not pass for the rename's old path: the old
// path would then stay in tandem's view of the remote for good (found by the crash-points suite: a remote rename
// next to a remote delete left the old name on the local side, and every later pass found nothing to do).
//
// OPEN: the client counts unexplained moves against all deleted paths (client.go, Changes), so one genuine
// delete covers one rename's missing old path. Making every unexplained move a full listing breaks the
// conformance suite's Changes case under delta-move-subtree, which trusts file moves with their old paths in
// deleted; a sound fix needs a way to tell a genuine delete from a moved path (the trash listing, say). Until
// then this replays the bug: TANDEM_REPLAY_BUGS=1 go test ./remote/verizon -run TestRenameBesideADeleteIsNotLost
func TestRenameBesideADeleteIsNotLost(t *testing.T) {
	if os.Getenv("TANDEM_REPLAY_BUGS") == "" {
		t.Skip("open bug (see the comment); TANDEM_REPLAY_BUGS=1 replays it")
	}
	r := startEmu(t, emulator.Options{})
	a := newClient(t, r, nil)
	ctx := context.Background()
	mustPut(t, a, "ren0.txt", []byte("renamed elsewhere"))
	mustPut(t, a, "gone.txt", []byte("deleted elsewhere"))
	cur, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := newClient(t, r, nil)
	if _, err := o.Move(ctx, "ren0.txt", "renamed0.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(ctx, "gone.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	b, err := a.Changes(ctx, cur)
	if errors.Is(err, remote.ErrOutOfSync) {
		return // listed completely: the old path is dropped
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range b.Changes {
		if (ch.Deleted && ch.Entry.Path == "ren0.txt") || ch.From == "ren0.txt" {
			return
		}
	}
	t.Fatalf("the delta's batch says nothing of ren0.txt's old path: %+v", b.Changes)
}
