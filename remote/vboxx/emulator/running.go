package emulator

import (
	"net/http"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// Running is an emulator served for a test on 127.0.0.1 over HTTPS only (a plain-HTTP request on the same port
// gets 400 insecure_transport), with the emukit admin endpoint.
type Running struct {
	Emu      *Emulator
	URL      string // "https://127.0.0.1:port": the base of /oauth and /api/2
	AdminURL string // emukit admin endpoint (POST/DELETE /faults, GET/DELETE /log)
	CAFile   string // PEM of the CA that signed the server certificate: the client's --ca-file
	TLS      *emukit.TLS
	User     string // accepted by the password grant
	Password string
	RootName string // the sync root's name: specs are "vboxx:/" + RootName + "/path"
	RootID   int64
}

// Start runs an emulator for t; everything stops in t.Cleanup. A zero o.DataDir uses a fresh temp dir.
func Start(t testing.TB, o Options) *Running {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	lg := emukit.TestLogger(t)
	e, tc := emukit.OpenForTest(t, "vboxx", func() (*Emulator, error) { return New(lg, o) })
	s := emukit.StartTestTLSOnly(t, e.Handler(), e.Kit(), tc)
	user, pw := e.Credentials()
	return &Running{Emu: e, URL: s.TLSURL, AdminURL: s.AdminURL, CAFile: tc.CAFile, TLS: tc, User: user,
		Password: pw, RootName: e.RootName(), RootID: e.SyncRootID()}
}

// HTTPClient trusts the emulator's CA (verification stays on).
func (r *Running) HTTPClient() *http.Client {
	return r.TLS.HTTPClient()
}

// Kit is the fault plan and request log.
func (r *Running) Kit() *emukit.Kit { return r.Emu.Kit() }

// SetFaults replaces the fault plan with these rules.
func (r *Running) SetFaults(rules ...emukit.Rule) error { return r.Emu.Kit().SetRules(rules...) }

// ClearFaults drops every fault rule.
func (r *Running) ClearFaults() { r.Emu.Kit().ClearFaults() }

// Log is the request log (no tokens in it).
func (r *Running) Log() []emukit.Entry { return r.Emu.Kit().Log() }

// ResetLog empties the request log.
func (r *Running) ResetLog() { r.Emu.Kit().ResetLog() }

// ExpireAccessTokens makes every issued access token invalid; refresh tokens keep working.
func (r *Running) ExpireAccessTokens() { r.Emu.ExpireAccessTokens() }

// SetClockSkew offsets the server clock (and so its Date headers and item times).
func (r *Running) SetClockSkew(d time.Duration) { r.Emu.SetClockSkew(d) }

// Count returns how many logged requests have op (see opName: "root", "folder", "modified_since", ...).
func (r *Running) Count(op string) int {
	n := 0
	for _, e := range r.Log() {
		if e.Op == op {
			n++
		}
	}
	return n
}
