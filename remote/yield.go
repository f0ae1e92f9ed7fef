package remote

import "context"

type yieldKey struct{}

// WithYield marks ctx with the release of a worker slot, which Yield calls (the engine's pool gives each task
// its own; it acts on the first call and ignores the others).
func WithYield(ctx context.Context, yield func()) context.Context {
	return context.WithValue(ctx, yieldKey{}, yield)
}

// Yield tells the caller's executor that the transfer under ctx now only waits (for its bytes to become durable,
// for its record to be committed) and reads or sends nothing more from a source: the executor may start the next
// transfer in its slot. More transfers then share each filesystem sync and each state commit (a first sync of
// 10,000 small local files made half the syncfs calls and a third of the commits). Without a yield in ctx (a
// serial executor, a test) it does nothing.
func Yield(ctx context.Context) {
	if y, ok := ctx.Value(yieldKey{}).(func()); ok {
		y()
	}
}
