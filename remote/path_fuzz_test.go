package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileNames are the names of RELIABILITY SEC-01 and issue 14 item 3: what a hostile or buggy server may list.
var hostileNames = []string{
	"..", ".", "", "a/b", `a\b`, "../x", "../../x", "/etc/x", `C:\x`, "x\x00y", "line\nbreak", "esc\x1b[31m",
	"tab\there", "del\x7f", ".tandem", ".tandem-1.part", ".tandem-0001.part", ".tandemish", "\xff\xfe",
	strings.Repeat("a", 255), strings.Repeat("b", 256), strings.Repeat("é", 150), "CON", "nul.txt", "COM1",
	"trailing.", "trailing ", "A.txt", "a.txt", "\u00e9.txt", "e\u0301.txt", "\u202etxt.exe", "ok.txt",
}

// FuzzRemoteName (RELIABILITY FUZZ-01): ValidName and ParsePath never panic; what they accept is one safe
// component (or a path of them) that stays inside a root when opened through os.Root; validation is idempotent.
func FuzzRemoteName(f *testing.F) {
	for _, n := range hostileNames {
		f.Add(n)
		f.Add("d/" + n)
	}
	f.Add(strings.Repeat("abc/", 1100))
	base := f.TempDir()
	rootDir := filepath.Join(base, "root")
	canary := filepath.Join(base, "canary")
	if err := os.Mkdir(rootDir, 0o700); err != nil {
		f.Fatal(err)
	}
	if err := os.Mkdir(canary, 0o700); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidName(s); err == nil {
			switch {
			case s == "" || s == "." || s == "..":
				t.Fatalf("accepted %q", s)
			case len(s) > MaxNameBytes || !utf8.ValidString(s):
				t.Fatalf("accepted %q: too long or not UTF-8", s)
			case strings.ContainsAny(s, "/\\\x00") || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
				t.Fatalf("accepted %q: separator or control byte", s)
			case s == ReservedDir || strings.HasPrefix(s, TempPrefix):
				t.Fatalf("accepted %q: tandem's own name", s)
			case !filepath.IsLocal(s):
				t.Fatalf("accepted %q, which is not local", s)
			}
			if p, err := Root.Join(s); err != nil || string(p) != s {
				t.Fatalf("Join(%q) = %q, %v", s, p, err)
			}
			writeInside(t, rootDir, canary, s)
		}
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if p2, err := ParsePath(string(p)); err != nil || p2 != p {
			t.Fatalf("ParsePath is not idempotent on %q: %q, %v", s, p2, err)
		}
		if p == Root {
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(string(p))) || len(p) > MaxPathBytes {
			t.Fatalf("accepted %q, which is not local", p)
		}
		for _, c := range strings.Split(string(p), "/") {
			if ValidName(c) != nil {
				t.Fatalf("ParsePath accepted %q with the invalid component %q", p, c)
			}
		}
		if p.Dir().Depth() != p.Depth()-1 || (p.Dir() != Root && !p.Within(p.Dir())) {
			t.Fatalf("Dir/Depth/Within disagree on %q", p)
		}
	})
}

// writeInside creates name through an os.Root on dir and checks that it landed there, under exactly that name,
// and that nothing appeared in the canary folder beside it.
func writeInside(t *testing.T, dir, canary, name string) {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fh, err := r.Create(name)
	if err != nil {
		return // e.g. a file system limit; never a write elsewhere, which the checks below would see
	}
	fh.Close()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != name {
		t.Fatalf("creating %q through os.Root gave %v", name, ents)
	}
	if err := r.Remove(name); err != nil {
		t.Fatal(err)
	}
	if c, _ := os.ReadDir(canary); len(c) != 0 {
		t.Fatalf("creating %q wrote beside the root: %v", name, c)
	}
}
