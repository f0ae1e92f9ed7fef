package verizon

import (
	"maps"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/remotetest"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// The suite against the emulator over real HTTPS, under the default readings (the least helpful: a delta names
// nothing at a moved item's old path; the client does not depend on what a delta says, cursor.go). Uploads of
// 1 MiB and more go chunked here (512 KiB chunks), so LargeFile exercises intent, chunks and commit; the rest take
// the single-POST path.
func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		r := startEmu(t, emulator.Options{})
		small := func(c *Config) { c.ChunkThreshold, c.ChunkSize = 1<<20, 512<<10 }
		return remotetest.Fixture{R: newClient(t, r, small), Other: newClient(t, r, small),
			Expire: r.DropHistory, ExpireToken: r.ExpireAccessTokens}
	}, nil)
}

// The same with the stronger expiry: a new etag epoch instead of a compacted journal.
func TestConformanceForcedOutOfSync(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		r := startEmu(t, emulator.Options{})
		return remotetest.Fixture{R: newClient(t, r, nil), Other: newClient(t, r, nil), Expire: r.ForceOutOfSync,
			ExpireToken: r.ExpireAccessTokens}
	}, map[string]string{
		"LargeFile": "covered by TestConformance", "HostileNames": "covered by TestConformance",
	})
}

// Under every delta reading, a move made elsewhere leaves no old path in the stored view.
func TestDeltaMoveReadings(t *testing.T) {
	for _, v := range []string{emulator.VariantDeltaMoveNone, emulator.VariantDeltaMoveFolder, emulator.VariantDeltaMoveSubtree} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c, other := newClient(t, r, nil), newClient(t, r, nil)
			mustMkdir(t, c, "d")
			mustPut(t, c, "d/x.txt", []byte("x"))
			mustPut(t, c, "f.txt", []byte("f"))
			view := map[remote.Path]bool{}
			cur, err := c.Head(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Walk(t.Context(), remote.Root, func(e remote.Entry) error { view[e.Path] = true; return nil }); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Move(t.Context(), "d", "e", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Move(t.Context(), "f.txt", "e/g.txt", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			b, err := c.Changes(t.Context(), cur)
			if err != nil {
				t.Fatal(err) // ErrOutOfSync included: a move is no reason to list everything again
			}
			feedView(view, b)
			want := map[remote.Path]bool{"e": true, "e/x.txt": true, "e/g.txt": true}
			if !maps.Equal(view, want) {
				t.Fatalf("stored view %v, want %v", view, want)
			}
		})
	}
}
