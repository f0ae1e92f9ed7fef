package e2e

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/test/testenv"
)

// TestManPagesAndCompletions: `tandem gen-docs DIR` (what `make package` puts into the .deb) writes tandem(1),
// one page per command listed by `tandem --help` with that command's summary, and bash, zsh and fish completions
// that complete the commands; the bash script parses.
func TestManPagesAndCompletions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := testenv.RunWith(t, bin, testenv.RunOpts{Env: []string{"SOURCE_DATE_EPOCH=1767225600"}}, "gen-docs", dir)
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	help := testenv.Run(t, bin, "--help")
	cmds := map[string]string{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(help.Stdout))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Available Commands:"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in:
			f := strings.Fields(line)
			cmds[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for _, want := range []string{"once", "history", "logout", "login", "run", "status"} {
		if _, ok := cmds[want]; !ok {
			t.Fatalf("tandem --help lists no %s: %s", want, help.Stdout)
		}
	}
	read := func(name string) string {
		t.Helper()
		f, err := os.Open(filepath.Join(dir, "man", "man1", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mustContain(t, read("tandem.1.gz"), `.TH "TANDEM" "1" "Jan 2026"`, "tandem(1)")
	for c, short := range cmds {
		if c == "help" {
			continue
		}
		page := read("tandem-" + c + ".1.gz")
		// groff escapes hyphens: compare the first words of the summary.
		first := strings.Fields(strings.ReplaceAll(short, "-", ""))[0]
		mustContain(t, page, first, "tandem-"+c+"(1)")
	}
	if _, err := os.Stat(filepath.Join(dir, "man", "man1", "tandem-gen-docs.1.gz")); err == nil {
		t.Fatal("the hidden gen-docs command must have no page")
	}
	for name, want := range map[string]string{"tandem.bash": "__start_tandem", "_tandem": "#compdef tandem",
		"tandem.fish": "complete -c tandem"} {
		b, err := os.ReadFile(filepath.Join(dir, "completions", name))
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, string(b), want, name)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(bash, "-n", filepath.Join(dir, "completions", "tandem.bash")).CombinedOutput()
		if err != nil {
			t.Fatalf("bash -n: %v %s", err, out)
		}
		// The completion itself, as bash asks for it: the binary completes "hi" to history.
		c := testenv.Run(t, bin, "__complete", "hi")
		mustContain(t, c.Stdout, "history", "__complete hi")
	}
}
