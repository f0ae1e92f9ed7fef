package pcloud

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

type skipSink struct {
	mu  sync.Mutex
	got map[string]string
}

func (s *skipSink) fn(p, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string]string{}
	}
	s.got[p] = reason
}

func (s *skipSink) has(p, reasonPart string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.got[p]
	return ok && strings.Contains(r, reasonPart)
}

// Issue 10 item 7 (client half): names tandem cannot hold are reported through OnSkip (the pass's `skipped`
// list), by Walk and by the change feed, including a synced folder renamed remotely to such a name.
func TestInvalidRemoteNamesAreReportedAsSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink := &skipSink{}
	run, r, other := pair(t, emulator.Options{}, Options{OnSkip: sink.fn})
	if _, err := other.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "d/in.txt", []byte("x"), remote.Precondition{})
	raw(t, run, "uploadfile", url.Values{"path": {"/Sync"}, "filename": {"line\nbreak"}}, []byte("evil"))
	if err := r.Walk(ctx, remote.Root, func(remote.Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !sink.has(`"line\nbreak"`, "invalid name") {
		t.Fatalf("Walk: skipped %v, want the name with a newline", sink.got)
	}
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := other.Stat(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	raw(t, run, "renamefolder", url.Values{"folderid": {strings.TrimPrefix(d.ID, "d")}, "toname": {".."}}, nil)
	if _, err := r.Changes(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if !sink.has("..", "renamed on pCloud from d ") {
		t.Fatalf("feed: skipped %v, want .. renamed from d", sink.got)
	}
}
