package vboxx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// Put uploads body as p. A read-only pair folder and the company policy refuse first, before anything is sent
// (ErrUnavailable: skipped and reported). Preconditions are checked against a fresh listing of the parent just
// before the upload (vBoxx has no compare-and-swap; the remaining window is one request). A new name is one
// upload, which a file appearing meanwhile turns into name_conflict; an existing file is replaced (see replace).
func (c *Client) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time,
	pre remote.Precondition) (remote.Entry, error) {
	if err := checkPath("put", p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root {
		return remote.Entry{}, fmt.Errorf("put: the pair root is a folder: %w", remote.ErrConflict)
	}
	if c.readOnly() {
		return remote.Entry{}, c.errReadOnly("put", p)
	}
	if err := c.checkPolicy(ctx, p, size); err != nil {
		return remote.Entry{}, err
	}
	parent, old, err := c.lookup(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("put %s: %w", p.Quoted(), err)
	}
	switch {
	case old != nil && old.isFolder():
		return remote.Entry{}, fmt.Errorf("put %s: a folder has that name: %w", p.Quoted(), remote.ErrConflict)
	case pre.Absent && old != nil:
		return remote.Entry{}, fmt.Errorf("put %s: exists: %w", p.Quoted(), remote.ErrConflict)
	case pre.Rev != "" && (old == nil || strconv.FormatInt(int64(old.RevisionID), 10) != pre.Rev):
		return remote.Entry{}, fmt.Errorf("put %s: changed since revision %s: %w", p.Quoted(), pre.Rev, remote.ErrConflict)
	}
	var obj object
	if old == nil {
		obj, err = c.upload(ctx, p.Dir(), p.Base(), parent, body, size, false, nil)
	} else {
		obj, err = c.replace(ctx, p, parent, old, body, size)
	}
	c.learnUpload(p, size, err)
	c.markDirty(parent)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("put %s: %w", p.Quoted(), err)
	}
	if int64(obj.Size) != size {
		return remote.Entry{}, fmt.Errorf("put %s: %w: server stored %d bytes of %d", p.Quoted(), remote.ErrCorrupt, obj.Size, size)
	}
	return entryOf(&obj, p), nil
}

var errNoReplay = errors.New("the body cannot be sent again (not seekable)")

// upload sends one multipart POST with a Content-Length (the size is known, and many server stacks refuse or
// misread a chunked body) while still streaming the file: the multipart framing is built around it, never the
// file held in memory. An upload is not idempotent: after a lost answer the folder is read again, and a file
// that now has this name, the right size and a revision that was not there before is adopted as ours.
// overwrite is sent only when it is true (the reference has no such field; see replace).
func (c *Client) upload(ctx context.Context, dir remote.Path, name string, folder int64, body io.Reader, size int64,
	overwrite bool, before *object) (object, error) {
	op := "upload " + remote.Escape(path.Join(string(dir), name))
	seeker, _ := body.(io.Seeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	attempts := 0
	build := func(ctx context.Context) (*http.Request, error) {
		attempts++
		if attempts > 1 {
			if seeker == nil {
				return nil, fmt.Errorf("%s: %w", op, errNoReplay)
			}
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("%s: rewind: %w", op, err)
			}
		}
		head, tail, ctype, err := uploadFraming(name, overwrite)
		if err != nil {
			return nil, err
		}
		rd := io.MultiReader(bytes.NewReader(head), &exactReader{r: body, left: size}, bytes.NewReader(tail))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+c.rootPath(folderPath(folder)+"/upload"),
			io.NopCloser(rd))
		if err != nil {
			return nil, err
		}
		req.ContentLength = int64(len(head)) + size + int64(len(tail))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", "application/json")
		return req, nil
	}
	var out object
	err := c.hx.Do(ctx, op, false, build, c.decode(&out))
	if err == nil {
		if out.Type != "file" || out.ID <= 0 || out.RevisionID <= 0 {
			return object{}, fmt.Errorf("%s: the answer is not a file object", op)
		}
		return out, nil
	}
	err = apiErr(op, err)
	var ae *APIError
	lost := httpx.IsTransport(err) || (errors.As(err, &ae) && ae.Code == "name_conflict" && attempts > 1)
	if !lost || ctx.Err() != nil {
		return object{}, err
	}
	_, now, lerr := c.lookupName(ctx, dir, name)
	if lerr == nil && now != nil && now.Type == "file" && int64(now.Size) == size &&
		(before == nil || now.RevisionID != before.RevisionID) {
		c.lg.Info("upload answer lost; the stored file is ours", zap.String("op", op))
		return *now, nil
	}
	return object{}, err
}

// uploadFraming is the multipart body around the file's bytes: the head (the `overwrite` field when asked for,
// first because a server decides on it before the file arrives, then the part header of `file`) and the closing
// boundary. The name goes as a plain quoted filename= in UTF-8, as browsers and the public clients send it: RFC
// 7578 forbids filename*= in form-data, and stacks that follow it would see no file at all.
func uploadFraming(name string, overwrite bool) (head, tail []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if overwrite {
		if err := mw.WriteField("overwrite", "true"); err != nil {
			return nil, nil, "", err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+quoteEscaper.Replace(name)+`"`)
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", err
	}
	n := buf.Len()
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	all := buf.Bytes()
	return all[:n:n], all[n:], mw.FormDataContentType(), nil
}

// quoteEscaper escapes a quoted-string the way Go's multipart.CreateFormFile does.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

// exactReader passes exactly left bytes of r on and fails if r ends early: the Content-Length is promised.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > e.left {
		b = b[:e.left]
	}
	n, err := e.r.Read(b)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("body ended %d bytes early (file changed during the upload?)", e.left)
	}
	if e.left == 0 && err == io.EOF {
		err = nil
	}
	return n, err
}
