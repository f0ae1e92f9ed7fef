package vboxx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// What the client learns about the server it talks to, where the reference is silent (section 11 of the
// API reference, listed in PROVIDER.md). Each reading starts at the safe assumption and moves only on proof
// the server itself gives; nothing here is persisted, so every process learns it again.

// tri is a fact about the server: not known yet, or known yes/no.
type tri int8

const (
	unknown tri = iota
	yes
	no
)

// policyTTL: the company policy and the quota are read again after this long (the daemon keeps a client for
// days; an administrator may change the policy meanwhile).
const policyTTL = 10 * time.Minute

// serverPolicy is the company policy and the quota as /person last said, plus what uploads taught.
type serverPolicy struct {
	read     time.Time
	exts     []string // lower case, with the dot
	maxSize  int64    // as reported; 0 = no limit. Its unit is not documented: see maxUnit
	maxUnit  tri      // yes: bytes (learned from a refusal), no: MB (learned from an accepted larger file)
	quota    int64    // 0 = none
	usage    int64
	fprint   string            // the policy's fingerprint: a change clears the refusals below
	refused  map[string]string // path/size → why the server refused it, at this policy fingerprint
	loaded   bool
	readOnly bool // the pair folder lacks FILE_WRITE
}

func (c *Client) setPolicy(p *person) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := &c.pol
	sp.read, sp.loaded = c.clk.Now(), true
	sp.exts, sp.maxSize = nil, 0
	if p.Policy != nil {
		sp.exts, sp.maxSize = p.Policy.ExcludedExtensions, int64(p.Policy.MaxFileSize)
	}
	sp.quota, sp.usage = int64(p.SpaceQuota), int64(p.SpaceUsage)
	fp := fmt.Sprint(sp.exts, sp.maxSize, sp.quota)
	if fp != sp.fprint {
		sp.fprint, sp.refused, sp.maxUnit = fp, map[string]string{}, unknown
	}
	for k, why := range sp.refused {
		if why == "forbidden" {
			delete(sp.refused, k) // permissions are not in the policy: ask the server again now and then
		}
	}
}

// refreshPolicy reads /person again when the copy is old.
func (c *Client) refreshPolicy(ctx context.Context) {
	c.mu.Lock()
	fresh := c.pol.loaded && c.clk.Since(c.pol.read) < policyTTL
	c.mu.Unlock()
	if fresh {
		return
	}
	var p person
	err := c.call(ctx, "person", http.MethodGet, "/api/2/person", nil, true, func(resp *http.Response) error {
		return c.hx.DecodeJSON(resp, &p)
	})
	if err != nil {
		c.lg.Debug("policy not refreshed", zap.Error(err)) // the server's own refusal still protects
		return
	}
	c.setPolicy(&p)
}

// errPolicy is a file the server's policy refuses: skipped and reported, never sent, tried again when the policy
// or the file changes.
func errPolicy(p remote.Path, why string) error {
	return fmt.Errorf("%s: refused by the server's policy: %s (not sent; retried when the file or the policy "+
		"changes): %w", p.Quoted(), why, remote.ErrUnavailable)
}

func refusalKey(p remote.Path, size int64) string {
	return strconv.FormatInt(size, 10) + ":" + string(p)
}

// checkPolicy refuses, before a byte is sent, what the policy certainly refuses: an excluded extension, a size
// above the maximum under every reading of its unit, a size the quota cannot hold, or a file the server
// refused before under the same policy.
func (c *Client) checkPolicy(ctx context.Context, p remote.Path, size int64) error {
	c.refreshPolicy(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := &c.pol
	name := p.Base()
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ext := strings.ToLower(name[i:])
		for _, x := range sp.exts {
			if x == ext {
				return errPolicy(p, "files ending in "+ext+" are excluded")
			}
		}
	}
	if sp.maxSize > 0 {
		limit := sp.maxSize << 20 // unit unknown: only what is too big even in MB is certain
		if sp.maxUnit == yes {
			limit = sp.maxSize
		}
		if size > limit {
			return errPolicy(p, fmt.Sprintf("%d bytes is over the maximum file size (%d bytes)", size, limit))
		}
	}
	if sp.quota > 0 && sp.usage+size > sp.quota {
		return errPolicy(p, fmt.Sprintf("%d bytes do not fit in the quota (%d of %d bytes used)", size, sp.usage,
			sp.quota))
	}
	switch why := sp.refused[refusalKey(p, size)]; why {
	case "":
	case "forbidden":
		return fmt.Errorf("%s: the server refused it before (403 forbidden: no write permission there); not sent "+
			"again until its size changes or for %s: %w", p.Quoted(), policyTTL, remote.ErrUnavailable)
	default:
		return errPolicy(p, "the server refused this file before ("+why+")")
	}
	return nil
}

// learnUpload updates what the policy says after an upload: an accepted file above the reported maximum (read as
// bytes) proves the unit is larger; a policy refusal of one is remembered, and proves bytes when the quota
// cannot explain it.
func (c *Client) learnUpload(p remote.Path, size int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := &c.pol
	if err == nil {
		sp.usage += size
		if sp.maxSize > 0 && size > sp.maxSize && sp.maxUnit == unknown {
			sp.maxUnit = no
		}
		return
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return
	}
	switch ae.Code {
	case "forbidden":
		sp.refused[refusalKey(p, size)] = ae.Code
	case "invalid_extension":
		sp.refused[refusalKey(p, size)] = ae.Code
		sp.read = time.Time{} // our copy of the policy is stale: read it again next time
	case "policy_error":
		sp.refused[refusalKey(p, size)] = ae.Code
		quotaFits := sp.quota == 0 || sp.usage+size <= sp.quota
		if sp.maxSize > 0 && size > sp.maxSize && quotaFits && !strings.Contains(strings.ToLower(ae.Msg), "quota") {
			sp.maxUnit = yes
		}
		sp.read = time.Time{}
	}
}

// errReadOnly refuses a change in a pair folder without FILE_WRITE: the pair syncs down only.
func (c *Client) errReadOnly(op string, p remote.Path) error {
	return fmt.Errorf("%s %s: %s is read-only for this account (no FILE_WRITE): local changes stay local, the "+
		"pair syncs down only: %w", op, p.Quoted(), c.spec, remote.ErrUnavailable)
}

func (c *Client) readOnly() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pol.readOnly
}

func (c *Client) setReadOnly(o *object) {
	ro := !o.Permissions.canWrite()
	c.mu.Lock()
	changed := c.pol.readOnly != ro
	c.pol.readOnly = ro
	c.mu.Unlock()
	if changed && ro {
		c.lg.Warn("the vBoxx folder is read-only for this account: syncing down only", zap.String("remote", c.spec))
	}
}

// ReadOnly reports whether the pair folder is read-only for this account (status shows it).
func (c *Client) ReadOnly() bool { return c.readOnly() }

// foldName is the case-insensitive form of a name: Unicode simple case folding, no normalization, as the
// project's reading of the name rule says (each rune to the smallest rune of its folding orbit).
func foldName(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		return m
	}, s)
}

// foldsCase: names are unique case-insensitively unless a listing proved otherwise (two children whose names
// differ only in case).
func (c *Client) foldsCase() bool { return !c.caseSensitive.Load() }

// noteCase looks at one listing for proof that the server keeps names apart by case.
func (c *Client) noteCase(kids []object) {
	if c.caseSensitive.Load() || len(kids) < 2 {
		return
	}
	seen := make(map[string]bool, len(kids))
	for i := range kids {
		k := foldName(kids[i].name())
		if seen[k] {
			c.caseSensitive.Store(true)
			c.lg.Info("the server keeps names apart by case: resolving names exactly", zap.String("remote", c.spec))
			return
		}
		seen[k] = true
	}
}

// findChild finds name among kids: the exact name first, else (on a server that folds case) the one equal under
// case folding, which is the one the server would take for it.
func (c *Client) findChild(kids []object, name string) *object {
	for i := range kids {
		if kids[i].name() == name {
			return &kids[i]
		}
	}
	if !c.foldsCase() {
		return nil
	}
	k := foldName(name)
	for i := range kids {
		if foldName(kids[i].name()) == k {
			return &kids[i]
		}
	}
	return nil
}

// samePath compares two absolute server paths the way the server does.
func (c *Client) samePath(a, b string) bool {
	return a == b || (c.foldsCase() && foldName(a) == foldName(b))
}

// Replacing a file's content. The reference documents no way to do it: upload answers 409 name_conflict when
// the name exists, and `overwrite` is a guess. The client learns once per process whether the server honours
// overwrite=true, and otherwise replaces in steps that never lose the old content.

// learnMax is the largest replace that may serve to learn whether overwrite is honoured: its body is held in
// memory, so that a 409 costs a resend of at most this much and no temp file.
const learnMax = 64 << 10

// replace puts new content at old's place: with overwrite where the server honours it, else upload beside it
// under a temporary name, check revision_id again, delete the old file (the server keeps deleted files and their
// revisions), rename the new one into place. A crash between the steps leaves the old version in the server's
// deleted files and the new one under the temp name (and locally), and the next pass converges: the name is
// missing or old, the local file is newer, so it is uploaded again.
func (c *Client) replace(ctx context.Context, p remote.Path, parent int64, old *object, body io.Reader,
	size int64) (object, error) {
	name := old.name() // keep the server's spelling of the name
	var extra *object  // what an overwrite attempt stored beside the file instead (another name): our temp
	switch tri(c.overwrite.Load()) {
	case unknown:
		if size > learnMax {
			break // learn on a small file; the steps are right either way
		}
		buf, err := io.ReadAll(io.LimitReader(body, size+1))
		if err != nil {
			return object{}, err
		}
		if int64(len(buf)) != size {
			return object{}, fmt.Errorf("upload %s: body of %d bytes, want %d (file changed during the upload?)",
				p.Quoted(), len(buf), size)
		}
		body = bytes.NewReader(buf)
		obj, done, err := c.tryOverwrite(ctx, p, name, parent, old, body, size)
		if done || err != nil {
			return obj, err
		}
		if obj.ID > 0 {
			extra = &obj
		}
		body = bytes.NewReader(buf)
	case yes:
		start := int64(-1)
		if sk, ok := body.(io.Seeker); ok {
			if pos, err := sk.Seek(0, io.SeekCurrent); err == nil {
				start = pos
			}
		}
		obj, done, err := c.tryOverwrite(ctx, p, name, parent, old, body, size)
		if done || err != nil {
			return obj, err
		}
		if obj.ID > 0 {
			extra = &obj
			break
		}
		if start < 0 {
			return object{}, fmt.Errorf("upload %s: %w", p.Quoted(), errNoReplay)
		}
		if _, err := body.(io.Seeker).Seek(start, io.SeekStart); err != nil {
			return object{}, fmt.Errorf("upload %s: rewind: %w", p.Quoted(), err)
		}
	}
	var tmp object
	if extra != nil {
		tmp = *extra
	} else {
		var err error
		if tmp, err = c.upload(ctx, p.Dir(), tempName(name), parent, body, size, false, nil); err != nil {
			return object{}, err
		}
	}
	item := c.rootPath("/" + strconv.FormatInt(int64(tmp.ID), 10))
	dropTmp := func() {
		if err := c.call(ctx, "delete temp", http.MethodPost, item+"/delete", nil, true, nil); err != nil &&
			!errors.Is(err, remote.ErrNotFound) {
			c.lg.Warn("could not delete a temp upload", zap.String("path", p.Quoted()), zap.Error(err))
		}
	}
	_, now, err := c.lookup(ctx, p)
	switch {
	case err != nil:
		dropTmp()
		return object{}, err
	case now == nil || now.ID != old.ID || now.RevisionID != old.RevisionID || now.isFolder():
		dropTmp()
		return object{}, fmt.Errorf("put %s: changed during the upload: %w", p.Quoted(), remote.ErrConflict)
	}
	err = c.call(ctx, "delete "+p.Quoted(), http.MethodPost, c.rootPath("/"+strconv.FormatInt(int64(old.ID), 10))+
		"/delete", nil, true, nil)
	if err != nil && !errors.Is(err, remote.ErrNotFound) {
		dropTmp()
		return object{}, err
	}
	var out object
	err = c.call(ctx, "rename "+p.Quoted(), http.MethodPost, item+"/rename", url.Values{"name": {name}}, true,
		c.decode(&out))
	if err != nil {
		// Taken meanwhile (another client wrote the name after our delete): ours stays under the temp name
		// until the next pass uploads again; say so rather than hide it.
		return object{}, fmt.Errorf("put %s: the old version is in the server's deleted files; the new one could "+
			"not take its name: %w", p.Quoted(), err)
	}
	if out.Type != "file" || out.ID != tmp.ID {
		out = tmp
		out.Path = old.Path
	}
	return out, nil
}

// tryOverwrite uploads with overwrite=true and learns from the answer. done: the file now holds the new content
// (a new revision, or a new id under the same name). Otherwise the server does not honour overwrite (from now
// on the steps are used) and obj, when it has an id, is a copy the server stored under another name.
func (c *Client) tryOverwrite(ctx context.Context, p remote.Path, name string, parent int64, old *object,
	body io.Reader, size int64) (obj object, done bool, err error) {
	obj, err = c.upload(ctx, p.Dir(), name, parent, body, size, true, old)
	var ae *APIError
	switch {
	case err == nil && c.samePath(obj.Path, old.Path):
		c.learnOverwrite(yes)
		return obj, true, nil
	case err == nil:
		c.learnOverwrite(no)
		return obj, false, nil
	case errors.As(err, &ae) && ae.Code == "name_conflict":
		c.learnOverwrite(no)
		return object{}, false, nil
	}
	return object{}, false, err
}

func (c *Client) learnOverwrite(v tri) {
	if tri(c.overwrite.Swap(int32(v))) != v {
		c.lg.Info("learned whether the server honours overwrite=true on upload", zap.Bool("honoured", v == yes))
	}
}

// tempName is a hidden name beside name that keeps its extension, so the policy judges it like the real one.
func tempName(name string) string {
	t := tempUploadPrefix + randHex(4) + "-" + name
	if len(t) <= remote.MaxNameBytes {
		return t
	}
	ext := ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 && len(name)-i <= 32 {
		ext = name[i:]
	}
	return tempUploadPrefix + randHex(8) + ext
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
