package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Unconfirmed remote writes. confirmWrites reads the feed past tandem's own remote writes at the end of a pass
// and Stats those the feed stayed silent about: a feed may never name an item tandem created that another
// client deleted before the feed was read (pCloud leaves out a create and a delete that fall into one `diff`
// reply, as documented; Verizon's and vBoxx's feeds report differences between two states). confirmWrites knew
// the written paths only in memory, so a kill between a write and that feed read lost them, and the stored view
// kept the deleted item for good (torture bug P2, pCloud seed 561752). The written paths are therefore noted
// in the store, in the transaction that records the write, and the first feed read of a process that reaches
// the end of the feed Stats whatever an earlier process left there.
//
// Layout: meta "unconfirmed-remote" holds the number n of chunks; chunks "unconfirmed-remote/1" .. "/n" hold
// NUL-separated paths, one chunk per action commit. Appending costs two small writes in a transaction that is
// made anyway (no fsync of its own), and no value grows with the pass. A pass that confirmed its writes
// removes them all.
const metaUnconfirmed = "unconfirmed-remote"

// maxUnconfirmedStats bounds the Stats after a crash (Engine.maxUnconfirmed): more noted paths than this (a big
// first sync killed half-way) are checked by one complete listing instead.
const maxUnconfirmedStats = 2000

func unconfirmedChunk(i uint64) string { return metaUnconfirmed + "/" + strconv.FormatUint(i, 10) }

type writesCtxKey struct{}

// actionWrites collects the remote paths one action wrote, until its commit notes them.
type actionWrites struct {
	mu    sync.Mutex
	paths []remote.Path
}

// withWrites gives an action's ctx a place for the remote paths it writes (noteRemoteWrite, commit).
func withWrites(ctx context.Context) context.Context {
	return context.WithValue(ctx, writesCtxKey{}, &actionWrites{})
}

// takeWrites returns the remote paths noted in ctx since the last call.
func takeWrites(ctx context.Context) []remote.Path {
	w, _ := ctx.Value(writesCtxKey{}).(*actionWrites)
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.paths
	w.paths = nil
	return p
}

// notedCommit wraps an action's commit so that it also notes the remote paths the action wrote as unconfirmed:
// the record of a write and its note are durable together. Only a remote with a feed needs them (a walked
// remote is listed every pass). The paths are taken once, so a re-run of fn (a failed group commit) notes
// the same paths again, never others.
func (e *Engine) notedCommit(ctx context.Context, fn func(state.Writer) error) func(state.Writer) error {
	paths := takeWrites(ctx)
	if len(paths) == 0 || !e.d.Remote.Capabilities().Feed || e.o.DryRun {
		return fn
	}
	return func(tx state.Writer) error {
		if err := addUnconfirmed(tx, paths); err != nil {
			return err
		}
		return fn(tx)
	}
}

func addUnconfirmed(tx state.Writer, paths []remote.Path) error {
	n, err := unconfirmedCount(tx)
	if err != nil {
		return err
	}
	if err := tx.SetMeta(unconfirmedChunk(n+1), joinPaths(nil, paths)); err != nil {
		return err
	}
	return tx.SetMeta(metaUnconfirmed, binary.AppendUvarint(nil, n+1))
}

func unconfirmedCount(r state.Reader) (uint64, error) {
	v, err := r.Meta(metaUnconfirmed)
	if err != nil || v == nil {
		return 0, err
	}
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return 0, fmt.Errorf("read the unconfirmed remote writes: damaged count %q", v)
	}
	return n, nil
}

// readUnconfirmed returns the number of chunks and the distinct paths they hold, sorted.
func (e *Engine) readUnconfirmed() (uint64, []remote.Path, error) {
	var n uint64
	seen := map[remote.Path]bool{}
	err := e.d.Store.View(func(r state.Reader) error {
		var err error
		if n, err = unconfirmedCount(r); err != nil {
			return err
		}
		for i := uint64(1); i <= n; i++ {
			v, err := r.Meta(unconfirmedChunk(i))
			if err != nil {
				return err
			}
			for _, p := range splitPending(v) {
				seen[p] = true
			}
		}
		return nil
	})
	return n, slices.Sorted(maps.Keys(seen)), err
}

// clearUnconfirmed removes every note, then notes keep again (paths still to be checked).
func (e *Engine) clearUnconfirmed(keep []remote.Path) error {
	return e.d.Store.Update(func(tx state.Writer) error {
		if err := clearUnconfirmedTx(tx); err != nil {
			return err
		}
		if len(keep) > 0 {
			return addUnconfirmed(tx, keep)
		}
		return nil
	})
}

// checkUnconfirmed runs where a feed read reached the end of the feed. Once per engine (and again after a
// pass failed to confirm its writes), it looks at every path noted as written and not confirmed: an earlier
// process was killed between its writes and the feed read that follows them. Each path is looked at now
// (relearn: gone, it leaves the stored view, so the engine takes it as a remote delete with every guard of one;
// there, its current state is recorded) and is planned in a scoped pass. Many paths are checked by a complete
// listing instead.
func (e *Engine) checkUnconfirmed(ctx context.Context, rep *Report) error {
	if e.unconfirmedChecked {
		return nil
	}
	n, paths, err := e.readUnconfirmed()
	if err != nil {
		return err
	}
	if n == 0 {
		e.unconfirmedChecked = true
		return nil
	}
	if len(paths) > e.maxUnconfirmed {
		e.lg.Info("an earlier pass was interrupted after many remote writes: listing the remote completely",
			zap.Int("writes", len(paths)))
		return e.fullListing(ctx, rep) // it clears the notes
	}
	e.lg.Info("an earlier pass was interrupted before it confirmed its remote writes: looking at them",
		zap.Int("writes", len(paths)))
	for _, p := range paths {
		if err := e.relearn(ctx, p); err != nil {
			return fmt.Errorf("look at %s, written on %s by an interrupted pass: %w", p.Quoted(), e.d.Remote, err)
		}
		if e.pass.touched != nil {
			e.pass.touched[p] = true
		}
	}
	if err := e.clearUnconfirmed(nil); err != nil {
		return err
	}
	e.unconfirmedChecked = true
	return nil
}

// clearUnconfirmedTx removes every note inside tx.
func clearUnconfirmedTx(tx state.Writer) error {
	n, err := unconfirmedCount(tx)
	if err != nil {
		return err
	}
	for i := uint64(1); i <= n; i++ {
		if err := tx.SetMeta(unconfirmedChunk(i), nil); err != nil {
			return err
		}
	}
	return tx.SetMeta(metaUnconfirmed, nil)
}

// wroteInPass reports whether tandem wrote p on the remote in this pass.
func (e *Engine) wroteInPass(p remote.Path) bool {
	e.pass.mu.Lock()
	defer e.pass.mu.Unlock()
	return e.pass.wrote[p]
}

// noteRemoteWrite remembers a remote path tandem wrote in this pass, for confirmWrites, and in the action's ctx,
// so that the action's commit notes it in the store as well (unconfirmed.go): a kill before confirmWrites
// would lose the memory.
func (e *Engine) noteRemoteWrite(ctx context.Context, p remote.Path) {
	if w, _ := ctx.Value(writesCtxKey{}).(*actionWrites); w != nil {
		w.mu.Lock()
		w.paths = append(w.paths, p)
		w.mu.Unlock()
	}
	e.pass.mu.Lock()
	defer e.pass.mu.Unlock()
	if e.pass.wrote == nil {
		e.pass.wrote = map[remote.Path]bool{}
	}
	e.pass.wrote[p] = true
}

// confirmWrites moves the feed's cursor past tandem's own writes at the end of a pass, so that the cursor is not
// left before them. A feed that reports differences between two states (Verizon's fullview delta) never
// mentions a file that did not exist at the old cursor and no longer exists now: a file tandem uploaded and
// another client deleted soon after would stay in the stored view for ever. So the feed is read once more now,
// and every path tandem wrote that the feed did not mention is checked with Stat. Cost: one feed request per
// pass that wrote to the remote, plus a Stat per written path the feed stayed silent about.
//
// It returns the paths the feed reported that tandem did not write: changes other clients made meanwhile.
func (e *Engine) confirmWrites(ctx context.Context, rep *Report) ([]remote.Path, error) {
	ps := e.pass
	ps.mu.Lock()
	wrote := ps.wrote
	ps.wrote = nil
	ps.mu.Unlock()
	if len(wrote) == 0 || !e.d.Remote.Capabilities().Feed || e.o.DryRun {
		return nil, nil
	}
	ps.touched = map[remote.Path]bool{}
	defer func() { ps.touched = nil }()
	confirmed := false
	defer func() {
		if !confirmed {
			// The writes stay noted in the store: the next feed read that reaches the end looks at them.
			e.unconfirmedChecked = false
		}
	}()
	listings := ps.listings
	if err := e.observeFeed(ctx, rep); err != nil {
		return nil, err
	}
	if ps.listings != listings {
		// The cursor was out of sync (the feed's history was compacted past it), so the remote was listed
		// completely: what other clients wrote meanwhile is in the store now, but no feed path names it, and
		// the next scoped pass would not look. Plan everything (sim seed 3392: a remote write during a pass
		// of 26 actions on a feed keeping 20 changes was never downloaded). The listing cleared the notes.
		confirmed = true
		return []remote.Path{remote.Root}, nil
	}
	var news []remote.Path
	for p := range ps.touched {
		if !wrote[p] {
			news = append(news, p)
		}
	}
	slices.Sort(news)
	paths := make([]remote.Path, 0, len(wrote))
	for p := range wrote {
		if !ps.touched[p] {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var unknown []remote.Path
	for _, p := range paths {
		if _, err := e.d.Remote.Stat(ctx, p); !errors.Is(err, remote.ErrNotFound) {
			if err != nil {
				unknown = append(unknown, p) // unknown now: it stays noted, the next feed read looks again
			}
			continue // still there
		}
		if err := e.d.Store.Update(func(tx state.Writer) error { return tx.DeleteTree(state.Remote, p) }); err != nil {
			return nil, err
		}
		news = append(news, p) // gone: another client deleted what tandem wrote
	}
	if err := e.clearUnconfirmed(unknown); err != nil {
		return nil, err
	}
	confirmed = len(unknown) == 0
	return news, nil
}
