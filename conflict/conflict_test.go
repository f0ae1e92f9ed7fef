package conflict

import (
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
)

func TestName(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	cases := []struct{ in, want string }{
		{"report.txt", "report (conflict laptop 2026-03-01 101500).txt"},
		{"docs/report.txt", "docs/report (conflict laptop 2026-03-01 101500).txt"},
		{".bashrc", ".bashrc (conflict laptop 2026-03-01 101500)"},
		{"archive.tar.gz", "archive.tar (conflict laptop 2026-03-01 101500).gz"},
		{"noext", "noext (conflict laptop 2026-03-01 101500)"},
	}
	for _, c := range cases {
		if got := Name(remote.Path(c.in), "laptop", at, nil); string(got) != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNameCollisionCounter(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	taken := map[remote.Path]bool{}
	for i := 0; i < 4; i++ {
		n := Name("a.txt", "h", at, func(p remote.Path) bool { return taken[p] })
		if taken[n] {
			t.Fatalf("returned a taken name %q", n)
		}
		taken[n] = true
	}
	if !taken["a (conflict h 2026-03-01 101500 4).txt"] {
		t.Errorf("counter names: %v", taken)
	}
}

func TestNameStaysValid(t *testing.T) {
	long := strings.Repeat("é", 120) + ".txt" // 244 bytes
	got := Name(remote.Path(long), "host/with\x01bad(chars)", time.Unix(0, 0), nil)
	if err := remote.ValidName(got.Base()); err != nil {
		t.Fatalf("invalid conflict name %q: %v", got, err)
	}
	if !IsName(got.Base()) {
		t.Errorf("IsName(%q) = false", got)
	}
}

func TestDecide(t *testing.T) {
	old, newer := remote.Entry{ModTime: time.Unix(100, 0)}, remote.Entry{ModTime: time.Unix(200, 0)}
	cases := []struct {
		p        Policy
		l, r     remote.Entry
		trash    bool
		want     Winner
		describe string
	}{
		{KeepBoth, old, newer, true, Both, "default keeps both"},
		{LocalWins, old, newer, true, Local, "local wins"},
		{LocalWins, old, newer, false, Both, "local wins needs a remote trash"},
		{RemoteWins, newer, old, false, Remote, "remote wins uses the local trash"},
		{NewerWins, newer, old, true, Local, "newer local"},
		{NewerWins, old, newer, true, Remote, "newer remote"},
		{NewerWins, old, old, true, Both, "tie keeps both"},
		{NewerWins, newer, remote.Entry{}, true, Both, "a remote without a user mtime (Verizon) keeps both"},
		{NewerWins, remote.Entry{}, newer, true, Both, "a side without a user mtime keeps both"},
	}
	for _, c := range cases {
		if got := Decide(c.p, c.l, c.r, c.trash, 0); got != c.want {
			t.Errorf("%s: got %v want %v", c.describe, got, c.want)
		}
	}
	// Issue 13 item 13: a remote that keeps whole seconds (pCloud) cannot order two edits within one second; the
	// local ns mtime must not win over a later remote edit that the remote reports truncated.
	l := remote.Entry{ModTime: time.Date(2026, 3, 1, 10, 0, 0, 700e6, time.UTC)}
	r := remote.Entry{ModTime: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} // edited at .9, reported as :00
	if got := Decide(NewerWins, l, r, true, time.Second); got != Both {
		t.Errorf("same second at a 1 s step: got %v, want both kept", got)
	}
	r.ModTime = r.ModTime.Add(time.Second)
	if got := Decide(NewerWins, l, r, true, time.Second); got != Remote {
		t.Errorf("a second later: got %v, want remote", got)
	}
}

func TestParsePolicy(t *testing.T) {
	if p, err := ParsePolicy(""); err != nil || p != KeepBoth {
		t.Fatal(p, err)
	}
	if _, err := ParsePolicy("newest"); err == nil || !strings.Contains(err.Error(), "keep-both") {
		t.Fatalf("want an error listing the policies, got %v", err)
	}
}
