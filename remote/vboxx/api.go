package vboxx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// Wire types of the vBoxxCloud API v2 (summarised in PROVIDER.md). Servers add fields over versions and send some
// numbers as strings, so decoding is lenient: unknown keys are ignored and numbers may be quoted.

// num is an integer that may arrive as a JSON number, a numeric string or null.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" || s == `""` {
		*n = 0
		return nil
	}
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("not an integer: %.40q", s)
		}
		v = int64(f)
	}
	*n = num(v)
	return nil
}

// flag is a boolean that may arrive as true/false or as the strings "true"/"false".
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch strings.Trim(strings.TrimSpace(string(b)), `"`) {
	case "true", "1":
		*f = true
	case "false", "0", "null", "":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %.40q", b)
	}
	return nil
}

// object is a root, folder or file (section 4). Only the fields tandem reads are decoded.
type object struct {
	Type        string   `json:"type"`
	ID          num      `json:"id"`
	RootID      num      `json:"root_id"`
	Name        string   `json:"name"` // roots only
	Path        string   `json:"path"`
	IsDeleted   flag     `json:"is_deleted"`
	IsLocked    flag     `json:"is_locked"`
	RevisionID  num      `json:"revision_id"`
	Size        num      `json:"size"`
	Modified    string   `json:"modified"`
	RootType    string   `json:"root_type"`
	Hash        string   `json:"hash"`
	Children    []object `json:"children"`
	Permissions perms    `json:"permissions"`
	SpaceUsed   *num     `json:"space_used"` // roots only: bytes of live files in the whole root
	temps       []object // children with tandem's temp names: left out of Children, found only by name
	// unholdable: children inside this folder whose names tandem cannot hold (with an id and a known type): left
	// out of Children, emitted by Walk and the feed with Entry.Skip, never taken as deleted
	unholdable []skippedChild
}

// perms is the caller's rights on an item (documented: e.g. FILE_VIEW, FILE_READ, FILE_WRITE). Absent (nil)
// means the server did not say; the list may also arrive as one comma-separated string.
type perms []string

func (p *perms) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*p = perms(list)
		if *p == nil {
			*p = perms{}
		}
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return nil // an unexpected shape says nothing: treated as absent
	}
	out := perms{}
	for _, x := range strings.Split(one, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	*p = out
	return nil
}

// canWrite: only a listed set without FILE_WRITE says no; a server that sends no permissions is taken at its
// word when it refuses (403 per item).
func (p perms) canWrite() bool {
	if p == nil {
		return true
	}
	for _, x := range p {
		if strings.EqualFold(x, "FILE_WRITE") {
			return true
		}
	}
	return false
}

func (o *object) isFolder() bool { return o.Type == "folder" || o.Type == "root" }

// name is the last path segment: objects have no name field (section 1).
func (o *object) name() string {
	i := strings.LastIndexByte(o.Path, '/')
	return o.Path[i+1:]
}

// modTime parses `modified` (UTC, second precision); zero when absent or malformed.
func (o *object) modTime() time.Time {
	t, err := time.Parse(timeLayout, o.Modified)
	if err != nil {
		return time.Time{}
	}
	return t
}

// timeLayout is the reference's date-time: UTC, no zone, no fraction.
const timeLayout = "2006-01-02T15:04:05"

type resultList struct {
	Results []object `json:"results"`
	Total   *num     `json:"total"`
	Offset  *num     `json:"offset"`
}

type person struct {
	ID         num      `json:"id"`
	RootID     num      `json:"root_id"`
	Roots      []object `json:"roots"`
	SpaceQuota num      `json:"space_quota"` // bytes; 0 or null: no quota
	SpaceUsage num      `json:"space_usage"`
	Policy     *struct {
		ExcludedExtensions extList `json:"excluded_extensions"`
		MaxFileSize        num     `json:"max_file_size"` // the reference leaves the unit blank
	} `json:"company_policy"`
}

// extList is excluded_extensions: documented as a comma-separated string with dots (".tmp,.exe"); a JSON list
// is accepted too. Kept lower case, with the dot.
type extList []string

func (l *extList) UnmarshalJSON(b []byte) error {
	var raw []string
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		raw = strings.FieldsFunc(one, func(r rune) bool { return r == ',' || r == ';' || r == ' ' })
	} else if err := json.Unmarshal(b, &raw); err != nil {
		return nil // unknown shape: no exclusions known; the server's invalid_extension still protects
	}
	out := extList{}
	for _, x := range raw {
		x = strings.ToLower(strings.TrimSpace(x))
		if x == "" {
			continue
		}
		if !strings.HasPrefix(x, ".") {
			x = "." + x
		}
		out = append(out, x)
	}
	*l = out
	return nil
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	TwoStepMode string `json:"two_step_mode"`
}

type tokenBody struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    num    `json:"expires_in"`
	GUID         string `json:"guid"`
	TokenType    string `json:"token_type"`
}

// maxChildren bounds one listing; the body size limit of httpx bounds it first in practice.
const maxChildren = 1 << 20

// decodeListing decodes a root or folder GET with include_children=true and checks its shape: the object is a
// root or folder at an absolute path, every child is a file or folder directly below that path with a name
// tandem can hold. Children that fail the name check are returned in skipped, not as errors: a hostile or odd
// remote name is reported and left out, and its siblings still sync.
func decodeListing(data []byte) (obj object, skipped []skippedChild, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil {
		return object{}, nil, fmt.Errorf("decode listing: %w", err)
	}
	if !obj.isFolder() {
		return object{}, nil, fmt.Errorf("decode listing: object of type %q, want a root or folder", remote.Escape(obj.Type))
	}
	if !strings.HasPrefix(obj.Path, "/") {
		return object{}, nil, fmt.Errorf("decode listing: path %q is not absolute", remote.Escape(obj.Path))
	}
	if len(obj.Children) > maxChildren {
		return object{}, nil, fmt.Errorf("decode listing: %d children", len(obj.Children))
	}
	kept := obj.Children[:0]
	for _, c := range obj.Children {
		if why := checkChild(obj.Path, c); why == tempChild {
			c.Children = nil
			obj.temps = append(obj.temps, c)
			continue
		} else if why != "" {
			sc := skippedChild{path: c.Path, why: why}
			if c.ID > 0 && (c.Type == "file" || c.Type == "folder") &&
				strings.HasPrefix(c.Path, strings.TrimSuffix(obj.Path, "/")+"/") {
				c.Children = nil
				sc.obj = c
				obj.unholdable = append(obj.unholdable, sc)
			}
			skipped = append(skipped, sc)
			continue
		}
		c.Children = nil // one level only
		kept = append(kept, c)
	}
	obj.Children = kept
	return obj, skipped, nil
}

const tempChild = "tandem temp"

// tempUploadPrefix starts the temp names this client uploads under (tempName). Only those are its own: another
// name that merely starts like tandem's temp files (".tandem-1.part") is a name tandem cannot hold, skipped and
// reported, so that a synced file renamed to it on the server keeps its local copy.
const tempUploadPrefix = remote.TempPrefix + "up-"

func ownTemp(name string) bool { return strings.HasPrefix(name, tempUploadPrefix) }

// skippedChild is a listed child tandem cannot use: its server path and why, and (for a file or folder with an
// id inside the listed folder) the object itself.
type skippedChild struct {
	path, why string
	obj       object
}

// checkChild says why a listed child cannot be used ("" when it can).
func checkChild(parent string, c object) string {
	if c.Type != "file" && c.Type != "folder" {
		return "unknown type " + remote.Escape(c.Type)
	}
	if c.ID <= 0 {
		return "no id"
	}
	i := strings.LastIndexByte(c.Path, '/')
	if i < 0 {
		return "path not absolute"
	}
	dir := c.Path[:i]
	if dir == "" {
		dir = "/"
	}
	if dir != parent {
		if rest, ok := strings.CutPrefix(c.Path, strings.TrimSuffix(parent, "/")+"/"); ok && rest != "" {
			return `its name contains "/", which no path can hold (rename it on the server)`
		}
		return "not inside its listed folder"
	}
	if err := remote.ValidName(c.Path[i+1:]); err != nil {
		if ownTemp(c.Path[i+1:]) {
			return tempChild // our own temp file of a replace: kept aside without a warning
		}
		return err.Error()
	}
	if c.Type == "file" && (c.Size < 0 || c.RevisionID <= 0) {
		return "no size or revision"
	}
	return ""
}

// APIError is an error answer of the API with its reference code. It matches the remote sentinel its code maps
// to (errors.Is), so the engine can sort it; the message keeps the server's code and description.
type APIError struct {
	Op     string // what tandem was doing, with the path
	Status int
	Code   string // e.g. "resource_locked"
	Msg    string // error_description, if any
	kind   error
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("vboxx %s: %d %s", e.Op, e.Status, e.Code)
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	switch e.Code {
	case "resource_locked":
		msg += " (locked by another user; retried later)"
	case "policy_error", "invalid_extension":
		msg += " (refused by the organization's policy; retried when the file or policy changes)"
	case "insecure_transport":
		msg += " (the server requires https)"
	case "forbidden":
		msg += " (this account may not change it; the change stays on this side and is retried when it changes)"
	}
	return msg
}

func (e *APIError) Unwrap() error { return e.kind }

// kindOf maps a status and error code to the sentinel the engine acts on (section 9's client column).
func kindOf(status int, code string) error {
	switch code {
	case "name_conflict":
		return remote.ErrConflict
	case "resource_locked", "policy_error", "invalid_extension", "forbidden":
		return remote.ErrUnavailable
	case "invalid_name", "name_too_long":
		return remote.ErrInvalidName
	case "root_deleted":
		return remote.ErrRootMissing
	case "not_found":
		return remote.ErrNotFound
	case "access_denied":
		return remote.ErrUnauthorized
	}
	switch status {
	case http.StatusNotFound:
		return remote.ErrNotFound
	case http.StatusGone:
		return remote.ErrRootMissing
	case http.StatusForbidden:
		return remote.ErrUnavailable
	}
	return nil
}

// apiErr turns httpx's StatusError for a final client error (4xx but 401/429) into an APIError with the
// reference's code. Other errors (retries given up, transport, unauthorized after the refresh) pass unchanged.
func apiErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *httpx.StatusError
	if !errors.As(err, &se) || se.Status < 400 || se.Status >= 500 || se.Status == http.StatusUnauthorized ||
		se.Status == http.StatusTooManyRequests {
		return err
	}
	var body errorBody
	_ = json.Unmarshal([]byte(se.Body), &body)
	return &APIError{Op: op, Status: se.Status, Code: body.Error, Msg: remote.Escape(body.Description),
		kind: kindOf(se.Status, body.Error)}
}
