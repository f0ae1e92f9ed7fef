package emulator

import (
	"net/http"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// AdminHandler serves emukit's admin API (POST/GET/DELETE /faults, GET/DELETE /log, POST /inject/...) plus the emulator's own
// controls, all outside /cloud/1 as §13 asks. Serve it on a loopback listener apart from the API:
//
//	POST /outofsync          every etag issued so far answers 205
//	POST /drophistory        etags older than the newest change answer 205
//	POST /expire-tokens      every access token expires now
//	POST /revoke-refresh     every refresh token is revoked
//	POST /clock?offset=2h    skew the server clock (Go duration, may be negative)
//	POST /mint               a fresh token pair as JSON {"access_token","refresh_token"}
func (e *Emulator) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	kit := e.kit.AdminHandler()
	mux.Handle("/faults", kit)
	mux.Handle("/log", kit)
	mux.Handle("/inject/", kit)
	mux.Handle("/trash", kit)
	ok := func(f func()) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			f()
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /outofsync", ok(e.ForceOutOfSync))
	mux.HandleFunc("POST /drophistory", ok(e.DropHistory))
	mux.HandleFunc("POST /expire-tokens", ok(e.ExpireAccessTokens))
	mux.HandleFunc("POST /revoke-refresh", ok(e.RevokeRefreshTokens))
	mux.HandleFunc("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("offset"))
		if err != nil {
			http.Error(w, "offset must be a Go duration such as 2h or -90m", http.StatusBadRequest)
			return
		}
		e.SetClockOffset(d)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /mint", func(w http.ResponseWriter, _ *http.Request) {
		at, rt := e.Mint()
		writeJSON(w, http.StatusOK, map[string]string{"access_token": at, "refresh_token": rt})
	})
	return mux
}

// Running is an emulator served over HTTPS on 127.0.0.1 for a test, with its admin endpoint.
type Running struct {
	Emu      *Emulator
	URL      string // API base URL including /cloud/1: what the client's --endpoint takes
	Host     string // host:port of the HTTPS listener
	AdminURL string // AdminHandler on plain HTTP, loopback
	CAFile   string // PEM of the CA that signed the HTTPS certificate (the client's --ca-file)
	TLS      *emukit.TLS
	// AccessToken and RefreshToken are a pair minted at start, as after a login.
	AccessToken, RefreshToken string
}

// Start runs an emulator for t over HTTPS with a generated CA; everything stops in t.Cleanup. A zero
// o.DataDir uses a fresh temp dir.
func Start(t testing.TB, o Options) *Running {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	lg := emukit.TestLogger(t)
	e, tc := emukit.OpenForTest(t, "verizon", func() (*Emulator, error) { return New(lg, o) })
	// The API only over HTTPS; the admin handler (emukit's plus the emulator's controls) on its own listener.
	api := emukit.ServeTest(t, lg, e.Handler(), e.Kit(), emukit.ServerOptions{HTTPS: "127.0.0.1:0", TLS: tc})
	admin := emukit.ServeTest(t, lg, e.AdminHandler(), nil, emukit.ServerOptions{HTTP: "127.0.0.1:0"})
	at, rt := e.Mint()
	return &Running{Emu: e, URL: api.TLSURL + BasePath, Host: api.TLSURL[len("https://"):], AdminURL: admin.URL,
		CAFile: tc.CAFile, TLS: tc, AccessToken: at, RefreshToken: rt}
}

// HTTPClient returns a client that trusts the emulator's CA (verification stays on).
func (r *Running) HTTPClient() *http.Client {
	return r.TLS.HTTPClient()
}

// Kit is the fault plan and request log.
func (r *Running) Kit() *emukit.Kit { return r.Emu.Kit() }

// SetFaults replaces the fault plan with these rules.
func (r *Running) SetFaults(rules ...emukit.Rule) error { return r.Emu.Kit().SetRules(rules...) }

// AddFaults appends rules to the live plan.
func (r *Running) AddFaults(rules ...emukit.Rule) error { return r.Emu.Kit().AddRules(rules...) }

// ClearFaults drops every fault rule.
func (r *Running) ClearFaults() { r.Emu.Kit().ClearFaults() }

// Log is the request log (no tokens in it).
func (r *Running) Log() []emukit.Entry { return r.Emu.Kit().Log() }

// ResetLog empties the request log.
func (r *Running) ResetLog() { r.Emu.Kit().ResetLog() }

// ForceOutOfSync makes every etag issued so far answer 205.
func (r *Running) ForceOutOfSync() { r.Emu.ForceOutOfSync() }

// DropHistory compacts the journal: etags older than the newest change answer 205.
func (r *Running) DropHistory() { r.Emu.DropHistory() }

// ExpireAccessTokens makes every access token issued so far answer 401.
func (r *Running) ExpireAccessTokens() { r.Emu.ExpireAccessTokens() }

// RevokeRefreshTokens makes the next refresh answer 401 invalid_grant.
func (r *Running) RevokeRefreshTokens() { r.Emu.RevokeRefreshTokens() }

// SetClockOffset skews the server clock.
func (r *Running) SetClockOffset(d time.Duration) { r.Emu.SetClockOffset(d) }

// Snapshot lists the live tree by absolute path.
func (r *Running) Snapshot() map[string]SnapEntry { return r.Emu.Snapshot() }

// PutFile stores a file directly (no HTTP), creating its folders.
func (r *Running) PutFile(p string, data []byte) error { return r.Emu.PutFile(p, data, time.Time{}) }
