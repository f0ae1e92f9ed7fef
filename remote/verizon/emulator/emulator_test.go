package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

type api struct {
	t   *testing.T
	r   *Running
	hc  *http.Client
	tok string
}

func newAPI(t *testing.T, o Options) *api {
	t.Parallel()
	r := Start(t, o)
	hc := r.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &api{t: t, r: r, hc: hc, tok: r.AccessToken}
}

// call sends one request and returns status, headers and body.
func (a *api) call(method, path string, body io.Reader, hdr map[string]string) (int, http.Header, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.r.URL+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.tok != "" {
		req.Header.Set("Authorization", "Bearer "+a.tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

func (a *api) want(status int, method, path string, body any, out any) http.Header {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	got, h, data := a.call(method, path, rd, nil)
	if got != status {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return h
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// upload runs intent + upload (+ commit when chunkSize > 0) and returns the final status.
func (a *api) upload(parent, name string, data []byte, extra string, chunkSize int) (int, []byte) {
	a.t.Helper()
	q := url.Values{"path": {parent}, "name": {name}, "size": {strconv.Itoa(len(data))}, "checksum": {sum(data)},
		"chunk": {strconv.FormatBool(chunkSize > 0)}}
	st, _, body := a.call("GET", "/fileupload/intent?"+q.Encode()+extra, nil, nil)
	if st != 200 {
		return st, body
	}
	var in struct {
		URLs struct{ UploadURL, CommitURL string } `json:"uploadurls"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		a.t.Fatal(err)
	}
	post := func(u string, chunk []byte) (int, []byte) {
		req, _ := http.NewRequest("POST", u, bytes.NewReader(chunk))
		req.Header.Set("Authorization", "Bearer "+a.tok)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := a.hc.Do(req)
		if err != nil {
			a.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if chunkSize == 0 {
		return post(in.URLs.UploadURL+"&checksum="+sum(data), data)
	}
	for i, seq := 0, 1; i < len(data); i, seq = i+chunkSize, seq+1 {
		c := data[i:min(i+chunkSize, len(data))]
		if st, b := post(in.URLs.UploadURL+"&checksum="+sum(c)+"&offset="+strconv.Itoa(seq), c); st != 201 {
			a.t.Fatalf("chunk %d: %d %s", seq, st, b)
		}
	}
	return post(in.URLs.CommitURL, nil)
}

type delta struct {
	Data struct {
		File    []cloudFile   `json:"file"`
		Folder  []cloudFolder `json:"folder"`
		Deleted *struct {
			Path []string `json:"path"`
		} `json:"deleted"`
	} `json:"data"`
}

func (d delta) files() []string {
	var out []string
	for _, f := range d.Data.File {
		out = append(out, join(f.ParentPath, f.Name))
	}
	sort.Strings(out)
	return out
}

func (d delta) deleted() []string {
	if d.Data.Deleted == nil {
		return nil
	}
	return d.Data.Deleted.Path
}

func (a *api) fullview(etag string) (int, string, delta) {
	a.t.Helper()
	h := map[string]string{}
	if etag != "" {
		h["X-Header-ETag"] = etag
	}
	st, hdr, body := a.call("GET", "/fullview?virtualfolder=VZMOBILE", nil, h)
	var d delta
	if st == 200 {
		if err := json.Unmarshal(body, &d); err != nil {
			a.t.Fatal(err)
		}
	}
	return st, hdr.Get("X-Header-ETag"), d
}

func TestUploadMetadataDownload(t *testing.T) {
	a := newAPI(t, Options{MaxSimple: 1 << 20, Variants: []string{VariantIntentEnforce}})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "tandem"}, nil)
	data := []byte("hello verizon")
	if st, b := a.upload("/VZMOBILE/tandem", "a.txt", data, "", 0); st != 201 {
		t.Fatalf("upload: %d %s", st, b)
	}
	var meta struct{ File cloudFile }
	a.want(200, "GET", "/metadata/VZMOBILE/tandem/a.txt", nil, &meta)
	if meta.File.Checksum != sum(data) || meta.File.Version != 1 || meta.File.Extension != "txt" {
		t.Fatalf("metadata %+v", meta.File)
	}
	// Replacement with the right version bumps it; a stale one is refused at intent time.
	if st, _ := a.upload("/VZMOBILE/tandem", "a.txt", []byte("v2"), "&version=1", 0); st != 201 {
		t.Fatalf("replace: %d", st)
	}
	if st, _ := a.upload("/VZMOBILE/tandem", "a.txt", []byte("v3"), "&version=1", 0); st != 409 {
		t.Fatalf("stale version: %d", st)
	}
	if st, _ := a.upload("/VZMOBILE/tandem", "a.txt", []byte("v3"), "&safe=true", 0); st != 409 {
		t.Fatalf("safe over existing: %d", st)
	}
	if st, _ := a.upload("/VZMOBILE", "x.txt", []byte("x"), "", 0); st != 400 {
		t.Fatalf("upload into a virtual folder root: %d", st)
	}
	// Chunked, with a range read back.
	big := bytes.Repeat([]byte("0123456789"), 3000)
	if st, b := a.upload("/VZMOBILE/tandem", "big.bin", big, "", 7000); st != 201 {
		t.Fatalf("chunked: %d %s", st, b)
	}
	st, h, body := a.call("GET", "/files/VZMOBILE/tandem/big.bin", nil, map[string]string{"Range": "bytes=10-19"})
	if st != 206 || string(body) != "0123456789" || h.Get("Content-Range") == "" {
		t.Fatalf("range: %d %q", st, body)
	}
	// Query-token download works and never reaches the log.
	a.tok = ""
	st, _, body = a.call("GET", "/files/VZMOBILE/tandem/a.txt?access-token="+url.QueryEscape(a.r.AccessToken), nil, nil)
	if st != 200 || string(body) != "v2" {
		t.Fatalf("query token download: %d %q", st, body)
	}
	for _, e := range a.r.Log() {
		if strings.Contains(e.Query, a.r.AccessToken) {
			t.Fatalf("log holds the token: %+v", e)
		}
	}
	st, h, _ = a.call("GET", "/account", nil, nil)
	if st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %v", st, h)
	}
}

func TestFullviewDeltas(t *testing.T) {
	a := newAPI(t, Options{Variants: []string{VariantMoveTargetPath, VariantDeltaMoveSubtree}})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE/t", "name": "d"}, nil)
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE/t", "name": "empty"}, nil)
	a.upload("/VZMOBILE/t/d", "x.txt", []byte("x"), "", 0)
	a.upload("/VZMOBILE/t", "todo.txt", []byte("todo"), "", 0)

	st, tag, full := a.fullview("")
	if st != 200 || tag == "" || !slices.Equal(full.files(), []string{"/VZMOBILE/t/d/x.txt", "/VZMOBILE/t/todo.txt"}) ||
		len(full.Data.Folder) != 1 || full.Data.Folder[0].Name != "empty" || full.deleted() != nil {
		t.Fatalf("full listing %d %+v", st, full)
	}
	if st, again, _ := a.fullview(tag); st != 412 || again != tag {
		t.Fatalf("no change: %d %q", st, again)
	}
	// rename a file, move a folder, remove the empty folder
	a.want(200, "POST", "/fops/rename", map[string]any{"src": "/VZMOBILE/t/todo.txt", "target": "/VZMOBILE/t/done.txt", "safe": true}, nil)
	a.want(200, "POST", "/fops/move", map[string]any{"src": "/VZMOBILE/t/d", "target": "/VZMOBILE/t/e", "safe": true}, nil)
	a.want(200, "DELETE", "/fops/delete?path=/VZMOBILE/t/empty", nil, nil)
	st, tag2, d := a.fullview(tag)
	if st != 200 || tag2 == tag {
		t.Fatalf("delta: %d", st)
	}
	wantDel := []string{"/VZMOBILE/t/d", "/VZMOBILE/t/d/x.txt", "/VZMOBILE/t/empty", "/VZMOBILE/t/todo.txt"}
	if !slices.Equal(d.deleted(), wantDel) || !slices.Equal(d.files(), []string{"/VZMOBILE/t/done.txt", "/VZMOBILE/t/e/x.txt"}) {
		t.Fatalf("delta deleted %v files %v", d.deleted(), d.files())
	}
	// moves keep version and content token
	var todo cloudFile
	for _, f := range full.Data.File {
		if f.Name == "todo.txt" {
			todo = f
		}
	}
	if f := d.Data.File[0]; f.Name != "done.txt" || f.Version != 1 || f.ContentToken != todo.ContentToken {
		t.Fatalf("renamed file lost its identity: %+v", f)
	}
	if st, _, _ := a.fullview(tag2); st != 412 {
		t.Fatalf("after delta: %d", st)
	}
	a.r.ForceOutOfSync()
	if st, _, _ := a.fullview(tag2); st != 205 {
		t.Fatalf("forced out of sync: %d", st)
	}
	if st, _, _ := a.fullview("garbage"); st != 205 {
		t.Fatalf("garbage etag: %d", st)
	}
}

func TestHistoryLimitAnswers205(t *testing.T) {
	a := newAPI(t, Options{HistoryLimit: 3})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	_, tag, _ := a.fullview("")
	for i := range 4 {
		a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE/t", "name": strconv.Itoa(i)}, nil)
	}
	if st, _, _ := a.fullview(tag); st != 205 {
		t.Fatalf("etag behind the journal: %d", st)
	}
}

func TestFopsTrashSearch(t *testing.T) {
	a := newAPI(t, Options{Variants: []string{VariantMkdirModifyExisting, VariantMoveTargetPath}})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	a.want(200, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t", "override": "modify"}, nil)
	a.want(409, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	a.upload("/VZMOBILE/t", "report.pdf", []byte("one"), "", 0)
	a.upload("/VZMOBILE/t", "b.pdf", []byte("two"), "", 0)
	a.want(409, "POST", "/fops/move", map[string]any{"src": "/VZMOBILE/t/b.pdf", "target": "/VZMOBILE/t/report.pdf", "safe": true}, nil)
	var out struct{ File cloudFile }
	a.want(200, "POST", "/fops/copy", map[string]any{"src": "/VZMOBILE/t/b.pdf", "target": "/VZMOBILE/t/report.pdf", "safe": true, "conflictsolve": "copy"}, &out)
	if out.File.Name != "report (1).pdf" || out.File.Version != 1 {
		t.Fatalf("conflictsolve copy: %+v", out.File)
	}
	a.want(400, "POST", "/fops/rename", map[string]any{"src": "/VZMOBILE/t/b.pdf", "target": "/VZMOBILE/b.pdf", "safe": true}, nil)
	a.want(400, "DELETE", "/fops/delete?path=/VZMOBILE", nil, nil)
	// safe=false displaces the target into the trash
	a.want(200, "POST", "/fops/move", map[string]any{"src": "/VZMOBILE/t/b.pdf", "target": "/VZMOBILE/t/report.pdf", "safe": false}, nil)
	var trash struct {
		TrashCan struct{ File []cloudFile } `json:"trashCan"`
	}
	a.want(200, "GET", "/trash?virtualfolder=VZMOBILE", nil, &trash)
	if len(trash.TrashCan.File) != 1 || trash.TrashCan.File[0].Checksum != sum([]byte("one")) {
		t.Fatalf("trash %+v", trash)
	}
	a.want(404, "GET", "/metadata/VZMOBILE/t/b.pdf", nil, nil) // moved away, never trashed
	a.want(409, "POST", "/fops/restore", map[string]any{"path": []string{"/VZMOBILE/t/report.pdf"}}, nil)
	a.want(200, "DELETE", "/fops/delete?path=/VZMOBILE/t/report.pdf", nil, nil)
	a.want(410, "GET", "/metadata/VZMOBILE/t/report.pdf", nil, nil)
	a.want(410, "DELETE", "/fops/delete?path=/VZMOBILE/t/report.pdf", nil, nil)
	a.want(204, "POST", "/fops/restore", map[string]any{"path": []string{"/VZMOBILE/t/report.pdf"}}, nil)
	var meta struct{ File cloudFile }
	a.want(200, "GET", "/metadata/VZMOBILE/t/report.pdf", nil, &meta)
	if meta.File.Checksum != sum([]byte("two")) { // the most recently deleted came back
		t.Fatalf("restored %+v", meta.File)
	}
	var found struct {
		SearchResults struct{ File []cloudFile } `json:"searchResults"`
	}
	a.want(200, "GET", "/search?query="+url.QueryEscape("file:true AND name:rep"), nil, &found)
	if len(found.SearchResults.File) != 2 {
		t.Fatalf("search: %+v", found)
	}
	a.want(400, "GET", "/search?query="+url.QueryEscape("size:3"), nil, nil)
	a.want(200, "DELETE", "/trash?virtualfolder=VZMOBILE", nil, nil)
	a.want(200, "GET", "/trash?virtualfolder=VZMOBILE", nil, &trash)
	if len(trash.TrashCan.File) != 0 {
		t.Fatalf("emptied trash %+v", trash)
	}
}

func TestRefreshRotationGrace(t *testing.T) {
	a := newAPI(t, Options{Variants: []string{VariantRefreshGrace}})
	refresh := func(rt string) (int, tokenAnswer) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {DefaultClientID},
			"client_secret": {DefaultClientSecret}}
		req, _ := http.NewRequest("POST", a.r.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := a.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ta tokenAnswer
		_ = json.NewDecoder(resp.Body).Decode(&ta)
		return resp.StatusCode, ta
	}
	st, first := refresh(a.r.RefreshToken)
	if st != 200 || first.RefreshToken == a.r.RefreshToken || first.TokenType != "Bearer" {
		t.Fatalf("refresh: %d %+v", st, first)
	}
	// The answer was "lost": the old refresh token still works, and supersedes the first pair.
	st, second := refresh(a.r.RefreshToken)
	if st != 200 {
		t.Fatalf("grace refresh: %d", st)
	}
	a.tok = second.AccessToken
	a.want(200, "GET", "/account", nil, nil) // first use ends the grace
	if st, _ := refresh(a.r.RefreshToken); st != 401 {
		t.Fatalf("old refresh token after the new one was used: %d", st)
	}
	if st, _ := refresh(first.RefreshToken); st != 401 {
		t.Fatalf("superseded refresh token: %d", st)
	}
	a.r.ExpireAccessTokens()
	a.want(401, "GET", "/account", nil, nil)
	if st, third := refresh(second.RefreshToken); st != 200 || third.AccessToken == "" {
		t.Fatalf("refresh after expiry: %d", st)
	}
}

func TestAuthorizeRedirectsToLoopback(t *testing.T) {
	a := newAPI(t, Options{Variants: []string{VariantRedirectLoopback}})
	a.tok = ""
	q := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {"http://127.0.0.1:4711/cb"},
		"response_type": {"code"}, "state": {"s1"}}
	st, h, _ := a.call("GET", "/oauth2/authorize?"+q.Encode(), nil, nil)
	loc, _ := url.Parse(h.Get("Location"))
	if st != 302 || loc.Query().Get("state") != "s1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %v", st, h)
	}
	q.Set("redirect_uri", "https://evil.example/cb")
	if st, _, _ := a.call("GET", "/oauth2/authorize?"+q.Encode(), nil, nil); st != 200 {
		t.Fatalf("unregistered redirect: %d, want the 200 failure page", st)
	}
}

func TestPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e, err := New(zaptest.NewLogger(t), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.PutFile("/VZMOBILE/t/a.txt", []byte("keep"), testTime()); err != nil {
		t.Fatal(err)
	}
	before := e.Snapshot()
	e.Close()
	e2, err := New(zaptest.NewLogger(t), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	after := e2.Snapshot()
	if len(after) != len(before) || after["/VZMOBILE/t/a.txt"] != before["/VZMOBILE/t/a.txt"] {
		t.Fatalf("after restart %v, before %v", after, before)
	}
}

func TestHooksInFaultPlan(t *testing.T) {
	a := newAPI(t, Options{})
	if err := a.r.SetFaults(emukit.Rule{Match: "^account$", Times: 1, Action: emukit.Action{Do: HookExpireToken}}); err != nil {
		t.Fatal(err)
	}
	a.want(401, "GET", "/account", nil, nil)
}

func testTime() time.Time { return time.Date(2025, 3, 1, 10, 15, 30, 0, time.UTC) }
