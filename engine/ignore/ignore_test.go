package ignore

import (
	"strings"
	"testing"
)

// TestBuiltinAgreesWithGitignore: the string tests of builtinName do what the Builtin patterns say through the
// gitignore matcher (which TestMatcherAgreesWithGit holds to git).
func TestBuiltinAgreesWithGitignore(t *testing.T) {
	ref, err := compileRules(Builtin)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a.txt", ".tandem", ".tandem-1.part", "x.swp", "x.swo", ".x.swx", "4913", "49130", "a~", "~a",
		".#lock", "#x#", ".~lock.doc#", ".~lock.doc", "~$report.docx", ".goutputstream-ABC", "f.crdownload",
		"f.partial", "partial", ".DS_Store", "Thumbs.db", "desktop.ini", "swp", "report.swp.txt"}
	for _, n := range names {
		for _, p := range []string{n, "dir/" + n, n + "/child"} {
			want := ref.ignored(p, false) || ref.ignored(p, true)
			if got := builtinPath(p); got != want {
				t.Errorf("builtin %q: got %v, the gitignore matcher says %v", p, got, want)
			}
		}
	}
}

// TestBuiltinNameShortcut: the first-byte, length and last-byte tests of builtinName drop no name builtinNameFull
// matches:
// every name of up to four bytes over an alphabet of the built-ins' bytes, and each built-in's fixed parts with
// bytes added around them.
func TestBuiltinNameShortcut(t *testing.T) {
	alpha := []byte(".~$#-4913TdsAwpoxlbrcDS_")
	var names []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		names = append(names, prefix)
		if n == 0 {
			return
		}
		for _, c := range alpha {
			gen(prefix+string(c), n-1)
		}
	}
	gen("", 4)
	parts := []string{".tandem", ".tandem-", ".#", "~$", ".goutputstream-", ".swp", ".swo", ".swx", "~", ".crdownload",
		".partial", ".~lock.", "#", "4913", ".DS_Store", "Thumbs.db", "desktop.ini"}
	for _, p := range parts {
		for _, a := range []string{"", "a", "x.", "~", "."} {
			names = append(names, a+p, p+a, a+p+a, ".~lock."+a+p+"#")
		}
	}
	for _, n := range names {
		if got, want := builtinName(n), builtinNameFull(n); got != want {
			t.Errorf("builtinName(%q) = %v, builtinNameFull says %v", n, got, want)
		}
	}
	if len(names) < 300000 {
		t.Fatalf("only %d names", len(names))
	}
}

func BenchmarkIgnored(b *testing.B) {
	m, _ := New([]string{"*.log", "build/"}, nil)
	for i := 0; i < b.N; i++ {
		m.Ignored("projects/tandem/engine/plan.go", false)
	}
}

func TestIgnored(t *testing.T) {
	m, err := New([]string{"*.log"}, strings.NewReader("build/\n/top.txt\n# comment\n!keep.log\nnode_modules\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		p    string
		dir  bool
		want bool
	}{
		{".tandem", true, true},
		{"sub/.tandem-0123.part", false, true},
		{"a/.notes.txt.swp", false, true},
		{"draft.txt~", false, true},
		{"report.txt", false, false},
		{"x/app.log", false, true},
		{"keep.log", false, false},
		{"build", true, true},
		{"build/out.o", false, true},
		{"src/build", true, true},
		{"top.txt", false, true},
		{"sub/top.txt", false, false},
		{"node_modules/x/y.js", false, true},
		{"", true, false},
	}
	for _, c := range cases {
		if got := m.Ignored(c.p, c.dir); got != c.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", c.p, c.dir, got, c.want)
		}
	}
}

func TestCannotUnignoreTandem(t *testing.T) {
	if _, err := New([]string{"!.tandem/"}, nil); err == nil {
		t.Fatal("want an error")
	}
}

// FuzzIgnoreMatch (RELIABILITY FUZZ-03): any pattern lines and path: no panic; a pattern git can never match
// is an error; tandem's own files stay ignored; what is inside an ignored folder is ignored; the answer does
// not depend on how often it is asked. Agreement with git is TestMatcherAgreesWithGit's differential corpus.
func FuzzIgnoreMatch(f *testing.F) {
	f.Add("*.log", "a/b.log", false)
	f.Add("build/", "build", true)
	f.Add("[", "x", false)
	f.Add("**/a/**", "a/b/c", false)
	f.Add("logs/\n!logs/keep.txt", "logs/keep.txt", false)
	f.Add("[!a]x\n[[:digit:]]*\n\\#x\ntrail\\ ", "d/bx", false)
	f.Add("a**/b\n!a/x", "a/x/b", true)
	f.Add("*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false)
	for _, c := range gitCorpus {
		f.Add(strings.Join(c.patterns, "\n"), strings.TrimSuffix(c.paths[0], "/"), strings.HasSuffix(c.paths[0], "/"))
	}
	f.Fuzz(func(t *testing.T, pats, p string, dir bool) {
		m, err := New(nil, strings.NewReader(pats))
		if err != nil {
			return
		}
		got := m.Ignored(p, dir)
		if m.Ignored(p, dir) != got {
			t.Fatalf("patterns %q path %q: two answers", pats, p)
		}
		if !m.Ignored(".tandem", true) || !m.Ignored("d/.tandem-1.part", false) || !m.Ignored(".tandem/trash/x", false) {
			t.Fatalf("tandem's own files not ignored with patterns %q", pats)
		}
		if p != "" && m.Ignored(p, true) {
			if !m.Ignored(p+"/child", false) || !m.Ignored(p+"/sub/child", true) {
				t.Fatalf("patterns %q: %q is ignored, what it holds is not", pats, p)
			}
		}
	})
}
