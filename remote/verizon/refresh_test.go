package verizon

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// Several clients opened on one token file (as `tandem run` and `tandem once` sharing a login are) call the API
// while every access token is expired again and again. Refresh tokens are single-use (the emulator's default), so
// a refresh made without the lock and the re-read would spend the token another client still holds: every
// ErrUnauthorized is a forced re-login. TANDEM_SOAK_REFRESH=1m runs it for a minute (`make soak`).
func TestSharedLoginRefreshesNeverKnockEachOtherOut(t *testing.T) {
	run := 3 * time.Second
	if d, err := time.ParseDuration(os.Getenv("TANDEM_SOAK_REFRESH")); err == nil {
		run = d
	}
	// Access tokens live 2 s, inside the client's 10 s margin: every call refreshes first, so the single-use
	// refresh token changes hands as fast as the clients can call.
	r := startEmu(t, emulator.Options{AccessTTL: 2 * time.Second})
	dir := t.TempDir()
	path, err := TokenFile(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tokenstore.Save(path, tokenFile{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken,
		Endpoint: r.URL}); err != nil {
		t.Fatal(err)
	}
	const procs = 4
	clients := make([]remote.Remote, procs)
	for i := range clients {
		c, err := Open(t.Context(), zap.NewNop(), "/VZMOBILE/t", remote.OpenOptions{StateDir: dir, CAFile: r.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	if err := clients[0].(remote.RootChecker).InitRoot(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	calls := 0
	for _, c := range clients {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					_, err := c.Stat(t.Context(), remote.Root)
					mu.Lock()
					calls++
					if err != nil {
						failures = append(failures, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	var tf tokenFile
	if err := tokenstore.Load(path, &tf); err != nil || tf.RefreshToken == r.RefreshToken {
		t.Fatalf("the token file was never refreshed: %v", err)
	}
	for _, err := range failures {
		if errors.Is(err, remote.ErrUnauthorized) {
			t.Fatalf("a shared login was knocked out (%d calls): %v", calls, err)
		}
	}
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %v", len(failures), failures[0])
	}
	t.Logf("%d calls through %d clients on one login, 0 forced re-logins", calls, procs)
}

// A refresh whose answer is lost cannot be replayed under single-use refresh tokens: the pair reports that a
// login is needed, with the command, instead of retrying.
func TestLostRefreshAnswerAsksForLogin(t *testing.T) {
	r := startEmu(t, emulator.Options{})
	dir := t.TempDir()
	path, _ := TokenFile(dir, "")
	if err := tokenstore.Save(path, tokenFile{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, Endpoint: r.URL}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(t.Context(), zap.NewNop(), "/VZMOBILE/t", remote.OpenOptions{StateDir: dir, CAFile: r.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r.ExpireAccessTokens()
	// The token endpoint does its work, then the connection drops before the answer.
	if err := r.SetFaults(lostAnswerRule()); err != nil {
		t.Fatal(err)
	}
	_, err = c.Stat(t.Context(), remote.Root)
	if !errors.Is(err, remote.ErrUnauthorized) || !strings.Contains(err.Error(), "tandem login verizon") {
		t.Fatalf("after a lost refresh answer: %v", err)
	}
}

func lostAnswerRule() emukit.Rule {
	return emukit.Rule{Match: "^oauth2/token$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}
}

// A refused refresh says what cures it for the tokens' source: a stored login is renewed by `tandem login
// verizon`, but tokens given with --access-token/--refresh-token are used as given, so a new login does not help
// that command: it needs new tokens (or to drop the flags and use the stored login).
func TestRefusedRefreshHintPerTokenSource(t *testing.T) {
	r := startEmu(t, emulator.Options{})
	flagsAT, flagsRT := r.AccessToken, r.RefreshToken
	storedAT, storedRT := r.Emu.Mint()
	dir := t.TempDir()
	path, _ := TokenFile(dir, "")
	if err := tokenstore.Save(path, tokenFile{AccessToken: storedAT, RefreshToken: storedRT, Endpoint: r.URL}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		o         remote.OpenOptions
		want, not string
	}{
		{"flags", remote.OpenOptions{Endpoint: r.URL, CAFile: r.CAFile, AccessToken: remote.Secret(flagsAT),
			RefreshToken: remote.Secret(flagsRT), StateDir: dir}, "--access-token and --refresh-token", "run `tandem login verizon`"},
		{"stored", remote.OpenOptions{CAFile: r.CAFile, StateDir: dir}, "run `tandem login verizon`", "--refresh-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(t.Context(), zap.NewNop(), "/VZMOBILE/t", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r.RevokeRefreshTokens()
			r.ExpireAccessTokens()
			_, err = c.Stat(t.Context(), remote.Root)
			if !errors.Is(err, remote.ErrUnauthorized) || !strings.Contains(err.Error(), tc.want) ||
				strings.Contains(err.Error(), tc.not) {
				t.Fatalf("refused refresh: want %q and not %q in: %v", tc.want, tc.not, err)
			}
		})
	}
}
