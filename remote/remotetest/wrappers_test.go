package remotetest_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/remote/remotetest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func putS(t *testing.T, r remote.Remote, p remote.Path, s string) (remote.Entry, error) {
	t.Helper()
	return r.Put(t.Context(), p, bytes.NewReader([]byte(s)), int64(len(s)), time.Time{}, remote.Precondition{})
}

// Without rules and without lag the wrappers are transparent, so they must pass the whole suite; Lagging on a
// real clock with a short lag also shows the suite's polling copes with a late feed.
func TestWrappersConform(t *testing.T) {
	t.Run("Faulty", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
			m := memremote.New(clockwork.NewFakeClock(), memremote.Options{})
			return remotetest.Fixture{R: remotetest.Faulty(m), Other: m.Handle(), Expire: m.Compact}
		}, nil)
	})
	t.Run("Lagging", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
			clk := clockwork.NewRealClock()
			m := memremote.New(clk, memremote.Options{})
			return remotetest.Fixture{R: remotetest.Lagging(m, 100*time.Millisecond, clk), Other: m.Handle(),
				Expire: m.Compact, Settle: time.Second}
		}, nil)
	})
}

func TestFaultyNth(t *testing.T) {
	m := memremote.New(clockwork.NewFakeClock(), memremote.Options{})
	boom := errors.New("boom")
	f := remotetest.Faulty(m, remotetest.Rule{Op: "Put", Nth: 2, Err: boom})
	_, err := putS(t, f, "a", "1")
	must(t, err)
	if _, err := putS(t, f, "b", "2"); !errors.Is(err, boom) {
		t.Fatalf("2nd Put: %v, want boom", err)
	}
	if _, err := m.Stat(t.Context(), "b"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("a Put failed before it applies stored b: %v", err)
	}
	_, err = putS(t, f, "c", "3")
	must(t, err)
	// Other operations are not counted by a Put rule.
	_, err = f.Stat(t.Context(), "a")
	must(t, err)
}

func TestFaultyEveryAndDefault(t *testing.T) {
	m := memremote.New(clockwork.NewFakeClock(), memremote.Options{})
	f := remotetest.Faulty(m, remotetest.Rule{Op: "Changes"})
	cur, err := f.Head(t.Context())
	must(t, err)
	for range 3 {
		if _, err := f.Changes(t.Context(), cur); !errors.Is(err, remotetest.ErrInjected) || !errors.Is(err, remote.ErrUnavailable) {
			t.Fatalf("Changes: %v, want ErrInjected matching ErrUnavailable", err)
		}
	}
	anyOp := remotetest.Faulty(m, remotetest.Rule{Nth: 2})
	_, err = anyOp.Stat(t.Context(), remote.Root)
	must(t, err)
	if _, err := anyOp.Head(t.Context()); err == nil {
		t.Error(`the 2nd call of any kind did not fail under Op ""`)
	}
}

// Ack loss: the effect happens, the answer does not arrive.
func TestFaultyAfter(t *testing.T) {
	m := memremote.New(clockwork.NewFakeClock(), memremote.Options{})
	f := remotetest.Faulty(m,
		remotetest.Rule{Op: "Put", After: true},
		remotetest.Rule{Op: "Delete", After: true},
		remotetest.Rule{Op: "Move", After: true})
	if _, err := putS(t, f, "a", "x"); err == nil {
		t.Fatal("Put with After returned no error")
	}
	if got, err := m.ReadFile("a"); err != nil || string(got) != "x" {
		t.Fatalf("after a lost Put answer the file is %q, %v; want it stored", got, err)
	}
	if _, err := f.Move(t.Context(), "a", "b", remote.Precondition{}); err == nil {
		t.Error("Move with After returned no error")
	}
	if err := f.Delete(t.Context(), "b", remote.Precondition{}); err == nil {
		t.Error("Delete with After returned no error")
	}
	if snap := m.Snapshot(); len(snap) != 0 {
		t.Errorf("after lost Move and Delete answers the store holds %v, want nothing", snap)
	}
}

func TestFaultyCut(t *testing.T) {
	m := memremote.New(clockwork.NewFakeClock(), memremote.Options{})
	must(t, m.WriteFile("a", []byte("0123456789")))
	f := remotetest.Faulty(m, remotetest.Rule{Op: "Open", CutAt: 4}, remotetest.Rule{Op: "Put", CutAt: 3})
	rc, e, err := f.Open(t.Context(), "a")
	must(t, err)
	if e.Size != 10 {
		t.Errorf("Open entry %+v", e)
	}
	got, err := io.ReadAll(rc)
	must(t, rc.Close())
	if string(got) != "0123" || !errors.Is(err, remotetest.ErrInjected) {
		t.Errorf("cut body gave %q, %v; want 4 bytes then ErrInjected", got, err)
	}
	if _, err := putS(t, f, "a", "new content"); err == nil {
		t.Error("Put with a cut body succeeded")
	}
	if got, _ := m.ReadFile("a"); string(got) != "0123456789" {
		t.Errorf("a cut upload changed the file to %q", got)
	}
}

func TestWrappersKeepOptionalInterfaces(t *testing.T) {
	m := memremote.New(clockwork.NewFakeClock(), memremote.Options{})
	for _, r := range []remote.Remote{remotetest.Faulty(m), remotetest.Lagging(m, time.Second, clockwork.NewFakeClock())} {
		if _, ok := r.(remote.Hasher); !ok {
			t.Errorf("%s hides Hasher", r)
		}
		if _, ok := r.(remote.RootChecker); !ok {
			t.Errorf("%s hides RootChecker", r)
		}
	}
	bare := struct{ remote.Remote }{m} // a Remote with neither optional interface
	for _, r := range []remote.Remote{remotetest.Faulty(bare), remotetest.Lagging(bare, time.Second, clockwork.NewFakeClock())} {
		if _, ok := r.(remote.Hasher); ok {
			t.Errorf("%T claims Hasher for a side without it", r)
		}
		if _, ok := r.(remote.RootChecker); ok {
			t.Errorf("%T claims RootChecker for a side without it", r)
		}
	}
	f := remotetest.Faulty(m, remotetest.Rule{Op: "CheckRoot"})
	if err := f.(remote.RootChecker).CheckRoot(t.Context()); !errors.Is(err, remotetest.ErrInjected) {
		t.Errorf("CheckRoot through Faulty: %v", err)
	}
}

func TestLagging(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*memremote.Mem) remote.Remote
		bAt  time.Duration // when b (written at 6s, first polled at 10s) must show up
	}{
		// memremote stamps its events: the lag counts from the write.
		{"stamped", func(m *memremote.Mem) remote.Remote { return m }, 16 * time.Second},
		// Without stamps the lag counts from the first time the wrapper saw the change.
		{"first seen", func(m *memremote.Mem) remote.Remote { return struct{ remote.Remote }{m} }, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clockwork.NewFakeClock()
			m := memremote.New(clk, memremote.Options{})
			l := remotetest.Lagging(tc.wrap(m), 10*time.Second, clk)
			ctx := t.Context()
			cur, err := l.Head(ctx)
			must(t, err)
			must(t, m.WriteFile("a", nil))
			b, err := l.Changes(ctx, cur)
			must(t, err)
			if len(b.Changes) != 0 {
				t.Fatalf("a fresh change was reported: %+v", b.Changes)
			}
			cur = b.Next
			clk.Advance(6 * time.Second)
			must(t, m.WriteFile("b", nil))
			clk.Advance(4 * time.Second)
			b, err = l.Changes(ctx, cur)
			must(t, err)
			if len(b.Changes) != 1 || b.Changes[0].Entry.Path != "a" {
				t.Fatalf("after 10s: %+v, want only a", b.Changes)
			}
			cur = b.Next
			if b, err = l.Changes(ctx, cur); err != nil || len(b.Changes) != 0 {
				t.Fatalf("b after 4s: %+v, %v; want nothing yet", b.Changes, err)
			}
			clk.Advance(tc.bAt - 10*time.Second - time.Nanosecond)
			if b, err = l.Changes(ctx, cur); err != nil || len(b.Changes) != 0 {
				t.Fatalf("b just before %v: %+v, %v; want nothing yet", tc.bAt, b.Changes, err)
			}
			clk.Advance(time.Nanosecond)
			b, err = l.Changes(ctx, cur)
			must(t, err)
			if len(b.Changes) != 1 || b.Changes[0].Entry.Path != "b" {
				t.Fatalf("at %v: %+v, want b", tc.bAt, b.Changes)
			}
			if b, err = l.Changes(ctx, b.Next); err != nil || len(b.Changes) != 0 {
				t.Errorf("at the end: %+v, %v; want nothing", b.Changes, err)
			}
			// Stat is not delayed: only the feed lags.
			if _, err := l.Stat(ctx, "b"); err != nil {
				t.Errorf("Stat through Lagging: %v", err)
			}
			if _, err := l.Changes(ctx, remote.Cursor("7")); !errors.Is(err, remote.ErrOutOfSync) {
				t.Errorf("a cursor of the wrapped side: %v, want ErrOutOfSync", err)
			}
		})
	}
}
