package engine

import (
	"context"
	"io"

	"golang.org/x/time/rate"
)

// limitBurst is the most a transfer reads in one step under a bandwidth limit: small enough that several
// transfers share the limit fairly, large enough that the limiter costs nothing measurable.
const limitBurst = 256 << 10

// newLimiter returns a limiter shared by every transfer of the pair (nil for no limit). x/time/rate rather than
// a hand-written token bucket: it is the standard one, and its WaitN honours the context.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), limitBurst)
}

// limitedReader paces reads through the pair's limiter; uploads and downloads both pass through one.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *rate.Limiter
}

func (e *Engine) limit(ctx context.Context, r io.Reader) io.Reader {
	if e.limiter == nil {
		return r
	}
	return &limitedReader{ctx: ctx, r: r, l: e.limiter}
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	if len(p) > limitBurst {
		p = p[:limitBurst]
	}
	n, err := lr.r.Read(p)
	if n > 0 {
		if werr := lr.l.WaitN(lr.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// progressStep is how often a transfer reports its bytes: often enough for a progress bar, rarely enough that
// the callback costs nothing.
const progressStep = 1 << 20

// progressReader counts what a transfer has moved and reports it through Options.Progress.
type progressReader struct {
	r    io.Reader
	a    Action
	n    int64
	last int64
	emit func(Event)
}

func (e *Engine) counted(a Action, r io.Reader) io.Reader {
	if e.o.Progress == nil {
		return r
	}
	return &progressReader{r: r, a: a, emit: e.o.Progress}
}

func (pr *progressReader) Read(p []byte) (int, error) {
	n, err := pr.r.Read(p)
	pr.n += int64(n)
	if pr.n-pr.last >= progressStep {
		pr.last = pr.n
		pr.emit(Event{Action: pr.a, Progress: true, Bytes: pr.n})
	}
	return n, err
}
