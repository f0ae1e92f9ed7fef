package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	verizonemu "github.com/tandemsync/tandem/remote/verizon/emulator"
	"github.com/tandemsync/tandem/test/testenv"
)

// Where Verizon's documentation is silent, `tandem emulate verizon --variant` offers each plausible reading; the
// emulator's default is the least helpful one, and every other e2e test runs under the defaults. This runs the
// sync scenarios under each other reading: in `make test` the scenarios each reading can change, with
// TANDEM_E2E_VARIANTS=all (`make soak`) every scenario under every reading.
func TestVerizonVariants(t *testing.T) {
	t.Parallel()
	all := map[string]func(t *testing.T, e *penv){
		"FirstSyncBothWays":  scFirstSync,
		"EditsBothWays":      scEdits,
		"Conflict":           scConflict,
		"DeleteVersusModify": scDeleteVersusModify,
		"MoveFileLocal":      func(t *testing.T, e *penv) { scMove(t, e, "local", false) },
		"MoveFileRemote":     func(t *testing.T, e *penv) { scMove(t, e, "remote", false) },
		"MoveFolderLocal":    func(t *testing.T, e *penv) { scMove(t, e, "local", true) },
		"MoveFolderRemote":   func(t *testing.T, e *penv) { scMove(t, e, "remote", true) },
		"TypeChange":         scTypeChange,
		"EmptyFileAndFolder": scEmpty,
		"Login":              scVerizonLogin,
	}
	// The scenarios a reading can change; the full matrix runs them all.
	key := map[string][]string{
		verizonemu.VariantRedirectLoopback:    {"Login"},
		verizonemu.VariantRefreshGrace:        {"Login"},
		verizonemu.VariantIntentEnforce:       {"EditsBothWays", "Conflict"},
		verizonemu.VariantIntentReject:        {"EditsBothWays", "Conflict"},
		verizonemu.VariantMoveTargetPath:      {"MoveFileLocal", "MoveFolderLocal"},
		verizonemu.VariantMkdirModifyExisting: {"FirstSyncBothWays"},
		verizonemu.VariantChunkChecksumWhole:  {"FirstSyncBothWays"}, // chunks start at 100 MB: see the unit tests
		verizonemu.VariantDeltaMoveFolder:     {"MoveFileRemote", "MoveFolderRemote"},
		verizonemu.VariantDeltaMoveSubtree:    {"MoveFileRemote", "MoveFolderRemote"},
	}
	full := os.Getenv("TANDEM_E2E_VARIANTS") == "all"
	for _, v := range verizonemu.NonDefaultVariants() {
		names := key[v]
		if full {
			names = nil
			for n := range all {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			t.Fatalf("variant %s has no scenario", v)
		}
		p := verizonVariant(v)
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			for _, n := range names {
				t.Run(n, func(t *testing.T) {
					t.Parallel()
					all[n](t, newPenv(t, p))
				})
			}
		})
	}
}

// scVerizonLogin: a real `tandem login verizon` with the app registered at the emulator, then passes on that
// login alone (no tokens on the command line), with access tokens that need refreshing.
func scVerizonLogin(t *testing.T, e *penv) {
	if strings.Contains(strings.Join(e.p.emuArgs, ","), verizonemu.VariantRedirectLoopback) {
		// This reading accepts any loopback callback, not only the registered one.
		e.emu.RedirectURL = "http://127.0.0.1:" + freePort(t) + "/elsewhere"
	}
	endpoint, caFile := loginForDaemon(t, e)
	e.lwrite("a.txt", "a1 written on the laptop")
	for i := range 3 {
		e.emu.Post(t, "/expire-tokens", "")
		r := e.onceLogin(endpoint, caFile, "--json")
		if r.Code != 0 {
			t.Fatalf("pass %d on the stored login:\n%s", i, r)
		}
	}
	if got := e.rread("a.txt"); got != "a1 written on the laptop" {
		t.Fatalf("remote a.txt = %q", got)
	}
}

// onceLogin runs `tandem once` on the token file of e.xdg, without tokens on the command line.
func (e *penv) onceLogin(endpoint, caFile string, flags ...string) testenv.Result {
	e.t.Helper()
	args := append([]string{"once", "--state-dir", e.SD, "--endpoint", endpoint, "--ca-file", caFile}, flags...)
	return testenv.RunWith(e.t, bin, testenv.RunOpts{Env: []string{"XDG_CONFIG_HOME=" + e.xdg}},
		append(args, e.L, e.p.spec)...)
}

// `tandem run` and `tandem once` share one Verizon login while access tokens live 2 s (inside the client's
// refresh margin, so nearly every call refreshes the single-use refresh token). Neither may knock the other out:
// no pass may end in "login required". TANDEM_SOAK_REFRESH=1m runs it for a minute (`make soak`).
func TestVerizonSharedLoginRunAndOnce(t *testing.T) {
	t.Parallel()
	run := 6 * time.Second
	if d, err := time.ParseDuration(os.Getenv("TANDEM_SOAK_REFRESH")); err == nil {
		run = d
	}
	var p provider
	for _, q := range providers {
		if q.name == "verizon" {
			p = q
		}
	}
	e := newPenv(t, p, "--access-ttl", "2s")
	endpoint, caFile := loginForDaemon(t, e)
	xdg := []string{"XDG_CONFIG_HOME=" + e.xdg}
	conf := writeProviderConfig(t, p, e.L, endpoint, caFile, time.Second)
	d := testenv.StartDaemon(t, bin, conf, xdg...)
	d.WaitFor("the first pass", arrivalTimeout, func(s *testenv.DaemonStatus) bool {
		return len(s.Pairs) == 1 && s.Pairs[0].LastSync != nil
	})
	// `tandem once` on another folder pair with the same login, over and over, while the daemon polls.
	other := &penv{t: t, p: p, emu: e.emu, L: t.TempDir(), SD: t.TempDir(), xdg: e.xdg}
	other.p.spec = "verizon:/VZMOBILE/Other"
	deadline := time.Now().Add(run)
	var mu sync.Mutex
	var failed []string
	passes, i := 0, 0
	for time.Now().Before(deadline) {
		i++
		if err := os.WriteFile(filepath.Join(other.L, fmt.Sprintf("o%d.txt", i%5)), []byte(fmt.Sprint("once ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.lwrite(fmt.Sprintf("run/r%d.txt", i%5), fmt.Sprint("run ", i))
		r := other.onceLogin(endpoint, caFile)
		passes++
		if r.Code != 0 {
			mu.Lock()
			failed = append(failed, r.String())
			mu.Unlock()
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d `tandem once` passes failed on the shared login; first:\n%s", len(failed), passes, failed[0])
	}
	last := fmt.Sprint("run ", i)
	waitRemote(t, e, fmt.Sprintf("run/r%d.txt", i%5), last)
	s, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range s.Pairs {
		if strings.Contains(ps.LastError+ps.Message, "login") {
			t.Fatalf("the daemon's pair needs a login after sharing it: %+v", ps)
		}
	}
	if strings.Contains(d.Log(), "tandem login verizon") {
		t.Fatalf("the daemon was knocked out of its login:\n%s", d.Log())
	}
	t.Logf("%d `tandem once` passes beside `tandem run` on one login over %s: 0 forced re-logins", passes, run)
}
