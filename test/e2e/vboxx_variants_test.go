package e2e

// The vBoxx scenarios under the emulator's variants (issue 12): every reading of the API reference that the
// emulator offers besides its default (the least helpful one, which TestProviderScenarios runs). `make test`
// runs the key scenarios under a few variant sets; TANDEM_E2E_VBOXX_MATRIX=1 (`make soak`) runs every scenario
// under every variant on its own and under all the helpful ones together.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// vboxxWith is the vBoxx provider on an emulator started with these variants.
func vboxxWith(variants string) provider {
	for _, p := range providers {
		if p.name == "vboxx" {
			p.emuArgs = []string{"--variant", variants}
			return p
		}
	}
	panic("no vboxx provider")
}

// vboxxScenarioVariants are the variant sets the matrix runs with the ordinary scenarios. The read-only
// variants change what a scenario may expect (uploads are refused), so they have tests of their own below.
func vboxxScenarioVariants(full bool) []string {
	if !full {
		return []string{"overwrite", "since-modified,case-sensitive,max-size-mb",
			"chunked,filename-star,slash-names,not-modified-body"}
	}
	return []string{"overwrite", "filename-star", "chunked", "max-size-mb", "case-sensitive", "slash-names",
		"since-modified", "not-modified-body",
		"overwrite,filename-star,chunked,max-size-mb,case-sensitive,slash-names,since-modified,not-modified-body"}
}

func TestVBoxxVariants(t *testing.T) {
	t.Parallel()
	full := os.Getenv("TANDEM_E2E_VBOXX_MATRIX") != ""
	type scenario struct {
		name string
		run  func(t *testing.T, e *penv)
	}
	scenarios := []scenario{
		{"EditsBothWays", scEdits},
		{"Conflict", scConflict},
		{"MoveFolderRemote", func(t *testing.T, e *penv) { scMove(t, e, "remote", true) }},
	}
	if full {
		scenarios = append(scenarios, []scenario{
			{"FirstSyncBothWays", scFirstSync},
			{"DeleteVersusModify", scDeleteVersusModify},
			{"MoveFileLocal", func(t *testing.T, e *penv) { scMove(t, e, "local", false) }},
			{"MoveFileRemote", func(t *testing.T, e *penv) { scMove(t, e, "remote", false) }},
			{"MoveFolderLocal", func(t *testing.T, e *penv) { scMove(t, e, "local", true) }},
			{"TypeChange", scTypeChange},
			{"EmptyFileAndFolder", scEmpty},
			{"UnicodeNFCAndNFD", scUnicode},
		}...)
	}
	for _, v := range vboxxScenarioVariants(full) {
		p := vboxxWith(v)
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, newPenv(t, p))
				})
			}
		})
	}
}

// TestVBoxxReadOnlyRoot: a root without FILE_WRITE syncs down only. What the administrator wrote arrives; local
// additions, edits and deletes stay local, each listed as skipped with "read-only", the pass exits 0, nothing is
// sent, and the root is never reported lost.
func TestVBoxxReadOnlyRoot(t *testing.T) {
	t.Parallel()
	e := newPenv(t, vboxxWith("readonly-root"))
	d := e.sync()
	if got := e.lread("welcome.txt"); !strings.Contains(got, "administrator") {
		t.Fatalf("welcome.txt = %q", got)
	}
	if ops := d.Ops(); ops["download"] != 1 {
		t.Fatalf("done %+v, want welcome.txt downloaded", d.Done)
	}
	e.lwrite("mine.txt", "local only")
	e.lwrite("notes/n.txt", "local folder")
	testenv.WriteFile(t, e.L, "welcome.txt", []byte("edited locally"))
	e.emu.ClearLog(t)
	r := e.once("--json")
	if r.Code != 0 {
		t.Fatalf("pass on a read-only root failed:\n%s", r)
	}
	doc := r.JSON(t)
	if len(doc.Problems) != 0 || len(doc.Skipped) == 0 {
		t.Fatalf("want the local changes skipped, no problems:\n%s", r)
	}
	if !strings.Contains(strings.Join(doc.Notes, "\n"), "read-only") {
		t.Fatalf("notes %q do not say read-only", doc.Notes)
	}
	for _, s := range doc.Skipped {
		if !strings.Contains(s.Reason, "read-only") {
			t.Fatalf("skipped %s for %q, want a read-only reason", s.Path, s.Reason)
		}
	}
	for _, x := range e.emu.Log(t) {
		if e.p.mutating(x) {
			t.Fatalf("a change was sent to a read-only root: %+v", x)
		}
	}
	if _, err := os.Stat(filepath.Join(e.L, "mine.txt")); err != nil {
		t.Fatalf("the local file is gone: %v", err)
	}
}

// TestVBoxxReadOnlyFolder: a 403 on one folder is that folder's problem: a file added inside it is skipped, a
// file beside it is uploaded, the pass exits 0 and the next pass still works.
func TestVBoxxReadOnlyFolder(t *testing.T) {
	t.Parallel()
	e := newPenv(t, vboxxWith("readonly-folder"))
	e.sync()
	if got := e.lread("Read-only/welcome.txt"); got == "" {
		t.Fatal("Read-only/welcome.txt did not arrive")
	}
	e.lwrite("Read-only/mine.txt", "refused")
	e.lwrite("free.txt", "accepted")
	r := e.once("--json")
	if r.Code != 0 {
		t.Fatalf("pass failed:\n%s", r)
	}
	doc := r.JSON(t)
	if len(doc.Skipped) == 0 || doc.Skipped[0].Path != "Read-only/mine.txt" || doc.Skipped[len(doc.Skipped)-1].Path != "Read-only/mine.txt" {
		t.Fatalf("skipped %+v, want Read-only/mine.txt", doc.Skipped)
	}
	if got := e.rread("free.txt"); got != "accepted" {
		t.Fatalf("remote free.txt = %q", got)
	}
	if r := e.once("--json"); r.Code != 0 {
		t.Fatalf("next pass failed:\n%s", r)
	}
}

// TestVBoxxDaemonReadOnly: the daemon's status says a read-only root is read-only, and what the administrator
// wrote still arrives.
func TestVBoxxDaemonReadOnly(t *testing.T) {
	t.Parallel()
	e := newPenv(t, vboxxWith("readonly-root"))
	endpoint, caFile := loginForDaemon(t, e)
	conf := writeProviderConfig(t, e.p, e.L, endpoint, caFile, time.Second)
	e.lwrite("mine.txt", "stays local")
	d := testenv.StartDaemon(t, bin, conf, "XDG_CONFIG_HOME="+e.xdg)
	d.WaitFor("a read-only pair after its first pass", arrivalTimeout, func(s *testenv.DaemonStatus) bool {
		return len(s.Pairs) == 1 && s.Pairs[0].LastSync != nil && s.Pairs[0].ReadOnly && s.Pairs[0].Problems == 0
	})
	if got := e.lread("welcome.txt"); !strings.Contains(got, "administrator") {
		t.Fatalf("welcome.txt = %q", got)
	}
}

// TestVBoxxCaseCollision (issue 9 hole 8, issue 12 item 7): vBoxx's default server takes Report.txt and
// report.txt for one name. Of two local files whose names differ only in case, one is synced and the other is
// reported as a collision (kept locally, never deleted), the pass exits 0, and later passes do not flip-flop or
// fail with 409 on every pass; a local folder spelt differently from the remote's is the same folder.
func TestVBoxxCaseCollision(t *testing.T) {
	t.Parallel()
	e := newPenv(t, vboxxWith("overwrite"))
	e.lwrite("Report.txt", "upper")
	e.lwrite("report.txt", "lower")
	e.rwrite("reports/a.txt", "remote a")
	e.lwrite("Reports/b.txt", "local b")
	var first string
	for i := range 3 {
		d := e.sync()
		var coll []string
		for _, c := range d.Conflicts {
			if c.Kept == "collision" {
				coll = append(coll, c.Path)
			}
		}
		if len(coll) != 1 || !strings.EqualFold(coll[0], "report.txt") {
			t.Fatalf("pass %d: collisions %v, want one of Report.txt/report.txt (conflicts %+v)", i, coll, d.Conflicts)
		}
		if i == 0 {
			first = coll[0]
		} else if coll[0] != first {
			t.Fatalf("pass %d: the collision flipped from %s to %s", i, first, coll[0])
		}
		if i > 0 && len(d.Done) != 0 {
			t.Fatalf("pass %d did something: %+v", i, d.Done)
		}
	}
	if e.lread("Report.txt") != "upper" || e.lread("report.txt") != "lower" {
		t.Fatal("a colliding local file was changed")
	}
	synced := "Report.txt"
	if first == "Report.txt" {
		synced = "report.txt"
	}
	if got := e.rread(synced); got != e.lread(synced) {
		t.Fatalf("remote %s = %q, want the local %s", synced, got, synced)
	}
	// One folder on both sides, whatever the spelling: both files in it on both sides.
	for _, f := range []string{"a.txt", "b.txt"} {
		found := false
		for _, dir := range []string{"Reports", "reports"} {
			if _, err := os.Stat(filepath.Join(e.L, dir, f)); err == nil {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s is not in the local folder", f)
		}
	}
}
