package remote

import "context"

type yieldKey struct{}

// WithYield marks ctx with the release of a worker slot: yield is called at most once through Yield. The
// engine's pool passes it to each transfer it runs.
func WithYield(ctx context.Context, yield func()) context.Context {
	return context.WithValue(ctx, yieldKey{}, yield)
}

// Yield tells the caller's executor that the transfer under ctx now only waits (for its bytes to become durable,
// for its record to be committed) and reads or sends nothing more from a source: the executor may start the next
// transfer in its slot. Waiting transfers then share one filesystem sync and one state commit among many more
// (a first sync of small local files spent most of its time with its workers parked in those waits). Without a
// yield in ctx (a serial executor, a test) it does nothing.
func Yield(ctx context.Context) {
	if y, ok := ctx.Value(yieldKey{}).(func()); ok {
		y()
	}
}
