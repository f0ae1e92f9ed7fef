package pcloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// Wire types of pCloud's HTTP JSON API (summarised in PROVIDER.md). Every answer is a JSON object with an integer
// `result` (0 = success) and, on failure, an `error` text, sent with HTTP 200.

// status is the envelope every answer carries.
type status struct {
	Result int    `json:"result"`
	Error  string `json:"error"`
}

func (s *status) envelope() *status { return s }

// answer is any decoded reply: the call helper checks its envelope.
type answer interface{ envelope() *status }

// apiTime is a datetime as pCloud sends it: Unix seconds with timeformat=timestamp (which the client always asks
// for), or the default RFC 1123 string with a numeric zone. Both are accepted so a server that ignores the
// parameter still decodes.
type apiTime int64

func (t *apiTime) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		tm, err := time.Parse(time.RFC1123Z, str)
		if err != nil {
			return fmt.Errorf("datetime %q: %w", remote.Escape(str), err)
		}
		*t = apiTime(tm.Unix())
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("datetime %s: %w", remote.Escape(s), err)
	}
	*t = apiTime(n)
	return nil
}

// Time is the datetime in UTC (pCloud's precision is one second).
func (t apiTime) Time() time.Time { return time.Unix(int64(t), 0).UTC() }

// meta is pCloud's metadata object (§4.1). ParentFolderID is a pointer: the root's own metadata has none, and
// "parent 0" (the account root) must not be confused with "no parent". hash is an unsigned 64-bit value that
// json decodes exactly into uint64 (never through a float).
type meta struct {
	Name           string  `json:"name"`
	IsFolder       bool    `json:"isfolder"`
	FolderID       uint64  `json:"folderid"`
	FileID         uint64  `json:"fileid"`
	ParentFolderID *uint64 `json:"parentfolderid"`
	Size           uint64  `json:"size"`
	Hash           uint64  `json:"hash"`
	Created        apiTime `json:"created"`
	Modified       apiTime `json:"modified"`
	IsDeleted      bool    `json:"isdeleted"`
	DeletedFileID  uint64  `json:"deletedfileid"`
	Contents       []*meta `json:"contents"`

	incomplete bool // set by the client: the folder could not be listed (its contents are unknown)
}

// id is the folderid or fileid, whichever the kind has.
func (m *meta) id() uint64 {
	if m.IsFolder {
		return m.FolderID
	}
	return m.FileID
}

func (m *meta) parent() (uint64, bool) {
	if m.ParentFolderID == nil {
		return 0, false
	}
	return *m.ParentFolderID, true
}

// rev is what Entry.Rev holds: the opaque content `hash` in decimal, compared only for "changed or not".
func (m *meta) rev() string {
	if m.IsFolder {
		return ""
	}
	return strconv.FormatUint(m.Hash, 10)
}

// entryID is Entry.ID: pCloud's own "d<folderid>" / "f<fileid>" spelling.
func entryID(dir bool, id uint64) string {
	if dir {
		return "d" + strconv.FormatUint(id, 10)
	}
	return "f" + strconv.FormatUint(id, 10)
}

type metaAnswer struct {
	status
	Metadata *meta `json:"metadata"`
	Created  *bool `json:"created"` // createfolderifnotexists: false = it already existed
}

type uploadAnswer struct {
	status
	FileIDs   []uint64            `json:"fileids"`
	Metadata  []*meta             `json:"metadata"`
	Checksums []map[string]string `json:"checksums"`
}

type checksumAnswer struct {
	status
	SHA1     string `json:"sha1"`
	MD5      string `json:"md5"`
	SHA256   string `json:"sha256"`
	Metadata *meta  `json:"metadata"`
}

type linkAnswer struct {
	status
	Path  string   `json:"path"`
	Hosts []string `json:"hosts"`
	Hash  uint64   `json:"hash"`
	Size  uint64   `json:"size"`
}

type diffEntry struct {
	Event    string `json:"event"`
	DiffID   uint64 `json:"diffid"`
	Metadata *meta  `json:"metadata"`
}

type diffAnswer struct {
	status
	DiffID  uint64      `json:"diffid"`
	Entries []diffEntry `json:"entries"`
}

type uploadCreateAnswer struct {
	status
	UploadID uint64 `json:"uploadid"`
}

type uploadInfoAnswer struct {
	status
	Size   uint64 `json:"size"`
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
}

type userinfoAnswer struct {
	status
	Quota     int64  `json:"quota"`
	UsedQuota int64  `json:"usedquota"`
	UserID    uint64 `json:"userid"`
}

type plainAnswer struct{ status }

// APIError is a non-zero `result`. It keeps pCloud's code and message and matches the remote sentinel the code
// stands for (errors.Is(err, remote.ErrNotFound) for 2005/2009, ...).
type APIError struct {
	Method string
	Code   int
	Msg    string
	kind   error
}

func (e *APIError) Error() string { return fmt.Sprintf("pcloud %s: %d %s", e.Method, e.Code, e.Msg) }

// Unwrap returns the sentinel (remote.ErrNotFound, ...) or nil for codes that are none of them.
func (e *APIError) Unwrap() error { return e.kind }

// Result codes the client acts on by number (§7.2; message texts are informational only).
const (
	codeLoginRequired   = 1000
	codeRecursiveRoot   = 1101 // recursive listfolder of folder 0 refused (since 2026)
	codeUploadNotFound  = 1900
	codeLoginFailed     = 2000
	codeInvalidName     = 2001
	codeNoParent        = 2002
	codeAccessDenied    = 2003
	codeExists          = 2004
	codeNoFolder        = 2005
	codeNotEmpty        = 2006
	codeOverQuota       = 2008
	codeNoFile          = 2009
	codeInvalidPath     = 2010
	codeNoRevision      = 2029
	codeBroken          = 2041
	codeRenameRoot      = 2042
	codeIntoOwnSubtree  = 2043
	codeInvalidToken    = 2094
	codeRevokedToken    = 2095
	codeInternal        = 5000
	codeInternalNoSpace = 5002
)

// kindOf maps a result code to the remote sentinel it stands for and says whether the request may be retried
// after a backoff. The classes follow §7.1: 1xxx client bugs (no retry), 19xx races (retry), 2xxx "not
// possible" (typed, no retry), 4xxx rate limiting and 5xxx temporary trouble (back off and retry).
func kindOf(code int) (kind error, retry bool) {
	switch code {
	case codeLoginRequired, codeLoginFailed, codeInvalidToken, codeRevokedToken:
		// pCloud tokens never expire and there is no refresh token: a refused token means "log in again".
		return remote.ErrUnauthorized, false
	case codeRecursiveRoot:
		return nil, false
	case codeInvalidName:
		return remote.ErrInvalidName, false
	case codeNoParent, codeNoFolder, codeNoFile, codeInvalidPath, codeNoRevision:
		return remote.ErrNotFound, false
	case codeExists, codeIntoOwnSubtree:
		return remote.ErrConflict, false
	case codeNotEmpty:
		return remote.ErrNotEmpty, false
	case codeAccessDenied, codeOverQuota, codeRenameRoot, 2007, 2023, 2028:
		return remote.ErrUnavailable, false
	case codeBroken:
		return remote.ErrUnavailable, true
	}
	switch {
	case code >= 1900 && code < 2000:
		return remote.ErrUnavailable, true
	case code >= 4000 && code < 6000:
		return remote.ErrUnavailable, true
	}
	return nil, false
}

// apiError builds the error for a non-zero result; a retriable one is wrapped for httpx's backoff.
func apiError(method string, st *status) error {
	kind, retry := kindOf(st.Result)
	msg := st.Error
	if len(msg) > 200 {
		msg = msg[:200]
	}
	e := &APIError{Method: method, Code: st.Result, Msg: remote.Escape(msg), kind: kind}
	if retry {
		return httpx.Retry(e, 0)
	}
	return e
}

// hasCode reports whether err is an APIError with one of codes.
func hasCode(err error, codes ...int) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.Code == c {
			return true
		}
	}
	return false
}
