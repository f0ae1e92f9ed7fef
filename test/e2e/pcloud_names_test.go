package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pcloudProvider is the pCloud entry of the provider table.
func pcloudProvider(t *testing.T) provider {
	t.Helper()
	for _, p := range providers {
		if p.name == "pcloud" {
			return p
		}
	}
	t.Fatal("no pcloud provider")
	return provider{}
}

// rawPCloud calls the emulator's API as a foreign pCloud client would (names tandem's client refuses).
func rawPCloud(t *testing.T, e *penv, method string, q url.Values, body string) {
	t.Helper()
	rawPCloudJSON(t, e, method, q, nil, body)
}

// rawPCloudJSON is rawPCloud that decodes the answer into out (when not nil).
func rawPCloudJSON(t *testing.T, e *penv, method string, q url.Values, out any, body ...string) {
	t.Helper()
	if len(body) == 0 {
		body = []string{""}
	}
	verb := http.MethodGet
	if body[0] != "" {
		verb = http.MethodPut
	}
	req, err := http.NewRequest(verb, e.emu.Endpoint+"/"+method+"?"+q.Encode(), strings.NewReader(body[0]))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(data), `"result":0`) {
		t.Fatalf("%s %v: %s %v", method, q, data, err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
}

// Issue 10 item 6: another client creates folder X, uploads into it and renames it to Y between two passes.
// The next pass must create only Y locally (one folder id, one path), and a file the user then puts into Y
// must upload.
func TestPCloudFolderCreatedAndRenamedBetweenPasses(t *testing.T) {
	t.Parallel()
	e := newPenv(t, pcloudProvider(t))
	e.lwrite("keep.txt", "keep")
	e.base()
	e.rwrite("X/f.txt", "inside")
	e.rmove("X", "Y")
	e.sync()
	if _, err := os.Stat(filepath.Join(e.L, "X")); err == nil {
		t.Fatalf("a phantom X was created locally beside Y")
	}
	if got := e.lread("Y/f.txt"); got != "inside" {
		t.Fatalf("Y/f.txt = %q", got)
	}
	e.lwrite("Y/new.txt", "new")
	e.sync()
	if got := e.rread("Y/new.txt"); got != "new" {
		t.Fatalf("remote Y/new.txt = %q", got)
	}
	e.converged()
}

// Issue 10 item 7: names tandem cannot hold on pCloud are listed in the pass's `skipped` (JSON), like an invalid
// name in a `dir:` remote, not only logged; nothing local is touched for them.
func TestPCloudInvalidNamesListedAsSkipped(t *testing.T) {
	t.Parallel()
	e := newPenv(t, pcloudProvider(t))
	e.lwrite("keep.txt", "keep")
	e.base()
	rawPCloud(t, e, "uploadfile", url.Values{"path": {"/Sync"}, "filename": {"line\nbreak.txt"}}, "evil")
	d := e.sync()
	found := false
	for _, s := range d.Skipped {
		// JSON holds the stored name, newline and all (issue 13 item 13), not its Go-quoted form.
		found = found || (s.Side == "remote" && s.Path == "line\nbreak.txt" && s.Reason != "")
	}
	if !found {
		t.Fatalf("skipped = %+v, want the remote name with a newline", d.Skipped)
	}
}

// TestPCloudFolderRenamedToUnholdableNameKeepsLocalCopy (issue 9 hole 13, issue 10 item 7): a synced folder
// renamed on pCloud to a name tandem cannot hold is no delete: the local copy stays, the path is listed in
// skipped, through the change feed and through a full listing (--resync) alike.
func TestPCloudFolderRenamedToUnholdableNameKeepsLocalCopy(t *testing.T) {
	t.Parallel()
	e := newPenv(t, pcloudProvider(t))
	e.lwrite("Photos/cat.jpg", "meow")
	e.lwrite("Photos/dog.jpg", "woof")
	e.base()
	rawPCloud(t, e, "renamefolder", url.Values{"path": {"/Sync/Photos"}, "topath": {"/Sync/Pho\ntos"}}, "")
	for _, flags := range [][]string{nil, {"--resync"}} {
		d := e.sync(flags...)
		for _, dn := range d.Done {
			if strings.HasPrefix(dn.Op, "delete") {
				t.Fatalf("%v: a folder renamed to an unholdable name was deleted: %+v", flags, d.Done)
			}
		}
		if got := e.lread("Photos/cat.jpg"); got != "meow" {
			t.Fatalf("%v: Photos/cat.jpg = %q", flags, got)
		}
		found := false
		for _, s := range d.Skipped {
			found = found || s.Side == "remote" && s.Path == "Pho\ntos"
		}
		if !found {
			t.Fatalf("%v: skipped = %+v, want the new remote name", flags, d.Skipped)
		}
	}
}
