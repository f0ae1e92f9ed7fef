package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func checkScheme(spec string) error {
	scheme, _, ok := strings.Cut(spec, ":")
	if !ok || scheme != "dir" {
		return fmt.Errorf("unknown scheme %q, want one of dir", scheme)
	}
	return nil
}

func TestParseFull(t *testing.T) {
	src := `# tandem
state_dir: /var/lib/tandem
metrics_addr: 127.0.0.1:9469
full_scan_interval: 2h
pairs:
  - name: docs
    local: /home/u/Docs
    remote: dir:/mnt/nas/Docs
    ignore: ["*.tmp", build/]
    conflict: newer-wins
    poll_interval: 30s
    bandwidth_limit: 2MiB
    max_delete: 20
`
	c, err := Parse(strings.NewReader(src), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(ValidateOptions{Remote: checkScheme}); err != nil {
		t.Fatal(err)
	}
	p := c.Pairs[0]
	if c.StateDir != "/var/lib/tandem" || c.FullScanInterval != 2*time.Hour || p.Name != "docs" ||
		p.Remote != "dir:/mnt/nas/Docs" || len(p.Ignore) != 2 || p.PollInterval != 30*time.Second ||
		p.BandwidthLimit != 2<<20 || p.MaxDelete != 20 || p.Conflict != "newer-wins" {
		t.Fatalf("parsed %+v %+v", c, p)
	}
	if got := c.Line("pairs[0].remote"); got != 8 {
		t.Errorf("line of pairs[0].remote = %d, want 8", got)
	}
}

func TestProblemsNameFileLineField(t *testing.T) {
	src := `pairs:
  - local: /a
    remote: dir:/x
  - local: /b
    remote: pcloudd:/Sync
    conflict: coin-toss
    colour: blue
  - local: relative/c
    remote: dir:/y
    poll_interval: soon
`
	c, err := Parse(strings.NewReader(src), "config.yaml")
	var msgs []string
	for _, e := range flatten(err) {
		msgs = append(msgs, e.Error())
	}
	if c != nil {
		for _, e := range flatten(c.Validate(ValidateOptions{Remote: checkScheme})) {
			msgs = append(msgs, e.Error())
		}
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`config.yaml:7: pairs[1].colour: unknown key`,
		`config.yaml:10: pairs[2].poll_interval: "soon": want a duration`,
		`config.yaml:5: pairs[1].remote: unknown scheme "pcloudd"`,
		`config.yaml:6: pairs[1].conflict: unknown conflict policy "coin-toss"`,
		`config.yaml:8: pairs[2].local: want an absolute path`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse(strings.NewReader("pairs:\n  - local: /a\n   remote: [\n"), "c.yaml")
	var p *Problem
	if !errors.As(err, &p) || p.Line == 0 || !strings.HasPrefix(err.Error(), "c.yaml:") {
		t.Fatalf("err = %v", err)
	}
}

func TestDuplicatesAndOverlaps(t *testing.T) {
	c, err := Parse(strings.NewReader(`pairs:
  - {local: /data/a, remote: "dir:/x"}
  - {local: /other/a, remote: "dir:/y"}
  - {local: /data/a/sub, remote: "dir:/z", name: sub}
`), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), `pairs[1].name: pair name "a" is already used by pairs[0]`) ||
		!strings.Contains(err.Error(), "pairs[2].local: /data/a/sub overlaps pairs[0]") {
		t.Fatalf("err = %v", err)
	}
}

func TestAppendPairKeepsComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	c, err := AppendPair(path, Pair{Local: "/a", Remote: "dir:/x"}, nil)
	if err != nil || len(c.Pairs) != 1 {
		t.Fatalf("%v %+v", err, c)
	}
	if err := os.WriteFile(path, []byte("# my pairs\nstate_dir: /s # here\n"+mustRead(t, path)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = AppendPair(path, Pair{Name: "b", Local: "/b", Remote: "dir:/y", Ignore: []string{"*.o"}}, nil)
	if err != nil || len(c.Pairs) != 2 || c.Pairs[1].Ignore[0] != "*.o" || c.StateDir != "/s" {
		t.Fatalf("%v %+v", err, c)
	}
	if s := mustRead(t, path); !strings.Contains(s, "# my pairs") || !strings.Contains(s, "# here") {
		t.Fatalf("comments lost:\n%s", s)
	}
	// A check that fails leaves the file alone.
	before := mustRead(t, path)
	if _, err := AppendPair(path, Pair{Local: "/c", Remote: "x"}, func(*Config) error { return errors.New("no") }); err == nil {
		t.Fatal("check ignored")
	}
	if mustRead(t, path) != before {
		t.Fatal("file changed after a failed check")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseBandwidth(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "800000": 800000, "500K": 500 << 10, "2MiB": 2 << 20,
		"1.5M": 3 << 19, "1G/s": 1 << 30, "10KB": 10 << 10} {
		if got, err := ParseBandwidth(in); err != nil || got != want {
			t.Errorf("ParseBandwidth(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseBandwidth("fast"); err == nil {
		t.Error("fast accepted")
	}
}
