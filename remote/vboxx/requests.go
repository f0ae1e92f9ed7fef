package vboxx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// call runs one JSON request through httpx (retries, refresh, limits) and maps error answers to APIError.
// Parameters go in the query for GET and in a form body for POST; no credential is ever among them.
func (c *Client) call(ctx context.Context, op, method, path string, form url.Values, idempotent bool,
	handle func(*http.Response) error) error {
	if handle == nil {
		handle = func(*http.Response) error { return nil }
	}
	build := func(ctx context.Context) (*http.Request, error) {
		u := c.base + path
		var body io.Reader
		if method == http.MethodGet {
			if len(form) > 0 {
				u += "?" + form.Encode()
			}
		} else {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if method != http.MethodGet {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept", "application/json")
		return req, nil
	}
	return apiErr(op, c.hx.Do(ctx, op, idempotent, build, handle))
}

func (c *Client) decode(v any) func(*http.Response) error {
	return func(resp *http.Response) error { return c.hx.DecodeJSON(resp, v) }
}

// listFlags are sent explicitly, the same on every call: defaults differ between servers, and a different flag
// set would give a different hash.
func listFlags(hash string) url.Values {
	q := url.Values{"include_children": {"true"}, "include_deleted": {"false"}, "include_lock_info": {"false"},
		"include_permissions": {"false"}}
	if hash != "" {
		q.Set("hash", hash)
	}
	return q
}

// list GETs a folder (0: the top level through the root route) with its children. With a hash, a 304 answers
// notModified and no object.
func (c *Client) list(ctx context.Context, folder int64, hash string) (obj object, notModified bool, err error) {
	op := "list"
	if folder == 0 {
		op = "list root"
	}
	err = c.call(ctx, op, http.MethodGet, c.rootPath(folderPath(folder)), listFlags(hash), true,
		func(resp *http.Response) error {
			if resp.StatusCode == http.StatusNotModified {
				notModified = true
				return nil
			}
			var raw []byte
			if err := c.hx.DecodeJSON(resp, (*rawJSON)(&raw)); err != nil {
				return err
			}
			var skipped []skippedChild
			obj, skipped, err = decodeListing(raw)
			if err != nil {
				return httpx.Retry(err, 0) // a broken answer is the server's problem: retried, then an error
			}
			c.noteCase(obj.Children)
			c.reportSkipped(obj.Path, skipped)
			return nil
		})
	return obj, notModified, err
}

// reportSkipped tells OnSkip (or the log) about the children of the folder at abs that a listing left out. Only
// names inside the pair root are the user's business; ancestors listed to find it are not.
func (c *Client) reportSkipped(abs string, skipped []skippedChild) {
	if len(skipped) == 0 {
		return
	}
	dir, inside := c.rel(abs)
	for _, s := range skipped {
		rest, ok := strings.CutPrefix(s.path, strings.TrimSuffix(abs, "/")+"/")
		if !ok {
			rest = s.path // claims to live elsewhere: shown as the server says
		}
		p := remote.Escape(rest)
		if dir != remote.Root {
			p = string(dir) + "/" + p
		}
		switch {
		case !inside:
		case s.obj.ID > 0:
			// Walk and the feed emit it with Entry.Skip: the engine reports it (once), and keeps what it stored.
			c.lg.Debug("a remote name tandem cannot hold", zap.String("path", p), zap.String("reason", s.why))
		case c.cfg.OnSkip != nil:
			c.cfg.OnSkip(p, "remote name left out: "+s.why)
		default:
			c.lg.Warn("skipping a remote name tandem cannot hold", zap.String("path", p), zap.String("reason", s.why))
		}
	}
}

// rawJSON keeps a body as bytes while still being checked as JSON by DecodeJSON.
type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}
