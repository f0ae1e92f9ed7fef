package verizon

import (
	"errors"
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
