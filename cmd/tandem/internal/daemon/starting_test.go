package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/remote/memremote"
)

// A configured pair is in the status from the moment the daemon has its config, starting while it is set up
// (and refusing control requests clearly if they cannot wait for that), then in its normal state.
func TestPairIsListedStartingUntilItIsSetUp(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	local, cl := startDaemonWith(t, mem, zaptest.NewLogger(t), nil, func(d *Daemon) {
		// Before Run serves anything, the handler already lists the pair.
		rec := httptest.NewRecorder()
		d.handler(false).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
		var s Status
		if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Pairs) != 1 || s.Pairs[0].Name != "p" || s.Pairs[0].State != StateStarting {
			t.Fatalf("status before the pair is set up: %+v, want p starting", s.Pairs)
		}
		open := d.open
		d.open = func(ctx context.Context, lg *zap.Logger, p config.Pair) (*PairDeps, error) {
			once.Do(func() { close(entered) })
			select { // the setup holds until the test releases it
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return open(ctx, lg, p)
		}
		d.ctlWait = 50 * time.Millisecond // how long a control request waits for the held setup
	})
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the pair was never opened")
	}
	ctx := context.Background()
	s, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pairs) != 1 || s.Pairs[0].State != StateStarting || s.Pairs[0].Local != local {
		t.Fatalf("status while the pair is set up: %+v, want p starting", s.Pairs)
	}
	for what, call := range map[string]func() error{
		"pause":        func() error { _, err := cl.Pause(ctx, "p"); return err },
		"resume all":   func() error { _, err := cl.Resume(ctx, "", false); return err },
		"rescan":       func() error { _, err := cl.Rescan(ctx, "p"); return err },
		"logout (mem)": func() error { _, err := cl.Logout(ctx, "mem", ""); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "pair p is still starting") {
			t.Errorf("%s on a starting pair: %v, want an answer that it is still starting", what, err)
		}
	}
	if _, err := cl.History(ctx, "p", "a.txt"); err == nil || !strings.Contains(err.Error(), "not open") {
		t.Errorf("history of a starting pair: %v", err)
	}
	m, err := cl.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every state has its series (0 when no pair is in it), so that a dashboard sees it before it happens.
	for _, want := range []string{`tandem_pairs{state="starting"} 1`, `tandem_pairs{state="idle"} 0`,
		`tandem_pairs{state="degraded"} 0`, `tandem_pairs{state="login-required"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics while the pair starts lack %s:\n%s", want, m)
		}
	}

	close(release)
	waitState(t, cl, "the start-up pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	if _, err := cl.Pause(ctx, "p"); err != nil {
		t.Fatalf("pause once the pair is set up: %v", err)
	}
	waitState(t, cl, "paused", func(s PairStatus) bool { return s.State == StatePaused })
}

// A pair whose setup fails goes from starting to error, with the error, as before.
func TestPairWhoseSetupFailsLeavesStarting(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	_, cl := startDaemonWith(t, mem, zaptest.NewLogger(t), nil, func(d *Daemon) {
		d.open = func(context.Context, *zap.Logger, config.Pair) (*PairDeps, error) {
			return nil, errors.New("the disk is on fire")
		}
	})
	s := waitState(t, cl, "the failed setup", func(s PairStatus) bool { return s.State != StateStarting })
	if s.State != StateError || s.Message != "the disk is on fire" || s.LastError != "the disk is on fire" {
		t.Errorf("after a failed setup: %+v", s)
	}
}
