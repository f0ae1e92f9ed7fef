package pcloud

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

// Put implements remote.Remote. Files up to ChunkThreshold go up in one uploadfile request (read into memory
// first, so a retry can resend them and their sha1 is known before sending); larger ones through the chunked,
// resumable upload_create / upload_write / upload_info / upload_save. The precondition is checked immediately
// before the upload call (before upload_save for chunked uploads); pCloud has no documented conditional write
// (uploadfile's `ifhash` is pclsync-only and unverified, and may store a renamed copy), so a write by someone
// else in the remaining window is overwritten and survives as a pCloud revision of the file.
// The returned Entry carries the sha1 the server reported (checked against the bytes sent).
func (c *Client) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time,
	pre remote.Precondition) (remote.Entry, error) {
	if err := validPath(p); err != nil {
		return remote.Entry{}, err
	}
	if p == remote.Root || size < 0 {
		return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), remote.ErrInvalidName)
	}
	parent, err := c.parentOf(ctx, p)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("upload %w", err)
	}
	u := &upload{c: c, p: p, parent: parent.n.id, size: size, mtime: mtime, pre: pre}
	if err := u.precondition(ctx); err != nil {
		return remote.Entry{}, err
	}
	var e remote.Entry
	if size <= c.o.ChunkThreshold {
		e, err = u.single(ctx, body)
	} else {
		e, err = u.chunked(ctx, body)
	}
	if err != nil {
		return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	return e, nil
}

type upload struct {
	c      *Client
	p      remote.Path
	parent uint64
	size   int64
	mtime  time.Time
	pre    remote.Precondition
	sha1   string // of the bytes sent, once known
}

// precondition checks the target right before a write: a folder of that name is always a conflict (pCloud would
// put a file beside it), Absent needs no file, Rev needs exactly that revision.
func (u *upload) precondition(ctx context.Context) error {
	cur, err := u.c.lookup(ctx, u.p)
	exists := err == nil
	if err != nil && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("upload %s: %w", u.p.Quoted(), err)
	}
	switch {
	case exists && cur.n.dir:
		return fmt.Errorf("upload %s: a folder has that name: %w", u.p.Quoted(), remote.ErrConflict)
	case u.pre.Absent && exists:
		return fmt.Errorf("upload %s: exists: %w", u.p.Quoted(), remote.ErrConflict)
	case u.pre.Rev != "" && (!exists || strconv.FormatUint(cur.n.hash, 10) != u.pre.Rev):
		return fmt.Errorf("upload %s: changed since seen: %w", u.p.Quoted(), remote.ErrConflict)
	}
	return nil
}

// landed checks, after an ambiguous failure, whether the file now holds exactly our bytes (ack loss).
func (u *upload) landed(ctx context.Context) (*meta, bool, error) {
	cur, err := u.c.lookup(ctx, u.p)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if cur.n.dir || cur.n.size != u.size {
		return nil, false, nil
	}
	sum, m, err := u.c.checksum(ctx, cur.n.id)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return m, sum.sha1 == u.sha1, nil
}

func (u *upload) params() url.Values {
	q := idParam("folderid", u.parent)
	q.Set("nopartial", "1") // a broken body must not leave a partial file
	if s := u.mtime.Unix(); s >= 0 && !u.mtime.IsZero() {
		q.Set("mtime", strconv.FormatInt(s, 10)) // pCloud ignores negative (pre-1970) times anyway
	}
	return q
}

func (u *upload) entry(m *meta) (remote.Entry, error) {
	if m == nil || m.IsFolder {
		return remote.Entry{}, errors.New("answer without file metadata")
	}
	if clampSize(m.Size) != u.size {
		return remote.Entry{}, fmt.Errorf("%w: stored %d bytes, sent %d", remote.ErrCorrupt, m.Size, u.size)
	}
	if err := u.c.stored("upload", u.p, u.parent, m); err != nil {
		return remote.Entry{}, err
	}
	u.c.rememberSum(m.FileID, fileSum{hash: m.Hash, sha1: u.sha1})
	return u.c.entryOf(u.p, m), nil
}

// readAll reads exactly size bytes: a body that is shorter or longer than announced is refused, never stored.
func readAll(body io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, fmt.Errorf("read the body (%d bytes announced): %w", size, err)
	}
	if err := noMore(body); err != nil {
		return nil, err
	}
	return buf, nil
}

func noMore(body io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(body, one[:])
	if n > 0 {
		return errors.New("the body is longer than its announced size")
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the body: %w", err)
	}
	return nil
}

// single is one uploadfile request: a raw PUT for a non-empty file, a multipart POST for an empty one (an empty
// PUT does not work, §2.2).
func (u *upload) single(ctx context.Context, body io.Reader) (remote.Entry, error) {
	data, err := readAll(body, u.size)
	if err != nil {
		return remote.Entry{}, err
	}
	h := sha1.Sum(data)
	u.sha1 = hex.EncodeToString(h[:])
	var out *meta
	err = u.c.mutate(ctx, "upload "+u.p.Quoted(), func(ctx context.Context) error {
		if err := u.precondition(ctx); err != nil {
			return err
		}
		a, err := u.send(ctx, data)
		if err != nil {
			return err
		}
		if len(a.Metadata) != 1 || len(a.Checksums) != 1 {
			return errors.New("uploadfile answer without exactly one file")
		}
		if got := strings.ToLower(a.Checksums[0]["sha1"]); got != u.sha1 {
			return fmt.Errorf("%w: server has sha1 %s, sent %s", remote.ErrCorrupt, remote.Escape(got), u.sha1)
		}
		out = a.Metadata[0]
		return nil
	}, func(ctx context.Context) (bool, error) {
		m, ok, err := u.landed(ctx)
		if ok {
			out = m
		}
		return ok, err
	})
	if err != nil {
		return remote.Entry{}, err
	}
	return u.entry(out)
}

func (u *upload) send(ctx context.Context, data []byte) (*uploadAnswer, error) {
	c := u.c
	q := u.params()
	var out *uploadAnswer
	err := c.mut.Do(ctx, "pcloud uploadfile", false, func(ctx context.Context) (*http.Request, error) {
		if len(data) > 0 {
			q.Set("filename", u.p.Base())
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.methodURL("uploadfile", q), bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/octet-stream")
			return req, nil
		}
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, err := mw.CreateFormFile("content", u.p.Base())
		if err != nil {
			return nil, err
		}
		_, _ = fw.Write(data)
		if err := mw.Close(); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.methodURL("uploadfile", q), bytes.NewReader(b.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return req, nil
	}, func(resp *http.Response) error {
		v := new(uploadAnswer)
		if err := c.mut.DecodeJSON(resp, v); err != nil {
			return err
		}
		if v.Result != 0 {
			return apiError("uploadfile", &v.status)
		}
		out = v
		return nil
	})
	return out, err
}

// chunked streams body in ChunkSize parts into an upload session. A part whose answer is lost is checked with
// upload_info and resumed from the size the server holds; upload_info's sha1 of the whole upload is compared
// with ours before upload_save, so a corrupted part is never saved. A failed upload is deleted (upload_delete).
func (u *upload) chunked(ctx context.Context, body io.Reader) (remote.Entry, error) {
	c := u.c
	ca, err := call[uploadCreateAnswer](ctx, c, "upload_create", url.Values{"filesize": {strconv.FormatInt(u.size, 10)}}, true)
	if err != nil {
		return remote.Entry{}, err
	}
	id := ca.UploadID
	saved := false
	defer func() {
		if !saved {
			// Best effort: an unsaved session holds no user-visible file either way. A fresh context, so a
			// cancelled upload still cleans up.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_, _ = call[plainAnswer](cctx, c, "upload_delete", idParam("uploadid", id), true)
		}
	}()
	h := sha1.New()
	buf := make([]byte, min(c.o.ChunkSize, u.size))
	for off := int64(0); off < u.size; {
		n := min(int64(len(buf)), u.size-off)
		if _, err := io.ReadFull(body, buf[:n]); err != nil {
			return remote.Entry{}, fmt.Errorf("read the body at %d of %d bytes: %w", off, u.size, err)
		}
		h.Write(buf[:n])
		if err := u.writeChunk(ctx, id, off, buf[:n]); err != nil {
			return remote.Entry{}, err
		}
		off += n
		if err := failpoint.Hit("pcloud.upload.afterChunk"); err != nil {
			return remote.Entry{}, err
		}
	}
	if err := noMore(body); err != nil {
		return remote.Entry{}, err
	}
	u.sha1 = hex.EncodeToString(h.Sum(nil))
	info, err := call[uploadInfoAnswer](ctx, c, "upload_info", idParam("uploadid", id), true)
	if err != nil {
		return remote.Entry{}, err
	}
	if int64(info.Size) != u.size || strings.ToLower(info.SHA1) != u.sha1 {
		return remote.Entry{}, fmt.Errorf("%w: the upload holds %d bytes with sha1 %s, sent %d with %s",
			remote.ErrCorrupt, info.Size, remote.Escape(info.SHA1), u.size, u.sha1)
	}
	q := u.params()
	q.Set("uploadid", strconv.FormatUint(id, 10))
	q.Set("name", u.p.Base())
	if err := failpoint.Hit("pcloud.upload.beforeSave"); err != nil { // every chunk sent, nothing saved
		return remote.Entry{}, err
	}
	var out *meta
	err = c.mutate(ctx, "upload_save "+u.p.Quoted(), func(ctx context.Context) error {
		if err := u.precondition(ctx); err != nil {
			return err
		}
		a, err := call[metaAnswer](ctx, c, "upload_save", q, false)
		if err != nil {
			return err
		}
		out = a.Metadata
		return nil
	}, func(ctx context.Context) (bool, error) {
		m, ok, err := u.landed(ctx)
		if ok {
			out = m
		}
		return ok, err
	})
	if err != nil {
		return remote.Entry{}, err
	}
	saved = true
	return u.entry(out)
}

// writeChunk sends data at off. After an ambiguous failure upload_info tells how much arrived, and only the
// missing tail is resent: a part is never written twice at a different offset.
func (u *upload) writeChunk(ctx context.Context, id uint64, off int64, data []byte) error {
	c := u.c
	at := off
	return c.mutate(ctx, fmt.Sprintf("upload_write %s at %d", u.p.Quoted(), off), func(ctx context.Context) error {
		q := idParam("uploadid", id)
		q.Set("uploadoffset", strconv.FormatInt(at, 10))
		part := data[at-off:]
		return c.mut.Do(ctx, "pcloud upload_write", false, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.methodURL("upload_write", q), bytes.NewReader(part))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/octet-stream")
			return req, nil
		}, func(resp *http.Response) error {
			v := new(plainAnswer)
			if err := c.mut.DecodeJSON(resp, v); err != nil {
				return err
			}
			if v.Result != 0 {
				return apiError("upload_write", &v.status)
			}
			return nil
		})
	}, func(ctx context.Context) (bool, error) {
		info, err := call[uploadInfoAnswer](ctx, c, "upload_info", idParam("uploadid", id), true)
		if err != nil {
			return false, err
		}
		got := int64(info.Size)
		end := off + int64(len(data))
		switch {
		case got >= end:
			return true, nil
		case got < off:
			return false, fmt.Errorf("the upload session holds %d bytes, %d were acknowledged", got, off)
		}
		at = got // resume where the server stopped
		return false, nil
	})
}
