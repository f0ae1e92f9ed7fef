package pcloud

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
	"github.com/tandemsync/tandem/remote/remotetest"
)

// fastOptions keep retries quick on loopback.
func fastOptions(o Options) Options {
	if o.BaseDelay == 0 {
		o.BaseDelay = 5 * time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 50 * time.Millisecond
	}
	return o
}

// newClient is a client of run's account rooted at root, over plain HTTP on loopback.
func newClient(t testing.TB, run *emulator.Running, root string, o Options) *Client {
	t.Helper()
	o = fastOptions(o)
	if o.Endpoint == "" {
		o.Endpoint = run.URL
	}
	if o.Token == "" {
		o.Token = remote.Secret(run.Token)
	}
	c, err := New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), root, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pair starts an emulator and two clients of one account on /Sync (created).
func pair(t testing.TB, eo emulator.Options, o Options) (*emulator.Running, *Client, *Client) {
	t.Helper()
	run := emulator.Start(t, eo)
	r := newClient(t, run, "/Sync", o)
	if err := r.InitRoot(context.Background()); err != nil {
		t.Fatalf("InitRoot: %v", err)
	}
	other := newClient(t, run, "/Sync", o)
	return run, r, other
}

func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		run, r, other := pair(t, emulator.Options{DiffBlockTimeout: 5 * time.Second}, Options{})
		// pCloud's compaction sends no signal (the default variant): what kills a cursor is its age, so Expire
		// compacts and moves the client's clock 200 days on.
		expire := func() {
			run.DropHistory()
			r.skew.Add(int64(200 * 24 * time.Hour))
		}
		return remotetest.Fixture{R: r, Other: other, Expire: expire, Settle: 2 * time.Second}
	}, map[string]string{
		// pCloud tokens never expire and there is no refresh token: a refused token means a new login.
		// TestRevokedTokenNeedsLogin checks that instead.
		"TokenRefresh": "pCloud OAuth tokens do not expire and cannot be refreshed",
	})
}

// TestConformanceVariants runs the suite once more against the other readings of what pCloud's docs leave
// open, combined: new fileids on overwrite, errors with HTTP statuses, 2009 for trashed files, a listing size
// limit, cancelling events kept, and compaction answered with `reset` (so Expire needs no clock).
func TestConformanceVariants(t *testing.T) {
	variants := []string{emulator.VariantNewFileID, emulator.VariantHTTPErrorStatus, emulator.VariantStatGone,
		emulator.VariantListLimit, emulator.VariantKeepCancelling, emulator.VariantResetOnCompaction}
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		run, r, other := pair(t, emulator.Options{DiffBlockTimeout: 5 * time.Second, Variants: variants}, Options{})
		return remotetest.Fixture{R: r, Other: other, Expire: run.DropHistory, Settle: 2 * time.Second}
	}, map[string]string{
		"TokenRefresh": "pCloud OAuth tokens do not expire and cannot be refreshed",
	})
}
