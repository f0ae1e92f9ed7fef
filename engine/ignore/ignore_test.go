package ignore

import (
	"strings"
	"testing"
)

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
