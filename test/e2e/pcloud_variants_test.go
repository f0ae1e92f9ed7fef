package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote/pcloud/emulator"
	"github.com/tandemsync/tandem/test/testenv"
)

// TestPCloudVariants runs the key scenarios (conflicts, deletes against edits, remote folder moves, edits both
// ways, the created-and-renamed folder) against the pCloud emulator under each variant: each reading of what
// pCloud's documentation leaves open (remote/pcloud/PROVIDER.md). This is the part of the matrix that fits in
// make test; make soak runs the whole provider suite once per variant (TANDEM_EMU_VARIANT_PCLOUD).
func TestPCloudVariants(t *testing.T) {
	t.Parallel()
	scenarios := []struct {
		name string
		run  func(t *testing.T, e *penv)
	}{
		{"Conflict", scConflict},
		{"DeleteVersusModify", scDeleteVersusModify},
		{"MoveFolderRemote", func(t *testing.T, e *penv) { scMove(t, e, "remote", true) }},
		{"EditsBothWays", scEdits},
	}
	p := pcloudProvider(t)
	for _, v := range emulator.VariantNames() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, newPenv(t, p, "--variant", v))
				})
			}
		})
	}
}

// Issue 10 item 5 end to end: under the fold-backslash variant pCloud stores a\uFF3Cb.txt as a\b.txt, a name
// tandem cannot hold. The pass lists the upload as skipped with the stored name and exits 0; the local file
// stays, and the server's copy is listed as skipped on the next pass.
func TestPCloudServerRenamedUpload(t *testing.T) {
	t.Parallel()
	e := newPenv(t, pcloudProvider(t), "--variant", emulator.VariantFoldBackslash)
	e.lwrite("a\uFF3Cb.txt", "folded")
	e.lwrite("plain.txt", "plain")
	d := e.sync()
	found := false
	for _, s := range d.Skipped {
		found = found || (s.Path == "a\uFF3Cb.txt" && strings.Contains(s.Reason, "stored it as"))
	}
	if !found {
		t.Fatalf("skipped = %+v, want the upload pCloud renamed", d.Skipped)
	}
	d = e.sync()
	if _, err := os.Stat(filepath.Join(e.L, "a\uFF3Cb.txt")); err != nil {
		t.Fatalf("the local file is gone: %v", err)
	}
	if got := e.rread("plain.txt"); got != "plain" {
		t.Fatalf("plain.txt = %q", got)
	}
	remoteSkip := false
	for _, s := range d.Skipped {
		remoteSkip = remoteSkip || (s.Side == "remote" && strings.Contains(s.Path, `a\b.txt`))
	}
	if !remoteSkip {
		t.Fatalf("second pass skipped = %+v, want the server's a\\b.txt", d.Skipped)
	}
}

// Under the trash variant tandem's remote deletes can be checked: the file tandem deleted is in pCloud's trash
// with the last synced bytes, and restoring it (create events) brings it back locally on the next pass.
func TestPCloudRemoteDeleteLandsInTrash(t *testing.T) {
	t.Parallel()
	e := newPenv(t, pcloudProvider(t), "--variant", emulator.VariantTrash)
	e.lwrite("gone.txt", "last synced bytes")
	e.lwrite("keep.txt", "keep")
	e.base()
	e.lremove("gone.txt")
	if d := e.sync(); d.Ops()["delete-remote"] != 1 {
		t.Fatalf("done = %+v, want one delete-remote", d.Done)
	}
	var list struct {
		Metadata struct {
			Contents []struct {
				Name   string `json:"name"`
				FileID uint64 `json:"fileid"`
			} `json:"contents"`
		} `json:"metadata"`
	}
	rawPCloudJSON(t, e, "trash_list", url.Values{}, &list)
	var id uint64
	for _, it := range list.Metadata.Contents {
		if it.Name == "gone.txt" {
			id = it.FileID
		}
	}
	if id == 0 {
		t.Fatalf("gone.txt is not in pCloud's trash: %+v", list)
	}
	rawPCloud(t, e, "trash_restore", url.Values{"fileid": {strconv.FormatUint(id, 10)}}, "")
	e.sync()
	if got := e.lread("gone.txt"); got != "last synced bytes" {
		t.Fatalf("restored gone.txt = %q", got)
	}
	e.converged()
}

// `tandem emulate pcloud --variant` lists the variants in --help, takes a comma list, and refuses an unknown
// name (or a provider without variants) as a usage error.
func TestPCloudEmulateVariantFlag(t *testing.T) {
	t.Parallel()
	help := testenv.Run(t, bin, "emulate", "--help")
	for _, v := range emulator.VariantNames() {
		if !strings.Contains(help.Stdout, "pcloud "+v) {
			t.Errorf("emulate --help does not list %s:\n%s", v, help.Stdout)
		}
	}
	if r := testenv.Run(t, bin, "emulate", "pcloud", "--variant", "eu,nope"); r.Code != 2 || !strings.Contains(r.Stderr, `"nope"`) {
		t.Errorf("unknown variant:\n%s", r)
	}
	if r := testenv.Run(t, bin, "emulate", "vboxx", "--variant", "eu"); r.Code != 2 {
		t.Errorf("variant for vboxx:\n%s", r)
	}
	e := testenv.StartEmulator(t, bin, "pcloud", "--variant", "eu,new-fileid", "--variant", "trash")
	if e.Endpoint == "" {
		t.Fatal("no endpoint")
	}
}
