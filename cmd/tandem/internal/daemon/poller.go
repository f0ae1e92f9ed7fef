package daemon

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// poller watches a remote's change feed only to learn that something happened: it reads from the stored cursor
// (then from the cursors it is given, until a pass stores a newer one), never writes state, and kicks a pass
// when the feed has news. The pass reads the same feed from the stored cursor and applies it, so the cursor is
// only ever committed with the changes it covers. Where the provider long-polls, Changes blocks until news;
// elsewhere the poller asks every poll interval. Errors back off exponentially with jitter.
func (l *pairLoop) poller(ctx context.Context, deps *PairDeps) {
	caps := deps.Remote.Capabilities()
	interval := l.cfg.EffectivePollInterval()
	bo := backoff{min: time.Second, max: 5 * time.Minute}
	var stored, cur remote.Cursor
	for ctx.Err() == nil {
		var s remote.Cursor
		if err := deps.Store.View(func(r state.Reader) error {
			var err error
			s, err = r.Cursor()
			return err
		}); err != nil {
			l.pollReport(err)
			l.sleep(ctx, bo.next())
			continue
		}
		if !bytes.Equal(s, stored) {
			stored, cur = s, s // a pass moved on: follow it
		}
		if cur == nil {
			// No cursor until the first pass has listed the remote: look again as soon as a pass ends (a
			// new pair must hear remote changes from its first minute, not one poll interval later).
			l.sleepOrPass(ctx, interval)
			continue
		}
		cctx := ctx
		if caps.LongPoll {
			cctx = remote.WithLongPoll(ctx)
		}
		b, err := deps.Remote.Changes(cctx, cur)
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, remote.ErrOutOfSync):
			// The pass re-lists the remote and stores a fresh cursor, which the next round follows.
			l.pollReport(nil)
			l.kick()
			l.sleepOrPass(ctx, interval)
			continue
		case err != nil:
			l.pollReport(err)
			wait := bo.next()
			if errors.Is(err, remote.ErrUnauthorized) {
				wait = bo.max
			}
			l.sleep(ctx, wait)
			continue
		}
		bo.reset()
		l.pollReport(nil)
		if len(b.Changes) > 0 || (b.Next != nil && !bytes.Equal(b.Next, cur)) {
			l.kick()
			if b.Next != nil {
				cur = b.Next
			}
		}
		if !caps.LongPoll {
			l.sleep(ctx, interval)
		}
	}
}

// pollReport hands the loop the poller's latest outcome, replacing one it has not read yet.
func (l *pairLoop) pollReport(err error) {
	for {
		select {
		case l.poll <- err:
			return
		default:
		}
		select {
		case <-l.poll:
		default:
		}
	}
}

// sleepOrPass sleeps d, or less if a pass ends meanwhile (the stored cursor may have moved).
func (l *pairLoop) sleepOrPass(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-l.passed:
	case <-l.d.clk.After(d):
	}
}

func (l *pairLoop) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-l.d.clk.After(d):
	}
}
