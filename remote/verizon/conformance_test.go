package verizon

import (
	"testing"

	"github.com/tandemsync/tandem/remote/remotetest"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// The suite against the emulator over real HTTPS. Uploads of 1 MiB and more go chunked here (512 KiB chunks),
// so LargeFile exercises intent, chunks and commit; the rest take the single-POST path.
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
