package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// fullListing lists the remote completely and reconciles it with the stored view: the cursor is taken first, so
// a change during the listing is seen twice, never missed; every listed record is stamped with this listing's
// generation; afterwards records without the stamp are gone, except below folders the listing could not read.
// A listing that fails part way changes nothing that was not listed.
func (e *Engine) fullListing(ctx context.Context, rep *Report) error {
	rep.FullListing = true
	e.pass.listings++
	at := e.d.Clock.Now() // before the cursor: the listing shows every change made before this
	cur, err := e.d.Remote.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the change cursor of %s: %w", e.d.Remote, err)
	}
	// The generation must differ from every stamp already stored: a record written at the same clock reading
	// (an upload just before, or the previous listing) would otherwise pass as listed and never be dropped.
	gen := e.d.Clock.Now().UnixNano() + 1
	if err := e.d.Store.View(func(r state.Reader) error {
		v, err := r.Meta(metaListingGen)
		if err == nil && len(v) == 8 {
			if last := int64(binary.BigEndian.Uint64(v)); last >= gen {
				gen = last + 1
			}
		}
		return err
	}); err != nil {
		return err
	}
	w := &writes{st: e.d.Store}
	var incomplete, skipped []remote.Path
	var skippedIDs []string
	err = e.d.Remote.Walk(ctx, remote.Root, func(ent remote.Entry) error {
		if ent.Skip != "" {
			e.noteSkip(state.Remote, ent, rep)
			if ent.ID != "" {
				skippedIDs = append(skippedIDs, ent.ID)
			}
			if p, perr := remote.ParsePath(string(ent.Path)); perr == nil && p == ent.Path {
				skipped = append(skipped, p)
			}
			return nil
		}
		if ent.Path == remote.Root || e.ignored(ent.Path, ent.Dir) {
			return nil
		}
		if ent.Incomplete {
			incomplete = append(incomplete, ent.Path)
			rep.skip("remote", ent.Path, "remote folder could not be listed completely; its contents are kept as they were")
		}
		rec := state.Record{Entry: ent, ListGen: gen}
		return w.add(func(tx state.Writer) error {
			if _, _, err := keepKnown(tx, &rec); err != nil {
				return err
			}
			return tx.Put(state.Remote, rec)
		})
	})
	if err != nil {
		_ = w.drop()
		return fmt.Errorf("list %s: %w", e.d.Remote, err)
	}
	if err := w.done(); err != nil {
		return err
	}
	more, err := e.skippedByID(state.Remote, skippedIDs, rep)
	if err != nil {
		return err
	}
	skipped = append(skipped, more...)
	it := newRecIter(e.d.Store, state.Remote)
	for {
		s := it.peek()
		if it.err != nil {
			return it.err
		}
		if s == nil {
			break
		}
		p, stale := s.Path, s.ListGen != gen
		it.next()
		if !stale {
			continue
		}
		if !withinAny(p, skipped) && !belowAny(p, incomplete) {
			if err := w.add(func(tx state.Writer) error { return tx.Delete(state.Remote, p) }); err != nil {
				return err
			}
		}
	}
	if err := w.add(func(tx state.Writer) error {
		if err := tx.SetMeta(metaListingGen, binary.BigEndian.AppendUint64(nil, uint64(gen))); err != nil {
			return err
		}
		if err := tx.SetMeta(metaListedAt, binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))); err != nil {
			return err
		}
		if err := failpoint.Hit("cursor.listing.beforeCommit"); err != nil {
			return err
		}
		// The listing shows every write tandem made so far as it is now: none is left to confirm.
		if err := clearUnconfirmedTx(tx); err != nil {
			return err
		}
		return tx.SetCursor(cur)
	}); err != nil {
		_ = w.drop()
		return err
	}
	if err := w.done(); err != nil {
		return err
	}
	e.unconfirmedChecked = true
	return failpoint.Hit("cursor.listing.afterCommit")
}

// ListRemoteNext makes the next look at the remote's feed a complete listing of the remote instead, reconciled
// with the stored view as when the cursor is lost: the safety net for changes a feed never reports (the daemon
// asks for it every remote_relist_interval). Unlike Options.Resync it is used once, and it keeps the sync point
// whatever the roots' markers say. Call it between passes.
func (e *Engine) ListRemoteNext() { e.relist = true }

// LastListing is when the last complete listing of the remote began (its changes since come through the feed),
// as the state database says, so it survives restarts; zero if the remote was never listed completely.
func (e *Engine) LastListing() (time.Time, error) {
	var at time.Time
	err := e.d.Store.View(func(r state.Reader) error {
		v, err := r.Meta(metaListedAt)
		if err != nil {
			return err
		}
		if len(v) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
			return nil
		}
		// A database from before listed-at: the listing's generation is its clock reading plus one.
		if v, err = r.Meta(metaListingGen); err == nil && len(v) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(v))-1).UTC()
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read when the remote was last listed: %w", err)
	}
	return at, nil
}
