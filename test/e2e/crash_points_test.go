package e2e

// CRASH-01 beyond the executor: kill -9 (the failpoints build's `kill` action, a true SIGKILL) at every named
// failpoint of the state store, the engine's cursor, journal, sweep and trash steps, localdir's writes and trash,
// each provider's requests after the server answered and before tandem read the answer, chunked uploads, and
// token refreshes; for `dir:` and each provider emulator. After each kill, plain passes must converge: both sides
// equal, every version the test wrote and did not itself overwrite or delete live or in a trash, no temp file,
// and one more pass doing nothing.
//
// `make test` kills each point at its 1st hit. TANDEM_CRASH_SOAK=1 (make soak) kills at the 3rd hit and adds
// double kills (a second kill during the recovery pass).

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/test/testenv"
)

// crashCommon are the points every pair reaches: the local side is always localdir.
var crashCommon = []string{
	// executor
	"upload.afterPut", "download.beforePut", "download.afterPut", "delete.beforeCall", "delete.afterCall",
	"move.afterCall", "conflict.afterRename", "commit.before", "commit.after",
	// state store
	"state.update.inside", "state.update.beforeCommit", "state.update.afterCommit",
	"state.batch.inside", "state.batch.beforeCommit", "state.batch.afterCommit",
	"state.tx.beginIntent", "state.tx.endIntent", "state.tx.addConflict", "state.tx.putBase",
	"state.tx.deleteBase", "state.tx.moveTree", "state.tx.setMeta",
	// journal, temp sweep, trash
	"journal.begin.afterCommit", "journal.end.before", "sweep.afterClean", "sweep.afterEnd", "trash.purge.before",
	// localdir
	"localdir.put.beforeRename", "localdir.put.afterRename", "localdir.put.beforeLink", "localdir.put.afterLink",
	"localdir.move.afterRename",
	"localdir.trash.beforeRename", "localdir.trash.afterRename", "localdir.sweep.afterRemove",
	"localdir.purge.afterRemove",
}

// crashProvider are each provider's own points: its requests' answers (writes first), chunked uploads and the
// change cursor.
var crashProvider = map[string][]string{
	"pcloud": {
		"state.tx.setCursor",
		"pcloud.http.uploadfile.answered", "pcloud.http.upload_create.answered", "pcloud.http.upload_write.answered",
		"pcloud.http.upload_info.answered", "pcloud.http.upload_save.answered",
		"pcloud.http.createfolderifnotexists.answered",
		"pcloud.http.renamefile.answered", "pcloud.http.renamefolder.answered", "pcloud.http.deletefile.answered",
		"pcloud.http.deletefolder.answered", "pcloud.http.listfolder.answered", "pcloud.http.diff.answered",
		"pcloud.http.getfilelink.answered", "pcloud.http.checksumfile.answered",
		"pcloud.upload.afterChunk", "pcloud.upload.beforeSave",
		"cursor.feed.beforeCommit", "cursor.feed.afterCommit", "cursor.listing.beforeCommit", "cursor.listing.afterCommit",
	},
	"verizon": {
		"state.tx.setCursor",
		"verizon.http.fileupload/intent.answered", "verizon.http.upload.answered", "verizon.http.commit.answered",
		"verizon.http.fops/createfolder.answered", "verizon.http.fops/delete.answered", "verizon.http.fops/move.answered",
		"verizon.http.fops/rename.answered", "verizon.http.fullview.answered", "verizon.http.metadata.answered",
		"verizon.http.files.answered", "verizon.upload.afterChunk", "verizon.upload.beforeCommit",
		"cursor.feed.beforeCommit", "cursor.feed.afterCommit", "cursor.listing.beforeCommit", "cursor.listing.afterCommit",
	},
	"vboxx": {
		"state.tx.setCursor",
		"vboxx.http.upload.answered", "vboxx.http.create_folder.answered", "vboxx.http.delete.answered",
		"vboxx.http.move.answered", "vboxx.http.rename.answered", "vboxx.http.list.answered",
		"vboxx.http.modified_since.answered", "vboxx.http.download.answered", "vboxx.http.stat.answered",
		"cursor.feed.beforeCommit", "cursor.feed.afterCommit", "cursor.listing.beforeCommit", "cursor.listing.afterCommit",
	},
}

// crashPrep: points reached only by a pass that finds what an earlier killed pass left (a temp session, a temp
// file) get such a pass first: killed once the first replacing download's temp file is complete, before its
// rename (a new file is written unnamed and leaves nothing to sweep).
var crashPrep = map[string]bool{
	"sweep.afterClean": true, "sweep.afterEnd": true, "localdir.sweep.afterRemove": true,
}

// crashValues shrink the providers' chunked-upload thresholds so that the test's 100-byte files take the
// chunked path (failpoint.Int); the small files stay single uploads.
const crashValues = "pcloud.chunkThreshold=value(64);pcloud.chunkSize=value(40);" +
	"verizon.chunkThreshold=value(64);verizon.chunkSize=value(40)"

// crashTally is what TestCrashPoints reports.
type crashTally struct {
	mu                sync.Mutex
	targets, kills    int
	doubles, versions int
	lost              int
	notReached        []string
}

func TestCrashPoints(t *testing.T) {
	t.Parallel()
	fp := fpBinary(t)
	soak := os.Getenv("TANDEM_CRASH_SOAK") != ""
	hits := []int{1}
	if soak {
		hits = []int{3}
	}
	tally := &crashTally{}
	t.Cleanup(func() {
		sort.Strings(tally.notReached)
		t.Logf("crash points: %d runs (hits %v), %d died by SIGKILL at their point, %d double kills, %d versions "+
			"tracked, %d lost; not reached: %v", tally.targets, hits, tally.kills, tally.doubles, tally.versions,
			tally.lost, tally.notReached)
	})
	// The runs wait on fsync and on the emulators far more than they compute: they run two at a time per backend
	// (TANDEM_CRASH_WORKERS), all backends at once, outside the -parallel limit (t.Run from several goroutines).
	workers := 2
	if w, err := strconv.Atoi(os.Getenv("TANDEM_CRASH_WORKERS")); err == nil && w > 0 {
		workers = w
	}
	backends := []string{"dir", "pcloud", "verizon", "vboxx"}
	var wg sync.WaitGroup
	for bi, kind := range backends {
		wg.Add(1)
		go func() {
			defer wg.Done() // here, not in the subtest: -run may skip it
			t.Run(kind, func(t *testing.T) { crashBackend(t, fp, kind, bi, hits, workers, soak, tally) })
		}()
	}
	wg.Wait()
}

func crashBackend(t *testing.T, fp, kind string, bi int, hits []int, workers int, soak bool, tally *crashTally) {
	var acct *testenv.Account
	if kind != "dir" {
		var extra []string
		if kind == "verizon" {
			// The default delta reading (nothing at a moved item's old path); this workload has a remote
			// rename beside a remote delete in every run (TestRenameBesideADeleteIsNotLost in remote/verizon).
			extra = []string{"--redirect-url", "http://127.0.0.1:" + freePort(t) + "/callback"}
		}
		acct = testenv.NewAccount(t, bin, kind, extra...)
	}
	points := append(append([]string{}, crashCommon...), crashProvider[kind]...)
	var n atomic.Int32
	jobs := make(chan func(), len(points)*len(hits))
	for pi, point := range points {
		for _, nth := range hits {
			jobs <- func() {
				// Verizon's op names hold a slash, which -run would read as a subtest level.
				t.Run(strings.ReplaceAll(fmt.Sprintf("%s@%d", point, nth), "/", "_"), func(t *testing.T) {
					c := newCrashRun(t, fp, kind, acct, fmt.Sprintf("c%d", n.Add(1)))
					second := ""
					// The double kills: 5 executor points per backend (reached three times in every run), the
					// second kill during the first recovery pass.
					if k := (pi - bi + 9) % 9; soak && pi < 9 && k%2 == 0 {
						second = crashSecond[(k/2+bi)%len(crashSecond)]
					}
					c.run(point, nth, second, soak, tally)
				})
			}
		}
	}
	close(jobs)
	var pool sync.WaitGroup
	for range workers {
		pool.Add(1)
		go func() {
			defer pool.Done()
			for j := range jobs {
				j()
			}
		}()
	}
	pool.Wait()
}

// crashSecond are points every recovery pass after an executor kill reaches, for the second kill of a double kill.
var crashSecond = []string{
	"trash.purge.before@1", "state.update.afterCommit@2", "state.update.inside@3", "sweep.afterClean@1",
	"state.batch.beforeCommit@1",
}

// crashOncePerPass are reached once per process (the journal, the sweep, the purge, a complete listing, the one
// temp file the prep pass leaves): their "3rd hit" is the 3rd pass in a row killed there.
var crashOncePerPass = map[string]bool{
	"journal.begin.afterCommit": true, "journal.end.before": true, "sweep.afterClean": true, "sweep.afterEnd": true,
	"trash.purge.before": true, "localdir.purge.afterRemove": true, "localdir.sweep.afterRemove": true,
	"state.tx.beginIntent": true, "state.tx.endIntent": true, "cursor.listing.beforeCommit": true,
	"cursor.listing.afterCommit": true,
}

// crashRun is one pair and its ledger.
type crashRun struct {
	t    *testing.T
	fp   string
	L    string
	SD   string
	far  testenv.Far
	live map[string]string // sha256 -> where the test wrote it; dropped when the test overwrote or deleted it
	log  []string          // every pass, for the failure message
}

func newCrashRun(t *testing.T, fp, kind string, acct *testenv.Account, folder string) *crashRun {
	c := &crashRun{t: t, fp: fp, L: t.TempDir(), SD: t.TempDir(), live: map[string]string{}}
	if kind == "dir" {
		c.far = testenv.DirFar{Root: t.TempDir()}
	} else {
		c.far = acct.Far(t, folder)
	}
	return c
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// lw writes a local file and records the version; lr forgets the version it replaces or removes.
func (c *crashRun) lw(rel, data string) {
	c.forgetLocal(rel)
	testenv.WriteFile(c.t, c.L, rel, []byte(data))
	c.live[hexSum([]byte(data))] = "local " + rel
}

func (c *crashRun) forgetLocal(rel string) {
	filepath.WalkDir(filepath.Join(c.L, filepath.FromSlash(rel)), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			delete(c.live, testenv.FileSHA256(c.t, p))
		}
		return nil
	})
}

func (c *crashRun) lrm(rel string) {
	c.forgetLocal(rel)
	if err := os.RemoveAll(filepath.Join(c.L, filepath.FromSlash(rel))); err != nil {
		c.t.Fatal(err)
	}
}

func (c *crashRun) lmv(from, to string) {
	src, dst := filepath.Join(c.L, filepath.FromSlash(from)), filepath.Join(c.L, filepath.FromSlash(to))
	if err := os.Rename(src, dst); err != nil {
		c.t.Fatal(err)
	}
}

func (c *crashRun) rw(rel, data string) {
	if old, ok := c.far.Read(c.t, rel); ok {
		delete(c.live, hexSum(old))
	}
	if err := c.far.Write(c.t, rel, []byte(data)); err != nil {
		c.t.Fatalf("remote write %s: %v", rel, err)
	}
	c.live[hexSum([]byte(data))] = "remote " + rel
}

func (c *crashRun) rrm(rel string) {
	if old, ok := c.far.Read(c.t, rel); ok {
		delete(c.live, hexSum(old))
	}
	if err := c.far.Remove(c.t, rel); err != nil {
		c.t.Fatalf("remote delete %s: %v", rel, err)
	}
}

// pass runs `tandem once` (the failpoints build) with plan added to the chunk values; killed reports a SIGKILL.
func (c *crashRun) pass(plan string) (res testenv.Result, killed bool) {
	c.t.Helper()
	args := append([]string{"once", "--json", "--state-dir", c.SD}, c.far.Flags()...)
	if rest, ok := strings.CutPrefix(plan, "--resync "); ok {
		args, plan = append(args, "--resync"), rest
	}
	if os.Getenv("TANDEM_CRASH_VERBOSE") != "" {
		args = append(args, "-v")
	}
	args = append(args, c.L, c.far.Spec())
	env := append(c.far.Env(), "TANDEM_FAILPOINTS="+crashValues+";"+plan)
	cmd := exec.Command(c.fp, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res = testenv.Result{Args: args, Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	defer func() { c.log = append(c.log, fmt.Sprintf("plan %q killed=%v\n%s", plan, killed, res)) }()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return res, true
		}
		res.Code = ee.ExitCode()
	default:
		c.t.Fatal(err)
	}
	return res, false
}

func (c *crashRun) run(point string, nth int, second string, soak bool, tally *crashTally) {
	t := c.t
	// A synced start: files to delete, to move, to edit on both sides (nth of each, so that each point is reached
	// nth times), and an old local trash batch for the purge.
	long := strings.Repeat("x", 100) // above crashValues' chunk threshold
	for i := range nth {
		c.lw(fmt.Sprintf("del/x%d.txt", i), fmt.Sprintf("to be deleted remotely %d\n", i))
		c.lw(fmt.Sprintf("rdel/y%d.txt", i), fmt.Sprintf("to be deleted locally %d\n", i))
		c.lw(fmt.Sprintf("mv%d/m.txt", i), fmt.Sprintf("moved file %d\n", i))
		c.lw(fmt.Sprintf("c%d.txt", i), fmt.Sprintf("conflict base %d\n", i))
		c.lw(fmt.Sprintf("ren%d.txt", i), fmt.Sprintf("renamed remotely %d\n", i))
		c.lw(fmt.Sprintf("lren%d.txt", i), fmt.Sprintf("renamed locally %d\n", i))
		c.lw(fmt.Sprintf("from/a%d.txt", i), fmt.Sprintf("moved to another folder locally %d\n", i))
		c.lw(fmt.Sprintf("gone%d/g.txt", i), fmt.Sprintf("folder deleted locally %d\n", i))
		c.lw(fmt.Sprintf("redit%d.txt", i), fmt.Sprintf("edited remotely %d\n", i))
	}
	c.lw("to/keep.txt", "a folder to move files into\n")
	if r, k := c.pass(""); k || r.Code != 0 {
		t.Fatalf("first sync failed:\n%s", r)
	}
	old := filepath.Join(c.L, ".tandem", "trash", "20000101-000000", "old.txt")
	testenv.WriteFile(t, filepath.Dir(old), "old.txt", []byte("purged after 30 days\n"))

	for i := range nth {
		c.lw(fmt.Sprintf("up%d/u.txt", i), fmt.Sprintf("upload %d %s\n", i, point))
		c.lw(fmt.Sprintf("up%d/big.txt", i), fmt.Sprintf("chunked upload %d %s %s\n", i, point, long))
		// A new file to download (written unnamed) and a replace (written to a temp file).
		c.rw(fmt.Sprintf("down%d/d.txt", i), fmt.Sprintf("download %d %s\n", i, point))
		c.rw(fmt.Sprintf("redit%d.txt", i), fmt.Sprintf("edited remotely %d %s, a replace\n", i, point))
		c.lrm(fmt.Sprintf("del/x%d.txt", i))
		c.rrm(fmt.Sprintf("rdel/y%d.txt", i))
		c.lmv(fmt.Sprintf("mv%d", i), fmt.Sprintf("moved%d", i))
		c.lmv(fmt.Sprintf("lren%d.txt", i), fmt.Sprintf("lrenamed%d.txt", i))
		c.lmv(fmt.Sprintf("from/a%d.txt", i), fmt.Sprintf("to/a%d.txt", i))
		c.lrm(fmt.Sprintf("gone%d", i))
		if err := c.far.Move(t, fmt.Sprintf("ren%d.txt", i), fmt.Sprintf("renamed%d.txt", i)); err != nil {
			t.Fatal(err)
		}
		c.lw(fmt.Sprintf("c%d.txt", i), fmt.Sprintf("conflict %d: the local edit, longer\n", i))
		c.rw(fmt.Sprintf("c%d.txt", i), fmt.Sprintf("conflict %d: the remote edit\n", i))
	}

	if crashPrep[point] {
		if r, k := c.pass("localdir.put.beforeRename=kill@1"); !k {
			t.Fatalf("the prep pass was not killed:\n%s", r)
		}
	}
	plan := fmt.Sprintf("%s=kill@%d", point, nth)
	if crashOncePerPass[point] {
		plan = point + "=kill@1"
	}
	if strings.HasPrefix(point, "cursor.listing.") {
		plan = "--resync " + plan // a complete listing, as after a lost cursor
	}
	var r testenv.Result
	died := false
	for i := range nth {
		if i > 0 && !crashOncePerPass[point] {
			break
		}
		if i > 0 && crashPrep[point] {
			c.pass("localdir.put.beforeRename=kill@1") // another temp file to sweep, if a download is left
		}
		if r, died = c.pass(plan); !died {
			break
		}
	}
	tally.mu.Lock()
	tally.targets++
	if died {
		tally.kills++
	} else {
		tally.notReached = append(tally.notReached, fmt.Sprintf("%s:%s@%d", c.far.Kind(), point, nth))
	}
	tally.mu.Unlock()
	if !died {
		// At the 1st hit every listed point must be reached, or the list claims coverage it does not have.
		if !soak {
			t.Errorf("%s was not reached; the pass ended with %d:\n%s", point, r.Code, r)
		}
		t.Logf("%s was not hit %d times; the pass ended with %d", point, nth, r.Code)
	}
	if second != "" && died {
		name, at, _ := strings.Cut(second, "@")
		if r, k := c.pass(name + "=kill@" + at); k {
			tally.mu.Lock()
			tally.doubles++
			tally.mu.Unlock()
		} else {
			t.Logf("second kill %s not reached in the recovery pass (exit %d)", second, r.Code)
		}
	}

	// Recovery: plain passes until one exits 0.
	var last testenv.Result
	ok := false
	for range 4 {
		var k bool
		if last, k = c.pass(""); !k && last.Code == 0 {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatalf("no recovery pass exited 0 in 4 tries:\n%s", last)
	}
	lost := c.check()
	tally.mu.Lock()
	tally.versions += len(c.live)
	tally.lost += lost
	tally.mu.Unlock()
}

// check: both sides equal, nothing the test wrote lost, no temp file, and one more pass does nothing. It returns
// how many versions were lost.
func (c *crashRun) check() int {
	t := c.t
	loc, rem := testenv.Contents(t, c.L), c.far.Contents(t)
	if d := testenv.DiffContents(loc, rem); d != "" {
		t.Fatalf("local and %s differ after recovery:\n%s\npasses:\n%s", c.far.Spec(), d, strings.Join(c.log, "\n----\n"))
	}
	have := map[string]bool{}
	for _, h := range loc {
		have[h] = true
	}
	for _, h := range testenv.TrashFiles(t, c.L) {
		have[h] = true
	}
	for _, h := range c.far.Trash(t) {
		have[h] = true
	}
	var lost []string
	for h, where := range c.live {
		if !have[h] {
			lost = append(lost, where)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("versions lost: %v\ntree: %v", lost, loc)
	}
	if tf := testenv.TempFiles(t, c.L); len(tf) > 0 {
		t.Errorf("temp files left locally: %v", tf)
	}
	if tf := testenv.TempNames(rem); len(tf) > 0 {
		t.Errorf("temp files left on the remote: %v", tf)
	}
	r, k := c.pass("")
	if k || r.Code != 0 {
		t.Fatalf("a pass after recovery failed:\n%s", r)
	}
	d := r.JSON(t)
	if len(d.Done) != 0 || len(d.Conflicts) != 0 {
		t.Errorf("a pass after recovery did something: %+v %+v", d.Done, d.Conflicts)
	}
	return len(lost)
}
