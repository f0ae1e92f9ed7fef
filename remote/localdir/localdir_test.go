package localdir_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/localdir/fakefs"
)

// env is one Dir plus direct access to the tree under it, so tests can arrange and inspect without going
// through the code under test.
type env struct {
	d       *localdir.Dir
	clk     *clockwork.FakeClock
	skipped map[string]string // OnSkip reports: path -> reason
	write   func(name, data string)
	read    func(name string) (string, error)
	mkdir   func(name string)
	symlink func(target, name string)
	names   func() []string // every path below the root, sorted
	// unreadable makes folder name unlistable; nil where the test cannot (root ignores mode bits).
	unreadable func(name string)
	fake       *fakefs.FS
	root       string // the real directory ("os" only)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var t0 = time.Date(2026, 3, 1, 10, 15, 0, 123456789, time.UTC)

func newEnv(t *testing.T, kind string, o localdir.Options) *env {
	t.Helper()
	e := &env{clk: clockwork.NewFakeClockAt(t0), skipped: map[string]string{}}
	o.Clock = e.clk
	if o.OnSkip == nil {
		o.OnSkip = func(p, reason string) { e.skipped[p] = reason }
	}
	seq := uint64(0)
	o.Rand = func() uint64 { seq++; return seq }
	lg := zaptest.NewLogger(t)
	switch kind {
	case "os":
		dir := t.TempDir()
		d, err := localdir.Open(lg, dir, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		e.d, e.root = d, dir
		full := func(n string) string { return filepath.Join(dir, filepath.FromSlash(n)) }
		e.write = func(n, data string) {
			if err := os.WriteFile(full(n), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		e.read = func(n string) (string, error) { b, err := os.ReadFile(full(n)); return string(b), err }
		e.mkdir = func(n string) {
			if err := os.MkdirAll(full(n), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		e.symlink = func(target, n string) {
			if err := os.Symlink(target, full(n)); err != nil {
				t.Fatal(err)
			}
		}
		e.names = func() []string {
			var out []string
			filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
				if p != dir {
					r, _ := filepath.Rel(dir, p)
					out = append(out, filepath.ToSlash(r))
				}
				return nil
			})
			slices.Sort(out)
			return out
		}
		if os.Geteuid() != 0 {
			e.unreadable = func(n string) {
				if err := os.Chmod(full(n), 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(full(n), 0o755) })
			}
		}
	case "fake":
		f := fakefs.New(e.clk, rand.New(rand.NewPCG(1, 2)))
		e.fake = f
		e.d = localdir.New(lg, f, o)
		e.write = func(n, data string) {
			if err := f.WriteFile(n, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		e.read = func(n string) (string, error) { b, err := f.ReadFile(n); return string(b), err }
		e.mkdir = func(n string) {
			if err := f.MkdirAll(n); err != nil {
				t.Fatal(err)
			}
		}
		e.symlink = func(target, n string) {
			if err := f.Symlink(target, n); err != nil {
				t.Fatal(err)
			}
		}
		e.names = func() []string {
			var out []string
			f.Walk(func(n string, _ bool, _ []byte) { out = append(out, n) })
			slices.Sort(out)
			return out
		}
		e.unreadable = f.Unreadable
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if err := e.d.InitRoot(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// both runs fn against a real directory through os.Root and against fakefs.
func both(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, kind := range []string{"os", "fake"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, kind, localdir.Options{}))
		})
	}
}

func put(t *testing.T, e *env, p, data string, pre remote.Precondition) remote.Entry {
	t.Helper()
	got, err := e.d.Put(context.Background(), remote.Path(p), strings.NewReader(data), int64(len(data)), t0, pre)
	if err != nil {
		t.Fatalf("Put %s: %v", p, err)
	}
	return got
}

func mustRead(t *testing.T, e *env, n string) string {
	t.Helper()
	s, err := e.read(n)
	if err != nil {
		t.Fatalf("read %s: %v", n, err)
	}
	return s
}

// noTemp fails when a .tandem-*.part file is anywhere in the tree.
func noTemp(t *testing.T, e *env) {
	t.Helper()
	for _, n := range e.names() {
		if b := filepath.Base(n); strings.HasPrefix(b, ".tandem-") && strings.HasSuffix(b, ".part") {
			t.Errorf("temp file left: %s", n)
		}
	}
}

func walk(t *testing.T, e *env, dir remote.Path) []remote.Entry {
	t.Helper()
	var out []remote.Entry
	if err := e.d.Walk(context.Background(), dir, func(en remote.Entry) error {
		if en.Skip != "" { // emitted for the engine to keep what it knew there; the tests check them as reports
			e.skipped[string(en.Path)] = en.Skip
			return nil
		}
		out = append(out, en)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

func paths(es []remote.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Path))
	}
	return out
}

func TestWalkOrderAndSkips(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		for _, d := range []string{"a/c", "x", "sub"} {
			e.mkdir(d)
		}
		for _, f := range []string{"a/b", "a b", "a/c/d", "b", "a-", ".tandem-0000000000000001.part", "x/.tandem-1.part", "a\x01b", ".tandem-x", "sub/.tandem"} {
			e.write(f, "data "+f)
		}
		target := "/etc"
		if e.fake != nil {
			target = "elsewhere"
		}
		e.symlink(target, "link")
		got := walk(t, e, remote.Root)
		want := []string{"a", "a/b", "a/c", "a/c/d", "a b", "a-", "b", "sub", "x"}
		if !slices.Equal(paths(got), want) {
			t.Errorf("walk = %q, want %q", paths(got), want)
		}
		// The store's key order: "/" replaced by 0x00.
		keys := paths(got)
		if !slices.IsSortedFunc(keys, func(a, b string) int {
			return strings.Compare(strings.ReplaceAll(a, "/", "\x00"), strings.ReplaceAll(b, "/", "\x00"))
		}) {
			t.Errorf("walk order %q is not the store's key order", keys)
		}
		for _, en := range got {
			switch {
			case en.Dir && (en.Rev != "" || en.ID == ""):
				t.Errorf("folder %s: Rev %q ID %q", en.Path, en.Rev, en.ID)
			case !en.Dir && (en.Rev == "" || en.ID == "" || !en.Hash.IsZero() || en.Size != int64(len("data "+string(en.Path)))):
				t.Errorf("file entry %+v", en)
			}
		}
		for _, p := range []string{"link", `"a\x01b"`, ".tandem-x", "sub/.tandem"} {
			if _, ok := e.skipped[p]; !ok {
				t.Errorf("%s not reported (reports: %q)", p, e.skipped)
			}
		}
		if !strings.Contains(e.skipped["link"], "symlink") {
			t.Errorf("link reported as %q", e.skipped["link"])
		}
		if len(e.skipped) != 4 {
			t.Errorf("reports = %q, want 4", e.skipped)
		}
		if sub := walk(t, e, "a"); !slices.Equal(paths(sub), []string{"a/b", "a/c", "a/c/d"}) {
			t.Errorf("walk a = %q", paths(sub))
		}
	})
}

func TestWalkSkipOption(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{Skip: func(p remote.Path, dir bool) bool { return p == "node_modules" || p == "ln" }})
	e.mkdir("node_modules/x")
	e.write("node_modules/x/y", "1")
	e.write("keep", "1")
	e.symlink("keep", "ln")
	if got := paths(walk(t, e, remote.Root)); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("walk = %q", got)
	}
	if len(e.skipped) != 0 {
		t.Errorf("ignored paths reported: %q", e.skipped)
	}
}

// Entries shows what Skip hides from Walk (the engine asks whether a folder it kept for ignored files still
// holds any) and changes nothing.
func TestEntriesShowsSkipped(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{Skip: func(p remote.Path, dir bool) bool { return strings.HasSuffix(string(p), ".log") }})
	e.mkdir("K/sub")
	e.write("K/keep.log", "mine")
	e.write("K/.DS_Store", "junk")
	e.symlink("keep.log", "K/ln")
	before := e.names()
	got, err := e.d.Entries(context.Background(), "K")
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, c := range got {
		desc = append(desc, fmt.Sprintf("%s dir=%v skip=%q", c.Path, c.Dir, c.Skip))
	}
	slices.Sort(desc)
	want := []string{`K/.DS_Store dir=false skip=""`, `K/keep.log dir=false skip=""`,
		`K/ln dir=false skip="symlink (not followed)"`, `K/sub dir=true skip=""`}
	if !slices.Equal(desc, want) {
		t.Errorf("entries = %q, want %q", desc, want)
	}
	if after := e.names(); !slices.Equal(after, before) {
		t.Errorf("Entries changed the tree: %q -> %q", before, after)
	}
}

func TestWalkUnreadableFolder(t *testing.T) {
	for _, kind := range []string{"os", "fake"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, localdir.Options{})
			if e.unreadable == nil {
				t.Skip("running as root: mode bits do not deny; fakefs covers this")
			}
			e.mkdir("u/inner")
			e.write("u/f", "1")
			e.write("z", "1")
			e.unreadable("u")
			got := walk(t, e, remote.Root)
			if !slices.Equal(paths(got), []string{"u", "z"}) {
				t.Fatalf("walk = %q", paths(got))
			}
			if !got[0].Incomplete || !got[0].Dir {
				t.Errorf("u = %+v, want an Incomplete folder", got[0])
			}
			if _, ok := e.skipped["u"]; !ok {
				t.Errorf("unreadable folder not reported: %q", e.skipped)
			}
		})
	}
}

func TestWalkUnstatableChildMarksParentIncomplete(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{})
	e.mkdir("d")
	e.write("d/bad", "1")
	e.write("d/good", "1")
	e.fake.SetFault(func(op, name string) error {
		if op == "lstat" && name == "d/bad" {
			return syscall.EACCES
		}
		return nil
	})
	got := walk(t, e, remote.Root)
	if !slices.Equal(paths(got), []string{"d", "d/good"}) || !got[0].Incomplete {
		t.Errorf("walk = %+v", got)
	}
	if _, ok := e.skipped["d/bad"]; !ok {
		t.Errorf("d/bad not reported: %q", e.skipped)
	}
}

func TestWalkRootGoneAborts(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{})
	e.mkdir("d")
	e.fake.SetFault(func(op, name string) error {
		if (op == "readdir" && name == "d") || (op == "lstat" && name == ".") {
			return syscall.EIO
		}
		return nil
	})
	err := e.d.Walk(context.Background(), remote.Root, func(remote.Entry) error { return nil })
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("Walk = %v, want EIO", err)
	}
}

func TestWalkStopsOnFnErrorAndCtx(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.write("a", "1")
		e.write("b", "1")
		stop := errors.New("stop")
		n := 0
		err := e.d.Walk(context.Background(), remote.Root, func(remote.Entry) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Walk = %v after %d calls", err, n)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := e.d.Walk(ctx, remote.Root, func(remote.Entry) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("Walk with a cancelled ctx = %v", err)
		}
	})
}

func TestStat(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		root, err := e.d.Stat(ctx, remote.Root)
		if err != nil || !root.Dir {
			t.Errorf("Stat(Root) = %+v, %v", root, err)
		}
		_, err = e.d.Stat(ctx, "nope")
		if !errors.Is(err, remote.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(missing) = %v", err)
		}
		if _, err := e.d.Stat(ctx, "../x"); !errors.Is(err, remote.ErrInvalidName) {
			t.Errorf("Stat(../x) = %v", err)
		}
		e.symlink("x", "ln")
		if _, err := e.d.Stat(ctx, "ln"); err == nil {
			t.Error("Stat of a symlink succeeded")
		}
	})
}

func TestPutOpenRoundTrip(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.mkdir("d")
		got := put(t, e, "d/f.txt", "hello", remote.Precondition{Absent: true})
		if got.Hash != (remote.Hash{Algo: "sha256", Hex: sha("hello")}) || got.Size != 5 || !got.ModTime.Equal(t0) ||
			got.Rev == "" || got.ID == "" || got.Path != "d/f.txt" {
			t.Errorf("Put = %+v", got)
		}
		rc, oe, err := e.d.Open(ctx, "d/f.txt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "hello" || oe.Rev != got.Rev || oe.ID != got.ID || !oe.ModTime.Equal(t0) {
			t.Errorf("Open = %q %+v, Put gave %+v", b, oe, got)
		}
		st, err := e.d.Stat(ctx, "d/f.txt")
		if err != nil || st.Rev != got.Rev {
			t.Errorf("Stat = %+v, %v", st, err)
		}
		h, he, err := e.d.HashOf(ctx, "d/f.txt", "sha1")
		if err != nil || h.Algo != "sha1" || h.Hex != "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d" || he.Rev != got.Rev {
			t.Errorf("HashOf = %v %+v %v", h, he, err)
		}
		// Overwrite with the current Rev.
		got2 := put(t, e, "d/f.txt", "hello, world", remote.Precondition{Rev: got.Rev})
		if mustRead(t, e, "d/f.txt") != "hello, world" || got2.Rev == got.Rev {
			t.Errorf("overwrite: %+v", got2)
		}
		noTemp(t, e)
		if _, _, err := e.d.Open(ctx, "d"); err == nil {
			t.Error("Open of a folder succeeded")
		}
	})
}

func TestPutPreconditions(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		first := put(t, e, "f", "one", remote.Precondition{})
		ctx := context.Background()
		try := func(pre remote.Precondition) error {
			_, err := e.d.Put(ctx, "f", strings.NewReader("two"), 3, t0.Add(time.Hour), pre)
			return err
		}
		if err := try(remote.Precondition{Absent: true}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Put Absent on a file = %v", err)
		}
		e.clk.Advance(time.Second)
		e.write("f", "changed") // someone else's edit
		if err := try(remote.Precondition{Rev: first.Rev}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Put stale Rev = %v", err)
		}
		if s := mustRead(t, e, "f"); s != "changed" {
			t.Errorf("f = %q after refused Puts", s)
		}
		e.mkdir("dir")
		if _, err := e.d.Put(ctx, "dir", strings.NewReader("x"), 1, t0, remote.Precondition{}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Put over a folder = %v", err)
		}
		if _, err := e.d.Put(ctx, "gone", strings.NewReader("x"), 1, t0, remote.Precondition{Rev: first.Rev}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Put with Rev on a missing file = %v", err)
		}
		if _, err := e.d.Put(ctx, "nodir/f", strings.NewReader("x"), 1, t0, remote.Precondition{}); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("Put without parent = %v", err)
		}
		noTemp(t, e)
	})
}

// failingReader yields some bytes, then an error: a connection reset mid-body.
type failingReader struct{ n int }

var errReset = errors.New("connection reset")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errReset
	}
	c := min(len(p), f.n)
	for i := range c {
		p[i] = 'x'
	}
	f.n -= c
	return c, nil
}

func TestPutBadBodies(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		put(t, e, "f", "original", remote.Precondition{})
		ctx := context.Background()
		cases := []struct {
			name string
			body io.Reader
			size int64
			want error
		}{
			{"reset midway", &failingReader{n: 100000}, 200000, errReset},
			{"short", strings.NewReader("abc"), 4, remote.ErrCorrupt},
			{"long", strings.NewReader("abcde"), 4, remote.ErrCorrupt},
			{"verifier mismatch", remote.NewVerifier(strings.NewReader("abcd"), remote.Hash{Algo: "sha256", Hex: sha("abce")}, 4, ""), 4, remote.ErrCorrupt},
		}
		for _, c := range cases {
			_, err := e.d.Put(ctx, "f", c.body, c.size, t0, remote.Precondition{})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: Put = %v, want %v", c.name, err, c.want)
			}
			if s := mustRead(t, e, "f"); s != "original" {
				t.Errorf("%s: f = %q", c.name, s)
			}
			noTemp(t, e)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.d.Put(cctx, "g", strings.NewReader("x"), 1, t0, remote.Precondition{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Put with cancelled ctx = %v", err)
		}
	})
}

// A body that digests itself in the side's algorithm (the engine's Verifier) gives Put its digest; any other
// body is digested by Put. Either way the Entry's digest is that of the bytes stored.
func TestPutDigestOfVerifiedBody(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, algo := range []string{"sha256", "sha1", ""} {
			body := remote.NewVerifier(strings.NewReader("verified "+algo), remote.Hash{}, -1, algo)
			got, err := e.d.Put(ctx, "v", body, -1, t0, remote.Precondition{})
			if err != nil {
				t.Fatalf("%q: Put = %v", algo, err)
			}
			if want := (remote.Hash{Algo: "sha256", Hex: sha("verified " + algo)}); got.Hash != want {
				t.Errorf("body digesting %q: Put's digest %v, want %v", algo, got.Hash, want)
			}
		}
	})
}

func TestMkdir(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a, err := e.d.Mkdir(ctx, "a")
		if err != nil || !a.Dir || a.ID == "" {
			t.Fatalf("Mkdir = %+v, %v", a, err)
		}
		again, err := e.d.Mkdir(ctx, "a")
		if err != nil || again.ID != a.ID {
			t.Errorf("Mkdir existing = %+v, %v", again, err)
		}
		e.write("f", "1")
		if _, err := e.d.Mkdir(ctx, "f"); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Mkdir over a file = %v", err)
		}
		if _, err := e.d.Mkdir(ctx, "x/y"); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("Mkdir without parent = %v", err)
		}
	})
}

func TestMove(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.mkdir("d")
		f := put(t, e, "f", "content", remote.Precondition{})
		m, err := e.d.Move(ctx, "f", "d/g", remote.Precondition{Rev: f.Rev})
		if err != nil {
			t.Fatal(err)
		}
		// The rename moves the ctime, so the revision is the one a Stat takes after the move.
		st, err := e.d.Stat(ctx, "d/g")
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != f.ID || m.Path != "d/g" || m.Size != f.Size || !m.ModTime.Equal(f.ModTime) || m.Rev != st.Rev {
			t.Errorf("Move = %+v, from %+v, Stat after %+v", m, f, st)
		}
		if s := mustRead(t, e, "d/g"); s != "content" {
			t.Errorf("d/g = %q", s)
		}
		if _, err := e.read("f"); err == nil {
			t.Error("f still there")
		}
		put(t, e, "other", "other", remote.Precondition{})
		if _, err := e.d.Move(ctx, "d/g", "other", remote.Precondition{}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Move onto a file = %v", err)
		}
		if _, err := e.d.Move(ctx, "d/g", "x", remote.Precondition{Rev: "1-2-3"}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Move with stale Rev = %v", err)
		}
		if _, err := e.d.Move(ctx, "nope", "x", remote.Precondition{}); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("Move of missing = %v", err)
		}
		if _, err := e.d.Move(ctx, "other", "nodir/x", remote.Precondition{}); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("Move into a missing folder = %v", err)
		}
		dm, err := e.d.Move(ctx, "d", "e", remote.Precondition{})
		if err != nil || !dm.Dir {
			t.Fatalf("Move folder = %+v, %v", dm, err)
		}
		if _, err := e.d.Move(ctx, "e", "e/inside", remote.Precondition{}); err == nil {
			t.Error("Move into itself succeeded")
		}
		if s := mustRead(t, e, "other"); s != "other" {
			t.Errorf("other = %q", s)
		}
	})
}

func trashPath(p string) string {
	return ".tandem/trash/" + t0.UTC().Format("20060102-150405") + "/" + p
}

func TestDelete(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.mkdir("d")
		f := put(t, e, "d/f.txt", "precious", remote.Precondition{})
		if err := e.d.Delete(ctx, "d/f.txt", remote.Precondition{Rev: "0-0-0"}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Delete stale = %v", err)
		}
		if err := e.d.Delete(ctx, "d/f.txt", remote.Precondition{Rev: f.Rev}); err != nil {
			t.Fatal(err)
		}
		if s := mustRead(t, e, trashPath("d/f.txt")); s != "precious" {
			t.Errorf("trash holds %q", s)
		}
		put(t, e, "d/f.txt", "again", remote.Precondition{Absent: true})
		if err := e.d.Delete(ctx, "d/f.txt", remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
		if s := mustRead(t, e, trashPath("d/f 2.txt")); s != "again" {
			t.Errorf("second trash copy holds %q", s)
		}
		if err := e.d.Delete(ctx, "d/f.txt", remote.Precondition{}); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("Delete missing = %v", err)
		}
		e.write("d/keep", "1")
		if err := e.d.Delete(ctx, "d", remote.Precondition{}); !errors.Is(err, remote.ErrNotEmpty) {
			t.Errorf("Delete non-empty folder = %v", err)
		}
		if s := mustRead(t, e, "d/keep"); s != "1" {
			t.Errorf("d/keep = %q", s)
		}
		e.mkdir("empty")
		if err := e.d.Delete(ctx, "empty", remote.Precondition{}); err != nil {
			t.Errorf("Delete empty folder = %v", err)
		}
		if _, err := e.d.Stat(ctx, "empty"); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("empty still there: %v", err)
		}
		if err := e.d.Delete(ctx, remote.Root, remote.Precondition{}); err == nil {
			t.Error("Delete(Root) succeeded")
		}
		// A file trashed as "x" blocks the folder "x" a later delete of "x/y" needs in the same batch.
		e.write("x", "file x")
		if err := e.d.Delete(ctx, "x", remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
		e.mkdir("x")
		e.write("x/y", "y")
		if err := e.d.Delete(ctx, "x/y", remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
		if s := mustRead(t, e, ".tandem/trash/"+t0.UTC().Format("20060102-150405")+" 2/x/y"); s != "y" {
			t.Errorf("x/y in trash = %q", s)
		}
	})
}

func TestRootChecker(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if err := e.d.CheckRoot(ctx); err != nil {
			t.Fatalf("CheckRoot after InitRoot = %v", err)
		}
		if err := e.d.InitRoot(ctx); err != nil {
			t.Errorf("InitRoot twice = %v", err)
		}
		if s := mustRead(t, e, ".tandem/MARKER"); !strings.Contains(s, "tandem") {
			t.Errorf("MARKER = %q", s)
		}
		if slices.Contains(paths(walk(t, e, remote.Root)), ".tandem") {
			t.Error("walk lists .tandem")
		}
	})
	t.Run("missing marker", func(t *testing.T) {
		f := fakefs.New(clockwork.NewFakeClock(), rand.New(rand.NewPCG(1, 1)))
		d := localdir.New(zaptest.NewLogger(t), f, localdir.Options{Label: "dir:/mnt/usb"})
		err := d.CheckRoot(context.Background())
		if !errors.Is(err, remote.ErrRootMissing) || !strings.Contains(err.Error(), "marker") || !strings.Contains(err.Error(), "dir:/mnt/usb") {
			t.Errorf("CheckRoot = %v", err)
		}
		f.WriteFile("a", []byte("1"))
		if err := d.Delete(context.Background(), "a", remote.Precondition{}); !errors.Is(err, remote.ErrRootMissing) {
			t.Errorf("Delete without marker = %v", err)
		}
	})
	t.Run("root removed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "root")
		os.Mkdir(dir, 0o755)
		d, err := localdir.Open(zaptest.NewLogger(t), dir, localdir.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx := context.Background()
		if err := d.InitRoot(ctx); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(dir)
		if err := d.CheckRoot(ctx); !errors.Is(err, remote.ErrRootMissing) {
			t.Errorf("CheckRoot of a removed root = %v", err)
		}
		os.Mkdir(dir, 0o755) // a new, empty directory at the same path: an unmounted mount point
		if err := d.CheckRoot(ctx); !errors.Is(err, remote.ErrRootMissing) {
			t.Errorf("CheckRoot of a replaced root = %v", err)
		}
	})
	t.Run("open missing", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope")
		_, err := localdir.Open(zaptest.NewLogger(t), p, localdir.Options{})
		if !errors.Is(err, remote.ErrRootMissing) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Errorf("Open = %v", err)
		}
	})
}

func TestCleanTemp(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.mkdir("d/e")
		e.write(".tandem-s1-00000000000000aa.part", "partial")
		e.write("d/e/.tandem-s1-00000000000000bb.part", "partial")
		e.write("d/.tandem-keep", "not a temp name")
		e.write("d/f", "user data")
		// A user's own file named like a temp file, and another session's temp: neither is s1's to remove.
		e.write(".tandem-notes.part", "the user's notes")
		e.write("d/.tandem-s2-00000000000000cc.part", "another session")
		e.write("d/.tandem-00000000000000dd.part", "no session")
		// A replace stopped between its swap and its end: the file may be the user's change, so it goes to the
		// trash under a visible name, never away; another session's stays.
		e.write("d/.tandem-s1-00000000000000ee.swap", "maybe the user's change")
		e.write("d/.tandem-s2-00000000000000ff.swap", "another session's")
		if _, err := e.d.CleanTemp(context.Background(), ""); err == nil {
			t.Error("CleanTemp without a session succeeded")
		}
		n, err := e.d.CleanTemp(context.Background(), "s1")
		if err != nil || n != 3 {
			t.Errorf("CleanTemp = %d, %v", n, err)
		}
		for _, f := range []string{"d/.tandem-keep", "d/f", ".tandem/MARKER", ".tandem-notes.part",
			"d/.tandem-s2-00000000000000cc.part", "d/.tandem-00000000000000dd.part", "d/.tandem-s2-00000000000000ff.swap"} {
			mustRead(t, e, f)
		}
		trashed := ".tandem/trash/" + e.clk.Now().UTC().Format("20060102-150405") + "/d/tandem-s1-00000000000000ee.swap"
		if s, err := e.read(trashed); err != nil || s != "maybe the user's change" {
			t.Errorf("the swap file in the trash: %q, %v", s, err)
		}
		if _, err := e.read("d/.tandem-s1-00000000000000ee.swap"); err == nil {
			t.Error("the swap file is still in its folder")
		}
		for _, f := range []string{".tandem-s1-00000000000000aa.part", "d/e/.tandem-s1-00000000000000bb.part"} {
			if _, err := e.read(f); err == nil {
				t.Errorf("%s left", f)
			}
		}
	})
}

func TestPurgeTrash(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		put(t, e, "old", "old", remote.Precondition{})
		if err := e.d.Delete(ctx, "old", remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(48 * time.Hour)
		put(t, e, "new", "new", remote.Precondition{})
		if err := e.d.Delete(ctx, "new", remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
		n, err := e.d.PurgeTrash(ctx, e.clk.Now().Add(-24*time.Hour))
		if err != nil || n != 1 {
			t.Errorf("PurgeTrash = %d, %v", n, err)
		}
		if _, err := e.read(trashPath("old")); err == nil {
			t.Error("old batch kept")
		}
		newBatch := ".tandem/trash/" + e.clk.Now().UTC().Format("20060102-150405") + "/new"
		if s := mustRead(t, e, newBatch); s != "new" {
			t.Errorf("new batch holds %q", s)
		}
	})
}

func TestCapabilitiesAndFeed(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{Hash: "sha1", Label: "dir:/x"})
	c := e.d.Capabilities()
	if !slices.Equal(c.Hashes, []string{"sha1", "sha256", "md5"}) || !c.ServerMove || !c.Trash || c.Feed || c.MTimeStep != time.Nanosecond {
		t.Errorf("Capabilities = %+v", c)
	}
	if e.d.String() != "dir:/x" {
		t.Errorf("String = %q", e.d.String())
	}
	ctx := context.Background()
	if cur, err := e.d.Head(ctx); cur != nil || err != nil {
		t.Errorf("Head = %v, %v", cur, err)
	}
	if _, err := e.d.Changes(ctx, nil); !errors.Is(err, remote.ErrNoFeed) {
		t.Errorf("Changes = %v", err)
	}
	got := put(t, e, "f", "hello", remote.Precondition{})
	if got.Hash.Algo != "sha1" || got.Hash.Hex != "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d" {
		t.Errorf("Put hash = %v", got.Hash)
	}
}

// TestContainment: a symlink leading out of the root never gets a write through it (I5).
func TestContainment(t *testing.T) {
	outside := t.TempDir()
	canary := filepath.Join(outside, "canary")
	os.WriteFile(canary, []byte("canary"), 0o644)
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	d, err := localdir.Open(zaptest.NewLogger(t), dir, localdir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	d.InitRoot(ctx)
	for _, p := range []string{"out/x", "out/canary"} {
		if _, err := d.Put(ctx, remote.Path(p), strings.NewReader("evil"), 4, t0, remote.Precondition{}); err == nil {
			t.Errorf("Put %s through a symlink out of the root succeeded", p)
		}
	}
	if _, err := d.Mkdir(ctx, "out/sub"); err == nil {
		t.Error("Mkdir through the symlink succeeded")
	}
	if _, err := d.Move(ctx, ".tandem/MARKER", "out/m", remote.Precondition{}); err == nil {
		t.Error("Move into the symlink succeeded")
	}
	// The FS itself refuses too, even when asked directly (os.Root resolves every component).
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fsys := localdir.OSFS(r)
	if f, err := fsys.Create("out/direct", 0o600); err == nil {
		f.Close()
		t.Error("OSFS.Create through the symlink succeeded")
	}
	if err := fsys.Mkdir("out/direct", 0o755); err == nil {
		t.Error("OSFS.Mkdir through the symlink succeeded")
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Errorf("outside dir now holds %d entries", len(ents))
	}
	if b, _ := os.ReadFile(canary); string(b) != "canary" {
		t.Errorf("canary = %q", b)
	}
}

// TestPutSurvivesCrash: after Put returns, the new content is durable under its name for every crash outcome,
// and a crash in the middle of a Put never leaves partial content under the real name (I6).
func TestPutSurvivesCrash(t *testing.T) {
	for seed := range uint64(40) {
		f, d := crashDir(t, seed, "d")
		d.SetTempSession("crash")
		ctx := context.Background()
		old := put(t, &env{d: d}, "d/f", "old content", remote.Precondition{})
		// A Put whose rename fails is as far as a crash could interrupt it short of the rename.
		f.SetFault(func(op, name string) error {
			if op == "rename" {
				return syscall.EIO
			}
			return nil
		})
		if _, err := d.Put(ctx, "d/f", strings.NewReader("torn"), 4, t0, remote.Precondition{Rev: old.Rev}); !errors.Is(err, syscall.EIO) {
			t.Fatalf("faulty Put = %v", err)
		}
		f.SetFault(nil)
		put(t, &env{d: d}, "d/g", "new file", remote.Precondition{Absent: true})
		if err := d.Delete(ctx, "d/f", remote.Precondition{Rev: old.Rev}); err != nil {
			t.Fatal(err)
		}
		f.WriteFile("d/unsynced", []byte("may go"))
		f.Crash()
		snap := f.Snapshot()
		if snap["d/g"] != sha("new file") {
			t.Errorf("seed %d: d/g = %q after crash", seed, snap["d/g"])
		}
		if snap[trashPath("d/f")] != sha("old content") {
			t.Errorf("seed %d: trash = %q after crash, snapshot %v", seed, snap[trashPath("d/f")], snap)
		}
		if _, ok := snap["d/f"]; ok {
			t.Errorf("seed %d: d/f came back", seed)
		}
		n, err := d.CleanTemp(ctx, "crash")
		if err != nil {
			t.Fatal(err)
		}
		for p := range f.Snapshot() {
			if strings.Contains(p, ".part") {
				t.Errorf("seed %d: %s left after CleanTemp (%d removed)", seed, p, n)
			}
		}
	}
}

func TestFaultsReachCaller(t *testing.T) {
	for _, op := range []string{"create", "write", "sync", "chmod", "chtimes", "rename", "syncdir"} {
		t.Run(op, func(t *testing.T) {
			e := newEnv(t, "fake", localdir.Options{})
			put(t, e, "f", "original", remote.Precondition{})
			e.fake.SetFault(func(o, name string) error {
				if o == op {
					return syscall.ENOSPC
				}
				return nil
			})
			_, err := e.d.Put(context.Background(), "f", strings.NewReader("replacement"), 11, t0, remote.Precondition{})
			e.fake.SetFault(nil)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "f") {
				t.Errorf("Put = %v, want ENOSPC naming the path", err)
			}
			want := "original"
			if op == "syncdir" { // renamed already: new content visible, only not yet durable
				want = "replacement"
			}
			if s := mustRead(t, e, "f"); s != want {
				t.Errorf("f = %q, want %q", s, want)
			}
			noTemp(t, e)
		})
	}
}

func TestHashOfDetectsChange(t *testing.T) {
	e := newEnv(t, "fake", localdir.Options{})
	put(t, e, "f", "one", remote.Precondition{})
	e.fake.SetFault(func(op, name string) error {
		if op == "read" && name == "f" {
			e.fake.SetFault(nil)
			e.clk.Advance(time.Second)
			e.write("f", "three") // the user saves while we hash
		}
		return nil
	})
	_, _, err := e.d.HashOf(context.Background(), "f", "sha256")
	if !errors.Is(err, remote.ErrConflict) {
		t.Errorf("HashOf during a write = %v", err)
	}
	if _, _, err := e.d.HashOf(context.Background(), "f", "crc32"); err == nil {
		t.Error("HashOf with an unknown algorithm succeeded")
	}
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	d, err := localdir.Open(nil, dir, localdir.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx := context.Background()
	fmt.Println(errors.Is(d.CheckRoot(ctx), remote.ErrRootMissing))
	_ = d.InitRoot(ctx)
	e, _ := d.Put(ctx, "hello.txt", bytes.NewReader([]byte("hi")), 2, time.Unix(0, 0), remote.Precondition{Absent: true})
	fmt.Println(e.Path, e.Size, e.Hash.Algo)
	// Output:
	// true
	// hello.txt 2 sha256
}

// TestLockRoot: a second lock of the same root waits, then names the first holder's pid; after release it is
// free again. A root without .tandem is not locked (creating it would pass for the root marker).
func TestLockRoot(t *testing.T) {
	dir := t.TempDir()
	rel, err := localdir.LockRoot(dir, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := rel(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".tandem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LockRoot created .tandem: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".tandem"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err = localdir.LockRoot(dir, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	_, err = localdir.LockRoot(dir, 100*time.Millisecond)
	var le *localdir.LockedError
	if !errors.Is(err, localdir.ErrLocked) || !errors.As(err, &le) || le.PID != strconv.Itoa(os.Getpid()) {
		t.Fatalf("second LockRoot = %v", err)
	}
	if err := rel(); err != nil {
		t.Fatal(err)
	}
	rel, err = localdir.LockRoot(dir, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("LockRoot after release = %v", err)
	}
	rel()
}

// TestMoveSurvivesCrash: after Move returns, the file is at its new name for every crash outcome, also when the
// target folder is one the user made and nobody synced (B/N): syncing N alone made the file's name there
// durable while N's own name in B was not, and the source's removal from A was: the file was nowhere.
func TestMoveSurvivesCrash(t *testing.T) {
	for seed := range uint64(60) {
		f, d := crashDir(t, seed, "A", "B")
		ctx := context.Background()
		src := put(t, &env{d: d}, "A/f", "content", remote.Precondition{Absent: true})
		if err := f.MkdirAll("B/N"); err != nil { // the user's, unsynced
			t.Fatal(err)
		}
		if _, err := d.Move(ctx, "A/f", "B/N/f", remote.Precondition{Rev: src.Rev}); err != nil {
			t.Fatal(err)
		}
		f.Crash()
		if snap := f.Snapshot(); snap["B/N/f"] != sha("content") {
			t.Errorf("seed %d: B/N/f = %q after a crash (A/f %q)", seed, snap["B/N/f"], snap["A/f"])
		}
	}
}

// TestFailedPutTempGoneAfterCrash (lazydisk seeds 9858, 9976): a Put that fails removes its temp file durably,
// or says it may not have (TempLeft) until CleanTemp has made the removal durable. The engine forgets the session
// then, and nothing would ever sweep a temp file a power loss brought back. A new file written unnamed (where the
// filesystem can) leaves nothing to remove: no temp file, no TempLeft, nothing after a power loss.
func TestFailedPutTempGoneAfterCrash(t *testing.T) {
	for _, unnamed := range []bool{false, true} {
		for _, failSync := range []bool{false, true} {
			for seed := range uint64(40) {
				f, d := tempSessionDir(t, seed)
				f.SetUnnamed(unnamed)
				ctx := context.Background()
				// A failed rename (or link) stands for any failure after the file was written (a race, a
				// mismatched body).
				f.SetFault(func(op, name string) error {
					if ((op == "rename" || op == "link") && name == "d/f") || (failSync && op == "syncdir") {
						return syscall.EIO
					}
					return nil
				})
				if _, err := d.Put(ctx, "d/f", strings.NewReader("torn"), 4, t0, remote.Precondition{Absent: true}); !errors.Is(err, syscall.EIO) {
					t.Fatalf("unnamed %v: faulty Put = %v", unnamed, err)
				}
				f.SetFault(nil)
				if got, want := d.TempLeft(), failSync && !unnamed; got != want {
					t.Fatalf("seed %d, unnamed %v, folder fsync fails %v: TempLeft = %v", seed, unnamed, failSync, got)
				}
				if d.TempLeft() {
					if n, err := d.CleanTemp(ctx, "s"); err != nil || n != 0 {
						t.Fatalf("CleanTemp = %d, %v", n, err)
					}
					if d.TempLeft() {
						t.Fatalf("seed %d: TempLeft after CleanTemp", seed)
					}
				}
				f.Crash()
				for p := range f.Snapshot() {
					if strings.Contains(p, ".part") || p == "d/f" {
						t.Errorf("seed %d, unnamed %v, folder fsync fails %v: %s came back after a power loss", seed,
							unnamed, failSync, p)
					}
				}
			}
		}
	}
}

// A folder where a failed Put's temp removal could not be made durable, replaced by a file before the sweep
// (syncfaults seed 110571: CleanTemp failed ENOTDIR on every pass and the session's journal entry stayed open
// for good): the sweep makes the replacement durable through the folder above, and the temp never comes back.
func TestFailedPutTempInAFolderReplacedByAFile(t *testing.T) {
	for seed := range uint64(20) {
		f, d := tempSessionDir(t, seed)
		f.SetUnnamed(false) // a new file takes a temp file (a filesystem without O_TMPFILE)
		ctx := context.Background()
		f.SetFault(func(op, name string) error {
			if op == "rename" || op == "syncdir" {
				return syscall.EIO
			}
			return nil
		})
		if _, err := d.Put(ctx, "d/f", strings.NewReader("torn"), 4, t0, remote.Precondition{Absent: true}); !errors.Is(err, syscall.EIO) {
			t.Fatalf("faulty Put = %v", err)
		}
		f.SetFault(nil)
		if !d.TempLeft() {
			t.Fatalf("seed %d: TempLeft false after a failed folder fsync", seed)
		}
		// The user replaces the folder by a file.
		if err := f.RemoveAll("d"); err != nil {
			t.Fatal(err)
		}
		if err := f.WriteFile("d", []byte("a file now")); err != nil {
			t.Fatal(err)
		}
		if n, err := d.CleanTemp(ctx, "s"); err != nil || n != 0 {
			t.Fatalf("seed %d: CleanTemp = %d, %v", seed, n, err)
		}
		if d.TempLeft() {
			t.Fatalf("seed %d: TempLeft after CleanTemp", seed)
		}
		f.Crash()
		for p := range f.Snapshot() {
			if strings.Contains(p, ".part") {
				t.Errorf("seed %d: %s came back after a power loss", seed, p)
			}
		}
	}
}

// crashDir is a Dir on a fake disk whose power losses follow seed, its root set up and the folders made: the setup
// of the crash tests.
func crashDir(t *testing.T, seed uint64, folders ...remote.Path) (*fakefs.FS, *localdir.Dir) {
	t.Helper()
	clk := clockwork.NewFakeClockAt(t0)
	f := fakefs.New(clk, rand.New(rand.NewPCG(seed, 7)))
	d := localdir.New(zaptest.NewLogger(t), f, localdir.Options{Clock: clk, Rand: rand.New(rand.NewPCG(seed, 8)).Uint64})
	ctx := context.Background()
	if err := d.InitRoot(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range folders {
		if _, err := d.Mkdir(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return f, d
}

// tempSessionDir is crashDir holding folder d, with the temp session "s" open: the setup of the failed-Put temp
// tests.
func tempSessionDir(t *testing.T, seed uint64) (*fakefs.FS, *localdir.Dir) {
	t.Helper()
	f, d := crashDir(t, seed, "d")
	d.SetTempSession("s")
	return f, d
}

// TestMoveAndPutNeverReplaceANameTakenAtTheLastMoment: the user creates the target right before the rename,
// after every check: a Move and a Put of a new file ("nothing there") are conflicts, and the user's file stays
// (the fake renames without replacing as Linux's RENAME_NOREPLACE does; a plain rename replaced it).
func TestMoveAndPutNeverReplaceANameTakenAtTheLastMoment(t *testing.T) {
	for _, unnamed := range []bool{false, true} {
		ctx := context.Background()
		e := newEnv(t, "fake", localdir.Options{})
		e.fake.SetUnnamed(unnamed)
		e.write("a", "moved")
		src, err := e.d.Stat(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		taken := false
		e.fake.SetFault(func(op, name string) error {
			// A new file's last step is its rename, or its link where it was written unnamed.
			if (op == "rename" || op == "link") && (name == "b" || name == "c") && !taken {
				taken = true
				if err := e.fake.WriteFile(name, []byte("the user's")); err != nil {
					t.Error(err)
				}
			}
			return nil
		})
		if _, err := e.d.Move(ctx, "a", "b", remote.Precondition{Rev: src.Rev}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Move onto a name taken at the last moment: %v, want a conflict", err)
		}
		if got, err := e.read("b"); err != nil || got != "the user's" {
			t.Errorf("after the Move b holds %q (%v), want the user's file", got, err)
		}
		if got, err := e.read("a"); err != nil || got != "moved" {
			t.Errorf("after the Move a holds %q (%v)", got, err)
		}
		taken = false
		_, err = e.d.Put(ctx, "c", strings.NewReader("sent"), 4, t0, remote.Precondition{Absent: true})
		if !errors.Is(err, remote.ErrConflict) {
			t.Errorf("unnamed %v: Put onto a name taken at the last moment: %v, want a conflict", unnamed, err)
		}
		if got, err := e.read("c"); err != nil || got != "the user's" {
			t.Errorf("unnamed %v: after the Put c holds %q (%v), want the user's file", unnamed, got, err)
		}
		e.fake.SetFault(nil)
		if names := e.names(); !slices.Equal(names, []string{".tandem", ".tandem/MARKER", "a", "b", "c"}) {
			t.Errorf("unnamed %v: names after both: %q (a temp file left?)", unnamed, names)
		}
	}
}
