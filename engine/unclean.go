package engine

import (
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// distrustUnsynced runs before the scan of a pass after an unclean end. A power loss can take a file's last bytes
// and keep its metadata: a rewrite in place of existing blocks reaches the disk as the inode's new size, mtime
// and ctime while the blocks still hold the bytes before it. The file then matches the fingerprint stored with
// the digest of bytes that are gone, and the scan would take that digest as its content: simulation seed 824356
// (lazydisk) uploaded such a version, lost it locally to the power loss, and the compare of the next pass,
// trusting the stale digest, recorded the two different files as one.
//
// A record vouched by its sync point stands: tandem made the file durable before it recorded the base, so the
// bytes and the fingerprint reached the disk together. Every other record whose revision is a stat
// fingerprint (a local folder, a dir: remote; a provider's revision is the server's) loses its digest's
// standing: HashedAt 0, so the scan reads the file again, as it does a racily clean one. Only paths with
// changes not yet synced are read again, once per unclean end (the engine runs it once per process: the marks
// stay in the store until a scan reads those files).
func (e *Engine) distrustUnsynced() error {
	type stale struct {
		side state.Side
		rec  state.Record
	}
	var out []stale
	st := e.d.Store
	err := mergeTrees(newRecIter(st, state.Local), newRecIter(st, state.Remote), newBaseIter(st),
		func(_ remote.Path, b *state.Base, l, r *state.Record) error {
			for _, sd := range []state.Side{state.Local, state.Remote} {
				var synced *state.Record
				if b != nil {
					synced = on(sd, &b.Local, &b.Remote)
				}
				if rec := on(sd, l, r); unvouched(rec, synced) {
					c := *rec
					c.HashedAt = 0
					out = append(out, stale{sd, c})
				}
			}
			return nil
		})
	if err != nil || len(out) == 0 {
		return err
	}
	err = st.Update(func(w state.Writer) error {
		for _, s := range out {
			if err := w.Put(s.side, s.rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		e.lg.Info("the last run did not end cleanly: files with changes not yet synced are read again",
			zap.Int("files", len(out)))
	}
	return err
}

// unvouched: r carries a digest of bytes that a power loss may have taken under an unchanged fingerprint, as
// synced (its side of the base; nil: no base) does not vouch for it.
func unvouched(r, synced *state.Record) bool {
	if r == nil || r.Dir || r.Hash.IsZero() || r.HashedAt == 0 {
		return false
	}
	if _, ok := remote.ParseFingerprint(r.Rev); !ok {
		return false // a provider's revision: the server holds the bytes it describes
	}
	return synced == nil || synced.Rev != r.Rev || synced.Hash != r.Hash
}
