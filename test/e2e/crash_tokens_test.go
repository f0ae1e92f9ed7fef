package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestCrashTokens (CRASH-01, token points): kill -9 during a token refresh, after the server rotated the token
// and before it is persisted, after it is persisted, and inside the token file's atomic save, for Verizon (both
// readings of its refresh tokens) and vBoxx, with the login stored by `tandem login`. Afterwards the pair is
// either logged in (the next pass syncs) or in "login required" (the pass stops at once with a message naming
// `tandem login`, and says the same again), never looping on refreshes; after a new login it converges and
// nothing is lost.
func TestCrashTokens(t *testing.T) {
	t.Parallel()
	fp := fpBinary(t)
	type tc struct {
		provider, variant, point string
	}
	var cases []tc
	for _, v := range []string{"refresh-single-use", "refresh-grace"} {
		for _, p := range []string{"verizon.refresh.beforeSave", "verizon.refresh.afterSave", "tokenstore.save.beforeRename"} {
			cases = append(cases, tc{"verizon", v, p})
		}
	}
	for _, p := range []string{"oauth.refresh.beforeSave", "oauth.refresh.afterSave", "tokenstore.save.beforeRename"} {
		cases = append(cases, tc{"vboxx", "", p})
	}
	for _, c := range cases {
		name := c.provider + "/" + c.point
		if c.variant != "" {
			name = c.provider + "/" + c.variant + "/" + c.point
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var extra []string
			if c.provider == "verizon" {
				extra = []string{"--redirect-url", "http://127.0.0.1:" + freePort(t) + "/callback", "--variant", c.variant}
			}
			acct := testenv.NewAccount(t, bin, c.provider, extra...)
			tokens := filepath.Join(acct.XDG, "tandem", "tokens")
			login := func() {
				switch c.provider {
				case "verizon":
					e := acct.Emu
					testenv.BrowserLogin(t, bin, []string{"XDG_CONFIG_HOME=" + acct.XDG}, e.CAFile, "verizon",
						"--token-dir", tokens, "--endpoint", e.Endpoint, "--ca-file", e.CAFile, "--client-id", e.ClientID,
						"--client-secret", e.ClientSecret, "--redirect-url", e.RedirectURL)
				case "vboxx":
					r := testenv.RunWith(t, bin, testenv.RunOpts{Stdin: acct.Emu.Password + "\n"}, "login", "vboxx",
						"--username", acct.Emu.Username, "--password-stdin", "--endpoint", acct.Emu.Endpoint,
						"--ca-file", acct.Emu.CAFile, "--token-dir", tokens)
					if r.Code != 0 {
						t.Fatalf("login vboxx:\n%s", r)
					}
				}
			}
			if c.provider == "verizon" {
				login()
			}
			acct.Stored = true
			cr := newCrashRun(t, fp, c.provider, acct, "tok")
			for i := range 3 {
				cr.lw(fmt.Sprintf("f%d.txt", i), fmt.Sprintf("before the refresh %d\n", i))
			}
			if r, k := cr.pass(""); k || r.Code != 0 {
				t.Fatalf("first sync:\n%s", r)
			}
			cr.lw("after.txt", "written before the killed refresh\n")
			cr.rw("remote.txt", "written remotely before the killed refresh\n")
			expire(t, acct, tokens)
			if _, k := cr.pass(c.point + "=kill@1"); !k {
				t.Fatalf("%s was not reached", c.point)
			}
			// The next passes: logged in, or login required; either way each ends promptly, with few token requests.
			loggedOut := 0
			for i := range 2 {
				acct.Emu.ClearLog(t)
				r, k := cr.pass("")
				grants := testenv.OpCounts(acct.Emu.Log(t))["oauth2/token"] + testenv.OpCounts(acct.Emu.Log(t))["oauth/token"]
				switch {
				case k:
					t.Fatalf("recovery pass %d died", i+1)
				case grants > 3:
					t.Fatalf("recovery pass %d made %d token requests (a refresh loop?):\n%s", i+1, grants, r)
				case r.Code == 0:
				case r.Code == 1 && strings.Contains(r.JSON(t).Error+r.Stderr, "tandem login"):
					loggedOut++
				default:
					t.Fatalf("recovery pass %d is neither logged in nor 'login required':\n%s", i+1, r)
				}
				if r.Took > time.Minute {
					t.Fatalf("recovery pass %d took %s", i+1, r.Took)
				}
			}
			switch loggedOut {
			case 0:
				t.Logf("%s: still logged in after the kill", name)
			case 2:
				t.Logf("%s: login required after the kill; logging in again", name)
				login()
			default:
				t.Fatalf("the two passes after the kill disagree on the login")
			}
			if r, k := cr.pass(""); k || r.Code != 0 {
				t.Fatalf("pass after recovery:\n%s", r)
			}
			cr.check()
		})
	}
}

// expire makes the next request refresh: Verizon's emulator refuses its access tokens; vBoxx's stored token is
// marked expired, so the client refreshes before its first request.
func expire(t *testing.T, acct *testenv.Account, tokens string) {
	t.Helper()
	if acct.Provider == "verizon" {
		acct.Emu.Post(t, "/expire-tokens", "")
		return
	}
	files, _ := filepath.Glob(filepath.Join(tokens, "vboxx*.json"))
	if len(files) != 1 {
		t.Fatalf("vboxx token files in %s: %v", tokens, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["expiry"] = time.Now().Add(-time.Hour).Format(time.RFC3339Nano)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
}
