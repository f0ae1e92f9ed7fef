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

func FuzzIgnoreMatch(f *testing.F) {
	f.Add("*.log", "a/b.log", false)
	f.Add("build/", "build", true)
	f.Add("[", "x", false)
	f.Add("**/a/**", "a/b/c", false)
	f.Fuzz(func(t *testing.T, pat, p string, dir bool) {
		m, err := New([]string{pat}, nil)
		if err != nil {
			return
		}
		m.Ignored(p, dir)
		if !m.Ignored(".tandem", true) || !m.Ignored("d/.tandem-1.part", false) {
			t.Fatalf("tandem's own files not ignored with pattern %q", pat)
		}
	})
}

// TestPatternsGitNeverMatches: a pattern git accepts but can never match with is refused with where it is and
// why, instead of silently ignoring nothing.
func TestPatternsGitNeverMatches(t *testing.T) {
	for _, c := range []struct {
		extra []string
		file  string
		want  string
	}{
		{[]string{"*.log", "[abc"}, "", `ignore pattern 2 "[abc" has a [ without its ]`},
		{nil, "ok\n# fine\nbad[[:nope:]]\n", `.tandemignore:3: pattern "bad[[:nope:]]" has a [ without its ]`},
		{nil, "trailing\\", `.tandemignore:1: pattern "trailing\\" ends in a lone backslash`},
	} {
		var f *strings.Reader
		if c.file != "" {
			f = strings.NewReader(c.file)
		}
		var err error
		if f != nil {
			_, err = New(c.extra, f)
		} else {
			_, err = New(c.extra, nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: err = %v, want %q", c.extra, c.file, err, c.want)
		}
	}
}
