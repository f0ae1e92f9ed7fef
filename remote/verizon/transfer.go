package verizon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// ---- download ----

// Open implements remote.Remote. The body is verified against the size and SHA-256 of the metadata answered
// just before: a truncated, corrupted or swapped body ends in an error wrapping remote.ErrCorrupt, never in
// good-looking data. A connection that breaks or stalls mid-body is resumed with a Range request.
func (c *Client) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := check(p); err != nil {
		return nil, remote.Entry{}, err
	}
	e, _, err := c.stat(ctx, p)
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open: %w", err)
	}
	if e.Dir {
		return nil, e, fmt.Errorf("open %s: is a folder", p.Quoted())
	}
	d := &download{c: c, ctx: ctx, p: p, url: c.url("/files"+escapePath(absPath(c.root, p)), nil), size: e.Size}
	if err := d.open(); err != nil {
		return nil, e, err
	}
	// One byte past the size is enough for the verifier to see a body that is too long.
	v := remote.NewVerifier(io.LimitReader(d, e.Size+1), e.Hash, e.Size, "sha256")
	return &verifiedBody{Verifier: v, d: d}, e, nil
}

type verifiedBody struct {
	*remote.Verifier
	d *download
}

func (b *verifiedBody) Close() error { return b.d.Close() }

// download reads one file, resuming at the current offset after a transport failure or an idle stall.
type download struct {
	c       *Client
	ctx     context.Context
	p       remote.Path
	url     string
	size    int64
	off     int64
	resumes int

	body   io.ReadCloser
	cancel context.CancelFunc
	idle   clockwork.Timer
}

func (d *download) open() error {
	ctx, cancel := context.WithCancel(d.ctx)
	resp, err := d.c.hc.Stream(ctx, "files", func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
		if err == nil && d.off > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(d.off, 10)+"-")
		}
		return req, err
	})
	if err != nil {
		cancel()
		return fmt.Errorf("download %s: %w", d.p.Quoted(), apiError("files", err))
	}
	body := resp.Body
	switch {
	case d.off > 0 && resp.StatusCode == http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(d.off, 10)+"-") {
			body.Close()
			cancel()
			return fmt.Errorf("download %s: resume answered another range (%s)", d.p.Quoted(),
				remote.Escape(resp.Header.Get("Content-Range")))
		}
	case d.off > 0 && resp.StatusCode == http.StatusOK:
		// The server ignored the Range: skip what was already delivered.
		if _, err := io.CopyN(io.Discard, body, d.off); err != nil {
			body.Close()
			cancel()
			return fmt.Errorf("download %s: %w", d.p.Quoted(), err)
		}
	case resp.StatusCode != http.StatusOK:
		body.Close()
		cancel()
		return fmt.Errorf("download %s: unexpected HTTP %d", d.p.Quoted(), resp.StatusCode)
	}
	d.body, d.cancel = body, cancel
	// The idle watchdog cancels this attempt's context: a stalled body then fails its Read and is resumed.
	d.idle = d.c.clk.AfterFunc(d.c.cfg.IdleTimeout, cancel)
	return nil
}

func (d *download) Read(p []byte) (int, error) {
	for {
		if d.body == nil {
			return 0, fmt.Errorf("download %s: closed", d.p.Quoted())
		}
		d.idle.Reset(d.c.cfg.IdleTimeout)
		n, err := d.body.Read(p)
		d.off += int64(n)
		if err == io.EOF && d.off < d.size {
			err = io.ErrUnexpectedEOF // a clean close before the end is a cut body: resume it
		}
		if err == nil || err == io.EOF || n > 0 {
			if err != nil && err != io.EOF && n > 0 {
				err = nil // report the bytes now; the failure comes back on the next Read
			}
			return n, err
		}
		if d.ctx.Err() != nil {
			return 0, d.ctx.Err()
		}
		if d.resumes >= d.c.cfg.MaxResumes {
			return 0, fmt.Errorf("download %s: gave up after %d resumptions at byte %d: %w",
				d.p.Quoted(), d.resumes, d.off, err)
		}
		d.resumes++
		d.c.lg.Debug("resuming download", zap.String("path", string(d.p)), zap.Int64("bytes", d.off),
			zap.Int("attempt", d.resumes), zap.Error(err))
		d.release()
		if err := d.open(); err != nil {
			return 0, err
		}
	}
}

func (d *download) release() {
	if d.body != nil {
		d.idle.Stop()
		d.body.Close()
		d.cancel()
		d.body = nil
	}
}

func (d *download) Close() error {
	d.release()
	return nil
}

// ---- upload ----

// source is what Put sends, readable again from any offset: the caller's io.ReadSeeker, or a spool file.
type source struct {
	rs    io.ReadSeeker
	spool *os.File
}

func (s *source) section(off, n int64) (io.Reader, error) {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.LimitReader(s.rs, n), nil
}

func (s *source) close() {
	if s.spool != nil {
		s.spool.Close()
		os.Remove(s.spool.Name())
	}
}

// prepare hashes the body. The intent needs the whole file's SHA-256 before the first byte is sent (§9.1), so
// the body is read twice: an io.ReadSeeker (the engine hands over an open local file) is hashed, then rewound;
// any other reader is spooled to a temp file in SpoolDir while it is hashed, and the spool is sent. Either way
// the server's checksum check at the end catches a source that changed in between.
func (c *Client) prepare(body io.Reader, size int64) (*source, string, error) {
	h := sha256.New()
	s := &source{}
	if rs, ok := body.(io.ReadSeeker); ok {
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return nil, "", err
		}
		n, err := io.Copy(h, rs)
		if err != nil {
			return nil, "", err
		}
		if n != size {
			return nil, "", fmt.Errorf("body has %d bytes, %d announced", n, size)
		}
		s.rs = rs
		return s, hex.EncodeToString(h.Sum(nil)), nil
	}
	f, err := os.CreateTemp(c.cfg.SpoolDir, "tandem-verizon-*.spool")
	if err != nil {
		return nil, "", fmt.Errorf("spool: %w", err)
	}
	s.rs, s.spool = f, f
	n, err := io.Copy(io.MultiWriter(f, h), body)
	if err == nil && n != size {
		err = fmt.Errorf("body has %d bytes, %d announced", n, size)
	}
	if err != nil {
		s.close()
		return nil, "", err
	}
	return s, hex.EncodeToString(h.Sum(nil)), nil
}

// Put implements remote.Remote through intent → upload(s) → commit (§9). The precondition is checked by a
// metadata read just before the intent (Absent: nothing there; Rev: the same version and content token, since a
// file deleted and re-created restarts at version 1), and the version the upload replaced is checked in its
// answer. safe=true / version=<n> go along for a server that honours them (a 409 is remote.ErrConflict), but
// nothing depends on them (PROVIDER.md). Without a precondition the server replaces.
func (c *Client) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	defer c.wrote()()
	if err := check(p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return remote.Entry{}, fmt.Errorf("put: the root is a folder")
	}
	src, sum, err := c.prepare(body, size)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	defer src.close()
	q := url.Values{"path": {absPath(c.root, p.Dir())}, "name": {p.Base()}, "size": {itoa(size)},
		"checksum": {sum}, "chunk": {strconv.FormatBool(size >= c.cfg.ChunkThreshold)}}
	// safe, version and modificationDate are not documented (§9.1): they are sent, since a server that honours
	// them closes the window below, but nothing depends on them. The preconditions are checked by a metadata read
	// immediately before the intent, and the version the upload replaced is checked in its answer.
	if !mtime.IsZero() {
		q.Set("modificationDate", isoMS(mtime))
	}
	expect := int64(-1) // the version the upload must replace: 0 = none, -1 = whatever is there
	switch {
	case pre.Absent:
		cur, _, err := c.stat(ctx, p)
		switch {
		case err == nil:
			return remote.Entry{}, fmt.Errorf("upload %s: %w: the server has it (revision %s)", p.Quoted(), remote.ErrConflict, cur.Rev)
		case !errors.Is(err, remote.ErrNotFound):
			return remote.Entry{}, fmt.Errorf("upload: %w", err)
		}
		q.Set("safe", "true")
		expect = 0
	case pre.Rev != "":
		v, tok, ok := parseRev(pre.Rev)
		if !ok {
			return remote.Entry{}, fmt.Errorf("upload %s: %w: revision %q is not one of ours", p.Quoted(), remote.ErrConflict, pre.Rev)
		}
		cur, _, err := c.stat(ctx, p)
		switch {
		case errors.Is(err, remote.ErrNotFound):
			return remote.Entry{}, fmt.Errorf("upload %s: %w: the file the plan saw is gone", p.Quoted(), remote.ErrConflict)
		case err != nil:
			return remote.Entry{}, fmt.Errorf("upload: %w", err)
		case cur.Dir || cur.ID != tok || cur.Rev != pre.Rev:
			return remote.Entry{}, fmt.Errorf("upload %s: %w: revision %s, the plan saw %s", p.Quoted(),
				remote.ErrConflict, cur.Rev, pre.Rev)
		}
		q.Set("version", strconv.FormatInt(v, 10))
		expect = v
	}
	f, err := c.upload(ctx, p, src, q, size, sum)
	if err != nil {
		return f, err
	}
	if v, _, ok := parseRev(f.Rev); ok && expect >= 0 && v != expect+1 {
		// Another device stored a version between the look above and the upload, and the server replaced it.
		// Verizon keeps no earlier versions of a file, so its content cannot be kept as a conflict copy: the pass
		// reports it, and the next pass records what is there now.
		return remote.Entry{}, fmt.Errorf("upload %s: another device stored a version of this file while tandem was "+
			"uploading it (the server went from version %d to %d); Verizon keeps no older versions, so that "+
			"device's content was replaced: check the file there", p.Quoted(), expect, v)
	}
	return f, nil
}

// upload runs the flow with retries. An intent is cheap: after an upload that may have failed, the file is
// checked and, if it is not there, the whole flow runs again with a fresh intent (at most three times).
func (c *Client) upload(ctx context.Context, p remote.Path, src *source, q url.Values, size int64, sum string) (remote.Entry, error) {
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		f, err := c.uploadOnce(ctx, p, src, q, size, sum)
		if err == nil {
			return fileEntry(p, f), nil
		}
		if errors.Is(err, remote.ErrConflict) || errors.Is(err, remote.ErrUnauthorized) || ctx.Err() != nil {
			return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), err)
		}
		last = err
		// The answer may have been lost after the file was stored (§12), and a retried commit of a finished
		// upload answers upload_expired: look at the file before deciding.
		if cur, _, serr := c.stat(ctx, p); serr == nil && !cur.Dir && cur.Hash.Hex == sum && cur.Size == size {
			c.lg.Debug("upload answer lost, file is in place", zap.String("path", string(p)), zap.Error(err))
			return cur, nil
		}
		// Decisions go by status, never by the error code (§4): a 400 may be a finished or expired intent, which
		// a fresh intent cures; any other refusal will not change by asking again.
		var ae *APIError
		if errors.As(err, &ae) && ae.Status > 400 && ae.Status < 500 {
			return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), err)
		}
		c.lg.Warn("upload failed; starting over", zap.String("path", string(p)), zap.Int("attempt", attempt), zap.Error(err))
	}
	return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), last)
}

// undocumentedIntent are the intent parameters the documentation does not have.
var undocumentedIntent = []string{"safe", "version", "modificationDate"}

// intent asks for the upload URLs. A server that refuses the undocumented parameters (400) is asked again
// without them, and never sent them again.
func (c *Client) intent(ctx context.Context, q url.Values) (intentAnswer, error) {
	plain := func() url.Values {
		pq := url.Values{}
		for k, v := range q {
			if !slices.Contains(undocumentedIntent, k) {
				pq[k] = v
			}
		}
		return pq
	}
	extra := false
	for _, k := range undocumentedIntent {
		extra = extra || q.Has(k)
	}
	if c.plainIntent.Load() {
		q, extra = plain(), false
	}
	var in intentAnswer
	err := c.call(ctx, "fileupload/intent", http.MethodGet, c.url("/fileupload/intent", q), nil, true, &in)
	var ae *APIError
	if extra && errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		in = intentAnswer{}
		if err2 := c.call(ctx, "fileupload/intent", http.MethodGet, c.url("/fileupload/intent", plain()), nil, true, &in); err2 == nil {
			c.lg.Info("the upload intent refuses safe/version/modificationDate; not sending them any more", zap.Error(err))
			c.plainIntent.Store(true)
			return in, nil
		}
	}
	return in, err
}

// uploadOnce runs intent, upload(s) and commit once.
func (c *Client) uploadOnce(ctx context.Context, p remote.Path, src *source, q url.Values, size int64, sum string) (*cloudFile, error) {
	in, err := c.intent(ctx, q)
	if err != nil {
		return nil, err
	}
	up, err := c.sameOrigin(in.URLs.UploadURL)
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	var out struct {
		File *cloudFile `json:"file"`
	}
	post := func(op string, u *url.URL, off, n int64, extra url.Values, idempotent bool, dst any) error {
		uq := u.Query()
		for k, v := range extra {
			uq[k] = v
		}
		target := *u
		target.RawQuery = uq.Encode()
		err := c.hc.Do(ctx, op, idempotent, func(ctx context.Context) (*http.Request, error) {
			var rd io.Reader = http.NoBody
			if n > 0 {
				var err error
				if rd, err = src.section(off, n); err != nil {
					return nil, err
				}
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), rd)
			if err != nil {
				return nil, err
			}
			req.ContentLength = n
			req.Header.Set("Content-Type", "application/octet-stream")
			return req, nil
		}, func(resp *http.Response) error {
			if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unexpected HTTP %d", resp.StatusCode)
			}
			if dst == nil {
				return nil
			}
			return c.hc.DecodeJSON(resp, dst)
		})
		return apiError(op, err)
	}
	if q.Get("chunk") != "true" {
		// Not idempotent: a lost answer is settled by Put looking at the file, never by a blind re-send.
		if err := post("upload", up, 0, size, url.Values{"checksum": {sum}}, false, &out); err != nil {
			return nil, err
		}
	} else {
		cu, err := c.sameOrigin(in.URLs.CommitURL)
		if err != nil {
			return nil, fmt.Errorf("intent: %w", err)
		}
		for seq, off := 1, int64(0); off < size; seq, off = seq+1, off+c.cfg.ChunkSize {
			n := min(c.cfg.ChunkSize, size-off)
			r, err := src.section(off, n)
			if err != nil {
				return nil, err
			}
			cs, _, err := remote.HashReader("sha256", r)
			if err != nil {
				return nil, err
			}
			// Re-sending a chunk number replaces the earlier copy, so chunks are safe to retry. Which checksum a
			// chunk carries is read two ways (its own, documented; or the whole file's): a 400 on the first chunk
			// tries the other reading once, and the one that worked is kept.
			chunkSum := func() string {
				if c.wholeChunkSum.Load() {
					return sum
				}
				return cs.Hex
			}
			err = post("upload", up, off, n, url.Values{"checksum": {chunkSum()}, "offset": {strconv.Itoa(seq)}}, true, nil)
			var ae *APIError
			if seq == 1 && errors.As(err, &ae) && ae.Status == http.StatusBadRequest && sum != cs.Hex {
				c.wholeChunkSum.Store(!c.wholeChunkSum.Load())
				if err = post("upload", up, off, n, url.Values{"checksum": {chunkSum()}, "offset": {strconv.Itoa(seq)}}, true, nil); err == nil {
					c.lg.Info("chunk checksums: this server reads them the other way; keeping that", zap.Bool("whole_file", c.wholeChunkSum.Load()))
				} else {
					c.wholeChunkSum.Store(!c.wholeChunkSum.Load())
				}
			}
			if err != nil {
				return nil, fmt.Errorf("chunk %d: %w", seq, err)
			}
			if err := failpoint.Hit("verizon.upload.afterChunk"); err != nil {
				return nil, err
			}
		}
		if err := failpoint.Hit("verizon.upload.beforeCommit"); err != nil { // every chunk sent, nothing committed
			return nil, err
		}
		if err := post("commit", cu, 0, 0, nil, true, &out); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
	}
	if out.File == nil {
		return nil, httpx.Retry(errors.New("upload answer without file"), 0)
	}
	if out.File.Checksum != sum || int64(out.File.Size) != size {
		return nil, fmt.Errorf("%w: the server stored %d bytes with checksum %s, we sent %d with %s",
			remote.ErrCorrupt, out.File.Size, remote.Escape(out.File.Checksum), size, sum)
	}
	if why := sane(out.File); why != "" {
		return nil, fmt.Errorf("unusable upload answer: %s", why)
	}
	return out.File, nil
}
