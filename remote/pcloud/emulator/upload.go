package emulator

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// digests of one content blob. hash is pCloud's opaque 64-bit fingerprint: derived from the content here, so
// identical content keeps its hash, but deliberately not equal to any prefix of a standard digest.
type digests struct {
	size              int64
	sha1, md5, sha256 string
	hash              uint64
}

// receive streams a body to a temp file while hashing it. On a read error the partial file is kept and its
// digests returned together with the error, so the caller can honour or ignore `nopartial`.
func (e *Emulator) receive(body io.Reader) (string, digests, error) {
	tmp := e.content.TempPath()
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", digests{}, fmt.Errorf("upload temp: %w", err)
	}
	h1, h5, h256 := sha1.New(), md5.New(), sha256.New()
	n, rerr := io.Copy(io.MultiWriter(f, h1, h5, h256), body)
	if cerr := f.Close(); cerr != nil && rerr == nil {
		rerr = cerr
	}
	return tmp, sumDigests(n, h1, h5, h256), rerr
}

func digestFile(path string) (digests, error) {
	f, err := os.Open(path)
	if err != nil {
		return digests{}, fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	h1, h5, h256 := sha1.New(), md5.New(), sha256.New()
	n, err := io.Copy(io.MultiWriter(h1, h5, h256), f)
	if err != nil {
		return digests{}, fmt.Errorf("digest: %w", err)
	}
	return sumDigests(n, h1, h5, h256), nil
}

// sumDigests finishes the three hashes of size bytes of content into digests, deriving the pCloud hash.
func sumDigests(size int64, h1, h5, h256 hash.Hash) digests {
	s256 := h256.Sum(nil)
	return digests{size: size, sha1: hex.EncodeToString(h1.Sum(nil)), md5: hex.EncodeToString(h5.Sum(nil)),
		sha256: hex.EncodeToString(s256), hash: binary.BigEndian.Uint64(s256[8:16]) ^ 0x9e3779b97f4a7c15}
}

func (e *Emulator) checksums(d digests) map[string]string {
	k, v := e.regionHash(d.sha256, d.md5)
	return map[string]string{"sha1": d.sha1, k: v}
}

// regionHash picks the second checksum pCloud reports next to sha1: sha256 in the EU region, md5 elsewhere.
func (e *Emulator) regionHash(sha256Hex, md5Hex string) (key, value string) {
	if e.o.Region == RegionEU {
		return "sha256", sha256Hex
	}
	return "md5", md5Hex
}

func contentType(name string) string {
	if ct := mime.TypeByExtension(filepath.Ext(name)); ct != "" {
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = strings.TrimSpace(ct[:i])
		}
		return ct
	}
	return "application/octet-stream"
}

// uploadFolder reads the target folder of an upload: `folderid` | `path`, the root when neither is given.
func (c *call) uploadFolder() (uint64, error) {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.p.Get("folderid") == "" && c.p.Get("path") == "" {
		return 0, nil
	}
	f, _, err := c.folderArg(1002)
	if err != nil {
		return 0, err
	}
	return f.ID, nil
}

// needLength refuses bodies without a Content-Length, as pCloud does. Undocumented how; a 411 with the JSON
// error shape is what a client author will recognise.
func (c *call) needLength() bool {
	if c.r.ContentLength >= 0 || c.e.o.AllowChunked {
		return true
	}
	c.e.reply(c.w, c.r, http.StatusLengthRequired, map[string]any{"result": 411,
		"error": "Length required: chunked transfer encoding is not accepted."}, c.p)
	return false
}

type saveOpts struct {
	mtime, ctime   int64
	hasM, hasC     bool
	renameIfExists bool
}

func (c *call) saveOpts() (saveOpts, error) {
	var so saveOpts
	var err error
	if so.mtime, so.hasM, err = c.unixParam("mtime"); err != nil {
		return so, err
	}
	if so.ctime, so.hasC, err = c.unixParam("ctime"); err != nil {
		return so, err
	}
	so.renameIfExists = c.flag("renameifexists")
	return so, nil
}

// commitFile stores received content as name in folder: overwriting a same-name file keeps its fileid (old
// content would become a revision), otherwise a new file. Takes e.mu.
func (e *Emulator) commitFile(folderID uint64, name, tmp string, d digests, so saveOpts) (*node, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.liveFolder(folderID) == nil {
		_ = os.Remove(tmp)
		return nil, fail(2005) // deleted while the body was streaming
	}
	existing := e.childFile(folderID, name)
	if existing != nil && so.renameIfExists {
		base, ext := splitExt(name)
		for k := 2; ; k++ {
			cand := fmt.Sprintf("%s (%d)%s", base, k, ext)
			if e.childFile(folderID, cand) == nil {
				name, existing = cand, nil
				break
			}
		}
	}
	grow := d.size
	if existing != nil {
		grow -= existing.Size
	}
	if e.used+grow > e.o.Quota {
		_ = os.Remove(tmp)
		return nil, fail(2008)
	}
	now := e.clk.Now().Unix()
	ch := &change{}
	kind := "modifyfile"
	n := existing
	var replaced uint64
	if n != nil && e.is(VariantNewFileID) {
		// Variant: the overwritten file goes (its content stays with it, as a trash item would) and a new fileid
		// takes the name; the event and the reply name the old one in deletedfileid.
		e.unlink(n)
		n.Deleted = true
		e.used -= n.Size
		grow += n.Size
		ch.put(n)
		replaced, n, existing = n.ID, nil, nil
	}
	if n == nil {
		kind = "createfile"
		n = &node{ID: e.cnt.NextFileID, Parent: folderID, Name: name, Created: now}
		e.cnt.NextFileID++
	}
	if err := e.content.Put(tmp, blobID(n.ID)); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("store content: %w", err)
	}
	n.Modified = now
	if so.hasM {
		n.Modified = so.mtime
		if so.hasC {
			n.Created = so.ctime
		}
	}
	n.Size, n.Hash, n.SHA1, n.MD5, n.SHA256, n.ContentType = d.size, d.hash, d.sha1, d.md5, d.sha256, contentType(name)
	if existing == nil {
		e.files[n.ID] = n
		e.link(n)
	}
	e.used += grow
	e.touchParent(ch, folderID, now)
	ch.put(n)
	e.appendEvent(ch, kind, n, replaced)
	if err := e.commit(ch); err != nil {
		return nil, err
	}
	cp := *n
	cp.replaced = replaced
	return &cp, nil
}

func splitExt(name string) (string, string) {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i], name[i:]
	}
	return name, ""
}

func (c *call) uploadfile() (any, error) {
	if isMultipart(c.r) {
		return c.uploadMultipart()
	}
	if !c.needLength() {
		return nil, nil
	}
	name, folderID, so, err := c.saveTarget("filename")
	if err != nil {
		return nil, err
	}
	n, d, err := c.receiveAndCommit(c.r.Body, folderID, name, so)
	if err != nil {
		return nil, err
	}
	return ok("fileids", []uint64{n.ID}, "metadata", []*metaOut{c.meta(n)},
		"checksums", []map[string]string{c.e.checksums(d)}), nil
}

// saveTarget reads where a single-file save goes: the file name from param (required, 1001; valid, 2001), the
// folder and the save options.
func (c *call) saveTarget(param string) (string, uint64, saveOpts, error) {
	name := c.p.Get(param)
	if name == "" {
		return "", 0, saveOpts{}, fail(1001)
	}
	if !validName(name) {
		return "", 0, saveOpts{}, fail(2001)
	}
	name = c.e.storedName(name)
	folderID, err := c.uploadFolder()
	if err != nil {
		return "", 0, saveOpts{}, err
	}
	so, err := c.saveOpts()
	if err != nil {
		return "", 0, saveOpts{}, err
	}
	return name, folderID, so, nil
}

func (c *call) receiveAndCommit(body io.Reader, folderID uint64, name string, so saveOpts) (*node, digests, error) {
	tmp, d, rerr := c.e.receive(body)
	if tmp == "" {
		return nil, d, rerr
	}
	if rerr != nil {
		// The connection broke mid-body. Without nopartial pCloud keeps what arrived.
		if c.flag("nopartial") {
			_ = os.Remove(tmp)
			return nil, d, fail(2041)
		}
		if _, err := c.e.commitFile(folderID, name, tmp, d, so); err != nil {
			return nil, d, err
		}
		return nil, d, fail(2041)
	}
	n, err := c.e.commitFile(folderID, name, tmp, d, so)
	return n, d, err
}

// uploadMultipart streams a multipart POST: form fields are parameters and must precede the file parts; each
// file part is a file named by its Content-Disposition filename (the form field name is ignored).
func (c *call) uploadMultipart() (any, error) {
	mr, err := c.r.MultipartReader()
	if err != nil {
		return nil, fail(2041)
	}
	var ids []uint64
	metas := []*metaOut{}
	sums := []map[string]string{}
	authed := c.token != ""
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fail(2041)
		}
		_, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		fname, isFile := dp["filename"]
		if !isFile {
			val, _ := io.ReadAll(io.LimitReader(part, 64<<10))
			c.p.Set(part.FormName(), string(val))
			continue
		}
		if !authed {
			if err := c.authenticate(); err != nil {
				return nil, err
			}
			authed = true
		}
		if !validName(fname) {
			return nil, fail(2001)
		}
		fname = c.e.storedName(fname)
		folderID, err := c.uploadFolder()
		if err != nil {
			return nil, err
		}
		so, err := c.saveOpts()
		if err != nil {
			return nil, err
		}
		n, d, err := c.receiveAndCommit(part, folderID, fname, so)
		if err != nil {
			return nil, err
		}
		ids = append(ids, n.ID)
		metas = append(metas, c.meta(n))
		sums = append(sums, c.e.checksums(d))
	}
	if !authed {
		return nil, fail(1000)
	}
	if ids == nil {
		ids = []uint64{}
	}
	return ok("fileids", ids, "metadata", metas, "checksums", sums), nil
}

// ---- chunked upload ----

func (e *Emulator) uploadPath(id uint64) string {
	return filepath.Join(e.store.Dir, "uploads", strconv.FormatUint(id, 10))
}

func (c *call) uploadArg() (uint64, error) {
	id, err := strconv.ParseUint(c.p.Get("uploadid"), 10, 64)
	if err != nil {
		return 0, fail(1900)
	}
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.e.uploads[id] == nil {
		return 0, fail(1900)
	}
	return id, nil
}

func (c *call) uploadCreate() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.cnt.NextUploadID
	e.cnt.NextUploadID++
	if err := os.WriteFile(e.uploadPath(id), nil, 0o600); err != nil {
		return nil, fmt.Errorf("upload_create: %w", err)
	}
	u := &uploadState{ID: id, Created: e.clk.Now().Unix()}
	e.uploads[id] = u
	if err := e.commit(&change{uploads: map[uint64]*uploadState{id: u}}); err != nil {
		return nil, err
	}
	return ok("uploadid", id), nil
}

func (c *call) uploadWrite() (any, error) {
	id, err := c.uploadArg()
	if err != nil {
		return nil, err
	}
	if !c.needLength() {
		return nil, nil
	}
	off := int64(0)
	if v := c.p.Get("uploadoffset"); v != "" {
		if off, err = strconv.ParseInt(v, 10, 64); err != nil || off < 0 {
			return nil, fail(1900) // undocumented; an "upload" answer beats a silent write at offset 0
		}
	}
	f, err := os.OpenFile(c.e.uploadPath(id), os.O_WRONLY, 0)
	if err != nil {
		return nil, fail(1900) // saved or deleted concurrently
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("upload_write: %w", err)
	}
	if _, err := io.Copy(f, c.r.Body); err != nil {
		return nil, fail(2041)
	}
	return ok(), nil
}

func (c *call) uploadInfo() (any, error) {
	id, err := c.uploadArg()
	if err != nil {
		return nil, err
	}
	d, err := digestFile(c.e.uploadPath(id))
	if err != nil {
		return nil, fail(1900)
	}
	out := ok("size", d.size, "sha1", d.sha1)
	k, v := c.e.regionHash(d.sha256, d.md5)
	out[k] = v
	return out, nil
}

func (c *call) uploadSave() (any, error) {
	id, err := c.uploadArg()
	if err != nil {
		return nil, err
	}
	name, folderID, so, err := c.saveTarget("name")
	if err != nil {
		return nil, err
	}
	d, err := digestFile(c.e.uploadPath(id))
	if err != nil {
		return nil, fail(1900)
	}
	// Move the data aside first so a concurrent upload_write cannot change what was digested.
	tmp := c.e.content.TempPath()
	if err := os.Rename(c.e.uploadPath(id), tmp); err != nil {
		return nil, fail(1900)
	}
	c.e.forgetUpload(id)
	n, err := c.e.commitFile(folderID, name, tmp, d, so)
	if err != nil {
		return nil, err
	}
	return ok("metadata", c.meta(n)), nil
}

func (c *call) uploadDelete() (any, error) {
	id, err := c.uploadArg()
	if err != nil {
		return nil, err
	}
	_ = os.Remove(c.e.uploadPath(id))
	c.e.forgetUpload(id)
	return ok(), nil
}

func (e *Emulator) forgetUpload(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.uploads, id)
	_ = e.commit(&change{uploads: map[uint64]*uploadState{id: nil}})
}
