// Package watcher reports where a local folder changed, from a recursive fsnotify watch. It says where to
// look, never what to do: an Event names a path to re-observe, and the engine decides from what it finds.
//
// inotify watches single directories, so the watcher walks the tree, adds one watch per directory, adds watches
// for directories that appear and drops them for ones that go. Whenever it may have missed something (a
// directory populated before its watch existed, the kernel queue overflowing, the watch limit reached) it
// says so with a Subtree event instead of guessing, and the caller rescans that subtree.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// Event names a path, relative to the root and slash-separated ("" is the root itself), that may have changed:
// created, written, removed, renamed from or to, or had its attributes changed.
type Event struct {
	Path string
	// Subtree: precision was lost (queue overflow, watch limit, a new or moved directory): everything at and
	// below Path must be rescanned.
	Subtree bool
}

// Options tune a Watcher; the zero value is valid.
type Options struct {
	// Debounce is how long a burst must be quiet before its batch goes out (default 100ms). A burst that never
	// goes quiet is still cut 10×Debounce after its first event, so a continuous writer is synced as it goes.
	Debounce time.Duration
	// Ignore drops a path before it is watched or reported. It is called from Run's goroutine only. The
	// root's .tandem folder (the daemon's own state) is always ignored.
	Ignore func(rel string, dir bool) bool
	Clock  clockwork.Clock // default: the real clock
	// MaxBatch bounds the distinct paths held for one batch (default 10,000). Past it, paths are widened
	// into Subtree events of their folders, so memory stays bounded during a flood and nothing is dropped.
	MaxBatch int
}

const (
	defaultDebounce = 100 * time.Millisecond
	defaultMaxBatch = 10000
	maxWaitFactor   = 10
	// overflowQuiet is how long the overflow message stays up after the last overflow: long enough for a
	// person (or an e2e test) to see it, short enough that a one-off burst does not leave the status alarming.
	overflowQuiet = 5 * time.Minute
	stateDir      = ".tandem"

	overflowMsg = "event queue overflowed; rescanned the whole folder; " +
		"raise fs.inotify.max_queued_events if this repeats"
	limitFmt = "inotify watch limit reached (%d watched): raise fs.inotify.max_user_watches, " +
		"e.g. sudo sysctl fs.inotify.max_user_watches=524288; unwatched folders are covered by the periodic scan"
	goneMsg = "the folder itself was moved or deleted; changes are no longer watched"
)

// Watcher watches one folder tree. Degraded and Watched may be called from any goroutine, at any time.
type Watcher struct {
	lg        *zap.Logger
	root      string // absolute, symlinks resolved: event names are built on it
	o         Options
	clk       clockwork.Clock
	newSource func() (source, error) // tests swap it before Run

	running atomic.Bool
	watched atomic.Int64

	mu                      sync.Mutex
	limited, overflow, gone string // the parts of Degraded
}

// New checks that root is a directory and returns a Watcher for it. Nothing is watched until Run.
func New(lg *zap.Logger, root string, o Options) (*Watcher, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	// Resolve the root once: the walk never follows symlinks, so a symlinked root would otherwise watch nothing.
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a directory", root)
	}
	if o.Debounce <= 0 {
		o.Debounce = defaultDebounce
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Watcher{
		lg:        lg.Named("watcher"),
		root:      abs,
		o:         o,
		clk:       o.Clock,
		newSource: newFSSource,
	}, nil
}

// Degraded is "" while every directory is watched and no event was lost recently; otherwise it says what went
// wrong and what to do, for the status API.
func (w *Watcher) Degraded() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for _, s := range []string{w.limited, w.overflow, w.gone} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	// The folder first: a pair has two watchers (the local folder and a dir: remote's), and status shows both.
	return w.root + ": " + strings.Join(parts, "; ")
}

// Gone reports whether the root itself was moved or deleted: the watcher then watches nothing, and a new one
// is needed once the folder is back.
func (w *Watcher) Gone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone != ""
}

// Watched is the number of directories currently watched (0 outside Run).
func (w *Watcher) Watched() int { return int(w.watched.Load()) }

func (w *Watcher) setDegraded(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// Run watches until ctx ends, then returns nil; it returns an error only if the root cannot be watched or
// fsnotify stops on its own. It may be called once.
//
// The first batch is always a root Subtree event, sent once every watch is in place: a change made before
// then falls into that rescan, so the caller's start-up scan can simply be this batch. After that, each batch
// holds the paths of one burst, each path once, sorted depth-first, with paths below a Subtree event folded
// into it. Run blocks on out (it never drops a batch) but keeps reading fsnotify meanwhile, folding new events
// into the next batch, so a slow consumer does not overflow the kernel queue. Run closes nothing but its own
// fsnotify watcher; out stays open.
func (w *Watcher) Run(ctx context.Context, out chan<- []Event) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watcher: Run called twice")
	}
	src, err := w.newSource()
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.root, err)
	}
	// Close waits for fsnotify's reader goroutine, so nothing outlives Run.
	defer src.Close()
	defer w.watched.Store(0)

	l := &loop{
		w:    w,
		lg:   w.lg,
		src:  src,
		clk:  w.clk,
		dirs: make(map[string]*dirNode),
		pend: newPending(w.o.MaxBatch),
	}
	defer l.timer.stop()
	defer l.quiet.stop()

	start := w.clk.Now()
	if err := l.watchTree(""); err != nil {
		return err
	}
	l.lg.Info("watching", zap.String("path", w.root), zap.Int("dirs", len(l.dirs)),
		zap.Duration("took", w.clk.Since(start)))
	l.pend.add("", true, w.clk.Now())
	l.arm()
	return l.run(ctx, out)
}

// dirNode is one watched directory; kids lets a removed or renamed directory drop its whole subtree without
// scanning every watch.
type dirNode struct{ kids map[string]struct{} }

// loop is Run's state. Everything in it belongs to Run's goroutine.
type loop struct {
	w   *Watcher
	lg  *zap.Logger
	src source
	clk clockwork.Clock

	dirs    map[string]*dirNode // watched directories by rel path
	limited bool                // ENOSPC seen: add no more watches

	pend  *pending
	ready []Event // cut batch waiting for the consumer
	timer lazyTimer
	armed bool

	quiet      lazyTimer // clears the overflow message
	overflowAt time.Time
}

func (l *loop) run(ctx context.Context, out chan<- []Event) error {
	for {
		var send chan<- []Event
		if l.ready != nil {
			send = out
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.src.Events():
			if !ok {
				return fmt.Errorf("watch %s: fsnotify stopped", l.w.root)
			}
			l.handle(ev)
			l.arm()
		case err, ok := <-l.src.Errors():
			if !ok {
				return fmt.Errorf("watch %s: fsnotify stopped", l.w.root)
			}
			l.fault(err)
			l.arm()
		case <-l.timer.c():
			// The timer is re-armed lazily rather than on every event, so a fire may be early or stale: check.
			l.armed = false
			if l.ready == nil && !l.pend.empty() {
				if l.clk.Now().Before(l.deadline()) {
					l.arm()
				} else {
					l.ready = l.pend.take()
				}
			}
		case send <- l.ready:
			l.ready = nil
			l.arm() // events that came in while the consumer was busy
		case <-l.quiet.c():
			if rest := overflowQuiet - l.clk.Since(l.overflowAt); rest > 0 {
				l.quiet.reset(l.clk, rest)
				continue
			}
			l.w.setDegraded(func() { l.w.overflow = "" })
		}
	}
}

// deadline of the pending burst: quiet for Debounce, or at most maxWaitFactor×Debounce after it began.
func (l *loop) deadline() time.Time {
	d := l.w.o.Debounce
	quiet, longest := l.pend.last.Add(d), l.pend.first.Add(maxWaitFactor*d)
	if longest.Before(quiet) {
		return longest
	}
	return quiet
}

// arm starts the batch timer if something is pending, nothing waits to be sent and it is not running. It is
// not pushed back on every event (a continuous writer would reset it thousands of times a second): a fire
// before the deadline just re-arms it.
func (l *loop) arm() {
	if l.armed || l.ready != nil || l.pend.empty() {
		return
	}
	l.timer.reset(l.clk, max(l.clk.Until(l.deadline()), 0))
	l.armed = true
}

// fault handles an error from fsnotify: whatever it was, events may be lost, so the whole root is rescanned.
func (l *loop) fault(err error) {
	now := l.clk.Now()
	l.pend.add("", true, now)
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		l.lg.Warn("inotify event queue overflowed; rescanning the whole folder", zap.String("path", l.w.root))
		l.overflowAt = now
		l.quiet.reset(l.clk, overflowQuiet)
		l.w.setDegraded(func() { l.w.overflow = overflowMsg })
		return
	}
	l.lg.Warn("watch error; rescanning the whole folder", zap.String("path", l.w.root), zap.Error(err))
}

// handle turns one fsnotify event into pending paths and keeps the watches in step with the tree.
func (l *loop) handle(ev fsnotify.Event) {
	rel, ok := l.rel(ev.Name)
	if !ok {
		return
	}
	now := l.clk.Now()
	if rel == "" {
		// Only the root's own removal or move reaches us here (its attributes do not sync).
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			l.lg.Error("watched folder moved or deleted", zap.String("path", l.w.root))
			l.drop("")
			l.w.setDegraded(func() { l.w.gone = goneMsg })
			l.pend.add("", true, now)
		}
		return
	}
	if ev.Has(fsnotify.Create) {
		// Lstat: a symlink to a directory is a link to sync, never a tree to enter.
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if l.ignored(rel, true) {
				return
			}
			// Anything created inside before the watch existed went unseen: the Subtree event covers it, and
			// it is queued after the watches are in place, so the rescan comes after them too.
			if err := l.watchTree(rel); err != nil {
				l.lg.Debug("watch new folder", zap.String("path", rel), zap.Error(err))
			}
			l.pend.add(rel, true, now)
			return
		}
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if _, ok := l.dirs[rel]; ok {
			// inotify follows a moved directory's inode while fsnotify keeps the old names, so events from a
			// moved tree would come under stale paths: drop those watches; the new name arrives as a Create.
			l.drop(rel)
			if !l.ignored(rel, true) {
				l.pend.add(rel, true, now)
			}
			return
		}
	}
	_, dir := l.dirs[rel]
	if l.ignored(rel, dir) {
		return
	}
	l.pend.add(rel, false, now)
}

// watchTree adds a watch for rel and every directory below it that is not ignored. An error means rel itself
// could not be watched and is returned only for the root, where it is fatal.
func (l *loop) watchTree(rel string) error {
	start := l.abs(rel)
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		r, _ := l.rel(p)
		if err != nil {
			if r == rel && rel == "" && d == nil {
				return fmt.Errorf("watch %s: %w", l.w.root, err)
			}
			// Vanished or unreadable while we walked: an ENOENT race is normal, EACCES is the user's choice.
			l.lg.Debug("skip folder", zap.String("path", r), zap.Error(err))
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if r != rel && l.ignored(r, true) {
			return filepath.SkipDir
		}
		if l.limited {
			l.pend.add(r, true, l.clk.Now())
			return filepath.SkipDir
		}
		// Adding an already watched directory is cheap and refreshes the watch if the name now holds another
		// directory (mv over it), so there is no membership check first.
		if err := l.src.Add(p); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				l.hitLimit(r)
				l.pend.add(r, true, l.clk.Now())
				return filepath.SkipDir
			}
			if rel == "" && r == "" {
				return fmt.Errorf("watch %s: %w", l.w.root, err)
			}
			l.lg.Debug("skip folder", zap.String("path", r), zap.Error(err))
			return filepath.SkipDir
		}
		l.insert(r)
		return nil
	})
}

func (l *loop) hitLimit(rel string) {
	l.limited = true
	msg := fmt.Sprintf(limitFmt, len(l.dirs))
	l.lg.Warn("inotify watch limit reached; the rest is left to the periodic scan",
		zap.String("path", rel), zap.Int("watched", len(l.dirs)))
	l.w.setDegraded(func() { l.w.limited = msg })
}

func (l *loop) insert(rel string) {
	if _, ok := l.dirs[rel]; ok {
		return
	}
	l.dirs[rel] = &dirNode{kids: make(map[string]struct{})}
	if rel != "" {
		if p, ok := l.dirs[parent(rel)]; ok {
			p.kids[rel[strings.LastIndexByte(rel, '/')+1:]] = struct{}{}
		}
	}
	l.w.watched.Store(int64(len(l.dirs)))
}

// drop forgets rel and everything below it and removes their watches. For a deleted directory the kernel
// has already removed them and Remove fails harmlessly; for a moved one it is what stops stale names.
func (l *loop) drop(rel string) {
	n, ok := l.dirs[rel]
	if !ok {
		return
	}
	for name := range n.kids {
		l.drop(join(rel, name))
	}
	delete(l.dirs, rel)
	if rel != "" {
		if p, ok := l.dirs[parent(rel)]; ok {
			delete(p.kids, rel[strings.LastIndexByte(rel, '/')+1:])
		}
	}
	_ = l.src.Remove(l.abs(rel))
	l.w.watched.Store(int64(len(l.dirs)))
}

func (l *loop) ignored(rel string, dir bool) bool {
	if rel == "" {
		return false
	}
	if rel == stateDir || strings.HasPrefix(rel, stateDir+"/") {
		return true
	}
	return l.w.o.Ignore != nil && l.w.o.Ignore(rel, dir)
}

func (l *loop) abs(rel string) string {
	if rel == "" {
		return l.w.root
	}
	return filepath.Join(l.w.root, filepath.FromSlash(rel))
}

func (l *loop) rel(name string) (string, bool) {
	if name == l.w.root {
		return "", true
	}
	prefix := l.w.root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) { // a root of "/" already ends in one
		prefix += string(filepath.Separator)
	}
	r, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// lazyTimer is created on first use, so an idle watcher holds no timer at all, and a fake clock's waiter
// count (what tests block on) only ever counts timers that are really running.
type lazyTimer struct{ t clockwork.Timer }

func (z *lazyTimer) reset(clk clockwork.Clock, d time.Duration) {
	if z.t == nil {
		z.t = clk.NewTimer(d)
		return
	}
	z.t.Reset(d)
}

// c is nil until first use: a nil channel never fires in a select.
func (z *lazyTimer) c() <-chan time.Time {
	if z.t == nil {
		return nil
	}
	return z.t.Chan()
}

func (z *lazyTimer) stop() {
	if z.t != nil {
		z.t.Stop()
	}
}
