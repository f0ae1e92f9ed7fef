package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawUpload posts a multipart body whose file part carries the Content-Disposition cd; chunked hides the length.
func (c *apiClient) rawUpload(path, cd string, data []byte, fields url.Values, chunked bool) (int, map[string]any) {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", cd)
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(data)
	_ = mw.Close()
	var body io.Reader = &buf
	if chunked {
		body = io.MultiReader(&buf) // not a *bytes.Buffer: net/http cannot know the length and sends chunks
	}
	return c.do(http.MethodPost, path, nil, body, mw.FormDataContentType())
}

// TestUploadVariants: the default reads only a plain filename= and refuses chunked bodies with 411, and
// ignores overwrite (409 as documented); the variants accept each.
func TestUploadVariants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		variants                           []string
		starOK, chunkedOK, overwriteHonour bool
	}{
		{nil, false, false, false},
		{[]string{"filename-star,chunked", "overwrite"}, true, true, true},
	} {
		r := Start(t, Options{Variants: tc.variants})
		c := login(t, r)
		up := "files/" + strconv.FormatInt(r.RootID, 10) + "/upload"
		st, m := c.rawUpload(up, `form-data; name="file"; filename*=UTF-8''caf%C3%A9.txt`, []byte("x"), nil, false)
		if ok := st == 200 && m["path"] == "/café.txt"; ok != tc.starOK {
			t.Errorf("%v: filename* only: %d %v", tc.variants, st, m)
		}
		if !tc.starOK && (st != 400 || m["error"] != "no_file_received") {
			t.Errorf("%v: filename* only: %d %v, want 400 no_file_received", tc.variants, st, m)
		}
		st, m = c.rawUpload(up, `form-data; name="file"; filename="b.txt"`, []byte("x"), nil, true)
		if ok := st == 200; ok != tc.chunkedOK || (!ok && st != http.StatusLengthRequired) {
			t.Errorf("%v: chunked: %d %v", tc.variants, st, m)
		}
		st, m = c.rawUpload(up, `form-data; name="file"; filename="a.txt"`, []byte("v1"), nil, false)
		if st != 200 {
			t.Fatalf("%v: plain filename: %d %v", tc.variants, st, m)
		}
		st, m2 := c.rawUpload(up, `form-data; name="file"; filename="A.TXT"`, []byte("v2"),
			url.Values{"overwrite": {"true"}}, false)
		honoured := st == 200 && m2["id"] == m["id"] && m2["revision_id"] != m["revision_id"]
		if honoured != tc.overwriteHonour || (!honoured && (st != 409 || m2["error"] != "name_conflict")) {
			t.Errorf("%v: overwrite: %d %v", tc.variants, st, m2)
		}
	}
}

// TestPermissionVariants: readonly-root refuses every change with 403 and lists no FILE_WRITE; readonly-folder
// refuses changes inside its folder only. Both seed a file to sync down.
func TestPermissionVariants(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{Variants: []string{"readonly-root"}})
	c := login(t, r)
	root := strconv.FormatInt(r.RootID, 10)
	st, m := c.do("GET", "files/"+root, url.Values{"include_children": {"true"}}, nil, "")
	if st != 200 || strings.Contains(toString(m["permissions"]), "FILE_WRITE") || len(m["children"].([]any)) != 1 {
		t.Fatalf("read-only root: %d %v", st, m)
	}
	if st, e := c.do("POST", "files/"+root+"/create_folder", url.Values{"name": {"x"}}, nil, ""); st != 403 || e["error"] != "forbidden" {
		t.Fatalf("create_folder in a read-only root: %d %v", st, e)
	}
	if st, e := c.upload("files/"+root+"/upload", "n.txt", []byte("x"), false); st != 403 {
		t.Fatalf("upload in a read-only root: %d %v", st, e)
	}

	r = Start(t, Options{Variants: []string{"readonly-folder"}})
	c = login(t, r)
	root = strconv.FormatInt(r.RootID, 10)
	if st, e := c.do("POST", "files/"+root+"/create_folder", url.Values{"name": {"x"}}, nil, ""); st != 200 {
		t.Fatalf("create_folder at the top: %d %v", st, e)
	}
	if got := r.Emu.Paths(); strings.Join(got, " ") != "/Read-only/ /Read-only/welcome.txt /x/" {
		t.Fatalf("paths %v", got)
	}
	_, ro, _ := r.Emu.lookup("/Read-only")
	if st, e := c.upload("files/"+root+"/folder/"+strconv.FormatInt(ro.ID, 10)+"/upload", "n.txt", []byte("x"), false); st != 403 {
		t.Fatalf("upload into the read-only folder: %d %v", st, e)
	}
}

// toString joins a JSON list of strings.
func toString(v any) string {
	var parts []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			parts = append(parts, x.(string))
		}
	}
	return strings.Join(parts, " ")
}

// TestNameAndFeedVariants: case-sensitive keeps README.txt and readme.txt apart; slash-names lets a rename put
// "/" in a name; since-modified filters modified_since on the file's own time; max-size-mb reports MB.
func TestNameAndFeedVariants(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{Variants: []string{"case-sensitive", "slash-names", "since-modified", "max-size-mb"},
		MaxFileSize: 3 << 20})
	c := login(t, r)
	root := strconv.FormatInt(r.RootID, 10)
	if _, err := r.Emu.WriteFile("/README.txt", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Emu.WriteFile("/readme.txt", []byte("b")); err != nil {
		t.Fatalf("case-sensitive: %v", err)
	}
	if _, err := r.Emu.MkdirAll("/Docs"); err != nil {
		t.Fatal(err)
	}
	if err := r.Emu.RenameItem("/Docs", "Do/cs"); err != nil {
		t.Fatalf("slash-names: %v", err)
	}
	if _, err := r.Emu.WriteFileAt("/old.txt", []byte("c"), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	since := r.Emu.Now().Add(-time.Hour).Format(timeFmt)
	_, ms := c.do("GET", "files/"+root+"/modified_since", url.Values{"since": {since}}, nil, "")
	if n := len(ms["results"].([]any)); n != 2 {
		t.Fatalf("since-modified: %d results, want 2 (old.txt keeps its old time): %v", n, ms)
	}
	_, p := c.do("GET", "person", nil, nil, "")
	if p["company_policy"].(map[string]any)["max_file_size"].(float64) != 3 {
		t.Fatalf("max-size-mb: %v", p["company_policy"])
	}

	d := Start(t, Options{})
	if _, err := d.Emu.WriteFileAt("/old.txt", []byte("c"), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c = login(t, d)
	_, ms = c.do("GET", "files/"+strconv.FormatInt(d.RootID, 10)+"/modified_since", url.Values{"since": {since}}, nil, "")
	if n := len(ms["results"].([]any)); n != 1 {
		t.Fatalf("default: %d results, want old.txt by its upload time", n)
	}
	if _, err := d.Emu.MkdirAll("/Docs"); err != nil {
		t.Fatal(err)
	}
	if err := d.Emu.RenameItem("/Docs", "Do/cs"); err == nil {
		t.Fatal("default: a name with / was accepted")
	}
	if _, err := d.Emu.WriteFile("/docs/x", nil); err != nil {
		t.Fatalf("default: names are case-insensitive: %v", err)
	}
}

// TestTokenGrantShapes: the grant is accepted from a urlencoded body (documented), the query string and a
// multipart body (public clients send those).
func TestTokenGrantShapes(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{})
	hc := r.HTTPClient()
	grant := url.Values{"grant_type": {"password"}, "client_id": {"anchor"}, "username": {r.User}, "password": {r.Password}}
	resp, err := hc.Post(r.URL+"/oauth/token?"+grant.Encode(), "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("query string: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k := range grant {
		_ = mw.WriteField(k, grant.Get(k))
	}
	_ = mw.Close()
	resp, err = hc.Post(r.URL+"/oauth/token", mw.FormDataContentType(), &buf)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("multipart: %v %v", err, resp.Status)
	}
	resp.Body.Close()
}

func TestUnknownVariant(t *testing.T) {
	if _, err := New(nil, Options{DataDir: t.TempDir(), Variants: []string{"overwrite,nope"}}); err == nil ||
		!strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "since-modified") {
		t.Fatalf("unknown variant: %v", err)
	}
}

// TestRegisteredAppGrants: a registered app's id needs its secret on every grant (invalid_client without it),
// and a refresh token is refreshed only by the client it was issued to (RFC 6749 §6), so a client that forgot
// the app and fell back to anchor is refused too.
func TestRegisteredAppGrants(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{ClientID: "my-app", ClientSecret: "my-secret"})
	hc := r.HTTPClient()
	grant := func(f url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := hc.PostForm(r.URL+"/oauth/token", f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	pw := url.Values{"grant_type": {"password"}, "client_id": {"my-app"}, "username": {r.User}, "password": {r.Password}}
	if code, m := grant(pw); code != http.StatusUnauthorized || m["error"] != "invalid_client" {
		t.Fatalf("the app's id without its secret: %d %v", code, m)
	}
	pw.Set("client_secret", "my-secret")
	code, m := grant(pw)
	rt, _ := m["refresh_token"].(string)
	if code != http.StatusOK || rt == "" {
		t.Fatalf("password grant of the app: %d %v", code, m)
	}
	for _, c := range []struct {
		id, secret string
		want       int
	}{{"my-app", "", http.StatusUnauthorized}, {"anchor", "", http.StatusBadRequest}, {"my-app", "my-secret", http.StatusOK}} {
		f := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.id}, "refresh_token": {rt}}
		if c.secret != "" {
			f.Set("client_secret", c.secret)
		}
		if code, m := grant(f); code != c.want {
			t.Fatalf("refresh as %q (secret %v): %d %v, want %d", c.id, c.secret != "", code, m, c.want)
		}
	}
}
