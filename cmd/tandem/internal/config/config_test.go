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
	// Issue 13 item 12: a rate that rounds to nothing, exponent notation and a number past int64 were accepted
	// silently (0.1 became "unlimited", 99999999999999999999 overflowed).
	for _, in := range []string{"fast", "0.1", "0.5K", "1e3", "1E3K", "99999999999999999999", "-5", "NaN", "Inf",
		"0x10", "1.5.5", "K", "1", "1023", "2048G"} {
		if got, err := ParseBandwidth(in); err == nil {
			t.Errorf("ParseBandwidth(%q) = %d, want an error", in, got)
		}
	}
	for in, want := range map[string]int64{"1024": 1024, "1K": 1024, "1024G": 1 << 40, "0.0": 0} {
		if got, err := ParseBandwidth(in); err != nil || got != want {
			t.Errorf("ParseBandwidth(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestEndpointAndCAFile(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`pairs:
  - local: /a
    remote: pcloud:/Sync
    endpoint: https://eapi.example.com:8443/api/
    ca_file: %s
  - local: /b
    remote: verizon:/VZMOBILE/Sync
    endpoint: http://127.0.0.1:8080
  - local: /c
    remote: vboxx:/
    endpoint: "http://[::1]:9000"
  - local: /d
    remote: vboxx:/
    endpoint: http://localhost:9000
`, ca)
	c, err := Parse(strings.NewReader(src), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(ValidateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := c.Pairs[0]; p.Endpoint != "https://eapi.example.com:8443/api/" || p.CAFile != ca {
		t.Fatalf("parsed %+v", p)
	}
	if got, err := c.Pairs[0].CAFilePath(); err != nil || got != ca {
		t.Fatalf("CAFilePath = %q, %v", got, err)
	}
	if got, err := c.Pairs[1].CAFilePath(); err != nil || got != "" {
		t.Fatalf("CAFilePath without ca_file = %q, %v", got, err)
	}
}

func TestCAFileExpandsHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.WriteFile(filepath.Join(home, "emu-ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(strings.NewReader("pairs:\n  - {local: /a, remote: \"pcloud:/S\", ca_file: ~/emu-ca.pem}\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(ValidateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Pairs[0].CAFilePath(); got != filepath.Join(home, "emu-ca.pem") {
		t.Fatalf("CAFilePath = %q", got)
	}
}

func TestEndpointProblems(t *testing.T) {
	dir := t.TempDir()
	src := fmt.Sprintf(`pairs:
  - local: /a
    remote: pcloud:/Sync0
    endpoint: http://api.example.com
  - local: /b
    remote: pcloud:/Sync1
    endpoint: ftp://127.0.0.1/
  - local: /c
    remote: pcloud:/Sync2
    endpoint: "https://anna:s3cret@api.example.com"
  - local: /d
    remote: pcloud:/Sync3
    endpoint: "https://api.example.com/?access_token=s3cret"
  - local: /e
    remote: pcloud:/Sync4
    endpoint: "127.0.0.1:8080"
  - local: /f
    remote: pcloud:/Sync5
    ca_file: %s
  - local: /g
    remote: pcloud:/Sync6
    ca_file: relative/ca.pem
  - local: /h
    remote: dir:/x
    endpoint: https://api.example.com
  - local: /i
    remote: pcloud:/Sync7
    ca_file: %s
  - local: /j
    remote: pcloud:/Sync8
    endpoint: "https://"
  - local: /k
    remote: pcloud:/Sync9
    endpoint: [a, b]
`, filepath.Join(dir, "missing.pem"), dir)
	c, err := Parse(strings.NewReader(src), "config.yaml")
	var msgs []string
	for _, e := range flatten(err) {
		msgs = append(msgs, e.Error())
	}
	if c == nil {
		t.Fatalf("no config: %v", err)
	}
	for _, e := range flatten(c.Validate(ValidateOptions{})) {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`config.yaml:4: pairs[0].endpoint: "http://api.example.com": plain http is only allowed to a loopback host`,
		`config.yaml:7: pairs[1].endpoint: "ftp://127.0.0.1/": want an http(s) URL`,
		`config.yaml:10: pairs[2].endpoint: "https://REDACTED@api.example.com": an endpoint must not carry credentials`,
		`config.yaml:13: pairs[3].endpoint: "https://api.example.com/?REDACTED": an endpoint must not carry a query`,
		`config.yaml:16: pairs[4].endpoint: `,
		`config.yaml:19: pairs[5].ca_file: ` + filepath.Join(dir, "missing.pem") + `: no such file`,
		`config.yaml:22: pairs[6].ca_file: want an absolute path or one starting with ~/, got "relative/ca.pem"`,
		`config.yaml:25: pairs[7].endpoint: a dir: remote has no endpoint`,
		`config.yaml:28: pairs[8].ca_file: ` + dir + ` is not a file`,
		`config.yaml:31: pairs[9].endpoint: "https://": the URL names no host`,
		`config.yaml:34: pairs[10].endpoint: want a single value, got a list`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "s3cret") {
		t.Errorf("a secret of the endpoint is quoted in a problem:\n%s", all)
	}
	if n := len(msgs); n != 11 {
		t.Errorf("%d problems, want 11:\n%s", n, all)
	}
}

func TestAppendPairEndpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	c, err := AppendPair(path, Pair{Local: "/a", Remote: "pcloud:/S", Endpoint: "http://127.0.0.1:1", CAFile: "/ca.pem"}, nil)
	if err != nil || c.Pairs[0].Endpoint != "http://127.0.0.1:1" || c.Pairs[0].CAFile != "/ca.pem" {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestVerizonApp(t *testing.T) {
	src := "verizon:\n  client_id: abc\n  client_secret: s\n  redirect_url: http://localhost:53682/callback\npairs: []\n"
	c, err := Parse(strings.NewReader(src), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Verizon != (VerizonApp{ClientID: "abc", ClientSecret: "s", RedirectURL: "http://localhost:53682/callback"}) {
		t.Fatalf("verizon section: %+v", c.Verizon)
	}
	if _, err := Parse(strings.NewReader("verizon:\n  client: abc\n"), "config.yaml"); err == nil ||
		!strings.Contains(err.Error(), "client_id") {
		t.Fatalf("unknown key in verizon: %v", err)
	}
}

// Issue 9, hole 4: max_delete NaN (or Inf, 0, out of range) would switch the big-delete guard off.
func TestMaxDeleteRejectsNonFinite(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "Inf", "-Inf", "+inf", "0", "-5", "101", "1e400", "0x1p7"} {
		src := "pairs:\n  - local: /a\n    remote: dir:/x\n    max_delete: " + v + "\n"
		c, err := Parse(strings.NewReader(src), "config.yaml")
		errs := flatten(err)
		if c != nil {
			errs = append(errs, flatten(c.Validate(ValidateOptions{Remote: checkScheme}))...)
		}
		found := false
		for _, e := range errs {
			if strings.Contains(e.Error(), "config.yaml:4: pairs[0].max_delete:") {
				found = true
			}
		}
		if !found {
			t.Errorf("max_delete: %s accepted (problems: %v)", v, errs)
		}
	}
	src := "pairs:\n  - local: /a\n    remote: dir:/x\n    max_delete: 12.5%\n    delete_window: 3m\n"
	c, err := Parse(strings.NewReader(src), "config.yaml")
	if err != nil || c.Pairs[0].MaxDelete != 12.5 || c.Pairs[0].EffectiveDeleteWindow() != 3*time.Minute {
		t.Fatalf("12.5%% / 3m: %v %+v", err, c)
	}
	if d := (Pair{}).EffectiveDeleteWindow(); d != 10*time.Minute {
		t.Errorf("default delete_window = %v", d)
	}
}

// TestRemoteOverlaps (issue 13 item 4): remotes are checked for overlap like local folders, each problem naming
// both pairs; a cloud remote overlaps only on the same provider, account and endpoint, compared as Locate folds.
func TestRemoteOverlaps(t *testing.T) {
	src := `pairs:
  - name: a
    local: /home/u/a
    remote: dir:/mnt/x
  - name: b
    local: /home/u/b
    remote: dir:/mnt/x/
  - name: c
    local: /home/u/c
    remote: dir:/home/u/a/inside
  - name: d
    local: /home/u/d
    remote: dir:/mnt
  - name: e
    local: /home/u/e
    remote: pcloud:/Photos
  - name: f
    local: /home/u/f
    remote: pcloud:/Photos/2024
  - name: g
    local: /home/u/g
    remote: pcloud:/Photos
    account: other
  - name: h
    local: /home/u/h
    remote: vboxx:/Root/Docs
  - name: i
    local: /home/u/i
    remote: vboxx:/root/docs/
  - name: j
    local: /home/u/j
    remote: verizon:/VZMOBILE/Photos
  - name: k
    local: /home/u/k
    remote: dir:/home/u/k/sub
`
	c, err := Parse(strings.NewReader(src), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fold := func(p Pair) Location {
		l := PlainLocation(p)
		if strings.HasPrefix(p.Remote, "vboxx:") {
			l.Path = strings.ToLower(l.Path)
		}
		return l
	}
	err = c.Validate(ValidateOptions{Locate: fold})
	var got []string
	for _, e := range flatten(err) {
		var pb *Problem
		if !errors.As(e, &pb) {
			t.Fatalf("not a Problem: %v", e)
		}
		got = append(got, pb.Field+": "+pb.Msg)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`pairs[1].remote: pairs[1] ("b") syncs into /mnt/x, which is the remote folder of pairs[0] ("a")`,
		`pairs[2].remote: pairs[2] ("c") syncs into /home/u/a/inside, which lies inside the local folder of pairs[0] ("a")`,
		`pairs[3].remote: pairs[3] ("d") syncs into /mnt, which holds the remote folder of pairs[0] ("a")`,
		`pairs[5].remote: pairs[5] ("f") syncs into pcloud:/Photos/2024, which lies inside the remote folder of pairs[4] ("e")`,
		`pairs[8].remote: pairs[8] ("i") syncs into vboxx:/root/docs/, which is the remote folder of pairs[7] ("h")`,
		`pairs[10].remote: pairs[10] ("k"): the remote folder /home/u/k/sub and the local folder /home/u/k overlap`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	for _, not := range []string{"pairs[6].remote", "pairs[9].remote"} {
		if strings.Contains(all, not) {
			t.Errorf("%s (another account, another provider) reported:\n%s", not, all)
		}
	}
}

// TestMetricsAddrLoopbackOnly (issue 13 item 5): /metrics on a non-loopback address is refused unless the file
// says metrics_public: true, and then every pair needs a name of its own (labels would otherwise carry folder
// names).
func TestMetricsAddrLoopbackOnly(t *testing.T) {
	check := func(src string) string {
		t.Helper()
		c, err := Parse(strings.NewReader(src), "config.yaml")
		if err != nil {
			return err.Error()
		}
		if err := c.Validate(ValidateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	}
	for _, addr := range []string{"127.0.0.1:9469", "localhost:9469", "[::1]:9469", "127.0.0.2:80"} {
		if got := check("metrics_addr: \"" + addr + "\"\n"); got != "" {
			t.Errorf("%s refused: %s", addr, got)
		}
	}
	for _, addr := range []string{"0.0.0.0:9469", ":9469", "192.168.1.2:9469", "[::]:9469", "myhost:9469"} {
		got := check("metrics_addr: \"" + addr + "\"\n")
		if !strings.Contains(got, "config.yaml:1: metrics_addr:") || !strings.Contains(got, "metrics_public: true") {
			t.Errorf("%s: want a problem naming metrics_public, got %q", addr, got)
		}
		if got := check("metrics_addr: \"" + addr + "\"\nmetrics_public: true\n"); got != "" {
			t.Errorf("%s with metrics_public refused: %s", addr, got)
		}
	}
	got := check("metrics_addr: 0.0.0.0:9469\nmetrics_public: true\npairs:\n  - local: /home/u/Secret Project\n    remote: dir:/x\n  - name: docs\n    local: /home/u/docs\n    remote: dir:/y\n")
	if !strings.Contains(got, "pairs[0].name:") || strings.Contains(got, "pairs[1].name") {
		t.Errorf("a public endpoint with an unnamed pair: %q", got)
	}
	if got := check("metrics_public: yes please\n"); !strings.Contains(got, "metrics_public") {
		t.Errorf("metrics_public: a non-boolean accepted: %q", got)
	}
}

// TestRemoteRelistInterval: remote_relist_interval takes a duration of at least an hour or off; absent is the
// default (24h). Anything else is a problem naming the line and saying what to write, 0 included (full_scan_interval
// reads 0 as its default, so 0 is too ambiguous to mean off here).
func TestRemoteRelistInterval(t *testing.T) {
	const pair = "pairs:\n  - local: /a\n    remote: dir:/x\n"
	for _, c := range []struct {
		val  string // "" = absent
		want time.Duration
	}{{"", DefaultRemoteRelistInterval}, {"24h", 24 * time.Hour}, {"90m", 90 * time.Minute}, {"1h", time.Hour},
		{"off", 0}, {"Off", 0}, {`"off"`, 0}} {
		src := pair
		if c.val != "" {
			src = "remote_relist_interval: " + c.val + "\n" + pair
		}
		cfg, err := Parse(strings.NewReader(src), "config.yaml")
		if err == nil {
			err = cfg.Validate(ValidateOptions{Remote: checkScheme})
		}
		if err != nil {
			t.Errorf("%q: %v", c.val, err)
			continue
		}
		if got := cfg.EffectiveRemoteRelistInterval(); got != c.want {
			t.Errorf("%q: effective interval %s, want %s", c.val, got, c.want)
		}
	}
	for _, c := range []struct{ val, want string }{
		{"0", `config.yaml:1: remote_relist_interval: "0": want a duration of at least 1h0m0s such as 24h, or off`},
		{"0s", `config.yaml:1: remote_relist_interval: "0s": want a duration of at least 1h0m0s such as 24h, or off`},
		{"30m", `config.yaml:1: remote_relist_interval: 30m0s is too short: want at least 1h0m0s (or off)`},
		{"-1h", `config.yaml:1: remote_relist_interval: "-1h": want a duration of at least 1h0m0s such as 24h, or off`},
		{"daily", `config.yaml:1: remote_relist_interval: "daily": want a duration of at least 1h0m0s such as 24h, or off`},
		{"no", `config.yaml:1: remote_relist_interval: "no": want a duration of at least 1h0m0s such as 24h, or off`},
		{"[1h]", `config.yaml:1: remote_relist_interval: want a single value`},
	} {
		cfg, err := Parse(strings.NewReader("remote_relist_interval: "+c.val+"\n"+pair), "config.yaml")
		if err == nil {
			err = cfg.Validate(ValidateOptions{Remote: checkScheme})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.val, err, c.want)
		}
	}
}
