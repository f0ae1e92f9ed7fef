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

func (s *skipSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
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
	var walkSkip []string
	if err := r.Walk(ctx, remote.Root, func(e remote.Entry) error {
		if e.Skip != "" {
			walkSkip = append(walkSkip, string(e.Path)+": "+e.Skip)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Walk emits the entry with Skip (the engine reports it and keeps what it stored for the object).
	if len(walkSkip) != 1 || !strings.Contains(walkSkip[0], `"line\nbreak"`) || !strings.Contains(walkSkip[0], "invalid name") {
		t.Fatalf("Walk: skipped %v, want the name with a newline", walkSkip)
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
	b, err := r.Changes(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	// The rename arrives as a skip that names the old path, never as a delete of d (engine hole 13: the local
	// copy stays).
	var got []remote.Change
	for _, c := range b.Changes {
		if c.Deleted && c.Entry.Path == "d" {
			t.Fatalf("feed: d reported deleted: %+v", b.Changes)
		}
		if c.Entry.Skip != "" {
			got = append(got, c)
		}
	}
	if len(got) != 1 || got[0].From != "d" || got[0].Entry.ID != d.ID || !strings.Contains(got[0].Entry.Skip, "renamed on pCloud from d ") {
		t.Fatalf("feed: skips %+v, want .. renamed from d", got)
	}
	// The skips travel in the entries (the engine reports each once); OnSkip would list them a second time.
	if n := sink.count(); n != 0 {
		t.Fatalf("OnSkip heard %d names that Walk and the feed emitted as skips", n)
	}
}
