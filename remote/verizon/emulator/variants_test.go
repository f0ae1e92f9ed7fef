package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func (a *api) refresh(rt string) (int, tokenAnswer) {
	a.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}}
	req, _ := http.NewRequest("POST", a.r.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ta tokenAnswer
	_ = json.NewDecoder(resp.Body).Decode(&ta)
	return resp.StatusCode, ta
}

func TestUnknownVariantRefused(t *testing.T) {
	if _, err := New(nil, Options{DataDir: t.TempDir(), Variants: []string{"move-target-sideways"}}); err == nil ||
		!strings.Contains(err.Error(), "move-target-path") {
		t.Fatalf("unknown variant: %v", err)
	}
}

// The defaults are the documented behaviour where there is one, else the least helpful reading.
func TestDefaultRedirectAndRefreshAreDocumented(t *testing.T) {
	a := newAPI(t, Options{})
	a.tok = ""
	q := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {"http://127.0.0.1:4711/cb"}, "response_type": {"code"}}
	if st, _, _ := a.call("GET", "/oauth2/authorize?"+q.Encode(), nil, nil); st != 200 {
		t.Fatalf("unregistered loopback redirect: %d, want the 200 failure page", st)
	}
	q.Set("redirect_uri", DefaultRedirectURL)
	if st, _, _ := a.call("GET", "/oauth2/authorize?"+q.Encode(), nil, nil); st != 302 {
		t.Fatalf("registered redirect: %d", st)
	}
	st, first := a.refresh(a.r.RefreshToken)
	if st != 200 {
		t.Fatalf("refresh: %d", st)
	}
	// The answer was "lost": the old refresh token is dead all the same (single use).
	if st, _ := a.refresh(a.r.RefreshToken); st != 401 {
		t.Fatalf("second use of a refresh token: %d, want 401", st)
	}
	if st, _ := a.refresh(first.RefreshToken); st != 200 {
		t.Fatalf("the new refresh token: %d", st)
	}
}

// Without a deviceid, a second login of the app revokes the first one's refresh token; with its own deviceid each
// keeps its own.
func TestDeviceIDSeparatesRefreshTokens(t *testing.T) {
	a := newAPI(t, Options{})
	login := func(device string) string {
		a.t.Helper()
		tok := a.tok
		a.tok = ""
		defer func() { a.tok = tok }()
		q := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {DefaultRedirectURL}, "response_type": {"code"}}
		if device != "" {
			q.Set("deviceid", device)
		}
		st, h, _ := a.call("GET", "/oauth2/authorize?"+q.Encode(), nil, nil)
		loc, _ := url.Parse(h.Get("Location"))
		if st != 302 {
			t.Fatalf("authorize: %d", st)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {DefaultRedirectURL}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
		req, _ := http.NewRequest("POST", a.r.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := a.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ta tokenAnswer
		_ = json.NewDecoder(resp.Body).Decode(&ta)
		return ta.RefreshToken
	}
	shared1, shared2 := login(""), login("")
	if st, _ := a.refresh(shared1); st != 401 {
		t.Fatalf("first login without deviceid after a second one: %d, want 401", st)
	}
	if st, _ := a.refresh(shared2); st != 200 {
		t.Fatalf("second login: %d", st)
	}
	own1, own2 := login("dev-1"), login("dev-2")
	if st, _ := a.refresh(own1); st != 200 {
		t.Fatalf("deviceid dev-1: %d", st)
	}
	if st, _ := a.refresh(own2); st != 200 {
		t.Fatalf("deviceid dev-2: %d", st)
	}
}

func TestIntentParameterVariants(t *testing.T) {
	t.Run("ignore", func(t *testing.T) {
		a := newAPI(t, Options{})
		a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
		a.upload("/VZMOBILE/t", "a.txt", []byte("v1"), "", 0)
		if st, b := a.upload("/VZMOBILE/t", "a.txt", []byte("v2"), "&version=7&safe=true&modificationDate=2001-01-01T00:00:00.000Z", 0); st != 201 {
			t.Fatalf("ignored parameters: %d %s", st, b)
		}
		var meta struct{ File cloudFile }
		a.want(200, "GET", "/metadata/VZMOBILE/t/a.txt", nil, &meta)
		if meta.File.Version != 2 || meta.File.ModificationDate != meta.File.VersionCreated {
			t.Fatalf("after ignored parameters: %+v", meta.File)
		}
	})
	t.Run("reject", func(t *testing.T) {
		a := newAPI(t, Options{Variants: []string{VariantIntentReject}})
		a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
		if st, _ := a.upload("/VZMOBILE/t", "a.txt", []byte("v1"), "&safe=true", 0); st != 400 {
			t.Fatalf("undocumented parameter: %d, want 400", st)
		}
		if st, _ := a.upload("/VZMOBILE/t", "a.txt", []byte("v1"), "", 0); st != 201 {
			t.Fatalf("documented parameters only: %d", st)
		}
	})
}

// What Verizon's Python SDK sends must work: Python booleans, and an upload without a checksum parameter.
func TestAcceptsWhatTheSDKSends(t *testing.T) {
	a := newAPI(t, Options{})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	a.upload("/VZMOBILE/t", "a.txt", []byte("x"), "", 0)
	a.want(200, "DELETE", "/fops/delete?path=/VZMOBILE/t/a.txt&purge=False", nil, nil)
	q := url.Values{"path": {"/VZMOBILE/t"}, "name": {"b.txt"}, "size": {"3"}, "checksum": {sum([]byte("abc"))}, "chunk": {"False"}}
	var in struct {
		URLs struct{ UploadURL string } `json:"uploadurls"`
	}
	a.want(200, "GET", "/fileupload/intent?"+q.Encode(), nil, &in)
	req, _ := http.NewRequest("POST", in.URLs.UploadURL, strings.NewReader("abc"))
	req.Header.Set("Authorization", "Bearer "+a.tok)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("upload without checksum: %d", resp.StatusCode)
	}
}

func TestChunkChecksumVariants(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 30))
	wholeOnEach := func(a *api) int {
		q := url.Values{"path": {"/VZMOBILE/t"}, "name": {"c.bin"}, "size": {"300"}, "checksum": {sum(data)}, "chunk": {"true"}}
		var in struct {
			URLs struct{ UploadURL, CommitURL string } `json:"uploadurls"`
		}
		a.want(200, "GET", "/fileupload/intent?"+q.Encode(), nil, &in)
		req, _ := http.NewRequest("POST", in.URLs.UploadURL+"&offset=1&checksum="+sum(data), strings.NewReader(string(data[:100])))
		req.Header.Set("Authorization", "Bearer "+a.tok)
		resp, err := a.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a := newAPI(t, Options{})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	if st := wholeOnEach(a); st != 400 {
		t.Fatalf("documented reading: the file's checksum on a chunk answered %d, want 400", st)
	}
}

func TestChunkChecksumWholeVariant(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 30))
	w := newAPI(t, Options{Variants: []string{VariantChunkChecksumWhole}})
	w.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	q := url.Values{"path": {"/VZMOBILE/t"}, "name": {"c.bin"}, "size": {"300"}, "checksum": {sum(data)}, "chunk": {"true"}}
	var in struct {
		URLs struct{ UploadURL, CommitURL string } `json:"uploadurls"`
	}
	w.want(200, "GET", "/fileupload/intent?"+q.Encode(), nil, &in)
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", in.URLs.UploadURL+"&offset="+string(rune('1'+i))+"&checksum="+sum(data),
			strings.NewReader(string(data[i*100:(i+1)*100])))
		req.Header.Set("Authorization", "Bearer "+w.tok)
		resp, err := w.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("chunk %d with the file's checksum: %d", i+1, resp.StatusCode)
		}
	}
	w.want(201, "POST", strings.TrimPrefix(in.URLs.CommitURL, w.r.URL), nil, nil)
}

func TestMoveAndMkdirVariants(t *testing.T) {
	a := newAPI(t, Options{})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	var f struct{ Folder cloudFolder }
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t", "override": "modify"}, &f)
	if f.Folder.Name != "t (1)" {
		t.Fatalf("modify on a taken name (default variant): %+v", f.Folder)
	}
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE/t", "name": "d"}, nil)
	a.upload("/VZMOBILE/t", "a.txt", []byte("x"), "", 0)
	// default: the target is the destination folder
	a.want(200, "POST", "/fops/move", map[string]any{"src": "/VZMOBILE/t/a.txt", "target": "/VZMOBILE/t/d", "safe": true}, nil)
	a.want(200, "GET", "/metadata/VZMOBILE/t/d/a.txt", nil, nil)
	a.want(404, "POST", "/fops/move", map[string]any{"src": "/VZMOBILE/t/d/a.txt", "target": "/VZMOBILE/t/b.txt", "safe": true}, nil)
}

func TestDeltaMoveVariants(t *testing.T) {
	for _, tc := range []struct {
		variant string
		deleted []string
	}{
		{VariantDeltaMoveNone, nil},
		{VariantDeltaMoveFolder, []string{"/VZMOBILE/t/d"}},
		{VariantDeltaMoveSubtree, []string{"/VZMOBILE/t/d", "/VZMOBILE/t/d/x.txt"}},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			a := newAPI(t, Options{Variants: []string{tc.variant, VariantMoveTargetPath}})
			a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
			a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE/t", "name": "d"}, nil)
			a.upload("/VZMOBILE/t/d", "x.txt", []byte("x"), "", 0)
			_, tag, _ := a.fullview("")
			a.want(200, "POST", "/fops/move", map[string]any{"src": "/VZMOBILE/t/d", "target": "/VZMOBILE/t/e", "safe": true}, nil)
			st, _, d := a.fullview(tag)
			if st != 200 || !slices.Equal(d.deleted(), tc.deleted) || !slices.Equal(d.files(), []string{"/VZMOBILE/t/e/x.txt"}) {
				t.Fatalf("delta %d: deleted %v files %v", st, d.deleted(), d.files())
			}
		})
	}
}
