package verizon

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// TestCursorCarriesTheListing: a cursor reads back to the listing it was made from; an older cursor (etag only)
// or a damaged one is ErrOutOfSync, which makes the engine list everything once.
func TestCursorCarriesTheListing(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	mustMkdir(t, c, "d")
	mustMkdir(t, c, "empty")
	mustPut(t, c, "d/x.txt", []byte("x"))
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	etag, v, err := decodeCursor(cur)
	if err != nil || etag == "" {
		t.Fatalf("decode: %q %v", etag, err)
	}
	if len(v.entries) != 3 || !v.entries["d"].dir || !v.entries["empty"].dir || v.entries["d/x.txt"].dir ||
		v.entries["d/x.txt"].rev == "" {
		t.Fatalf("decoded view %+v", v.entries)
	}
	for _, bad := range []remote.Cursor{
		remote.Cursor("vz2:1733480000000:" + etag), // the etag-only cursor of earlier versions
		cur[:len(cur)-3], // cut short
		append(append(remote.Cursor{}, cur[:len(cursorMagic)+len(etag)+1]...), "garbage"...),
	} {
		if _, err := c.Changes(t.Context(), bad); !errors.Is(err, remote.ErrOutOfSync) {
			t.Errorf("Changes(%.40q): %v, want ErrOutOfSync", bad, err)
		}
	}
	if b, err := c.Changes(t.Context(), cur); err != nil || len(b.Changes) != 0 || string(b.Next) != string(cur) {
		t.Fatalf("quiet: %+v %v", b, err)
	}
}

// TestChangesFromOneCursorListsOnce: the daemon's poller and the pass it starts read the feed from the same
// cursor; the second read reuses the first one's complete listing. A write of this client in between, or a
// read from another cursor, looks at the server again, and nothing that happened later is lost: it comes with
// the batch's Next.
func TestChangesFromOneCursorListsOnce(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c, other := newClient(t, r, nil), newClient(t, r, nil)
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "a.txt", []byte("a"))
	r.ResetLog()
	b1, err := c.Changes(t.Context(), cur)
	if err != nil || len(b1.Changes) != 1 || b1.Changes[0].Entry.Path != "a.txt" {
		t.Fatalf("first read: %+v %v", b1, err)
	}
	if n := ops(r, "fullview"); n != 2 {
		t.Fatalf("%d fullview requests for a changed delta, want 2 (the delta and a complete listing)", n)
	}
	mustPut(t, other, "b.txt", []byte("b"))
	b2, err := c.Changes(t.Context(), cur)
	if err != nil || len(b2.Changes) != 1 || b2.Changes[0].Entry.Path != "a.txt" || string(b2.Next) != string(b1.Next) {
		t.Fatalf("second read from the same cursor: %+v %v", b2, err)
	}
	if n := ops(r, "fullview"); n != 2 {
		t.Fatalf("%d fullview requests after the second read, want still 2", n)
	}
	b3, err := c.Changes(t.Context(), b1.Next)
	if err != nil || len(b3.Changes) != 1 || b3.Changes[0].Entry.Path != "b.txt" {
		t.Fatalf("read from the next cursor: %+v %v", b3, err)
	}
	// A write of this client between two reads from one cursor: the second read looks again.
	mustPut(t, c, "c.txt", []byte("c"))
	b4, err := c.Changes(t.Context(), b1.Next)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, ch := range b4.Changes {
		paths = append(paths, string(ch.Entry.Path))
	}
	if strings.Join(paths, ",") != "b.txt,c.txt" {
		t.Fatalf("read after a write of ours: %v, want b.txt and c.txt", paths)
	}
}
