package engine

// Simulation pieces for the fingerprint and durability holes (issue 9, holes 1, 5, 6, 14): the local side's
// Sync seen through the tracer, in-place edits that keep size and mtime, and folders replaced in a way that
// hands the freed inode to the new one.

import (
	"context"
	"path"

	"github.com/tandemsync/tandem/remote"
)

var _ remote.Syncer = (*simSide)(nil)

// Sync forwards to the side's Sync: without it the tracer hid localdir's fsync from the engine, and no base was
// ever made durable in the simulation (the engine saw a side that cannot sync).
func (s *simSide) Sync(ctx context.Context, p remote.Path) error {
	if err := s.gate("sync", p, false); err != nil {
		return err
	}
	sy, ok := s.inner.(remote.Syncer)
	if !ok {
		return nil
	}
	return sy.Sync(ctx, p)
}

// simEditKeepMTime rewrites a local file in place with as many other bytes and puts its mtime back (touch -r,
// cp -p, rsync -t): only the ctime tells (hole 1).
func simEditKeepMTime(w *world, c *simOpCtx) {
	if !c.s.local || len(c.files) == 0 {
		return
	}
	p := pick(w.rng, c.files)
	old := w.mustRead(c.s, p)
	fi, err := w.ffs.Lstat(p)
	if err != nil || len(old) < 16 {
		return
	}
	data := w.content(len(old))
	if len(data) != len(old) || w.userWrite(c.s, p, data) != nil {
		return
	}
	err = w.ffs.Chtimes(p, fi.ModTime)
	w.logf("user L touch -r %q: size %d and mtime kept: %v", p, len(data), err)
}

// simReplaceFolder is rm -rf D; mkdir E; a new E/<a name D had>: fakefs gives E the inode D just freed, and the
// new file a freed one too (hole 6). What D held where both sides agreed must reach the remote trash.
func simReplaceFolder(w *world, c *simOpCtx) {
	if !c.s.local {
		return
	}
	var cands []string
	for _, d := range c.folders {
		for _, f := range c.files {
			if path.Dir(f) == d {
				cands = append(cands, d)
				break
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	d := pick(w.rng, cands)
	to, ok := c.newPath()
	if !ok || within(to, d) {
		return
	}
	// The marks are per location: a content both sides held at one path owes a trash from there, whatever
	// else the folder held. So every path both sides held is marked first, and only a content held nowhere
	// under d by both sides is the user's to discard: in file order, a local-only copy of the same content
	// discarded the version (exempt) before or after its shared copy marked it, and either way it owed nothing.
	var names []string
	var localOnly []string
	shared := map[string]bool{}
	for _, f := range c.files {
		if !within(f, d) {
			continue
		}
		if path.Dir(f) == d {
			names = append(names, path.Base(f))
		}
		sha := c.exists[f].sha
		if r, err := w.mem.ReadFile(f); err == nil && shaHex(r) == sha {
			shared[sha] = true
			for _, v := range w.versions {
				if v.sha == sha && !v.exempt {
					v.trashed = true
					v.trashedAt = append(v.trashedAt, f)
				}
			}
		} else {
			localOnly = append(localOnly, sha)
		}
	}
	for _, sha := range localOnly {
		if !shared[sha] {
			w.discard(sha)
		}
	}
	err := w.ffs.RemoveAll(d)
	w.logf("user L rm -r %q (to be replaced): %v", d, err)
	w.watched(c.s, d, true)
	if err != nil || w.userMkdir(c.s, to) != nil {
		return
	}
	_ = w.userWrite(c.s, path.Join(to, pick(w.rng, names)), w.randContent())
}

var _ remote.ExactChanger = (*simSide)(nil)

// ExactChange forwards to the side's: without it the tracer hid a multigrain disk from the engine, so the
// simulation's multigrain worlds ran the engine as on a coarse clock (a racy window, every new file digested in
// the scan) and never ran what production does there (digestLater, an empty file recorded from its stat).
func (s *simSide) ExactChange() bool {
	x, ok := s.inner.(remote.ExactChanger)
	return ok && x.ExactChange()
}

var (
	_ remote.SyncEpocher    = (*simSide)(nil)
	_ remote.ObservedSyncer = (*simSide)(nil)
	_ remote.Batcher        = (*simSide)(nil)
)

// NewSyncEpoch, SyncObserved and BeginBatch forward to the side's, for the same reason as ExactChange: hidden,
// the engine fsynced every upload's source itself and never ran production's covering of an unchanged source by
// a shared syncfs made since the round began (SyncObserved), nor told the side how many writes a batch holds.
func (s *simSide) NewSyncEpoch() {
	if x, ok := s.inner.(remote.SyncEpocher); ok {
		x.NewSyncEpoch()
	}
}

func (s *simSide) SyncObserved(ctx context.Context, p remote.Path, rev string, now remote.Entry) error {
	if err := s.gate("sync", p, false); err != nil {
		return err
	}
	if x, ok := s.inner.(remote.ObservedSyncer); ok {
		return x.SyncObserved(ctx, p, rev, now)
	}
	return s.Sync(ctx, p)
}

func (s *simSide) BeginBatch(n int) (end func()) {
	if x, ok := s.inner.(remote.Batcher); ok {
		return x.BeginBatch(n)
	}
	return func() {}
}
