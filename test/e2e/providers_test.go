package e2e

// The end-to-end suite against the three provider emulators (issues 3, 4 and 5, "Tests in make test"): the real
// binary (`tandem once`) against `tandem emulate <provider>` as a subprocess, over real HTTP(S), with remote
// edits made through the provider's client package as another client of the same account would make them.
// Every scenario gets its own emulator and folders. The scenarios are in provider_scenarios_test.go, the
// injected faults in provider_faults_test.go.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud"
	"github.com/tandemsync/tandem/remote/vboxx"
	"github.com/tandemsync/tandem/remote/verizon"
	verizonemu "github.com/tandemsync/tandem/remote/verizon/emulator"
	"github.com/tandemsync/tandem/test/testenv"
)

// provider describes one emulated provider: its spec, how to log in, and how its emulator names API calls.
type provider struct {
	name string
	spec string // what `tandem once` syncs with
	root string // the client root of the same folder
	// readOnly lists the ops a pass that changes nothing may make (listing, feed, polling, token refresh).
	readOnly map[string]bool
	// Regexps over op names, for fault rules and request-log assertions.
	upload, download, move, del, mkdir, list string
	// content: the request that carries a file's bytes down; put: the one that carries them up (a small file's
	// single upload request).
	content, put string
	// otherMutating: mutating ops outside the sets above (commit, copy, chunk sessions, ...).
	otherMutating string
	// digest: the provider gives a content digest, so a flipped byte is detectable.
	digest bool
	// moveCalls: the calls one move to a new folder under a new name takes (vBoxx's move takes only the target
	// folder, so it is a move then a rename).
	moveCalls int
	// emuArgs are extra `tandem emulate` flags, e.g. a Verizon --variant.
	emuArgs []string
}

var providers = []provider{
	{
		name: "pcloud", spec: "pcloud:/Sync", root: "/Sync",
		readOnly: set("userinfo", "listfolder", "stat", "diff", "checksumfile"),
		upload:   `^(uploadfile|upload_create|upload_write|upload_save)$`, download: `^(content|getfilelink)$`,
		content: `^content$`, put: `^uploadfile$`,
		move: `^rename(file|folder)$`, del: `^delete(file|folder|folderrecursive)$`,
		mkdir: `^createfolder(ifnotexists)?$`, list: `^(listfolder|diff)$`,
		otherMutating: `^(copyfile|upload_delete|trash_.*)$`, digest: true, moveCalls: 1,
	},
	{
		name: "verizon", spec: "verizon:/VZMOBILE/Sync", root: "/VZMOBILE/Sync",
		readOnly: set("account", "metadata", "fullview", "oauth2/token"),
		upload:   `^(fileupload/intent|upload|commit)$`, download: `^files$`,
		content: `^files$`, put: `^upload$`,
		move: `^fops/(move|rename)$`, del: `^fops/delete$`, mkdir: `^fops/createfolder$`, list: `^(fullview|metadata)$`,
		otherMutating: `^(fops/copy|fops/restore|trash)$`, digest: true,
		// Under the default reading (move-target-folder), a move to a new folder under a new name is a probe
		// with the full path (404), a move into the folder and a rename; with move-target-path it is one call.
		moveCalls: 3,
	},
	{
		name: "vboxx", spec: "vboxx:/", root: "/",
		readOnly: set("version", "person", "roots", "root", "folder", "file", "modified_since", "oauth/token"),
		upload:   `^(root|folder)/upload$`, download: `^file/download$`,
		content: `^file/download$`, put: `^(root|folder)/upload$`,
		move: `^(file|folder)/(move|rename)$`, del: `^(file|folder)/delete$`,
		mkdir: `^(root|folder)/create_folder$`, list: `^(root|folder|modified_since)$`,
		otherMutating: `^(file|folder)/(lock|unlock|copy)$`, digest: false, moveCalls: 2,
	},
}

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func (p provider) is(re, op string) bool { return regexp.MustCompile(re).MatchString(op) }

// mutating reports whether a logged request changed the account.
func (p provider) mutating(x testenv.LogEntry) bool {
	for _, re := range []string{p.upload, p.move, p.del, p.mkdir, p.otherMutating} {
		if p.is(re, x.Op) {
			return true
		}
	}
	return false
}

// verizonVariant is the verizon provider on an emulator with the given --variant, with what changes under it.
func verizonVariant(v string) provider {
	var p provider
	for _, q := range providers {
		if q.name == "verizon" {
			p = q
		}
	}
	p.emuArgs = []string{"--variant", v}
	switch v {
	case verizonemu.VariantMoveTargetPath:
		p.moveCalls = 1
	}
	return p
}

// forEachProvider runs f as a parallel subtest per provider.
func forEachProvider(t *testing.T, f func(t *testing.T, p provider)) {
	t.Helper()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f(t, p)
		})
	}
}

// penv is one provider scenario: an emulator of its own, a local folder L, a state dir, the credentials the
// binary uses, and a ledger of every version the test wrote.
type penv struct {
	t    *testing.T
	p    provider
	emu  *testenv.Emulator
	L    string
	SD   string
	xdg  string // XDG_CONFIG_HOME of the binary (vBoxx's login, pCloud's re-login)
	at   string // pCloud, Verizon: --access-token
	rt   string // Verizon: --refresh-token
	flag bool   // pass --access-token (false after a pCloud re-login: the stored login is used)
	// clientTokens: the test's own client logins (vBoxx: a second `tandem login` into this token folder).
	clientTokens string
	// written: sha256 of every version the test wrote -> where, for the "nothing lost" check.
	written map[string]string
	// ever: every version the test ever wrote, forgotten or not: a live file must hold one of them (I6).
	ever map[string]bool
	// bug: a product bug a check found that does not stop the scenario; the test ends with t.Skip(bug).
	bug string
}

func newPenv(t *testing.T, p provider, emuArgs ...string) *penv {
	t.Helper()
	e := &penv{t: t, p: p, L: t.TempDir(), SD: t.TempDir(), xdg: t.TempDir(), flag: true, written: map[string]string{},
		ever: map[string]bool{sum(""): true}}
	if p.name == "verizon" {
		// The emulator accepts only its registered callback: a free loopback port of this test's own.
		emuArgs = append(emuArgs, "--redirect-url", "http://127.0.0.1:"+freePort(t)+"/callback")
	}
	e.emu = testenv.StartEmulator(t, bin, p.name, append(slices.Clone(p.emuArgs), emuArgs...)...)
	switch p.name {
	case "pcloud", "verizon":
		e.at, e.rt = e.emu.AccessToken, e.emu.RefreshToken
	case "vboxx":
		e.login(filepath.Join(e.xdg, "tandem", "tokens"))
		e.clientTokens = t.TempDir()
		e.login(e.clientTokens)
	}
	// The remote folder exists before the first sync, as when another device created it: the test writes into
	// it through the client.
	e.with(func(ctx context.Context, r remote.Remote) error {
		if rc, ok := r.(remote.RootChecker); ok {
			return rc.InitRoot(ctx)
		}
		return nil
	})
	return e
}

// freePort is a loopback TCP port that was free a moment ago.
//
// The port is taken from below the kernel's ephemeral range (32768 and up on Linux) and handed out once per test
// process: a port the kernel gave out for port 0 and that was closed again can be handed to any outgoing
// connection or listener before `tandem login` binds it (TestVerizonVariants/refresh-grace/Login failed so).
func freePort(t *testing.T) string {
	t.Helper()
	for range 500 {
		p := nextPort.Add(1)
		if p >= 32000 {
			nextPort.CompareAndSwap(p, 20000)
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		return strconv.Itoa(int(p))
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// nextPort is the last port freePort handed out; the start varies per process so that two test binaries run
// side by side seldom try the same ports.
var nextPort = func() *atomic.Int32 {
	var n atomic.Int32
	n.Store(int32(20000 + os.Getpid()%10000))
	return &n
}()

// verizonApp is the `tandem login verizon` flags for the emulator's registered app.
func (e *penv) verizonApp() []string {
	return []string{"--client-id", e.emu.ClientID, "--client-secret", e.emu.ClientSecret, "--redirect-url", e.emu.RedirectURL}
}

// login runs `tandem login vboxx --password-stdin` into tokenDir, as the emulator's registered app when it has
// one (`tandem emulate vboxx --client-id --client-secret`).
func (e *penv) login(tokenDir string) {
	e.t.Helper()
	args := []string{"login", "vboxx", "--username", e.emu.Username, "--password-stdin", "--endpoint", e.emu.Endpoint,
		"--ca-file", e.emu.CAFile, "--token-dir", tokenDir}
	if e.emu.ClientID != "" {
		args = append(args, "--client-id", e.emu.ClientID, "--client-secret", e.emu.ClientSecret)
	}
	r := testenv.RunWith(e.t, bin, testenv.RunOpts{Stdin: e.emu.Password + "\n"}, args...)
	if r.Code != 0 {
		e.t.Fatalf("login vboxx:\n%s", r)
	}
}

// mint gives a fresh Verizon token pair from the emulator's admin endpoint.
func (e *penv) mint() (at, rt string) {
	e.t.Helper()
	var m map[string]string
	if err := json.Unmarshal(e.emu.Post(e.t, "/mint", ""), &m); err != nil {
		e.t.Fatal(err)
	}
	return m["access_token"], m["refresh_token"]
}

// once runs `tandem once L <spec>` with the scenario's credentials.
func (e *penv) once(flags ...string) testenv.Result {
	e.t.Helper()
	return e.onceWith(bin, nil, flags...)
}

// onceWith is once with another binary (the failpoints build) and extra environment variables.
func (e *penv) onceWith(binary string, env []string, flags ...string) testenv.Result {
	e.t.Helper()
	args := []string{"once", "--state-dir", e.SD}
	args = append(args, flags...)
	switch e.p.name {
	case "pcloud":
		args = append(args, "--endpoint", e.emu.Endpoint)
		if e.flag {
			args = append(args, "--access-token", e.at)
		}
	case "verizon":
		args = append(args, "--endpoint", e.emu.Endpoint, "--access-token", e.at, "--refresh-token", e.rt,
			"--ca-file", e.emu.CAFile)
	case "vboxx":
		args = append(args, "--ca-file", e.emu.CAFile)
	}
	args = append(args, e.L, e.p.spec)
	return testenv.RunWith(e.t, binary, testenv.RunOpts{Env: append([]string{"XDG_CONFIG_HOME=" + e.xdg}, env...)}, args...)
}

// sync runs a pass that must succeed without problems and returns its JSON document.
func (e *penv) sync(flags ...string) testenv.Doc {
	e.t.Helper()
	r := e.once(append([]string{"--json"}, flags...)...)
	if r.Code != 0 {
		e.t.Fatalf("pass failed:\n%s", r)
	}
	d := r.JSON(e.t)
	if !d.OK || d.ExitCode != 0 || len(d.Problems) > 0 {
		e.t.Fatalf("pass not ok:\n%s", r)
	}
	return d
}

// base makes the current trees the sync point: one pass that must succeed.
func (e *penv) base() {
	e.t.Helper()
	e.sync()
}

// syncLogged is sync with the emulator's request log of that pass.
func (e *penv) syncLogged(flags ...string) (testenv.Doc, []testenv.LogEntry) {
	e.t.Helper()
	e.emu.ClearLog(e.t)
	d := e.sync(flags...)
	return d, e.emu.Log(e.t)
}

// settle runs passes until one exits 0 (at most max), after faults were cleared. It returns the passes' results.
func (e *penv) settle(max int) []testenv.Result {
	e.t.Helper()
	var rs []testenv.Result
	for range max {
		r := e.once("--json")
		rs = append(rs, r)
		if r.Code == 0 {
			return rs
		}
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s\n---\n", r)
	}
	e.t.Fatalf("no pass succeeded in %d attempts after the faults were cleared:\n%s", max, b.String())
	return nil
}

// converged checks that L and the remote folder hold the same tree byte for byte, that one more pass makes
// no mutating API call and does nothing, that no temp file is left, and that every version the test wrote
// is still live on both sides or in the local trash. It returns the common tree.
func (e *penv) converged() map[string]string {
	e.t.Helper()
	loc, rem := testenv.Contents(e.t, e.L), e.remoteContents()
	if d := testenv.DiffContents(loc, rem); d != "" {
		e.t.Fatalf("local and %s differ:\n%s", e.p.name, d)
	}
	d, log := e.syncLogged()
	if len(d.Done) != 0 || len(d.Conflicts) != 0 {
		e.t.Fatalf("a pass after convergence did something: %+v %+v", d.Done, d.Conflicts)
	}
	e.noMutation(log, fmt.Sprintf("a pass after convergence (planned %+v, skipped %+v)", d.Planned, d.Skipped))
	if tf := testenv.TempFiles(e.t, e.L); len(tf) > 0 {
		e.t.Fatalf("temp files left: %v", tf)
	}
	e.nothingLost(loc)
	return loc
}

// noMutation fails the test if the log holds a mutating request, or any op beyond listing, feed and polling.
func (e *penv) noMutation(log []testenv.LogEntry, what string) {
	e.t.Helper()
	var bad []string
	for _, x := range log {
		if e.p.mutating(x) || !e.p.readOnly[x.Op] {
			bad = append(bad, x.Method+" "+x.Op)
		}
	}
	if len(bad) > 0 {
		e.t.Fatalf("%s made %d calls beyond listing/feed/poll: %v (ops %v)", what, len(bad), bad, testenv.OpCounts(log))
	}
}

// nothingLost checks that every version the test wrote is in tree (live on both sides, since tree is both
// sides' common tree) or in the local trash.
func (e *penv) nothingLost(tree map[string]string) {
	e.t.Helper()
	live := map[string]bool{}
	for _, h := range tree {
		live[h] = true
	}
	for _, h := range testenv.TrashFiles(e.t, e.L) {
		live[h] = true
	}
	var lost []string
	for h, where := range e.written {
		if !live[h] {
			lost = append(lost, where)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		e.t.Fatalf("%d versions lost (written at %v), tree %v", len(lost), lost, tree)
	}
}

// forget drops a version from the ledger: the test itself overwrote or deleted it on the same side, which is
// the user's own choice (RELIABILITY.md I2).
func (e *penv) forget(data string) { delete(e.written, sum(data)) }

func sum(data string) string {
	h := sha256.Sum256([]byte(data))
	return hex.EncodeToString(h[:])
}

// Local side.

func (e *penv) lwrite(rel, data string) {
	e.t.Helper()
	testenv.WriteFile(e.t, e.L, rel, []byte(data))
	e.written[sum(data)] = "local " + rel
	e.ever[sum(data)] = true
}

func (e *penv) lread(rel string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.L, filepath.FromSlash(rel)))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *penv) lremove(rel string) {
	e.t.Helper()
	if err := os.RemoveAll(filepath.Join(e.L, filepath.FromSlash(rel))); err != nil {
		e.t.Fatal(err)
	}
}

func (e *penv) lmove(from, to string) {
	e.t.Helper()
	dst := filepath.Join(e.L, filepath.FromSlash(to))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(e.L, filepath.FromSlash(from)), dst); err != nil {
		e.t.Fatal(err)
	}
}

func (e *penv) lmkdir(rel string) {
	e.t.Helper()
	if err := os.MkdirAll(filepath.Join(e.L, filepath.FromSlash(rel)), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// Remote side, through the provider's own client package (a real client over HTTP(S)).

// client opens a new client of the scenario's remote folder. Each helper call opens its own, as another
// device would, so no cache of an earlier call hides what the binary did.
func (e *penv) client() remote.Remote {
	e.t.Helper()
	ctx := context.Background()
	var r remote.Remote
	var err error
	switch e.p.name {
	case "pcloud":
		o := remote.OpenOptions{Endpoint: e.emu.Endpoint, AccessToken: remote.Secret(e.emu.AccessToken)}
		if !e.flag { // the emulator's token was revoked: use the login the binary made again
			o = remote.OpenOptions{Endpoint: e.emu.Endpoint, StateDir: filepath.Join(e.xdg, "tandem", "tokens")}
		}
		r, err = pcloud.Open(ctx, nil, e.p.root, o)
	case "verizon":
		at, rt := e.mint()
		r, err = verizon.Open(ctx, nil, e.p.root, remote.OpenOptions{Endpoint: e.emu.Endpoint,
			AccessToken: remote.Secret(at), RefreshToken: remote.Secret(rt), CAFile: e.emu.CAFile})
	case "vboxx":
		r, err = vboxx.Open(ctx, nil, e.p.root, remote.OpenOptions{CAFile: e.emu.CAFile, StateDir: e.clientTokens})
	}
	if err != nil {
		e.t.Fatalf("open %s client: %v", e.p.name, err)
	}
	return r
}

func (e *penv) with(f func(ctx context.Context, r remote.Remote) error) {
	e.t.Helper()
	r := e.client()
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f(ctx, r); err != nil {
		e.t.Fatalf("%s client: %v", e.p.name, err)
	}
}

func mkdirAll(ctx context.Context, r remote.Remote, rel string) error {
	if rel == "" || rel == "." {
		return nil
	}
	if err := mkdirAll(ctx, r, path.Dir(rel)); err != nil {
		return err
	}
	_, err := r.Mkdir(ctx, remote.Path(rel))
	return err
}

func (e *penv) rwrite(rel, data string) {
	e.t.Helper()
	e.with(func(ctx context.Context, r remote.Remote) error {
		if err := mkdirAll(ctx, r, path.Dir(rel)); err != nil {
			return err
		}
		_, err := r.Put(ctx, remote.Path(rel), strings.NewReader(data), int64(len(data)), time.Now(), remote.Precondition{})
		return err
	})
	e.written[sum(data)] = "remote " + rel
	e.ever[sum(data)] = true
}

func (e *penv) rread(rel string) string {
	e.t.Helper()
	var out string
	e.with(func(ctx context.Context, r remote.Remote) error {
		rc, _, err := r.Open(ctx, remote.Path(rel))
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		out = string(b)
		return err
	})
	return out
}

func (e *penv) rmkdir(rel string) {
	e.t.Helper()
	e.with(func(ctx context.Context, r remote.Remote) error { return mkdirAll(ctx, r, rel) })
}

func (e *penv) rmove(from, to string) {
	e.t.Helper()
	e.with(func(ctx context.Context, r remote.Remote) error {
		if err := mkdirAll(ctx, r, path.Dir(to)); err != nil {
			return err
		}
		_, err := r.Move(ctx, remote.Path(from), remote.Path(to), remote.Precondition{})
		return err
	})
}

// rremove deletes a file, or a folder with everything below it (children first).
func (e *penv) rremove(rel string) {
	e.t.Helper()
	e.with(func(ctx context.Context, r remote.Remote) error {
		st, err := r.Stat(ctx, remote.Path(rel))
		if err != nil {
			return err
		}
		var paths []remote.Path
		if st.Dir {
			if err := r.Walk(ctx, remote.Path(rel), func(x remote.Entry) error {
				paths = append(paths, x.Path)
				return nil
			}); err != nil {
				return err
			}
		}
		for i := len(paths) - 1; i >= 0; i-- { // parents come before their children in a walk
			if err := r.Delete(ctx, paths[i], remote.Precondition{}); err != nil {
				return fmt.Errorf("delete %s: %w", paths[i], err)
			}
		}
		return r.Delete(ctx, remote.Path(rel), remote.Precondition{})
	})
}

// remoteContents is the remote folder's tree by content, read through a fresh client (every file downloaded
// and hashed: vBoxx has no digest, and a digest the server reports is not proof of the bytes it serves).
func (e *penv) remoteContents() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	e.with(func(ctx context.Context, r remote.Remote) error {
		return testenv.HashTree(ctx, r, out, func(p remote.Path) bool {
			return strings.HasPrefix(string(p), remote.ReservedDir)
		})
	})
	return out
}

// ops counts the log's requests whose op matches re.
func ops(log []testenv.LogEntry, re string) int {
	rx := regexp.MustCompile(re)
	n := 0
	for _, x := range log {
		if rx.MatchString(x.Op) {
			n++
		}
	}
	return n
}

// loginPCloud runs `tandem login pcloud --no-browser` as a user told to would, approves the printed URL like
// a browser, and switches the scenario to the stored login.
func (e *penv) loginPCloud() {
	e.t.Helper()
	cmd := exec.Command(bin, "login", "pcloud", "--no-browser", "--endpoint", e.emu.Endpoint)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+e.xdg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(out)
	var link string
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); strings.HasPrefix(s, "http") && strings.Contains(s, "authorize") {
			link = s
			break
		}
	}
	if link == "" {
		e.t.Fatalf("tandem login pcloud printed no URL; stderr:\n%s", stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	resp, err := http.Get(link) // the emulator approves at once and redirects to the loopback listener
	if err != nil {
		e.t.Fatalf("approve %s: %v", link, err)
	}
	resp.Body.Close()
	if err := cmd.Wait(); err != nil {
		e.t.Fatalf("tandem login pcloud: %v\n%s", err, stderr.String())
	}
	e.flag = false
}
