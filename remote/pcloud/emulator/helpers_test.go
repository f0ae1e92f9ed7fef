package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// Wire shapes decoded by the tests: written from the reference, not shared with the emulator's own types.
type tItem struct {
	Name           string  `json:"name"`
	Path           string  `json:"path"`
	ID             string  `json:"id"`
	IsFolder       bool    `json:"isfolder"`
	FolderID       *uint64 `json:"folderid"`
	FileID         uint64  `json:"fileid"`
	ParentFolderID *uint64 `json:"parentfolderid"`
	Size           int64   `json:"size"`
	Hash           uint64  `json:"hash"`
	Created        string  `json:"created"`
	Modified       string  `json:"modified"`
	ContentType    string  `json:"contenttype"`
	IsDeleted      bool    `json:"isdeleted"`
	DeletedFileID  uint64  `json:"deletedfileid"`
	Contents       []tItem `json:"contents"`
}

type tReply struct {
	Result   int    `json:"result"`
	Error    string `json:"error"`
	Metadata tItem  `json:"metadata"`
}

type tUpload struct {
	Result    int                 `json:"result"`
	FileIDs   []uint64            `json:"fileids"`
	Metadata  []tItem             `json:"metadata"`
	Checksums []map[string]string `json:"checksums"`
}

type api struct {
	t    *testing.T
	base string
	tok  string
	hc   *http.Client
}

func newAPI(t *testing.T, r *Running) *api {
	return &api{t: t, base: r.URL, tok: r.Token, hc: r.HTTPClient()}
}

// do sends one request with the token as a Bearer header and decodes the JSON answer into out.
func (a *api) do(httpMethod, method string, q url.Values, body io.Reader, ctype string, out any) int {
	a.t.Helper()
	req, err := http.NewRequest(httpMethod, a.base+"/"+method+"?"+q.Encode(), body)
	if err != nil {
		a.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if a.tok != "" {
		req.Header.Set("Authorization", "Bearer "+a.tok)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s: read: %v", method, err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s: decode %s: %v", method, data, err)
		}
	}
	return resp.StatusCode
}

// call is a GET with parameters; it returns the result code and fails the test on a non-200 status.
func (a *api) call(method string, out any, kv ...string) int {
	a.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	var raw json.RawMessage
	if st := a.do("GET", method, q, nil, "", &raw); st != 200 {
		a.t.Fatalf("%s: HTTP %d", method, st)
	}
	var res struct {
		Result int `json:"result"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		a.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatal(err)
		}
	}
	return res.Result
}

// must is call that expects result 0.
func (a *api) must(method string, out any, kv ...string) {
	a.t.Helper()
	if code := a.call(method, out, kv...); code != 0 {
		a.t.Fatalf("%s %v: result %d", method, kv, code)
	}
}

// code expects a given result.
func (a *api) code(want int, method string, kv ...string) {
	a.t.Helper()
	if got := a.call(method, nil, kv...); got != want {
		a.t.Errorf("%s %v: result %d, want %d", method, kv, got, want)
	}
}

func (a *api) mkdir(parent uint64, name string) uint64 {
	a.t.Helper()
	var r tReply
	a.must("createfolder", &r, "folderid", u(parent), "name", name)
	return *r.Metadata.FolderID
}

func (a *api) put(folder uint64, name string, data []byte, extra ...string) tUpload {
	a.t.Helper()
	q := url.Values{"folderid": {u(folder)}, "filename": {name}, "nopartial": {"1"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	var up tUpload
	if st := a.do("PUT", "uploadfile", q, bytes.NewReader(data), "application/octet-stream", &up); st != 200 || up.Result != 0 {
		a.t.Fatalf("uploadfile %s: HTTP %d result %d", name, st, up.Result)
	}
	return up
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }
