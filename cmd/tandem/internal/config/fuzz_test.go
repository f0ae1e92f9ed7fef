package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigParse: Parse and Validate never panic on any bytes; every problem they report is a *Problem naming
// the file (so the user is told where), and a configuration they both accept has pairs the daemon can use.
func FuzzConfigParse(f *testing.F) {
	for _, s := range []string{
		"",
		"pairs:\n  - local: /a\n    remote: dir:/b\n",
		"state_dir: ~/st\nlog_file: /var/log/t.log\nmetrics_addr: 127.0.0.1:9469\nfull_scan_interval: 2h\n" +
			"pairs:\n  - name: docs\n    local: ~/Docs\n    remote: dir:/mnt/nas/Docs\n    ignore: [\"*.tmp\", build/]\n" +
			"    conflict: newer-wins\n    poll_interval: 30s\n    bandwidth_limit: 2MiB\n    max_delete: 20\n" +
			"    delete_window: 5m\n",
		"pairs:\n  - local: /a\n    remote: pcloud:/S\n    endpoint: http://example.com\n    ca_file: /nope.pem\n",
		"pairs: &a [*a]\n",
		"pairs:\n  - local: /a\n    max_delete: .nan\n    bandwidth_limit: -1\n    poll_interval: 1ns\n",
		"pairs:\n  - {local: /a, remote: dir:/b}\n  - {local: /a/b, remote: dir:/c}\n",
		"unknown: 1\npairs: 3\n",
		"remote_relist_interval: off\npairs:\n  - local: /a\n    remote: dir:/b\n",
		"remote_relist_interval: 0\nfull_scan_interval: 0\n",
		"verizon:\n  client_id: x\n  client_secret: y\n  redirect_url: http://localhost:1/cb\n",
		"\t- : :\n",
		"pairs:\n  - local: /a\n    remote: dir:/b\n    ignore: [\"[abc\", \"x\\u0000\"]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(strings.NewReader(string(data)), "config.yaml")
		checkProblems(t, err)
		if c == nil {
			if err == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		verr := c.Validate(ValidateOptions{Remote: checkScheme})
		checkProblems(t, verr)
		if err != nil || verr != nil {
			return
		}
		for _, p := range c.Pairs {
			l, lerr := p.LocalPath()
			if lerr != nil || !filepath.IsAbs(l) || p.Remote == "" || p.PairName() == "" {
				t.Fatalf("accepted a pair the daemon cannot use: %+v", p)
			}
			if m := p.EffectiveMaxDelete(); !(m > 0 && m <= 100) {
				t.Fatalf("accepted max_delete %v", m)
			}
		}
	})
}

func checkProblems(t *testing.T, err error) {
	t.Helper()
	for _, e := range flatten(err) {
		var p *Problem
		if !errors.As(e, &p) || p.File != "config.yaml" || p.Msg == "" || p.Line < 0 {
			t.Fatalf("problem without file, line or message: %#v", e)
		}
	}
}
