package ignore

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitCase is one pattern set (the lines of a .gitignore at the root) and the paths asked about it. A path
// ending in "/" is a folder.
type gitCase struct {
	patterns []string
	paths    []string
}

// gitCorpus is the differential corpus: every (pattern set, path) pair is asked of `git check-ignore` at test
// time and of the matcher, and they must agree. It covers what go-gitignore got wrong (a slash in the middle
// anchors, "[!a]" negates, a file in an excluded folder cannot be re-included) and the rest of gitignore(5):
// anchoring, "**", folder-only patterns, classes, escapes, trailing spaces, negation order. No path here is a
// built-in name, so the built-ins do not mask the user patterns.
var gitCorpus = []gitCase{
	{[]string{"doc/frotz"}, []string{"doc/frotz", "a/doc/frotz", "doc/", "doc/frotzz", "x/doc/frotz/", "b/doc/frotz/y"}},
	{[]string{"doc/frotz"}, []string{"doc/frotz/", "doc/frotz/x"}},
	{[]string{"doc/frotz/"}, []string{"doc/frotz/", "a/doc/frotz/", "doc/frotz/y.txt"}},
	{[]string{"doc/frotz/"}, []string{"doc/frotz", "a/doc/frotz"}},
	{[]string{"frotz/"}, []string{"frotz/", "a/frotz/", "a/frotz/b.txt", "frotz/b/c.txt", "b/frotz", "frotzy/"}},
	{[]string{"[!a]x"}, []string{"bx", "ax", "x", "abx", "d/bx", "d/ax", "cx/", "Bx"}},
	{[]string{"[^a]x"}, []string{"bx", "ax", "cx/", "d/cx"}},
	{[]string{"logs/", "!logs/keep.txt"}, []string{"logs/keep.txt", "logs/", "logs/other.txt", "keep.txt", "a/logs/keep.txt"}},
	{[]string{"logs/*", "!logs/keep.txt"}, []string{"logs/keep.txt", "logs/", "logs/other.txt", "logs/sub/", "logs/sub/keep.txt"}},
	{[]string{"/logs", "!/logs/keep.txt"}, []string{"logs/keep.txt", "logs/", "a/logs/", "a/logs/keep.txt"}},
	{[]string{"*.log", "!important.log"}, []string{"a.log", "important.log", "d/important.log", "d/a.log", "b.log/", "b.log/b.txt", "log"}},
	{[]string{"!important.log", "*.log"}, []string{"important.log", "a.log"}},
	{[]string{"/top.txt"}, []string{"top.txt", "sub/top.txt", "sub/x/"}},
	{[]string{"/top.d"}, []string{"top.d/", "top.d/x", "a/top.d/"}},
	{[]string{"build/"}, []string{"build/", "src/build/", "build/out.o", "src/build/out.o", "builds/", "x/build", "y/z/build"}},
	{[]string{"**/foo"}, []string{"foo", "a/foo", "a/b/foo", "c/foo/", "d/foo/x", "afoo", "a/xfoo"}},
	{[]string{"**/foo/bar"}, []string{"foo/bar", "a/foo/bar", "a/b/foo/bar", "foo/baz", "xfoo/bar", "e/foo/bar/x"}},
	{[]string{"abc/**"}, []string{"abc/", "abc/x", "abc/y/z", "d/abc", "x/abc/y", "abcd/x"}},
	{[]string{"a/**/b"}, []string{"a/b", "a/x/b", "a/x/y/b", "a/xb", "ab", "x/a/b", "a/y/b/c"}},
	{[]string{"a/**b"}, []string{"a/b", "a/xb", "a/x/b", "a/xyb"}},
	{[]string{"a**/b"}, []string{"a/b", "ab/b", "a/x/b", "ax/b"}},
	{[]string{"***"}, []string{"a", "c/b", "x/"}},
	{[]string{"a/*"}, []string{"a/b", "a/c/d", "a/e/", "x/a/b", "a/"}},
	{[]string{"a/*/c"}, []string{"a/b/c", "a/c", "a/b/d/c", "a/bb/c/"}},
	{[]string{"*"}, []string{"a", "b/c", "d/", ".hidden"}},
	{[]string{"*/"}, []string{"a", "b/", "c/d", "e/f/"}},
	{[]string{"/*"}, []string{"a", "b/c", "d/"}},
	{[]string{"/*", "!/keep/", "/keep/*", "!/keep/this.txt"}, []string{"keep/", "keep/this.txt", "keep/that.txt", "other.txt", "other/this.txt"}},
	{[]string{"?.txt"}, []string{"a.txt", "ab.txt", ".txt", "d/b.txt"}},
	{[]string{"a?b"}, []string{"axb", "a/b", "ab", "d/a-b"}},
	{[]string{"[abc].txt"}, []string{"a.txt", "d.txt", "b.txt/", "[abc].txt"}},
	{[]string{"[a-c]x"}, []string{"ax", "bx", "cx", "dx", "-x", "Ax"}},
	{[]string{"[]]x"}, []string{"]x", "ax", "[x"}},
	{[]string{"[!]]x"}, []string{"]x", "ax"}},
	{[]string{"[a-]x"}, []string{"ax", "-x", "bx"}},
	{[]string{"[[:digit:]]*"}, []string{"1a", "a1", "9", "d/5.txt"}},
	{[]string{"[[:upper:]][[:lower:]]"}, []string{"Ab", "aB", "AB", "ab"}},
	{[]string{"[[:alpha:][:digit:]]z"}, []string{"az", "5z", "_z"}},
	{[]string{"[[:space:]]x"}, []string{" x", "ax"}},
	{[]string{"[[:punct:]]x"}, []string{"_x", "-x", "ax"}},
	{[]string{"[[:xdigit:]]x"}, []string{"fx", "gx", "Fx", "0x"}},
	{[]string{"#comment", "real"}, []string{"#comment", "real", "comment"}},
	{[]string{`\#hash`}, []string{"#hash", "hash"}},
	{[]string{`\!bang`}, []string{"!bang", "bang"}},
	{[]string{`a\*b`}, []string{"a*b", "axb"}},
	{[]string{`a\?b`}, []string{"a?b", "axb"}},
	{[]string{`\[x]`}, []string{"[x]", "x"}},
	{[]string{`f\oo`}, []string{"foo", `f\oo`}},
	{[]string{"trail  "}, []string{"trail", "trail  ", "trail "}},
	{[]string{`trail\ `}, []string{"trail ", "trail"}},
	{[]string{`sp\ \ `}, []string{"sp  ", "sp", "sp "}},
	{[]string{"mid space"}, []string{"mid space", "midspace"}},
	{[]string{"", "   ", "x"}, []string{"x", "y"}},
	{[]string{"*.o", "!*.o", "*.o"}, []string{"a.o", "d/b.o"}},
	{[]string{"*.o", "!d/*.o"}, []string{"a.o", "d/b.o", "d/e/b.o", "x/d/b.o"}},
	{[]string{"d", "!d/f"}, []string{"d/", "d/f", "x/d/f"}},
	{[]string{"d/", "!d/"}, []string{"d/", "d/f"}},
	{[]string{"*", "!*/", "!*.txt"}, []string{"a.txt", "a.bin", "d/", "d/a.txt", "d/a.bin", "d/e/a.txt"}},
	{[]string{"*.TXT"}, []string{"a.TXT", "a.txt"}},
	{[]string{"é.txt"}, []string{"é.txt", "e.txt", "d/é.txt"}},
	{[]string{"*.[ch]"}, []string{"a.c", "a.h", "a.o", "d/x.c", "a.ch"}},
	{[]string{"**"}, []string{"a", "b/c", "x/"}},
	{[]string{"/**/x"}, []string{"x", "a/x", "a/b/x"}},
	{[]string{"a/**/"}, []string{"a/", "a/b/", "a/c", "a/d/e/", "a/d/f"}},
	{[]string{"**/"}, []string{"a", "b/", "c/d/"}},
	{[]string{"foo/**/*.bak"}, []string{"foo/a.bak", "foo/b/a.bak", "a.bak", "x/foo/a.bak"}},
	{[]string{"**/cache/**", "!**/cache/keep"}, []string{"cache/x", "a/cache/keep", "cache/keep", "a/cache/", "cache/"}},
	{[]string{".*"}, []string{".env", "a/.env", "env", ".d/", ".d/x"}},
	{[]string{"a*b*c"}, []string{"abc", "axbxc", "axxbyyc", "axc", "a/b/c"}},
	{[]string{"*a*a*a*b"}, []string{"aaab", "aaaaaaaaab", "aaaaaaaaac", "xaxaxab"}},
	{[]string{"node_modules"}, []string{"node_modules/", "b/node_modules", "a/node_modules/", "a/node_modules/b/c.js", "node_modules2/"}},
	{[]string{"/a/b/"}, []string{"a/b/", "a/b/c", "x/a/b/", "y/a/b"}},
	{[]string{"a/b/*.txt", "!a/b/k.txt"}, []string{"a/b/x.txt", "a/b/k.txt", "a/b/c/x.txt"}},
	// Patterns git can never match (an unterminated class, an unknown [:class:]): the matcher refuses them
	// with an error, and the test checks that git indeed ignores nothing with them.
	{[]string{"[x-z"}, []string{"[x-z", "x", "y"}},
	{[]string{"x["}, []string{"x[", "x"}},
	{[]string{"[[:nope:]]x"}, []string{"ax", "[[:nope:]]x"}},
}

// TestMatcherAgreesWithGit asks git about every case of the corpus and fails on every disagreement.
func TestMatcherAgreesWithGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed: the differential ignore corpus needs `git check-ignore`")
	}
	want := gitCheckIgnore(t, git, gitCorpus)
	n := 0
	for i, c := range gitCorpus {
		m, err := compileRules(c.patterns)
		if err != nil {
			for _, p := range c.paths {
				n++
				if want[i][p] {
					t.Errorf("set %d %q is refused (%v), but git ignores %q with it", i, c.patterns, err, p)
				}
			}
			continue
		}
		for _, p := range c.paths {
			n++
			rel, dir := strings.TrimSuffix(p, "/"), strings.HasSuffix(p, "/")
			if got := m.ignored(rel, dir); got != want[i][p] {
				t.Errorf("patterns %q, path %q (dir %v): matcher says %v, git says %v", c.patterns, rel, dir, got,
					want[i][p])
			}
		}
	}
	if n < 200 {
		t.Fatalf("the corpus has %d cases, want at least 200", n)
	}
	t.Logf("%d (pattern set, path) cases agree with git", n)
}

// gitCheckIgnore builds one throwaway repository with a folder per set, holding the set's patterns as its
// .gitignore (patterns there are relative to that folder, as ours are to the root) and its paths (folders as
// folders, so that "x/" patterns see what git sees), and asks `git check-ignore --no-index` about all of them in
// one call. The answer is per set, per path as written in the corpus.
func gitCheckIgnore(t *testing.T, git string, corpus []gitCase) []map[string]bool {
	t.Helper()
	root := t.TempDir()
	run := func(stdin string, args ...string) string {
		cmd := exec.Command(git, args...)
		cmd.Dir = root
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "HOME="+root)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			// check-ignore exits 1 when nothing is ignored.
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || errb.Len() > 0 {
				t.Fatalf("git %v: %v: %s", args, err, errb.String())
			}
		}
		return out.String()
	}
	run("", "init", "-q", ".")
	var stdin strings.Builder
	asked := map[string][2]int{} // the path git sees -> set, index in the set
	for i, c := range corpus {
		set := fmt.Sprintf("set%03d", i)
		dir := filepath.Join(root, set)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(strings.Join(c.patterns, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Folders first, then files; a name that is a file in one path and a folder in another is a corpus
		// error.
		for _, p := range c.paths {
			rel := strings.TrimSuffix(p, "/")
			d := filepath.Dir(rel)
			if strings.HasSuffix(p, "/") {
				d = rel
			}
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatalf("corpus set %q: %v", c.patterns, err)
			}
		}
		for j, p := range c.paths {
			rel := strings.TrimSuffix(p, "/")
			if !strings.HasSuffix(p, "/") {
				if err := os.WriteFile(filepath.Join(dir, rel), nil, 0o644); err != nil {
					t.Fatalf("corpus set %q: %q is a folder for another path: %v", c.patterns, p, err)
				}
			}
			asked[set+"/"+rel] = [2]int{i, j}
			stdin.WriteString(set + "/" + rel)
			stdin.WriteByte(0)
		}
	}
	out := run(stdin.String(), "check-ignore", "--no-index", "--stdin", "-z", "-v", "-n")
	// -z -v -n: source, line, pattern, path, each NUL-terminated; an empty source means "not matched". A
	// negated pattern that matched last means "not ignored" as well.
	got := make([]map[string]bool, len(corpus))
	for i := range got {
		got[i] = map[string]bool{}
	}
	f := strings.Split(out, "\x00")
	seen := 0
	for i := 0; i+3 < len(f); i += 4 {
		at, ok := asked[f[i+3]]
		if !ok {
			t.Fatalf("git answered about %q, which was not asked", f[i+3])
		}
		seen++
		got[at[0]][corpus[at[0]].paths[at[1]]] = f[i] != "" && !strings.HasPrefix(f[i+2], "!")
	}
	if seen != len(asked) {
		t.Fatalf("git answered %d of %d paths", seen, len(asked))
	}
	return got
}
