package emulator

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

func TestAuthCodes(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	a.must("userinfo", nil)

	// access_token as a parameter works too.
	anon := &api{t: t, base: r.URL, hc: r.HTTPClient()}
	anon.must("userinfo", nil, "access_token", r.Token)
	anon.code(1000, "userinfo")
	anon.code(2094, "userinfo", "access_token", "nope")
	anon.code(2000, "userinfo", "auth", "nope")

	var info struct {
		Quota, UsedQuota int64
		Email            string
	}
	a.must("userinfo", &info)
	if info.Quota != 10<<30 || info.Email == "" {
		t.Errorf("userinfo = %+v", info)
	}
	// Trash methods refuse OAuth tokens with 1000 (§3.4).
	a.code(1000, "trash_list")

	r.Emu.RevokeToken(r.Token)
	a.code(2095, "userinfo")
	r.Emu.ForgetToken(r.Token)
	a.code(2094, "userinfo")
}

func TestUnknownMethodIs404JSON(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	var res tReply
	if st := a.do("GET", "nosuchmethod", nil, nil, "", &res); st != 404 || res.Result == 0 {
		t.Fatalf("HTTP %d result %d", st, res.Result)
	}
}

func TestFolders(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	docs := a.mkdir(0, "Docs")
	a.code(2004, "createfolder", "folderid", "0", "name", "Docs")
	var rep struct {
		tReply
		Created bool `json:"created"`
	}
	a.must("createfolderifnotexists", &rep, "folderid", "0", "name", "Docs")
	if rep.Created || *rep.Metadata.FolderID != docs || rep.Metadata.ID != "d"+u(docs) {
		t.Errorf("ifnotexists existing: %+v", rep)
	}
	a.must("createfolderifnotexists", &rep, "path", "/Docs/Sub")
	if !rep.Created || *rep.Metadata.ParentFolderID != docs {
		t.Errorf("ifnotexists new: %+v", rep)
	}
	sub := *rep.Metadata.FolderID
	for _, bad := range []string{"a/b", `a\b`, "a\x00b", strings.Repeat("x", 1024)} {
		a.code(2001, "createfolder", "folderid", "0", "name", bad)
	}
	a.must("createfolder", nil, "folderid", "0", "name", strings.Repeat("x", 1023))
	a.code(1001, "createfolder", "folderid", "0")
	a.code(2002, "createfolder", "path", "/nope/x")
	a.code(2002, "createfolder", "folderid", "999", "name", "x")
	a.put(docs, "Sub", []byte("a file may share a folder's name"))

	// listfolder: root flat works, recursive root is refused by default, recursive below works.
	var ls tReply
	a.must("listfolder", &ls, "folderid", "0")
	if ls.Metadata.ID != "d0" || ls.Metadata.Name != "/" || ls.Metadata.ParentFolderID != nil || len(ls.Metadata.Contents) != 2 {
		t.Errorf("root listing: %+v", ls.Metadata)
	}
	a.code(1101, "listfolder", "folderid", "0", "recursive", "1")
	a.code(1101, "listfolder", "path", "/", "recursive", "1")
	a.must("listfolder", &ls, "folderid", u(docs), "recursive", "1")
	if len(ls.Metadata.Contents) != 2 {
		t.Fatalf("Docs listing: %+v", ls.Metadata.Contents)
	}
	a.must("listfolder", &ls, "path", "/Docs", "nofiles", "1")
	if len(ls.Metadata.Contents) != 1 || ls.Metadata.Path != "/Docs" || ls.Metadata.Contents[0].Path != "/Docs/Sub" {
		t.Errorf("nofiles by path: %+v", ls.Metadata)
	}
	a.code(1002, "listfolder")
	a.code(2005, "listfolder", "folderid", "12345")
	a.code(1017, "listfolder", "folderid", "d12")

	// renamefolder: move, refuse overwrite, refuse into own subtree and on the root.
	other := a.mkdir(0, "Other")
	var mv tReply
	a.must("renamefolder", &mv, "folderid", u(sub), "tofolderid", u(other))
	if *mv.Metadata.ParentFolderID != other || mv.Metadata.Name != "Sub" {
		t.Errorf("move: %+v", mv.Metadata)
	}
	a.must("renamefolder", &mv, "folderid", u(sub), "topath", "/Docs/")
	if *mv.Metadata.ParentFolderID != docs {
		t.Errorf("topath with '/': %+v", mv.Metadata)
	}
	a.code(2004, "renamefolder", "folderid", u(other), "topath", "/Docs")
	a.code(2043, "renamefolder", "folderid", u(docs), "tofolderid", u(sub))
	a.code(2042, "renamefolder", "folderid", "0", "toname", "x")
	a.code(1037, "renamefolder", "folderid", u(docs))
	a.code(2005, "renamefolder", "folderid", u(docs), "tofolderid", "9999")

	// deletes
	a.code(2006, "deletefolder", "folderid", u(docs))
	a.code(2007, "deletefolder", "folderid", "0")
	var del tReply
	a.must("deletefolder", &del, "folderid", u(other))
	if !del.Metadata.IsDeleted {
		t.Errorf("deletefolder reply not isdeleted: %+v", del.Metadata)
	}
	var rec struct{ Result, DeletedFiles, DeletedFolders int }
	a.must("deletefolderrecursive", &rec, "folderid", u(docs))
	if rec.DeletedFiles != 1 || rec.DeletedFolders != 2 {
		t.Errorf("deletefolderrecursive = %+v", rec)
	}
	a.code(2005, "listfolder", "folderid", u(docs))
	a.code(2007, "deletefolderrecursive", "folderid", "0")
	a.must("listfolder", &ls, "folderid", "0", "showdeleted", "1")
	deleted := 0
	for _, c := range ls.Metadata.Contents {
		if c.IsDeleted {
			deleted++
		}
	}
	if deleted != 2 {
		t.Errorf("showdeleted listed %d deleted items, want 2", deleted)
	}
}

func TestFiles(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	dir := a.mkdir(0, "d")
	data := []byte("hello, pcloud")
	mtime := time.Date(2021, 7, 23, 19, 39, 14, 0, time.UTC)
	up := a.put(dir, "a.txt", data, "mtime", u(uint64(mtime.Unix())))
	if len(up.Metadata) != 1 || len(up.Checksums) != 1 || len(up.FileIDs) != 1 {
		t.Fatalf("upload reply: %+v", up)
	}
	m := up.Metadata[0]
	s1, s5 := sha1.Sum(data), md5.Sum(data)
	if up.Checksums[0]["sha1"] != hex.EncodeToString(s1[:]) || up.Checksums[0]["md5"] != hex.EncodeToString(s5[:]) {
		t.Errorf("checksums %v", up.Checksums[0])
	}
	if m.Modified != "Fri, 23 Jul 2021 19:39:14 +0000" || len(m.Created) != 31 || m.ContentType != "text/plain" ||
		m.ID != "f"+u(m.FileID) || m.Size != int64(len(data)) || m.Hash == 0 || *m.ParentFolderID != dir {
		t.Errorf("metadata %+v", m)
	}
	fid := m.FileID

	// Overwrite keeps the fileid; identical content keeps the hash.
	up2 := a.put(dir, "a.txt", data)
	if up2.Metadata[0].FileID != fid || up2.Metadata[0].Hash != m.Hash {
		t.Errorf("overwrite: %+v", up2.Metadata[0])
	}
	up3 := a.put(dir, "a.txt", []byte("other"), "renameifexists", "1")
	if up3.Metadata[0].Name != "a (2).txt" || up3.Metadata[0].FileID == fid {
		t.Errorf("renameifexists: %+v", up3.Metadata[0])
	}
	a.code(2005, "uploadfile", "folderid", "4242", "filename", "x")

	// Zero-byte upload as rclone sends it: multipart POST, fields first, then the file part "content".
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("filename", "empty.bin")
	_ = mw.WriteField("folderid", u(dir))
	_ = mw.WriteField("nopartial", "1")
	_ = mw.WriteField("mtime", "1600000000")
	fw, _ := mw.CreateFormFile("content", "empty.bin")
	_, _ = fw.Write(nil)
	_ = mw.Close()
	var mp tUpload
	if st := a.do("POST", "uploadfile", nil, &body, mw.FormDataContentType(), &mp); st != 200 || mp.Result != 0 ||
		len(mp.Metadata) != 1 || mp.Metadata[0].Size != 0 || *mp.Metadata[0].ParentFolderID != dir || len(mp.Checksums) != 1 {
		t.Fatalf("multipart: HTTP %d %+v", st, mp)
	}

	// Chunked transfer encoding is refused (no Content-Length).
	req, _ := http.NewRequest("PUT", r.URL+"/uploadfile?filename=c&access_token="+r.Token, io.MultiReader(strings.NewReader("x")))
	req.ContentLength = -1
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("chunked upload: %v %v", err, resp)
	}

	// stat, checksumfile, timeformat=timestamp, id echo
	var st tReply
	a.must("stat", &st, "path", "/d/a.txt")
	if st.Metadata.FileID != fid || st.Metadata.Path != "/d/a.txt" {
		t.Errorf("stat: %+v", st.Metadata)
	}
	var ts struct {
		Metadata struct{ Modified int64 }
		ID       string `json:"id"`
	}
	a.must("stat", &ts, "fileid", u(fid), "timeformat", "timestamp", "id", "42")
	if ts.Metadata.Modified == 0 || ts.ID != "42" {
		t.Errorf("timestamp/id: %+v", ts)
	}
	a.code(1004, "stat")
	a.code(2009, "stat", "fileid", "999999")
	a.code(2002, "stat", "path", "/nope/a.txt")
	a.code(2010, "stat", "path", "no-slash")
	var cs struct {
		SHA1, MD5, SHA256 string
		Metadata          tItem
	}
	a.must("checksumfile", &cs, "fileid", u(fid))
	if cs.SHA1 != hex.EncodeToString(s1[:]) || cs.MD5 != hex.EncodeToString(s5[:]) || cs.SHA256 != "" || cs.Metadata.FileID != fid {
		t.Errorf("checksumfile: %+v", cs)
	}

	// copyfile: a new file; onto itself: only the mtime changes (rclone's SetModTime).
	var cp tReply
	a.must("copyfile", &cp, "fileid", u(fid), "tofolderid", "0", "toname", "copy.txt")
	if cp.Metadata.FileID == fid || cp.Metadata.Size != int64(len(data)) {
		t.Errorf("copy: %+v", cp.Metadata)
	}
	a.code(2004, "copyfile", "fileid", u(fid), "tofolderid", "0", "toname", "copy.txt", "noover", "1")
	a.code(1016, "copyfile", "fileid", u(fid))
	a.must("copyfile", &cp, "fileid", u(fid), "tofolderid", u(dir), "toname", "a.txt", "mtime", "1500000000", "ctime", "1500000000")
	if cp.Metadata.FileID != fid || cp.Metadata.Modified != "Fri, 14 Jul 2017 02:40:00 +0000" {
		t.Errorf("copy onto itself: %+v", cp.Metadata)
	}

	// renamefile onto an existing file replaces it and reports deletedfileid.
	var rn tReply
	a.must("renamefile", &rn, "fileid", u(up3.Metadata[0].FileID), "topath", "/d/a.txt")
	if rn.Metadata.DeletedFileID != fid || rn.Metadata.Name != "a.txt" {
		t.Errorf("rename replace: %+v", rn.Metadata)
	}
	a.trashed(fid)
	a.must("renamefile", &rn, "fileid", u(up3.Metadata[0].FileID), "tofolderid", "0", "toname", "moved.txt")
	if *rn.Metadata.ParentFolderID != 0 || rn.Metadata.Name != "moved.txt" {
		t.Errorf("rename move: %+v", rn.Metadata)
	}
	a.code(1037, "renamefile", "fileid", u(up3.Metadata[0].FileID))
	var df tReply
	a.must("deletefile", &df, "fileid", u(up3.Metadata[0].FileID))
	if !df.Metadata.IsDeleted {
		t.Errorf("deletefile: %+v", df.Metadata)
	}
	a.code(2009, "deletefile", "fileid", u(up3.Metadata[0].FileID))
	if got, _ := r.Emu.ReadFile("/copy.txt"); !bytes.Equal(got, data) {
		t.Errorf("copy content %q", got)
	}
}

func TestQuota(t *testing.T) {
	r := Start(t, Options{Quota: 10})
	a := newAPI(t, r)
	var up tUpload
	a.do("PUT", "uploadfile", url.Values{"filename": {"big"}}, strings.NewReader("01234567890"), "", &up)
	if up.Result != 2008 {
		t.Fatalf("over quota: result %d", up.Result)
	}
}

func TestEURegionHashes(t *testing.T) {
	r := Start(t, Options{Region: RegionEU})
	a := newAPI(t, r)
	up := a.put(0, "x", []byte("x"))
	if up.Checksums[0]["sha256"] == "" || up.Checksums[0]["md5"] != "" {
		t.Errorf("EU checksums %v", up.Checksums)
	}
}

func TestChunkedUploadRoundTrip(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	var cr struct{ UploadID uint64 }
	a.must("upload_create", &cr)
	data := bytes.Repeat([]byte("chunk-"), 50000)
	half := len(data) / 2
	// Second part first: offsets, not arrival order, place the bytes.
	for _, part := range []struct{ off, end int }{{half, len(data)}, {0, half}} {
		var res tReply
		q := url.Values{"uploadid": {u(cr.UploadID)}, "uploadoffset": {u(uint64(part.off))}}
		if st := a.do("PUT", "upload_write", q, bytes.NewReader(data[part.off:part.end]), "", &res); st != 200 || res.Result != 0 {
			t.Fatalf("upload_write: %d %+v", st, res)
		}
	}
	var info struct {
		Size int64
		SHA1 string
	}
	a.must("upload_info", &info, "uploadid", u(cr.UploadID))
	s1 := sha1.Sum(data)
	if info.Size != int64(len(data)) || info.SHA1 != hex.EncodeToString(s1[:]) {
		t.Fatalf("upload_info: %+v", info)
	}
	var saved tReply
	a.must("upload_save", &saved, "uploadid", u(cr.UploadID), "folderid", "0", "name", "big.bin", "mtime", "1600000000")
	if saved.Metadata.Size != int64(len(data)) || saved.Metadata.Name != "big.bin" {
		t.Fatalf("upload_save: %+v", saved.Metadata)
	}
	if got, _ := r.Emu.ReadFile("/big.bin"); !bytes.Equal(got, data) {
		t.Fatal("content differs after chunked upload")
	}
	a.code(1900, "upload_info", "uploadid", u(cr.UploadID))
	a.code(1900, "upload_write", "uploadid", "77")
}

// download fetches a getfilelink URL the way rclone does: https:// + hosts[0] + path.
func download(t *testing.T, r *Running, a *api, fileID uint64, rng string) (*http.Response, []byte, error) {
	t.Helper()
	var link struct {
		Result  int
		Path    string
		Hosts   []string
		Expires string
		Size    int64
	}
	a.must("getfilelink", &link, "fileid", u(fileID))
	exp, err := time.Parse(time.RFC1123Z, link.Expires)
	if err != nil || time.Until(exp) < 30*time.Second || len(link.Hosts) == 0 {
		t.Fatalf("link not valid for rclone: %+v", link)
	}
	if link.Hosts[0] != strings.TrimPrefix(a.base, "https://") && link.Hosts[0] != strings.TrimPrefix(a.base, "http://") {
		t.Fatalf("hosts[0] = %q, base %q", link.Hosts[0], a.base)
	}
	scheme := "http://"
	if strings.HasPrefix(a.base, "https") {
		scheme = "https://"
	}
	req, _ := http.NewRequest("GET", scheme+link.Hosts[0]+link.Path, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := r.HTTPClient().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestGetfilelinkRange(t *testing.T) {
	r := Start(t, Options{})
	for _, base := range []string{r.URL, r.HTTPSURL} {
		a := newAPI(t, r)
		a.base = base
		data := []byte("0123456789abcdefghij")
		fid := a.put(0, "r.txt", data).Metadata[0].FileID
		resp, body, err := download(t, r, a, fid, "")
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("%s full: %v %v %q", base, err, resp, body)
		}
		resp, body, err = download(t, r, a, fid, "bytes=5-9")
		if err != nil || resp.StatusCode != 206 || string(body) != "56789" {
			t.Fatalf("%s range: %v %v %q", base, err, resp, body)
		}
	}
}

func TestLinkExpiryAndIPBinding(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r := Start(t, Options{Clock: clk, LinkTTL: 5 * time.Minute})
	a := newAPI(t, r)
	fid := a.put(0, "x", []byte("x")).Metadata[0].FileID
	var link struct {
		Path  string
		Hosts []string
	}
	a.must("getfilelink", &link, "fileid", u(fid))
	clk.Advance(6 * time.Minute)
	resp, err := http.Get("http://" + link.Hosts[0] + link.Path)
	if err != nil || resp.StatusCode != http.StatusGone {
		t.Fatalf("expired link: %v %v", err, resp)
	}
}

type tDiff struct {
	Result  int    `json:"result"`
	DiffID  uint64 `json:"diffid"`
	Entries []struct {
		Event    string `json:"event"`
		DiffID   uint64 `json:"diffid"`
		Time     string `json:"time"`
		Metadata *tItem `json:"metadata"`
		UserInfo *struct {
			Quota int64 `json:"quota"`
		} `json:"userinfo"`
	} `json:"entries"`
}

func (d tDiff) events() []string {
	var out []string
	for _, e := range d.Entries {
		out = append(out, e.Event)
	}
	return out
}

func TestDiff(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantKeepCancelling}})
	a := newAPI(t, r)
	var d tDiff
	a.must("diff", &d, "last", "0")
	if len(d.Entries) != 0 || d.DiffID == 0 {
		t.Fatalf("last=0: %+v", d)
	}
	start := d.DiffID
	dir := a.mkdir(0, "A")
	fid := a.put(dir, "f", []byte("1")).Metadata[0].FileID
	a.put(dir, "f", []byte("2"))
	a.must("renamefile", nil, "fileid", u(fid), "tofolderid", "0")
	a.must("renamefolder", nil, "folderid", u(dir), "toname", "B")
	a.must("deletefile", nil, "fileid", u(fid))
	a.must("diff", &d, "diffid", u(start))
	want := "createfolder createfile modifyfile modifyfile modifyfolder deletefile"
	if got := strings.Join(d.events(), " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if m := d.Entries[3].Metadata; *m.ParentFolderID != 0 || m.FileID != fid {
		t.Errorf("move event metadata: %+v", m)
	}
	if m := d.Entries[5].Metadata; !m.IsDeleted {
		t.Errorf("delete event metadata: %+v", m)
	}
	for i := 1; i < len(d.Entries); i++ {
		if d.Entries[i].DiffID <= d.Entries[i-1].DiffID {
			t.Fatal("diffids not increasing")
		}
	}
	if d.DiffID != d.Entries[len(d.Entries)-1].DiffID {
		t.Errorf("top diffid %d, last entry %d", d.DiffID, d.Entries[len(d.Entries)-1].DiffID)
	}
	// limit: the reply's diffid is the last entry returned, so the client continues from there.
	a.must("diff", &d, "diffid", u(start), "limit", "2")
	if len(d.Entries) != 2 || d.DiffID != d.Entries[1].DiffID {
		t.Errorf("limit: %+v", d)
	}
	// the whole history starts with modifyuserinfo
	a.must("diff", &d)
	if d.Entries[0].Event != "modifyuserinfo" || d.Entries[0].UserInfo == nil || d.Entries[0].UserInfo.Quota == 0 {
		t.Errorf("full history head: %+v", d.Entries[0])
	}
	a.must("diff", &d, "last", "2")
	if len(d.Entries) != 2 {
		t.Errorf("last=2: %d entries", len(d.Entries))
	}
	a.must("diff", &d, "after", "2000-01-01 00:00:00")
	if len(d.Entries) < 6 {
		t.Errorf("after: %d entries", len(d.Entries))
	}
	a.code(1013, "diff", "after", "not a date")
}

func TestDiffLongPoll(t *testing.T) {
	clk := clockwork.NewFakeClock()
	r := Start(t, Options{Clock: clk})
	a := newAPI(t, r)
	var d tDiff
	a.must("diff", &d, "last", "0")
	cur := d.DiffID

	type res struct {
		d   tDiff
		err error
	}
	poll := func() chan res {
		ch := make(chan res, 1)
		go func() {
			var d tDiff
			req, _ := http.NewRequest("GET", r.URL+"/diff?block=1&diffid="+u(cur), nil)
			req.Header.Set("Authorization", "Bearer "+r.Token)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
			}
			ch <- res{d, err}
		}()
		return ch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Wakes on a change.
	ch := poll()
	if err := clk.BlockUntilContext(ctx, 1); err != nil { // the poll is waiting on its timeout timer
		t.Fatal(err)
	}
	a.mkdir(0, "wake")
	got := <-ch
	if got.err != nil || len(got.d.Entries) != 1 || got.d.Entries[0].Event != "createfolder" {
		t.Fatalf("woken poll: %+v %v", got.d, got.err)
	}
	cur = got.d.DiffID

	// Times out with an empty answer.
	ch = poll()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	got = <-ch
	if got.err != nil || got.d.Result != 0 || len(got.d.Entries) != 0 || got.d.DiffID != cur {
		t.Fatalf("timed-out poll: %+v %v", got.d, got.err)
	}
}

func TestDiffTooOld(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantResetOnCompaction}})
	a := newAPI(t, r)
	a.mkdir(0, "x")
	var d tDiff
	a.must("diff", &d, "last", "0")
	old := d.DiffID - 1
	a.mkdir(0, "y")
	r.DropHistory()
	a.must("diff", &d, "diffid", u(old))
	if len(d.Entries) != 1 || d.Entries[0].Event != "reset" {
		t.Fatalf("too-old diffid: %+v", d)
	}
	head := d.DiffID
	// The current cursor still works, and the history from 0 still describes the whole account.
	a.must("diff", &d, "diffid", u(head))
	if len(d.Entries) != 0 {
		t.Errorf("current cursor after compaction: %+v", d)
	}
	a.must("diff", &d, "diffid", "0")
	if got := strings.Join(d.events(), " "); got != "modifyuserinfo createfolder createfolder" {
		t.Errorf("compacted history %q", got)
	}

	r2 := Start(t, Options{TooOldResult: 5000, HistoryLimit: 3, Variants: []string{VariantResetOnCompaction}})
	a2 := newAPI(t, r2)
	a2.must("diff", &d, "last", "0")
	old = d.DiffID
	for _, n := range []string{"a", "b", "c", "d"} {
		a2.mkdir(0, n)
	}
	a2.code(5000, "diff", "diffid", u(old))
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	lg := zaptest.NewLogger(t)
	start := func() (*Emulator, *api) {
		e, err := New(lg, Options{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		s := emukit.StartTest(t, e.Handler(), nil, nil)
		return e, &api{t: t, base: s.URL, tok: e.Token(), hc: http.DefaultClient}
	}
	e1, a := start()
	tok := e1.Token()
	folder := a.mkdir(0, "keep")
	fid := a.put(folder, "k.txt", []byte("persisted")).Metadata[0].FileID
	var d tDiff
	a.must("diff", &d, "last", "0")
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2, a := start()
	defer e2.Close()
	if e2.Token() != tok {
		t.Fatal("default token changed across restart")
	}
	var st tReply
	a.must("stat", &st, "path", "/keep/k.txt")
	if st.Metadata.FileID != fid {
		t.Fatalf("stat after restart: %+v", st.Metadata)
	}
	if got, _ := e2.ReadFile("/keep/k.txt"); string(got) != "persisted" {
		t.Fatalf("content after restart %q", got)
	}
	// Ids and the diff log continue where they were.
	if id := a.mkdir(0, "new"); id <= folder {
		t.Errorf("folder id reused: %d <= %d", id, folder)
	}
	var d2 tDiff
	a.must("diff", &d2, "diffid", u(d.DiffID))
	if len(d2.Entries) != 1 || d2.Entries[0].DiffID <= d.DiffID {
		t.Errorf("diff after restart: %+v", d2)
	}
}

func TestFaults(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantResetOnCompaction}})
	a := newAPI(t, r)
	fid := a.put(0, "f.bin", bytes.Repeat([]byte("z"), 100000)).Metadata[0].FileID
	k := r.Kit()

	// pCloud-style throttling: HTTP 200 with result 4000, once.
	if err := k.SetRules(emukit.Rule{Match: "^userinfo$", Times: 1, Action: emukit.Action{Do: HookResult, Code: 4000}}); err != nil {
		t.Fatal(err)
	}
	a.code(4000, "userinfo")
	a.code(0, "userinfo")

	// HTTP 429 with Retry-After and no JSON body.
	_ = k.SetRules(emukit.Rule{Match: "^stat$", Action: emukit.Action{Do: emukit.DoStatus, Status: 429, RetryAfter: 3}})
	req, _ := http.NewRequest("GET", r.URL+"/stat?fileid="+u(fid)+"&access_token="+r.Token, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("429: %v %v", err, resp)
	}
	resp.Body.Close()

	// A reset mid-body is a reset, not a clean EOF.
	_ = k.SetRules(emukit.Rule{Match: "^content$", Times: 1, Action: emukit.Action{Do: emukit.DoResetAfter, Bytes: 1000}})
	if _, _, err := download(t, r, a, fid, ""); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reset: %v", err)
	}
	// A truncated body is short and the client notices.
	_ = k.SetRules(emukit.Rule{Match: "^content$", Times: 1, Action: emukit.Action{Do: emukit.DoTruncateAt, Bytes: 1000}})
	if _, body, err := download(t, r, a, fid, ""); !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != 1000 {
		t.Fatalf("truncate: %v, %d bytes", err, len(body))
	}
	// Ack loss: the delete happens, the answer never arrives.
	_ = k.SetRules(emukit.Rule{Match: "^deletefile$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}})
	req, _ = http.NewRequest("POST", r.URL+"/deletefile?fileid="+u(fid)+"&access_token="+r.Token, nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("ack loss: got an answer")
	}
	a.trashed(fid)

	// A compacted history makes the cursor too old; a reset event can be injected too.
	var d tDiff
	a.must("diff", &d, "last", "0")
	a.mkdir(0, "bump")
	_ = k.SetRules(emukit.Rule{Match: "^diff$", Times: 1, Action: emukit.Action{Do: HookCompactHistory}})
	a.must("diff", &d, "diffid", u(d.DiffID))
	if len(d.Entries) != 1 || d.Entries[0].Event != "reset" {
		t.Fatalf("compactHistory: %+v", d)
	}

	// Token expiry through the plan: 2095 now and afterwards.
	_ = k.SetRules(emukit.Rule{Match: "^listfolder$", Times: 1, Action: emukit.Action{Do: HookExpireToken}})
	a.code(2095, "listfolder", "folderid", "0")
	a.code(2095, "userinfo")

	// The log has every call, without the token.
	for _, e := range r.Log() {
		if strings.Contains(e.Query, r.Token) {
			t.Fatalf("token in log: %+v", e)
		}
	}
}

func TestOAuthFlow(t *testing.T) {
	r := Start(t, Options{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(r.URL + "/oauth2/authorize?client_id=tandem&response_type=code&state=s1&redirect_uri=" +
		url.QueryEscape("http://127.0.0.1:5555/cb"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %v %v", err, resp)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	host := strings.TrimPrefix(r.URL, "http://")
	if loc.Host != "127.0.0.1:5555" || q.Get("code") == "" || q.Get("state") != "s1" || q.Get("locationid") != "1" ||
		q.Get("hostname") != host {
		t.Fatalf("redirect %s", loc)
	}
	// Exchange as Go's oauth2 library does: form POST, credentials as HTTP Basic.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {"http://127.0.0.1:5555/cb"}}
	req, _ := http.NewRequest("POST", "http://"+q.Get("hostname")+"/oauth2_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("tandem", "secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Result      int
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		LocationID  int    `json:"locationid"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.Result != 0 || tok.AccessToken == "" || tok.TokenType != "bearer" || tok.LocationID != 1 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("token reply %+v", tok)
	}
	a := &api{t: t, base: r.URL, tok: tok.AccessToken, hc: http.DefaultClient}
	a.must("userinfo", nil)
	// Codes are single use.
	anon := &api{t: t, base: r.URL, hc: http.DefaultClient}
	anon.code(2012, "oauth2_token", "code", q.Get("code"), "client_id", "tandem", "client_secret", "secret")
}
