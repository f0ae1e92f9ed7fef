package pcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// maxResumes bounds how often one download reconnects after a cut body before it gives up.
const maxResumes = 8

// Open implements remote.Remote: checksumfile (the file's current state and sha1), getfilelink, then the content
// server. The body is verified by size and sha1 at EOF (a mismatch is an error wrapping remote.ErrCorrupt, never
// data); a body cut part way is resumed with a Range request on a fresh link.
func (c *Client) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := validPath(p); err != nil {
		return nil, remote.Entry{}, err
	}
	f, err := c.lookup(ctx, p)
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %w", err)
	}
	if f.n.dir {
		return nil, remote.Entry{}, fmt.Errorf("open %s: is a folder", p.Quoted())
	}
	sum, m, err := c.checksum(ctx, f.n.id)
	if err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), err)
	}
	e := c.entryOf(p, m)
	d := &download{c: c, ctx: ctx, p: p, fileID: f.n.id, hash: m.Hash, size: e.Size}
	if err := d.connect(0); err != nil {
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), err)
	}
	v := remote.NewVerifier(d, remote.Hash{Algo: "sha1", Hex: sum.sha1}, e.Size, "")
	return &verifiedBody{Verifier: v, d: d}, e, nil
}

type verifiedBody struct {
	*remote.Verifier
	d *download
}

func (b *verifiedBody) Close() error { return b.d.Close() }

// download reads one file version from the content servers, reconnecting at the current offset after a cut.
type download struct {
	c       *Client
	ctx     context.Context // the Open call's: the body is read within it
	p       remote.Path
	fileID  uint64
	hash    uint64
	size    int64
	off     int64
	body    io.ReadCloser
	resumes int
}

// link asks getfilelink for a fresh link (links are short-lived and IP-bound, so one per connection) and returns
// its URLs in the server's order of preference.
func (d *download) link() ([]string, error) {
	c := d.c
	a, err := call[linkAnswer](d.ctx, c, "getfilelink", idParam("fileid", d.fileID), true)
	if err != nil {
		return nil, err
	}
	if a.Hash != d.hash {
		// The file was overwritten since it was opened: the link would serve other content.
		return nil, fmt.Errorf("%s changed while it was read: %w", d.p.Quoted(), remote.ErrConflict)
	}
	var urls []string
	for _, h := range a.Hosts {
		if u, err := c.contentURL(h, a.Path); err == nil {
			urls = append(urls, u)
		} else {
			c.lg.Warn("download host refused", zap.String("host", remote.Escape(h)), zap.Error(err))
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("getfilelink gave no usable host")
	}
	return urls, nil
}

// contentURL builds a download URL from a server-supplied host and path. The scheme is never the server's
// choice: https, or the API endpoint's own scheme for a loopback emulator; the host must be a bare host[:port].
func (c *Client) contentURL(host, path string) (string, error) {
	if host == "" || strings.ContainsAny(host, "/\\@?#% \t\r\n") || !strings.HasPrefix(path, "/") ||
		strings.HasPrefix(path, "//") {
		return "", fmt.Errorf("malformed content location %q", remote.Escape(host+path))
	}
	scheme := "https"
	if c.base.Scheme == "http" {
		scheme = "http"
	}
	u, err := url.Parse(scheme + "://" + host + path)
	if err != nil || u.Host != host || u.User != nil || u.Scheme != scheme || !validHost(u) {
		return "", fmt.Errorf("malformed content location %q", remote.Escape(host+path))
	}
	if scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("plain http content host %q refused", remote.Escape(host))
	}
	return u.String(), nil
}

// validHost: the URL's host is an IP address or a DNS name (letters, digits, inner hyphens, non-empty labels),
// with a port only if it is a number in range. url.Parse takes "file:" or "host:" as a host with an empty port.
func validHost(u *url.URL) bool {
	if strings.HasSuffix(u.Host, ":") {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return false
		}
	}
	h := u.Hostname()
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// connect opens the body at offset off, trying each host of a fresh link, and a second link when the content
// server says the first expired (410) or is unknown (404).
func (d *download) connect(off int64) error {
	var last error
	for round := 0; round < 2; round++ {
		urls, err := d.link()
		if err != nil {
			return err
		}
		for _, u := range urls {
			resp, err := d.c.dl.Stream(d.ctx, "pcloud download", func(ctx context.Context) (*http.Request, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				if err != nil {
					return nil, err
				}
				if off > 0 {
					req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
				}
				return req, nil
			})
			if err != nil {
				last = err
				continue
			}
			if off > 0 && resp.StatusCode != http.StatusPartialContent {
				resp.Body.Close()
				last = fmt.Errorf("content server ignored the range request (HTTP %d)", resp.StatusCode)
				continue
			}
			if off == 0 && resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				last = fmt.Errorf("content server answered HTTP %d", resp.StatusCode)
				continue
			}
			d.body, d.off = resp.Body, off
			return nil
		}
		var se *httpx.StatusError
		if !(errors.As(last, &se) && (se.Status == http.StatusGone || se.Status == http.StatusNotFound)) {
			break
		}
	}
	return last
}

func (d *download) Read(p []byte) (int, error) {
	for {
		if d.body == nil {
			return 0, errors.New("download closed")
		}
		n, err := d.body.Read(p)
		d.off += int64(n)
		if err == nil || n > 0 {
			if errors.Is(err, io.EOF) && d.off < d.size {
				err = nil // a short clean close: the next Read resumes
			}
			if err != nil && !errors.Is(err, io.EOF) {
				err = nil // report the bytes now, resume on the next Read
			}
			return n, err
		}
		if errors.Is(err, io.EOF) && d.off >= d.size {
			return 0, io.EOF
		}
		// Cut mid-body (reset, truncated answer): reconnect at the offset on a fresh link.
		d.body.Close()
		d.body = nil
		if d.ctx.Err() != nil {
			return 0, d.ctx.Err()
		}
		d.resumes++
		if d.resumes > maxResumes {
			return 0, fmt.Errorf("download %s: cut %d times, last at byte %d: %w", d.p.Quoted(), d.resumes-1, d.off, err)
		}
		d.c.lg.Debug("download cut; resuming", zap.String("path", d.p.Quoted()), zap.Int64("bytes", d.off), zap.Error(err))
		if cerr := d.connect(d.off); cerr != nil {
			return 0, fmt.Errorf("download %s: resume at byte %d after %v: %w", d.p.Quoted(), d.off, err, cerr)
		}
	}
}

func (d *download) Close() error {
	if d.body == nil {
		return nil
	}
	err := d.body.Close()
	d.body = nil
	return err
}
