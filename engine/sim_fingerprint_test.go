package engine

// Simulation pieces for the fingerprint and durability holes (issue 9, holes 1, 5, 6, 14): the local side's
// Sync seen through the tracer, in-place edits that keep size and mtime, and folders replaced in a way that
// hands the freed inode to the new one.

import (
	"context"

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
