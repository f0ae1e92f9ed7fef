package emulator

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// Running is an emulator served on 127.0.0.1 for a test, over plain HTTP and HTTPS, with its admin endpoint.
type Running struct {
	Emu      *Emulator
	URL      string // plain HTTP base URL, "http://127.0.0.1:port"
	HTTPSURL string // "https://127.0.0.1:port"
	Host     string // host:port of the HTTPS listener: rclone's `hostname`
	AdminURL string // emukit admin endpoint (POST/DELETE /faults, GET /log)
	CAFile   string // PEM of the CA that signed the HTTPS certificate
	TLS      *emukit.TLS
	Token    string // an access token the emulator accepts
}

// Start runs an emulator for t; everything stops in t.Cleanup. A zero o.DataDir uses a fresh temp dir.
func Start(t testing.TB, o Options) *Running {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	lg := emukit.TestLogger(t)
	e, tc := emukit.OpenForTest(t, "pcloud", func() (*Emulator, error) { return New(lg, o) })
	s := emukit.StartTest(t, e.Handler(), e.Kit(), tc)
	return &Running{Emu: e, URL: s.URL, HTTPSURL: s.TLSURL, Host: strings.TrimPrefix(s.TLSURL, "https://"),
		AdminURL: s.AdminURL, CAFile: tc.CAFile, TLS: tc, Token: e.Token()}
}

// HTTPClient returns a client that trusts the emulator's CA (verification stays on).
func (r *Running) HTTPClient() *http.Client {
	return r.TLS.HTTPClient()
}

// DropHistory makes every diffid issued so far too old.
func (r *Running) DropHistory() { r.Emu.DropHistory() }

// Snapshot lists the live tree by path.
func (r *Running) Snapshot() map[string]SnapEntry { return r.Emu.Snapshot() }

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
