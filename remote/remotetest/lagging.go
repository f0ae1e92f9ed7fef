package remotetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote"
)

// Stamper is implemented by fakes that know when each change of a batch happened (memremote does): times[i]
// belongs to Batch.Changes[i]. Lagging uses these times when it can; for any other side it has to use the
// moment it first saw a change, which makes the lag at least d rather than exactly d.
type Stamper interface {
	ChangesAt(ctx context.Context, cur remote.Cursor) (remote.Batch, []time.Time, error)
}

// Lagging wraps r so that its change feed runs late: Changes reports a change only once it is older than d on
// clk, as an eventually consistent provider does. Everything else passes straight through, so a Stat or Walk
// already shows what the feed does not yet report.
//
// Its cursors wrap r's cursor with the number of changes already handed out from the batch that follows it,
// so r's feed must answer the same cursor with the same changes in the same order, only possibly more of them
// (a log-based feed does). Capabilities reports LongPoll false: a long-polling r would answer at once while
// changes are held back, so the caller must pace its own polls. It implements remote.Hasher and
// remote.RootChecker exactly when r does. Safe for concurrent use.
func Lagging(r remote.Remote, d time.Duration, clk clockwork.Clock) remote.Remote {
	l := &lagging{Remote: r, d: d, clk: clk, seen: map[string][]time.Time{}}
	h, isH := r.(remote.Hasher)
	rc, isRC := r.(remote.RootChecker)
	switch {
	case isH && isRC:
		return &struct {
			*lagging
			remote.Hasher
			remote.RootChecker
		}{l, h, rc}
	case isH:
		return &struct {
			*lagging
			remote.Hasher
		}{l, h}
	case isRC:
		return &struct {
			*lagging
			remote.RootChecker
		}{l, rc}
	}
	return l
}

type lagging struct {
	remote.Remote // everything but the feed passes through
	d             time.Duration
	clk           clockwork.Clock

	mu   sync.Mutex
	seen map[string][]time.Time // inner cursor → when each change after it was first seen (no Stamper)
}

func (l *lagging) String() string { return "lagging(" + l.Remote.String() + ")" }

func (l *lagging) Capabilities() remote.Capabilities {
	c := l.Remote.Capabilities()
	c.LongPoll = false
	return c
}

// The cursor is a marker byte, the number of changes already handed out after the inner cursor, then the inner
// cursor: a cursor of r itself is refused instead of being misread.
const lagMark = 'L'

func wrapCursor(inner remote.Cursor, skip int) remote.Cursor {
	out := []byte{lagMark}
	out = binary.AppendUvarint(out, uint64(skip))
	return append(out, inner...)
}

func unwrapCursor(c remote.Cursor) (remote.Cursor, int, error) {
	if len(c) == 0 || c[0] != lagMark {
		return nil, 0, errors.New("not a lagging cursor")
	}
	skip, n := binary.Uvarint(c[1:])
	if n <= 0 {
		return nil, 0, errors.New("bad skip count")
	}
	return bytes.Clone(c[1+n:]), int(skip), nil
}

func (l *lagging) Head(ctx context.Context) (remote.Cursor, error) {
	cur, err := l.Remote.Head(ctx)
	if err != nil {
		return nil, err
	}
	return wrapCursor(cur, 0), nil
}

func (l *lagging) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	inner, skip, err := unwrapCursor(cur)
	if err != nil {
		return remote.Batch{}, fmt.Errorf("lagging changes: %w: %v", remote.ErrOutOfSync, err)
	}
	var (
		b  remote.Batch
		at []time.Time
	)
	if s, ok := l.Remote.(Stamper); ok {
		b, at, err = s.ChangesAt(ctx, inner)
	} else {
		b, err = l.Remote.Changes(ctx, inner)
		if err == nil {
			at = l.firstSeen(inner, len(b.Changes))
		}
	}
	if err != nil {
		return remote.Batch{}, err
	}
	skip = min(skip, len(b.Changes))
	cutoff := l.clk.Now().Add(-l.d)
	n := skip
	for n < len(b.Changes) && !at[n].After(cutoff) {
		n++
	}
	out := remote.Batch{Changes: b.Changes[skip:n:n]}
	if n < len(b.Changes) {
		out.Next = wrapCursor(inner, n)
		return out, nil
	}
	l.forget(inner)
	out.Next = wrapCursor(b.Next, 0)
	return out, nil
}

func (l *lagging) firstSeen(inner remote.Cursor, n int) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := string(inner)
	at := l.seen[k]
	now := l.clk.Now()
	for len(at) < n {
		at = append(at, now)
	}
	l.seen[k] = at
	return at
}

// forget drops the times kept for a cursor whose batch has been handed out in full: its reader moved on, and
// the map would otherwise grow with every poll.
func (l *lagging) forget(inner remote.Cursor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, string(inner))
}
