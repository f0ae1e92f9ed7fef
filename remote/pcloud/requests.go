package pcloud

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// ---- requests ----

// call runs one API method. Idempotent calls go through the retrying client; mutations get one attempt and are
// retried by mutate, which first checks whether the lost answer's effect happened. Parameters travel in the
// query (none of them is a secret: the token is in the Authorization header).
func call[T any, PT interface {
	*T
	answer
}](ctx context.Context, c *Client, method string, q url.Values, idempotent bool) (*T, error) {
	hc := c.api
	if !idempotent {
		hc = c.mut
	}
	return callWith[T, PT](ctx, c, hc, method, q, idempotent)
}

// callWith is call on a chosen client (the long poll has its own).
func callWith[T any, PT interface {
	*T
	answer
}](ctx context.Context, c *Client, hc *httpx.Client, method string, q url.Values, idempotent bool) (*T, error) {
	var out *T
	err := hc.Do(ctx, "pcloud "+method, idempotent, func(ctx context.Context) (*http.Request, error) {
		verb := http.MethodGet
		if !idempotent {
			verb = http.MethodPost
		}
		return http.NewRequestWithContext(ctx, verb, c.methodURL(method, q), nil)
	}, func(resp *http.Response) error {
		v := new(T) // fresh per attempt: a retry must not inherit fields of a failed decode
		if err := hc.DecodeJSON(resp, v); err != nil {
			return err
		}
		if st := PT(v).envelope(); st.Result != 0 {
			return apiError(method, st)
		}
		out = v
		return nil
	})
	return out, err
}

func (c *Client) methodURL(method string, q url.Values) string {
	v := url.Values{}
	for k, vs := range q {
		v[k] = vs
	}
	v.Set("timeformat", "timestamp")
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + method
	u.RawQuery = v.Encode()
	return u.String()
}

func idParam(name string, id uint64) url.Values {
	return url.Values{name: {strconv.FormatUint(id, 10)}}
}

// ambiguous reports whether a failed mutation may have taken effect: the answer was lost (transport) or was a
// temporary refusal whose cause is not known for sure.
func ambiguous(err error) bool {
	var tmp *httpx.Temporary
	return httpx.IsTransport(err) || errors.As(err, &tmp)
}

// mutate runs a non-idempotent operation. After an ambiguous failure it asks check whether the effect happened
// (ack loss: the change was applied, the answer lost) and retries only when it did not, so a retry never makes
// a second folder, a "name (1)" file or a second move.
func (c *Client) mutate(ctx context.Context, op string, attempt func(ctx context.Context) error,
	check func(ctx context.Context) (bool, error)) error {
	for i := 1; ; i++ {
		err := attempt(ctx)
		if err == nil || !ambiguous(err) || ctx.Err() != nil {
			return err
		}
		if i >= c.o.MaxAttempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", op, i, err)
		}
		wait := c.backoff(i)
		var tmp *httpx.Temporary
		if errors.As(err, &tmp) && tmp.After > 0 {
			wait = min(tmp.After, 5*time.Minute)
		}
		c.lg.Debug("retrying after checking the effect", zap.String("op", op), zap.Int("attempt", i),
			zap.Duration("wait", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), err)
		case <-c.clk.After(wait):
		}
		done, cerr := check(ctx)
		if cerr != nil {
			return fmt.Errorf("%s: check after %v: %w", op, err, cerr)
		}
		if done {
			c.lg.Debug("lost answer, effect applied", zap.String("op", op))
			return nil
		}
	}
}

// backoff is exponential with jitter in [d/2, d].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.o.BaseDelay << (attempt - 1)
	if d > c.o.MaxDelay || d <= 0 {
		d = c.o.MaxDelay
	}
	return d/2 + time.Duration(rand.Float64()*float64(d/2))
}
