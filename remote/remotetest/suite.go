// Package remotetest holds the conformance suite every remote.Remote must pass, and two wrappers that make a
// working Remote misbehave on purpose: Faulty (chosen calls fail) and Lagging (the change feed runs late).
package remotetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// Fixture is what one subtest works on. setup builds a fresh one per subtest, so no case depends on another.
type Fixture struct {
	// R is the Remote under test and Other a second client of the same account, both rooted at the same empty
	// folder. Other makes the "foreign" changes that R's feed must report.
	R, Other remote.Remote
	// Expire kills outstanding cursors (provider history compaction). nil: CursorExpiry is skipped.
	Expire func()
	// ExpireToken invalidates R's current access token, so R must refresh once. nil: TokenRefresh is skipped.
	ExpireToken func()
	// Settle bounds how long a change may take to show up in Changes. The suite polls until the expected state
	// appears or Settle (plus a small grace) has passed; a correct side costs only as long as it really lags.
	Settle time.Duration
}

type testCase struct {
	name string
	// parallel: the case is quick and touches nothing shared, so it may run beside the others. The slow or
	// timing-sensitive ones (big transfer, feed polling) run alone so a loaded machine cannot fail them.
	parallel bool
	fn       func(t *testing.T, f Fixture)
}

// cases is a function rather than a package variable: the table is data, not state, and no global is needed.
func cases() []testCase {
	return []testCase{
		{"StatMissing", true, testStatMissing},
		{"StatRoot", true, testStatRoot},
		{"PutOpen", true, testPutOpen},
		{"PutAbsentConflict", true, testPutAbsentConflict},
		{"PutStaleRev", true, testPutStaleRev},
		{"PutCurrentRev", true, testPutCurrentRev},
		{"EmptyFile", true, testEmptyFile},
		{"LargeFile", false, testLargeFile},
		{"Mkdir", true, testMkdir},
		{"NestedPutNeedsParent", true, testNestedPut},
		{"Walk", true, testWalk},
		{"MoveFileKeepsID", true, testMoveFile},
		{"MoveFolder", true, testMoveFolder},
		{"MoveOntoExisting", true, testMoveOntoExisting},
		{"DeleteFile", true, testDeleteFile},
		{"DeleteStaleRev", true, testDeleteStaleRev},
		{"DeleteNonEmptyFolder", true, testDeleteNonEmpty},
		{"DeleteEmptyFolder", true, testDeleteEmptyFolder},
		{"HostileNames", true, testHostileNames},
		{"Hasher", true, testHasher},
		{"Changes", false, testChanges},
		{"ChangesEmpty", false, testChangesEmpty},
		{"CursorExpiry", false, testCursorExpiry},
		{"TokenRefresh", true, testTokenRefresh},
		{"RootChecker", true, testRootChecker},
	}
}

// Cases lists the subtest names in the order Run runs them; these are the keys a skip map may use.
func Cases() []string {
	var names []string
	for _, c := range cases() {
		names = append(names, c.name)
	}
	return names
}

// Run runs the conformance suite. setup is called once per subtest and must return a Fixture on an empty root
// (use t.Cleanup to tear it down). skip maps a subtest name (see Cases) to the reason it does not apply; an
// unknown name fails the run, so a typo cannot silently switch a case back on or off.
func Run(t *testing.T, setup func(t *testing.T) Fixture, skip map[string]string) {
	t.Helper()
	all := cases()
	var unknown []string
	for name := range skip {
		if !slices.ContainsFunc(all, func(c testCase) bool { return c.name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		t.Fatalf("skip map names unknown cases %q; known: %s", unknown, strings.Join(Cases(), ", "))
	}
	for _, c := range all {
		t.Run(c.name, func(t *testing.T) {
			if why, ok := skip[c.name]; ok {
				t.Skip(why)
			}
			if c.parallel {
				t.Parallel()
			}
			f := setup(t)
			if f.R == nil {
				t.Fatal("setup returned a Fixture without R")
			}
			c.fn(t, f)
		})
	}
}

// testMTime is what the suite stores: sub-second digits and a non-UTC zone, so rounding and zone bugs show.
func testMTime() time.Time {
	return time.Date(2025, 3, 1, 10, 15, 30, 123456789, time.FixedZone("CET", 3600))
}

func path(t *testing.T, s string) remote.Path {
	t.Helper()
	p, err := remote.ParsePath(s)
	if err != nil {
		t.Fatalf("ParsePath(%q): %v", s, err)
	}
	return p
}

func putPre(ctx context.Context, r remote.Remote, p remote.Path, data []byte, pre remote.Precondition) (remote.Entry, error) {
	return r.Put(ctx, p, bytes.NewReader(data), int64(len(data)), testMTime(), pre)
}

func put(t *testing.T, r remote.Remote, s string, data []byte) remote.Entry {
	t.Helper()
	e, err := putPre(t.Context(), r, path(t, s), data, remote.Precondition{})
	if err != nil {
		t.Fatalf("Put %s: %v", s, err)
	}
	return e
}

func mkdir(t *testing.T, r remote.Remote, s string) remote.Entry {
	t.Helper()
	e, err := r.Mkdir(t.Context(), path(t, s))
	if err != nil {
		t.Fatalf("Mkdir %s: %v", s, err)
	}
	return e
}

func read(t *testing.T, r remote.Remote, s string) ([]byte, remote.Entry) {
	t.Helper()
	rc, e, err := r.Open(t.Context(), path(t, s))
	if err != nil {
		t.Fatalf("Open %s: %v", s, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", s, err)
	}
	return data, e
}

func stat(t *testing.T, r remote.Remote, s string) remote.Entry {
	t.Helper()
	e, err := r.Stat(t.Context(), path(t, s))
	if err != nil {
		t.Fatalf("Stat %s: %v", s, err)
	}
	return e
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one matching %q", what, err, target)
	}
}

func wantMissing(t *testing.T, r remote.Remote, s string) {
	t.Helper()
	_, err := r.Stat(t.Context(), path(t, s))
	wantErr(t, err, remote.ErrNotFound, "Stat "+s)
}

func wantContent(t *testing.T, r remote.Remote, s string, want []byte) {
	t.Helper()
	got, e := read(t, r, s)
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %d bytes %.20q, want %d bytes %.20q", s, len(got), got, len(want), want)
	}
	if e.Size != int64(len(want)) {
		t.Errorf("Open %s: Size %d, want %d", s, e.Size, len(want))
	}
}

// checkEntry compares what a side says about a file it just stored with what was sent.
func checkEntry(t *testing.T, r remote.Remote, what string, e remote.Entry, data []byte) {
	t.Helper()
	if e.Dir {
		t.Errorf("%s: Dir is set for a file", what)
	}
	if e.Size != int64(len(data)) {
		t.Errorf("%s: Size %d, want %d", what, e.Size, len(data))
	}
	if e.ID == "" || e.Rev == "" {
		t.Errorf("%s: ID %q and Rev %q must both be set", what, e.ID, e.Rev)
	}
	if step := r.Capabilities().MTimeStep; step > 0 {
		if d := e.ModTime.Sub(testMTime()).Abs(); d >= step {
			t.Errorf("%s: ModTime %v, want %v within %v", what, e.ModTime, testMTime(), step)
		}
	}
	if !e.Hash.IsZero() {
		want, _, err := remote.HashReader(e.Hash.Algo, bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: reported a %s digest: %v", what, e.Hash.Algo, err)
		} else if e.Hash != want {
			t.Errorf("%s: Hash %v, want %v", what, e.Hash, want)
		}
	}
}

func testStatMissing(t *testing.T, f Fixture) {
	wantMissing(t, f.R, "missing.txt")
	mkdir(t, f.R, "d")
	wantMissing(t, f.R, "d/missing.txt")
}

func testStatRoot(t *testing.T, f Fixture) {
	e, err := f.R.Stat(t.Context(), remote.Root)
	if err != nil {
		t.Fatalf("Stat root: %v", err)
	}
	if !e.Dir {
		t.Errorf("Stat root: %+v is not a folder", e)
	}
}

func testPutOpen(t *testing.T, f Fixture) {
	data := []byte("hello, tandem\n")
	e := put(t, f.R, "a.txt", data)
	if e.Path != "a.txt" {
		t.Errorf("Put returned Path %q", e.Path)
	}
	checkEntry(t, f.R, "Put", e, data)
	got, oe := read(t, f.R, "a.txt")
	if !bytes.Equal(got, data) {
		t.Errorf("Open returned %q, want %q", got, data)
	}
	checkEntry(t, f.R, "Open", oe, data)
	se := stat(t, f.R, "a.txt")
	checkEntry(t, f.R, "Stat", se, data)
	if se.ID != e.ID || se.Rev != e.Rev {
		t.Errorf("Stat says ID %q Rev %q, Put said ID %q Rev %q", se.ID, se.Rev, e.ID, e.Rev)
	}
}

func testPutAbsentConflict(t *testing.T, f Fixture) {
	put(t, f.R, "a.txt", []byte("first"))
	_, err := putPre(t.Context(), f.R, "a.txt", []byte("second"), remote.Precondition{Absent: true})
	wantErr(t, err, remote.ErrConflict, "Put Absent over an existing file")
	wantContent(t, f.R, "a.txt", []byte("first"))
}

func testPutStaleRev(t *testing.T, f Fixture) {
	e1 := put(t, f.R, "a.txt", []byte("one"))
	e2, err := putPre(t.Context(), f.R, "a.txt", []byte("two!"), remote.Precondition{Rev: e1.Rev})
	if err != nil {
		t.Fatalf("Put with the current Rev: %v", err)
	}
	_, err = putPre(t.Context(), f.R, "a.txt", []byte("three"), remote.Precondition{Rev: e1.Rev})
	wantErr(t, err, remote.ErrConflict, "Put with a stale Rev")
	wantContent(t, f.R, "a.txt", []byte("two!"))
	if got := stat(t, f.R, "a.txt").Rev; got != e2.Rev {
		t.Errorf("Rev after the refused Put is %q, want %q", got, e2.Rev)
	}
	// The engine uploads with the base Rev; if the file was deleted meanwhile it must not be recreated blindly.
	del := put(t, f.R, "gone.txt", []byte("x"))
	if err := f.R.Delete(t.Context(), "gone.txt", remote.Precondition{}); err != nil {
		t.Fatalf("Delete gone.txt: %v", err)
	}
	_, err = putPre(t.Context(), f.R, "gone.txt", []byte("y"), remote.Precondition{Rev: del.Rev})
	wantErr(t, err, remote.ErrConflict, "Put with the Rev of a deleted file")
	wantMissing(t, f.R, "gone.txt")
}

func testPutCurrentRev(t *testing.T, f Fixture) {
	e1 := put(t, f.R, "a.txt", []byte("one"))
	e2, err := putPre(t.Context(), f.R, "a.txt", []byte("second version"), remote.Precondition{Rev: e1.Rev})
	if err != nil {
		t.Fatalf("Put with the current Rev: %v", err)
	}
	checkEntry(t, f.R, "Put over", e2, []byte("second version"))
	if e2.Rev == e1.Rev {
		t.Errorf("Rev %q did not change with the content", e2.Rev)
	}
	if f.R.Capabilities().ServerMove && e2.ID != e1.ID {
		// Not required by the interface, but worth knowing when a move detector relies on IDs.
		t.Logf("overwrite changed the ID from %q to %q", e1.ID, e2.ID)
	}
	wantContent(t, f.R, "a.txt", []byte("second version"))
}

func testEmptyFile(t *testing.T, f Fixture) {
	e := put(t, f.R, "empty", nil)
	checkEntry(t, f.R, "Put empty", e, nil)
	wantContent(t, f.R, "empty", nil)
	if s := stat(t, f.R, "empty"); s.Size != 0 || s.Dir {
		t.Errorf("Stat empty: %+v", s)
	}
}

func testLargeFile(t *testing.T, f Fixture) {
	// Seeded so a failure reproduces byte for byte; ChaCha8 is fast enough for 5 MiB.
	data := make([]byte, 5<<20)
	rng := rand.NewChaCha8([32]byte{'t', 'a', 'n', 'd', 'e', 'm'})
	_, _ = rng.Read(data)
	e := put(t, f.R, "big.bin", data)
	checkEntry(t, f.R, "Put big", e, data)
	got, _ := read(t, f.R, "big.bin")
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && i < len(data) && got[i] == data[i] {
			i++
		}
		t.Errorf("5 MiB round trip: got %d bytes, first difference at offset %d", len(got), i)
	}
}

func testMkdir(t *testing.T, f Fixture) {
	e := mkdir(t, f.R, "d")
	if !e.Dir || e.Path != "d" {
		t.Errorf("Mkdir returned %+v", e)
	}
	again := mkdir(t, f.R, "d") // an existing folder is success: retries after a lost answer rely on it
	if !again.Dir {
		t.Errorf("second Mkdir returned %+v", again)
	}
	if s := stat(t, f.R, "d"); !s.Dir {
		t.Errorf("Stat d: %+v is not a folder", s)
	}
	mkdir(t, f.R, "d/sub")
	if s := stat(t, f.R, "d/sub"); !s.Dir {
		t.Errorf("Stat d/sub: %+v is not a folder", s)
	}
}

func testNestedPut(t *testing.T, f Fixture) {
	_, err := putPre(t.Context(), f.R, "d/x.txt", []byte("x"), remote.Precondition{})
	wantErr(t, err, remote.ErrNotFound, "Put below a missing folder")
	mkdir(t, f.R, "d")
	e := put(t, f.R, "d/x.txt", []byte("x"))
	if e.Path != "d/x.txt" {
		t.Errorf("Put returned Path %q", e.Path)
	}
	wantContent(t, f.R, "d/x.txt", []byte("x"))
}

// ignored is what the suite leaves out of tree comparisons: a side's own root marker.
func ignored(p remote.Path) bool { return p.Within(remote.ReservedDir) }

type node struct {
	Dir  bool
	Size int64
}

func walkTree(t *testing.T, r remote.Remote, dir remote.Path) (map[remote.Path]node, []remote.Path) {
	t.Helper()
	tree := map[remote.Path]node{}
	var order []remote.Path
	err := r.Walk(t.Context(), dir, func(e remote.Entry) error {
		if ignored(e.Path) || e.Skip != "" {
			return nil
		}
		if _, dup := tree[e.Path]; dup {
			t.Errorf("Walk reported %s twice", e.Path)
		}
		n := node{Dir: e.Dir}
		if !e.Dir {
			n.Size = e.Size
		}
		tree[e.Path] = n
		order = append(order, e.Path)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk %q: %v", dir, err)
	}
	return tree, order
}

func diffTrees(got, want map[remote.Path]node) string {
	var lines []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			lines = append(lines, fmt.Sprintf("  missing %s %+v", p, w))
		} else if g != w {
			lines = append(lines, fmt.Sprintf("  differs %s: got %+v, want %+v", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			lines = append(lines, fmt.Sprintf("  extra   %s %+v", p, g))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func testWalk(t *testing.T, f Fixture) {
	put(t, f.R, "a.txt", []byte("a"))
	mkdir(t, f.R, "d")
	put(t, f.R, "d/b.txt", []byte("bb"))
	mkdir(t, f.R, "d/e")
	put(t, f.R, "d/e/c.txt", []byte("ccc"))
	mkdir(t, f.R, "f")
	want := map[remote.Path]node{
		"a.txt": {Size: 1}, "d": {Dir: true}, "d/b.txt": {Size: 2}, "d/e": {Dir: true}, "d/e/c.txt": {Size: 3},
		"f": {Dir: true},
	}
	got, order := walkTree(t, f.R, remote.Root)
	if d := diffTrees(got, want); d != "" {
		t.Errorf("Walk of the root:\n%s", d)
	}
	seen := map[remote.Path]bool{}
	for _, p := range order {
		if parent := p.Dir(); parent != remote.Root && !seen[parent] {
			t.Errorf("Walk reported %s before its parent", p)
		}
		seen[p] = true
	}

	sub, _ := walkTree(t, f.R, "d")
	delete(sub, "d") // whether a walk reports its own start is left to the side
	wantSub := map[remote.Path]node{"d/b.txt": {Size: 2}, "d/e": {Dir: true}, "d/e/c.txt": {Size: 3}}
	if d := diffTrees(sub, wantSub); d != "" {
		t.Errorf("Walk of d:\n%s", d)
	}
}

func testMoveFile(t *testing.T, f Fixture) {
	e := put(t, f.R, "a.txt", []byte("moving"))
	m, err := f.R.Move(t.Context(), "a.txt", "b.txt", remote.Precondition{Rev: e.Rev})
	if err != nil {
		t.Fatalf("Move: %v", err)
	}
	if m.Path != "b.txt" {
		t.Errorf("Move returned Path %q", m.Path)
	}
	if f.R.Capabilities().ServerMove && m.ID != e.ID {
		t.Errorf("Move changed the ID from %q to %q, but the side claims ServerMove", e.ID, m.ID)
	}
	wantMissing(t, f.R, "a.txt")
	wantContent(t, f.R, "b.txt", []byte("moving"))
}

func testMoveFolder(t *testing.T, f Fixture) {
	mkdir(t, f.R, "d")
	put(t, f.R, "d/x", []byte("x"))
	mkdir(t, f.R, "d/s")
	put(t, f.R, "d/s/y", []byte("yy"))
	mkdir(t, f.R, "other")
	m, err := f.R.Move(t.Context(), "d", "other/e", remote.Precondition{})
	if err != nil {
		t.Fatalf("Move folder: %v", err)
	}
	if !m.Dir || m.Path != "other/e" {
		t.Errorf("Move returned %+v", m)
	}
	wantMissing(t, f.R, "d")
	wantMissing(t, f.R, "d/x")
	wantContent(t, f.R, "other/e/x", []byte("x"))
	wantContent(t, f.R, "other/e/s/y", []byte("yy"))
}

func testMoveOntoExisting(t *testing.T, f Fixture) {
	put(t, f.R, "a.txt", []byte("a"))
	put(t, f.R, "b.txt", []byte("b"))
	_, err := f.R.Move(t.Context(), "a.txt", "b.txt", remote.Precondition{})
	wantErr(t, err, remote.ErrConflict, "Move onto an existing file")
	wantContent(t, f.R, "a.txt", []byte("a"))
	wantContent(t, f.R, "b.txt", []byte("b"))
	mkdir(t, f.R, "d")
	_, err = f.R.Move(t.Context(), "a.txt", "d", remote.Precondition{Absent: true})
	wantErr(t, err, remote.ErrConflict, "Move onto an existing folder")
	wantContent(t, f.R, "a.txt", []byte("a"))
}

func testDeleteFile(t *testing.T, f Fixture) {
	e := put(t, f.R, "a.txt", []byte("bye"))
	if err := f.R.Delete(t.Context(), "a.txt", remote.Precondition{Rev: e.Rev}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, f.R, "a.txt")
	// A retried delete whose first answer was lost sees "not found"; the engine counts that as done.
	err := f.R.Delete(t.Context(), "a.txt", remote.Precondition{})
	wantErr(t, err, remote.ErrNotFound, "second Delete")
}

func testDeleteStaleRev(t *testing.T, f Fixture) {
	e1 := put(t, f.R, "a.txt", []byte("one"))
	if _, err := putPre(t.Context(), f.R, "a.txt", []byte("two!"), remote.Precondition{}); err != nil {
		t.Fatalf("Put over: %v", err)
	}
	err := f.R.Delete(t.Context(), "a.txt", remote.Precondition{Rev: e1.Rev})
	wantErr(t, err, remote.ErrConflict, "Delete with a stale Rev")
	wantContent(t, f.R, "a.txt", []byte("two!"))
}

func testDeleteNonEmpty(t *testing.T, f Fixture) {
	mkdir(t, f.R, "d")
	put(t, f.R, "d/x", []byte("x"))
	err := f.R.Delete(t.Context(), "d", remote.Precondition{})
	wantErr(t, err, remote.ErrNotEmpty, "Delete of a non-empty folder")
	if s := stat(t, f.R, "d"); !s.Dir {
		t.Errorf("d is no longer a folder: %+v", s)
	}
	wantContent(t, f.R, "d/x", []byte("x"))
}

func testDeleteEmptyFolder(t *testing.T, f Fixture) {
	mkdir(t, f.R, "d")
	if err := f.R.Delete(t.Context(), "d", remote.Precondition{}); err != nil {
		t.Fatalf("Delete empty folder: %v", err)
	}
	wantMissing(t, f.R, "d")
}

func testHostileNames(t *testing.T, f Fixture) {
	ctx := t.Context()
	mkdir(t, f.R, "a") // so "a/../../x" resolves one level before it escapes
	put(t, f.R, "ok.txt", []byte("ok"))
	// Converted, not parsed: this is what a buggy caller or a hostile server name would hand over.
	escaping := []remote.Path{"../x", "a/../../x", "..", "/x", "a/../x"}
	reserved := []remote.Path{".tandem-1.part", "a/.tandem-2.part"}
	for _, p := range slices.Concat(escaping, reserved) {
		_, err := putPre(ctx, f.R, p, []byte("evil"), remote.Precondition{})
		wantErr(t, err, remote.ErrInvalidName, fmt.Sprintf("Put %q", p))
		_, err = f.R.Mkdir(ctx, p)
		wantErr(t, err, remote.ErrInvalidName, fmt.Sprintf("Mkdir %q", p))
		_, err = f.R.Move(ctx, "ok.txt", p, remote.Precondition{})
		wantErr(t, err, remote.ErrInvalidName, fmt.Sprintf("Move ok.txt to %q", p))
	}
	// Reading or deleting outside the root is as bad as writing there.
	for _, p := range escaping {
		_, err := f.R.Move(ctx, p, "in.txt", remote.Precondition{})
		wantErr(t, err, remote.ErrInvalidName, fmt.Sprintf("Move %q in", p))
		err = f.R.Delete(ctx, p, remote.Precondition{})
		wantErr(t, err, remote.ErrInvalidName, fmt.Sprintf("Delete %q", p))
		if rc, _, err := f.R.Open(ctx, p); err == nil {
			rc.Close()
			t.Errorf("Open %q succeeded", p)
		} else {
			wantErr(t, err, remote.ErrInvalidName, fmt.Sprintf("Open %q", p))
		}
	}
	got, _ := walkTree(t, f.R, remote.Root)
	want := map[remote.Path]node{"a": {Dir: true}, "ok.txt": {Size: 2}}
	if d := diffTrees(got, want); d != "" {
		t.Errorf("the tree changed:\n%s", d)
	}
}

func testHasher(t *testing.T, f Fixture) {
	h, ok := f.R.(remote.Hasher)
	if !ok {
		t.Skipf("%T does not implement remote.Hasher", f.R)
	}
	algos := f.R.Capabilities().Hashes
	if len(algos) == 0 {
		t.Skip("Capabilities().Hashes is empty")
	}
	data := []byte("digest me")
	e := put(t, f.R, "a.txt", data)
	for _, algo := range algos {
		want, _, err := remote.HashReader(algo, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Capabilities lists %q: %v", algo, err)
		}
		got, he, err := h.HashOf(t.Context(), "a.txt", algo)
		if err != nil {
			t.Errorf("HashOf %s: %v", algo, err)
			continue
		}
		if got != want {
			t.Errorf("HashOf %s = %v, want %v", algo, got, want)
		}
		if he.Size != e.Size || he.Rev != e.Rev {
			t.Errorf("HashOf %s: entry %+v does not describe the stored file %+v", algo, he, e)
		}
	}
	_, _, err := h.HashOf(t.Context(), "missing", algos[0])
	wantErr(t, err, remote.ErrNotFound, "HashOf a missing file")
}

func testTokenRefresh(t *testing.T, f Fixture) {
	if f.ExpireToken == nil {
		t.Skip("fixture has no ExpireToken: the side has no expiring tokens")
	}
	f.ExpireToken()
	if _, err := f.R.Stat(t.Context(), remote.Root); err != nil {
		t.Fatalf("Stat after the token expired (one refresh expected): %v", err)
	}
}

func testRootChecker(t *testing.T, f Fixture) {
	rc, ok := f.R.(remote.RootChecker)
	if !ok {
		t.Skipf("%T does not implement remote.RootChecker", f.R)
	}
	if err := rc.InitRoot(t.Context()); err != nil {
		t.Fatalf("InitRoot: %v", err)
	}
	if err := rc.CheckRoot(t.Context()); err != nil {
		t.Fatalf("CheckRoot after InitRoot: %v", err)
	}
}
