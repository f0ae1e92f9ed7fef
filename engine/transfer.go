package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// upload streams the local file to the remote while digesting it. If the file changed while it was read, the
// base records the remote as holding what was sent (tandem's own write, not a user's version) and the local
// record is marked for re-hashing, so the next pass uploads the final content over it instead of calling it a
// conflict.
func (e *Engine) upload(ctx context.Context, a Action, pre remote.Precondition) (int64, error) {
	p := a.Path
	body, le, err := e.d.Local.Open(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	defer body.Close()
	if a.Local == nil {
		return 0, fmt.Errorf("upload %s: %w", p.Quoted(), errReplan)
	}
	observed := a.Local.Hash
	if le.Rev != a.Local.Rev {
		// The file changed since the pass looked at it (a database or a log written all the time, or a pass
		// slower than the writer). Failing here would fail every pass that takes longer than the writer's
		// pauses, so the file would never sync: take a stable snapshot instead, a fresh digest read whole
		// while the file stayed at the revision just opened, and send that version; the body below must
		// hash to it, so the two reads agree on one version someone wrote.
		h, he, herr := e.localHash(ctx, p)
		if herr != nil || he.Rev != le.Rev {
			return 0, fmt.Errorf("upload %s: %w", p.Quoted(), errReplan)
		}
		observed = h
	}
	// The body must be a version someone wrote: read to its end, it must hash to what was observed and the file
	// must still be what was opened; otherwise (a rewrite in place during the transfer reads as a mixture of
	// two versions) the body fails at its end and the provider discards it.
	var want remote.Hash
	if observed.Algo == e.algo {
		want = observed
	}
	// The file read, through its descriptor where the side offers that (one path resolution fewer per upload):
	// a rewrite while it was read moves its Rev; one renamed over the path is the stat after the Put's to see.
	stat := func() (remote.Entry, error) { return e.d.Local.Stat(ctx, p) }
	if oe, ok := body.(remote.OpenEntrier); ok {
		stat = oe.OpenEntry
	}
	src := &stableSource{r: body, stat: func() error {
		now, err := stat()
		if err == nil && now.Rev != le.Rev {
			err = errReplan
		}
		return err
	}}
	v := remote.NewVerifier(e.counted(a, e.limit(ctx, src)), want, le.Size, e.algo)
	re, err := e.d.Remote.Put(ctx, p, v, le.Size, le.ModTime, pre)
	if err != nil && errors.Is(err, remote.ErrCorrupt) && !want.IsZero() && v.Sum() != want {
		err = fmt.Errorf("%w (it was rewritten during the transfer)", errReplan)
		// The bytes read are not the ones the record's digest describes. Either they changed during the
		// transfer (the next scan sees a new fingerprint) or the cached digest was stale under an unchanged
		// fingerprint (a power loss took a same-size rewrite made in the same clock tick as the bytes it brought
		// back: lazydisk seed 223): the next scan must digest the file again, or every pass fails this way.
		l := *a.Local
		l.HashedAt = 0
		if cerr := e.commit(ctx, func(tx state.Writer) error { return tx.Put(state.Local, l) }); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	if err != nil {
		return v.N(), fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	e.noteRemoteWrite(ctx, p)
	if err := failpoint.Hit("upload.afterPut"); err != nil {
		return v.N(), fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	sent := v.Sum()
	histDigest(ctx, sent)
	if re, err = carryMode(ctx, e.d.Remote, re, le.Mode); err != nil {
		return v.N(), fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	if re.Hash.IsZero() || re.Hash.Algo != e.algo {
		re.Hash = sent // the digest of exactly the bytes stored at this revision
	}
	// Nothing more is sent or read: what is left waits on a sync and a commit, which the next transfer's
	// worker need not wait for (a no-op where the destination's Put yielded already).
	remote.Yield(ctx)
	after, serr := e.d.Local.Stat(ctx, p)
	// No digest observed (a new file, digestLater): the stat around the read vouches for the bytes sent, as it
	// does for a scan's digest.
	torn := serr != nil || after.Rev != le.Rev || (!observed.IsZero() && sent != observed)
	if s, ok := e.d.Local.(remote.Syncer); ok && serr == nil {
		// The sync point must not outlive the local bytes it describes (a power loss after an editor's
		// unsynced write would bring back older bytes that then look like a new local edit). A torn upload
		// syncs too: the remote now holds the only copy of what was sent, and older bytes coming back after a
		// power loss would be uploaded over it.
		// Bytes sent as the scan saw them were on disk before this round began: a filesystem-wide sync made since
		// then (the Put's own, on a dir: pair on one disk) covers them (remote.ObservedSyncer).
		sync := s.Sync
		if o, ok := s.(remote.ObservedSyncer); ok && !torn && le.Rev == a.Local.Rev {
			sync = func(ctx context.Context, p remote.Path) error { return o.SyncObserved(ctx, p, le.Rev, after) }
		}
		if err := sync(ctx, p); err != nil {
			return le.Size, fmt.Errorf("upload %s: make the local copy durable: %w", p.Quoted(), err)
		}
	}
	now := e.now()
	lrec := rec(le, now)
	lrec.Hash = sent
	err = e.commit(ctx, func(tx state.Writer) error {
		if err := putSynced(tx, state.Base{Path: p, Hash: sent, Local: lrec, Remote: rec(re, now)}); err != nil || !torn {
			return err
		}
		l := *a.Local
		l.HashedAt = 0 // racy: hash again next scan
		return tx.Put(state.Local, l)
	})
	if err == nil && torn {
		e.lg.Info("file changed during upload; sending it again next pass", zap.String("path", string(p)))
	}
	return le.Size, err
}

// localHash digests the local file p with the pass's algorithm.
func (e *Engine) localHash(ctx context.Context, p remote.Path) (remote.Hash, remote.Entry, error) {
	hasher, ok := e.d.Local.(remote.Hasher)
	if !ok {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("%s: cannot hash files", e.d.Local)
	}
	return hasher.HashOf(ctx, p, e.algo)
}

// carryMode gives what was just written at ent.Path on side dst the permission bits of its source (mode), where
// both sides keep modes (two local folders: a 0600 file stays 0600, an executable stays executable). A cloud
// side keeps none (mode 0 or no ModeSetter): the written file keeps what Put gave it, which never widens a
// replaced file's mode.
func carryMode(ctx context.Context, dst remote.Remote, ent remote.Entry, mode fs.FileMode) (remote.Entry, error) {
	ms, ok := dst.(remote.ModeSetter)
	if !ok || mode == 0 || ent.Mode == 0 || ent.Mode == mode.Perm() {
		return ent, nil
	}
	got, err := ms.Chmod(ctx, ent.Path, mode, remote.Precondition{Rev: ent.Rev})
	if err != nil {
		return ent, fmt.Errorf("set permissions %o: %w", mode.Perm(), err)
	}
	got.Hash = ent.Hash // same bytes
	return got, nil
}

// chmod carries a permission change alone: the content is as recorded on both sides, so only the bits move.
func (e *Engine) chmod(ctx context.Context, a Action) error {
	if a.Base == nil || a.Local == nil || a.Remote == nil {
		return fmt.Errorf("chmod %s: a side or the sync point is missing", a.Path.Quoted())
	}
	s := a.direction()
	dst, side, src, seen := e.sideRemote(s.this), s.this, on(s.other, a.Local, a.Remote), on(s.this, a.Local, a.Remote)
	ms, ok := dst.(remote.ModeSetter)
	if !ok {
		return fmt.Errorf("chmod %s: %s keeps no permissions", a.Path.Quoted(), dst)
	}
	ent, err := ms.Chmod(ctx, a.Path, src.Mode, revOf(seen))
	if err != nil {
		return fmt.Errorf("chmod %s: %w", a.Path.Quoted(), err)
	}
	if side == state.Remote {
		e.noteRemoteWrite(ctx, a.Path)
	}
	now := e.now()
	mine := rec(ent, now)
	mine.Hash = seen.Hash
	return e.commit(ctx, func(tx state.Writer) error {
		if err := tx.Put(side, mine); err != nil {
			return err
		}
		l, r := s.pair(&mine, src)
		return tx.PutBase(state.Base{Path: a.Path, Hash: a.Base.Hash, Local: *l, Remote: *r})
	})
}

// stableSource reads an upload's local source and, at its end, checks that the file did not change while it
// was read (stat): a change fails the read, so the upload is never committed.
type stableSource struct {
	r    io.Reader
	stat func() error
}

func (s *stableSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		if serr := s.stat(); serr != nil {
			return n, fmt.Errorf("%w: the local file changed while it was sent: %w", remote.ErrCorrupt, serr)
		}
	}
	return n, err
}

// download writes the remote file through the local side's durable write protocol (temp file, verify, fsync,
// precondition re-check, rename). The body is verified against the remote's digest where it offers one.
func (e *Engine) download(ctx context.Context, p remote.Path, pre remote.Precondition) (int64, error) {
	body, re, err := e.d.Remote.Open(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	defer body.Close()
	var want remote.Hash
	if _, err := remote.NewDigest(re.Hash.Algo); err == nil {
		want = re.Hash
	}
	outer := remote.NewVerifier(e.counted(Action{Op: Download, Path: p, Remote: &state.Record{Entry: re}},
		e.limit(ctx, body)), want, re.Size, "")
	inner := outer // digests in the pair's algorithm already when the remote's digest is one
	if outer.Algo() != e.algo {
		inner = remote.NewVerifier(outer, remote.Hash{}, -1, e.algo)
	}
	if err := failpoint.Hit("download.beforePut"); err != nil {
		return 0, fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	le, err := e.d.Local.Put(ctx, p, inner, re.Size, re.ModTime, pre)
	if err != nil {
		e.tempLeft.Store(true)
		return inner.N(), fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	if err := failpoint.Hit("download.afterPut"); err != nil {
		return inner.N(), fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	got := inner.Sum()
	if le, err = carryMode(ctx, e.d.Local, le, re.Mode); err != nil {
		return inner.N(), fmt.Errorf("download %s: %w", p.Quoted(), err)
	}
	if re.Hash.IsZero() {
		re.Hash = got
	}
	remote.Yield(ctx) // only the commit is left
	now := e.now()
	lrec := rec(le, now)
	lrec.Hash = got
	return re.Size, e.commit(ctx, func(tx state.Writer) error {
		return putSynced(tx, state.Base{Path: p, Hash: got, Local: lrec, Remote: rec(re, now)})
	})
}

// putSynced records sync point b with the two records it stands on.
func putSynced(tx state.Writer, b state.Base) error {
	if err := tx.Put(state.Local, b.Local); err != nil {
		return err
	}
	if err := tx.Put(state.Remote, b.Remote); err != nil {
		return err
	}
	return tx.PutBase(b)
}
