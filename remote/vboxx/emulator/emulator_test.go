package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

type apiClient struct {
	t   *testing.T
	r   *Running
	hc  *http.Client
	tok string
}

func login(t *testing.T, r *Running) *apiClient {
	t.Helper()
	c := &apiClient{t: t, r: r, hc: r.HTTPClient()}
	resp, err := c.hc.PostForm(r.URL+"/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {"anchor"},
		"username": {r.User}, "password": {r.Password}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	c.tok = tok.AccessToken
	return c
}

func (c *apiClient) do(method, path string, form url.Values, body io.Reader, ct string) (int, map[string]any) {
	c.t.Helper()
	u := c.r.URL + "/api/2/" + path
	if method == http.MethodGet && form != nil {
		u += "?" + form.Encode()
	} else if form != nil {
		body, ct = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	req, _ := http.NewRequest(method, u, body)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Authorization", "Bearer "+c.tok)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("%s %s: not JSON: %q", method, path, data)
		}
	}
	return resp.StatusCode, m
}

func (c *apiClient) upload(path, name string, data []byte, overwrite bool) (int, map[string]any) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("overwrite", strconv.FormatBool(overwrite))
	w, _ := mw.CreateFormFile("file", name)
	_, _ = w.Write(data)
	_ = mw.Close()
	return c.do(http.MethodPost, path, nil, &buf, mw.FormDataContentType())
}

func TestPlainHTTPIsRefused(t *testing.T) {
	r := Start(t, Options{})
	resp, err := http.Get("http" + strings.TrimPrefix(r.URL, "https") + "/api/2/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 400 || m["error"] != "insecure_transport" || m["error_description"] != "Requests MUST utilize https." {
		t.Fatalf("plain http: %d %v", resp.StatusCode, m)
	}
}

func TestAPIBasics(t *testing.T) {
	r := Start(t, Options{ExcludedExtensions: []string{".exe"}, MaxFileSize: 100, Variants: []string{"overwrite"}})
	c := login(t, r)
	root := strconv.FormatInt(r.RootID, 10)
	flags := url.Values{"include_children": {"true"}, "include_deleted": {"false"}, "include_lock_info": {"false"},
		"include_permissions": {"true"}}

	st, m := c.do("GET", "files/"+root, flags, nil, "")
	if st != 200 || len(m["hash"].(string)) != 40 {
		t.Fatalf("root: %d %v", st, m)
	}
	h := m["hash"].(string)
	q := url.Values{"hash": {h}}
	for k, v := range flags {
		q[k] = v
	}
	if st, _ := c.do("GET", "files/"+root, q, nil, ""); st != 304 {
		t.Fatalf("same hash: %d", st)
	}
	st, f := c.do("POST", "files/"+root+"/create_folder", url.Values{"name": {"Projects"}}, nil, "")
	if st != 200 || f["path"] != "/Projects" {
		t.Fatalf("create_folder: %d %v", st, f)
	}
	if st, e := c.do("POST", "files/"+root+"/create_folder", url.Values{"name": {"projects"}}, nil, ""); st != 409 || e["error"] != "name_conflict" {
		t.Fatalf("case clash: %d %v", st, e)
	}
	fid := strconv.FormatInt(int64(f["id"].(float64)), 10)
	if st, _ := c.do("GET", "files/"+root, q, nil, ""); st != 200 {
		t.Fatalf("root after a change: %d", st)
	}
	st, up := c.upload("files/"+root+"/folder/"+fid+"/upload", "plan.odt", []byte("hello"), false)
	if st != 200 || up["path"] != "/Projects/plan.odt" || up["size"].(float64) != 5 {
		t.Fatalf("upload: %d %v", st, up)
	}
	if st, e := c.upload("files/"+root+"/upload", "x.exe", []byte("x"), false); st != 400 || e["error"] != "invalid_extension" {
		t.Fatalf("excluded: %d %v", st, e)
	}
	if st, e := c.upload("files/"+root+"/upload", "big.bin", make([]byte, 200), false); st != 409 || e["error"] != "policy_error" {
		t.Fatalf("too big: %d %v", st, e)
	}
	if st, e := c.upload("files/"+root+"/upload", "a:b", []byte("x"), false); st != 400 || e["error"] != "invalid_name" {
		t.Fatalf("bad name: %d %v", st, e)
	}
	if err := r.Emu.LockAsOther("/Projects/plan.odt"); err != nil {
		t.Fatal(err)
	}
	if st, e := c.upload("files/"+root+"/folder/"+fid+"/upload", "plan.odt", []byte("v2"), true); st != 409 || e["error"] != "resource_locked" {
		t.Fatalf("locked: %d %v", st, e)
	}
	since := r.Emu.Now().Add(-time.Minute).Format(timeFmt)
	st, ms := c.do("GET", "files/"+root+"/modified_since", url.Values{"since": {since}}, nil, "")
	if st != 200 || len(ms["results"].([]any)) != 1 {
		t.Fatalf("modified_since: %d %v", st, ms)
	}
	if st, e := c.do("GET", "files/"+root+"/modified_since", url.Values{"since": {since + "Z"}}, nil, ""); st != 400 || e["error"] != "invalid_datetime_format" {
		t.Fatalf("bad since: %d %v", st, e)
	}
	r.ExpireAccessTokens()
	if st, e := c.do("GET", "person", nil, nil, ""); st != 401 || e["error"] != "access_denied" {
		t.Fatalf("expired: %d %v", st, e)
	}
}

func TestDataPersists(t *testing.T) {
	dir := t.TempDir()
	e, err := New(nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.MkdirAll("/a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteFile("/a/b/c.txt", []byte("persist")); err != nil {
		t.Fatal(err)
	}
	_ = e.Close()
	e, err = New(nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got, err := e.ReadFile("/a/b/c.txt")
	if err != nil || string(got) != "persist" {
		t.Fatalf("after restart: %q %v", got, err)
	}
}

func TestServeForTheCLI(t *testing.T) {
	e, err := New(nil, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := Serve(nil, e, ServeOptions{Addr: "127.0.0.1:0", Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := &Running{Emu: e, URL: s.URL, CAFile: s.CAFile}
	if !strings.HasPrefix(s.URL, "https://") || s.AdminURL == "" {
		t.Fatalf("serve: %+v", s)
	}
	tc, err := emukitTLS(t, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Get(r.URL + "/api/2/version")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("version: %v %v", err, resp)
	}
	resp.Body.Close()
}
