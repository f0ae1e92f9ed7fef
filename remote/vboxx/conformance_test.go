package vboxx

import (
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote/remotetest"
	"github.com/tandemsync/tandem/remote/vboxx/emulator"
)

// TestConformance runs the shared suite against the emulator over HTTPS. The pair root is a folder inside the
// sync root, as in `vboxx:/<Root>/Sync`. Expire replaces that folder by a copy with new ids (a restore from
// backup), which no stored cursor can describe; ExpireToken expires every access token.
func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		e := newEnv(t, emulator.Options{})
		if _, err := e.emu.Emu.MkdirAll("/Sync"); err != nil {
			t.Fatal(err)
		}
		return remotetest.Fixture{
			R: e.open("/Sync"), Other: e.open("/Sync"),
			Expire: func() {
				if err := e.emu.Emu.Reimport("/Sync"); err != nil {
					t.Fatal(err)
				}
			},
			ExpireToken: e.emu.ExpireAccessTokens,
			Settle:      2 * time.Second,
		}
	}, nil)
}
