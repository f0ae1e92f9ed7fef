package ignore

import (
	"strings"
	"testing"

	gitignore "github.com/sabhiram/go-gitignore"
)

func TestBuiltinAgreesWithGitignore(t *testing.T) {
	ref := gitignore.CompileIgnoreLines(Builtin...)
	names := []string{"a.txt", ".tandem", ".tandem-1.part", "x.swp", "x.swo", ".x.swx", "4913", "49130", "a~", "~a",
		".#lock", "#x#", ".~lock.doc#", ".~lock.doc", "~$report.docx", ".goutputstream-ABC", "f.crdownload",
		"f.partial", "partial", ".DS_Store", "Thumbs.db", "desktop.ini", "swp", "report.swp.txt"}
	for _, n := range names {
		if strings.HasPrefix(n, "~$") {
			// go-gitignore leaves "$" unescaped in its regular expression, so it never matches "~$*"; the
			// built-in matcher does what the pattern says (MS Office owner files).
			if !builtinPath(n) {
				t.Errorf("%q not ignored", n)
			}
			continue
		}
		for _, p := range []string{n, "dir/" + n, n + "/child"} {
			want := ref.MatchesPath(p) || ref.MatchesPath(p+"/")
			if got := builtinPath(p); got != want {
				t.Errorf("builtin %q: got %v, go-gitignore says %v", p, got, want)
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
