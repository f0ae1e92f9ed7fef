//go:build failpoints

package failpoint

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	m, err := parse(" a=kill ; b=panic@2;c=sleep(25)@3;d=error;;e = error @ 4 ")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind kind
		ms   int
		nth  int64
	}{
		"a": {kill, 0, 0}, "b": {panicking, 0, 2}, "c": {sleep, 25, 3}, "d": {fail, 0, 0}, "e": {fail, 0, 4},
	}
	if len(m) != len(want) {
		t.Fatalf("got %d points, want %d", len(m), len(want))
	}
	for name, w := range want {
		p := m[name]
		if p == nil || p.kind != w.kind || p.ms != w.ms || p.nth != w.nth {
			t.Errorf("%s: got %+v, want %+v", name, p, w)
		}
	}
	if m, err := parse(""); err != nil || len(m) != 0 {
		t.Errorf("empty spec: %v %v", m, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, spec := range []string{
		"a", "=kill", "a=", "a=explode", "a=kill@0", "a=kill@-1", "a=kill@x", "a=sleep(x)", "a=sleep(-1)",
		"a=sleep(5", "a=kill;a=error",
	} {
		if _, err := parse(spec); err == nil {
			t.Errorf("parse(%q) accepted", spec)
		}
	}
}

// TestHit drives the parsed plan directly (the process-wide plan is read once, so the test sets it first).
func TestHit(t *testing.T) {
	t.Setenv(Env, "e=error@2;every=error;nap=sleep(30)@1;boom=panic@1")
	once = sync.Once{}
	t.Cleanup(func() { once = sync.Once{}; points = nil })

	for i, wantErr := range []bool{false, true, false, false} {
		if err := Hit("e"); (err != nil) != wantErr || (err != nil && !errors.Is(err, ErrInjected)) {
			t.Fatalf("hit %d of e: %v", i+1, err)
		}
	}
	for range 3 {
		if err := Hit("every"); !errors.Is(err, ErrInjected) {
			t.Fatalf("every: %v", err)
		}
	}
	if err := Hit("unplanned"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := Hit("nap"); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("sleep: %v after %s", err, time.Since(start))
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic action did not panic")
			}
		}()
		_ = Hit("boom")
	}()
	if err := Hit("boom"); err != nil {
		t.Fatalf("second hit of boom@1: %v", err)
	}
}

func TestValue(t *testing.T) {
	t.Setenv(Env, "chunk=value(512);k=kill@2")
	once = sync.Once{}
	t.Cleanup(func() { once = sync.Once{}; points = nil })
	if v := Int("chunk", 9); v != 512 {
		t.Fatalf("Int(chunk) = %d", v)
	}
	if v := Int("other", 9); v != 9 {
		t.Fatalf("Int(other) = %d", v)
	}
	if v := Int("k", 9); v != 9 {
		t.Fatalf("Int of an action point = %d", v)
	}
	if err := Hit("chunk"); err != nil {
		t.Fatal(err)
	}
	if _, err := parse("a=value(x)"); err == nil {
		t.Error("value(x) accepted")
	}
	if _, err := parse("a=value(3)@2"); err == nil {
		t.Error("value with @nth accepted")
	}
}
