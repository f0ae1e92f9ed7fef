package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// loginEnv is a vBoxx emulator and a throw-away config home for the binary. keyring, when set, is the folder
// that stands in for the OS keyring (TANDEM_TEST_KEYRING_DIR); the session bus is pointed nowhere, so the real
// keyring of the machine running the tests is never touched and is absent otherwise.
type loginEnv struct {
	t             *testing.T
	emu           *testenv.Emulator
	xdg, keyring  string
	L, SD, conf   string
	tokens, token string
}

func newLoginEnv(t *testing.T, emuArgs ...string) *loginEnv {
	t.Helper()
	e := &loginEnv{t: t, emu: testenv.StartEmulator(t, bin, "vboxx", emuArgs...), xdg: t.TempDir(), L: t.TempDir(),
		SD: t.TempDir()}
	e.tokens = filepath.Join(e.xdg, "tandem", "tokens")
	e.token = filepath.Join(e.tokens, "vboxx.json")
	e.conf = filepath.Join(t.TempDir(), "config.yaml")
	e.config("")
	return e
}

func (e *loginEnv) env() []string {
	return []string{"XDG_CONFIG_HOME=" + e.xdg, "TANDEM_TEST_KEYRING_DIR=" + e.keyring,
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/tandem-test-bus"}
}

// config writes the daemon's config with token_store (omitted when "").
func (e *loginEnv) config(store string) {
	e.t.Helper()
	c := fmt.Sprintf("state_dir: %s\n", e.SD)
	if store != "" {
		c += "token_store: " + store + "\n"
	}
	c += fmt.Sprintf("pairs:\n  - name: box\n    local: %s\n    remote: vboxx:/\n    ca_file: %s\n", e.L, e.emu.CAFile)
	if err := os.WriteFile(e.conf, []byte(c), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *loginEnv) run(stdin string, args ...string) testenv.Result {
	e.t.Helper()
	return testenv.RunWith(e.t, bin, testenv.RunOpts{Env: e.env(), Stdin: stdin}, args...)
}

func (e *loginEnv) login(extra ...string) testenv.Result {
	e.t.Helper()
	args := append([]string{"login", "vboxx", "--username", e.emu.Username, "--password-stdin", "--endpoint",
		e.emu.Endpoint, "--ca-file", e.emu.CAFile, "--config", e.conf}, extra...)
	return e.run(e.emu.Password+"\n", args...)
}

// once syncs a new file up with the stored login and checks it arrived.
func (e *loginEnv) once(name string) testenv.Result {
	e.t.Helper()
	testenv.WriteFile(e.t, e.L, name, []byte("via "+name))
	return e.run("", "once", "--json", "--state-dir", e.SD, "--ca-file", e.emu.CAFile, e.L, "vboxx:/")
}

func (e *loginEnv) tokenFile() string {
	e.t.Helper()
	b, err := os.ReadFile(e.token)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *loginEnv) keyringEntries() int {
	ents, _ := os.ReadDir(e.keyring)
	return len(ents)
}

func (e *loginEnv) daemon() *testenv.Daemon {
	e.t.Helper()
	d := testenv.StartDaemon(e.t, bin, e.conf, e.env()...)
	d.WaitFor("the first pass", 60*time.Second, func(s *testenv.DaemonStatus) bool {
		return len(s.Pairs) == 1 && s.Pairs[0].LastSync != nil && s.Pairs[0].Idle()
	})
	return d
}

func (e *loginEnv) status() string {
	e.t.Helper()
	r := e.run("", "status", "--config", e.conf)
	if r.Code != 0 {
		e.t.Fatalf("status:\n%s", r)
	}
	return r.Stdout
}

// TestTokenStoreKeyring: token_store auto puts a login in the OS keyring when one answers (the file is a stub
// without the token); the daemon moves logins between the stores when token_store changes, and the login keeps
// working in each; tandem status says which store is in use.
func TestTokenStoreKeyring(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	e.keyring = t.TempDir()
	r := e.login()
	if r.Code != 0 || !strings.Contains(r.Stdout, "OS keyring") {
		t.Fatalf("login with a keyring that answers:\n%s", r)
	}
	if strings.Contains(e.tokenFile(), "access_token") || e.keyringEntries() != 1 {
		t.Fatalf("the token must be in the keyring only: file %s, %d entries", e.tokenFile(), e.keyringEntries())
	}
	if r := e.once("one.txt"); r.Code != 0 {
		t.Fatalf("once with the login in the keyring:\n%s", r)
	}

	e.config("file")
	d := e.daemon()
	mustContain(t, e.status(), "logins: in 0600 files (token_store: file)", "status")
	if !strings.Contains(e.tokenFile(), "access_token") || e.keyringEntries() != 0 {
		t.Fatalf("token_store: file moves the login into its file: %s, %d entries", e.tokenFile(), e.keyringEntries())
	}
	if err := d.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if r := e.once("two.txt"); r.Code != 0 {
		t.Fatalf("once after the move to the file:\n%s", r)
	}

	e.config("keyring")
	d = e.daemon()
	mustContain(t, e.status(), "logins: in the OS keyring (token_store: keyring)", "status")
	if strings.Contains(e.tokenFile(), "access_token") || e.keyringEntries() != 1 {
		t.Fatalf("token_store: keyring moves it back: %s, %d entries", e.tokenFile(), e.keyringEntries())
	}
	if err := d.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if r := e.once("three.txt"); r.Code != 0 {
		t.Fatalf("once after the move back:\n%s", r)
	}
}

// TestTokenStoreWithoutKeyring: on a machine without a keyring (no session bus), auto keeps logins in 0600
// files and says so; token_store: keyring is refused with what to do, and nothing is lost.
func TestTokenStoreWithoutKeyring(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	r := e.login()
	if r.Code != 0 || !strings.Contains(r.Stdout, "mode 0600") {
		t.Fatalf("login without a keyring:\n%s", r)
	}
	if fi, err := os.Stat(e.token); err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(e.tokenFile(), "access_token") {
		t.Fatalf("the token file: %v %v", fi, err)
	}
	d := e.daemon()
	mustContain(t, e.status(), "logins: in 0600 files (auto: the OS keyring does not answer", "status")
	if err := d.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if r := e.login("--token-store", "keyring"); r.Code != 2 || !strings.Contains(r.Stderr, "token_store: file") {
		t.Fatalf("--token-store keyring without a keyring must be a usage error naming the fix:\n%s", r)
	}
	e.config("keyring")
	if r := e.run("", "run", "--config", e.conf); r.Code == 0 || !strings.Contains(r.Stderr, "does not answer") {
		t.Fatalf("tandem run with token_store: keyring and no keyring:\n%s", r)
	}
	if r := e.once("still.txt"); r.Code != 0 {
		t.Fatalf("the login is still there:\n%s", r)
	}
}

// TestLogoutVBoxx: tandem logout revokes the vBoxx tokens at the server (a copy of the token file stops
// working), deletes the login, and puts the running daemon's pair in login-required; a second logout says
// there is no login.
func TestLogoutVBoxx(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"file", "keyring"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			e := newLoginEnv(t)
			if store == "keyring" {
				e.keyring = t.TempDir()
			}
			if r := e.login(); r.Code != 0 {
				t.Fatalf("%s", r)
			}
			d := e.daemon()
			// The login's tokens, as another copy of them would hold them.
			stolen := readKeyringOrFile(t, e)
			r := e.run("", "logout", "vboxx", "--ca-file", e.emu.CAFile, "--config", e.conf)
			if r.Code != 0 {
				t.Fatalf("logout:\n%s", r)
			}
			mustContain(t, r.Stdout, "revoked the vboxx tokens", "logout")
			mustContain(t, r.Stdout, "login required now: box", "logout")
			if _, err := os.Stat(e.token); !os.IsNotExist(err) {
				t.Fatalf("the token file stays: %v", err)
			}
			if e.keyringEntries() != 0 {
				t.Fatalf("the keyring entry stays")
			}
			d.WaitFor("login-required", 30*time.Second, func(s *testenv.DaemonStatus) bool {
				return len(s.Pairs) == 1 && s.Pairs[0].State == "login-required" &&
					strings.Contains(s.Pairs[0].Message, "tandem login vboxx")
			})
			if err := d.Stop(20 * time.Second); err != nil {
				t.Fatal(err)
			}
			// The revoked tokens are refused by the server: put them back as a plain token file.
			if err := os.WriteFile(e.token, []byte(stolen), 0o600); err != nil {
				t.Fatal(err)
			}
			r = e.once("after.txt")
			if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "login") {
				t.Fatalf("revoked tokens must be refused:\n%s", r)
			}
			os.Remove(e.token)
			if r := e.run("", "logout", "vboxx"); r.Code != 1 || !strings.Contains(r.Stderr, "not logged in") {
				t.Fatalf("a second logout:\n%s", r)
			}
		})
	}
}

// TestVBoxxRegisteredApp: `tandem emulate vboxx --client-id --client-secret` registers an app; `tandem login
// vboxx` with that app's id and secret keeps the secret with the tokens (0600 file or keyring, never in the
// output), and a pass whose access token the server expired refreshes with the secret and succeeds. Before the
// fix the stored login kept only the id, so the first refresh went out without the secret and the pair ended in
// "login required".
func TestVBoxxRegisteredApp(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"file", "keyring"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			id, secret := "tandem-e2e-app", "CS-vboxx-"+strconv.FormatInt(time.Now().UnixNano(), 36)
			e := newLoginEnv(t, "--client-id", id, "--client-secret", secret)
			if e.emu.ClientID != id || e.emu.ClientSecret != secret {
				t.Fatalf("tandem emulate vboxx did not register the app: client %q, secret %q", e.emu.ClientID, e.emu.ClientSecret)
			}
			if store == "keyring" {
				e.keyring = t.TempDir()
			}
			// The emulator refuses the app's id without its secret: the secret is really needed.
			if r := e.login("--client-id", id); r.Code == 0 {
				t.Fatalf("login with the app's id and no secret must be refused:\n%s", r)
			}
			r := e.login("--client-id", id, "--client-secret", secret, "--token-store", store, "-v")
			if r.Code != 0 {
				t.Fatalf("login with the registered app:\n%s", r)
			}
			outputs := r.Stdout + r.Stderr
			stored := readKeyringOrFile(t, e)
			if !strings.Contains(stored, secret) {
				t.Fatalf("the login must keep the app's secret with its tokens: %s", stored)
			}
			if fi, err := os.Stat(e.token); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("the token file: %v %v", fi, err)
			}
			if store == "keyring" && strings.Contains(e.tokenFile(), secret) {
				t.Fatalf("with the login in the keyring, the file is a stub without the secret: %s", e.tokenFile())
			}
			if r := e.once("one.txt"); r.Code != 0 {
				t.Fatalf("the first pass:\n%s", r)
			}
			// Every access token expires at the next request: the pass must refresh, with the secret.
			e.emu.SetFaults(t, plan(rule("", "do: expireToken", "    nth: 1\n")))
			e.emu.ClearLog(t)
			testenv.WriteFile(t, e.L, "two.txt", []byte("two"))
			r = e.run("", "once", "--json", "-v", "--state-dir", e.SD, "--ca-file", e.emu.CAFile, e.L, "vboxx:/")
			if r.Code != 0 {
				t.Fatalf("the pass after the server expired the access token:\n%s", r)
			}
			outputs += r.Stdout + r.Stderr
			refreshed := false
			for _, x := range e.emu.Log(t) {
				refreshed = refreshed || (x.Op == "oauth/token" && x.Status == 200)
			}
			if !refreshed {
				t.Fatalf("no token refresh happened: the test proves nothing")
			}
			if got := readKeyringOrFile(t, e); got == stored || !strings.Contains(got, secret) {
				t.Fatalf("the refreshed login must be saved and keep the secret: %s", got)
			}
			if found := leaks([]string{secret}, "login and pass output", outputs); len(found) > 0 {
				t.Fatalf("%s", strings.Join(found, "\n"))
			}
		})
	}
}

// readKeyringOrFile is the login's JSON wherever it lives.
func readKeyringOrFile(t *testing.T, e *loginEnv) string {
	t.Helper()
	if e.keyring == "" {
		return e.tokenFile()
	}
	ents, err := os.ReadDir(e.keyring)
	if err != nil || len(ents) != 1 {
		t.Fatalf("keyring: %v %v", ents, err)
	}
	b, err := os.ReadFile(filepath.Join(e.keyring, ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLogoutWithoutRevocation: pCloud and Verizon document no revocation, so the login is deleted here and
// the output says how to revoke it at the provider; an unknown provider is a usage error.
func TestLogoutWithoutRevocation(t *testing.T) {
	t.Parallel()
	xdg := t.TempDir()
	env := testenv.RunOpts{Env: []string{"XDG_CONFIG_HOME=" + xdg, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/tandem-test-bus"}}
	for provider, hint := range map[string]string{"pcloud": "Settings > Apps", "verizon": "ThingSpace"} {
		p := filepath.Join(xdg, "tandem", "tokens", provider+"-work.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(`{"access_token": "x"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		r := testenv.RunWith(t, bin, env, "logout", provider, "--account", "work")
		if r.Code != 0 || !strings.Contains(r.Stdout, hint) || !strings.Contains(r.Stdout, "deleted the "+provider+" (account work) login") {
			t.Fatalf("logout %s:\n%s", provider, r)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s: the token file stays", provider)
		}
	}
	if r := testenv.RunWith(t, bin, env, "logout", "dropbox"); r.Code != 2 {
		t.Fatalf("unknown provider:\n%s", r)
	}
}

// TestVerizonRefusedFlagTokensHint: a refused refresh of tokens given with --access-token/--refresh-token says
// to give new tokens (a new `tandem login verizon` would not change what this command uses), and no other advice
// is appended; a refused refresh of a stored login still says to run `tandem login verizon`
// (TestNoSecretsInLoginsAndFailures).
func TestVerizonRefusedFlagTokensHint(t *testing.T) {
	t.Parallel()
	e := newPenv(t, providerNamed(t, "verizon"))
	e.lwrite("a.txt", "a")
	e.sync()
	e.emu.Post(t, "/revoke-refresh", "")
	e.emu.Post(t, "/expire-tokens", "")
	e.lwrite("b.txt", "b")
	r := e.once()
	if r.Code != 1 {
		t.Fatalf("a refused refresh must exit 1:\n%s", r)
	}
	mustContain(t, r.Stderr, "give a fresh pair with --access-token and --refresh-token", "the refused refresh")
	if strings.Contains(r.Stderr, "run `tandem login verizon`") || strings.Contains(r.Stderr, "log in again") {
		t.Fatalf("tokens given as flags are not cured by a new login:\n%s", r)
	}
}
