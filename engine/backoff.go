package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// maxPathBackoff caps the wait of a path that keeps failing; maxBackedOff bounds what the engine remembers.
const (
	maxPathBackoff = 10 * time.Minute
	maxBackedOff   = 10000
)

// pathBackoff holds back paths whose action failed in a row (Options.PathBackoff): the first failure waits
// PathBackoff, each further one twice as long, up to maxPathBackoff. Passes come as often as events arrive (a
// scoped pass for every write the watcher reports), so without it a path that fails every time, such as a file
// that is rewritten all the time, is tried as often as it changes.
type pathBackoff struct {
	mu    sync.Mutex
	paths map[remote.Path]backoffState
}

type backoffState struct {
	fails int
	next  time.Time
	skip  string // the last failure was a refusal reported as a skip (ErrUnavailable): its message
}

// held reports whether the action on p must wait, and the error that says until when; skip is set when the
// failure that holds it back was reported as a skip (a locked file, a read-only or policy refusal), which a held
// path stays.
func (b *pathBackoff) held(p remote.Path, now time.Time) (skip bool, until time.Time, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.paths[p]
	if !ok || !now.Before(s.next) {
		return false, time.Time{}, nil
	}
	if s.skip != "" {
		return true, s.next, fmt.Errorf("%s (next try in %s)", s.skip, s.next.Sub(now).Round(time.Second))
	}
	return false, s.next, fmt.Errorf("failed %d %s in a row: next try in %s", s.fails, plural(s.fails, "time", "times"),
		s.next.Sub(now).Round(time.Second))
}

// failed records a failure of p's action at now; skip is the message of a refusal reported as a skip.
func (b *pathBackoff) failed(p remote.Path, now time.Time, first time.Duration, skip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paths == nil {
		b.paths = map[remote.Path]backoffState{}
	}
	s, ok := b.paths[p]
	if !ok && len(b.paths) >= maxBackedOff {
		return
	}
	s.fails++
	wait := first
	for i := 1; i < s.fails && wait < maxPathBackoff; i++ {
		wait *= 2
	}
	s.next = now.Add(min(wait, maxPathBackoff))
	s.skip = skip
	b.paths[p] = s
}

// ok forgets p after its action succeeded.
func (b *pathBackoff) ok(p remote.Path) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.paths, p)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
