package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/watcher"
)

func TestPendingScope(t *testing.T) {
	var p pendingScope
	p.add(sideLocal, []watcher.Event{{Path: "b/x.txt"}, {Path: "a", Subtree: true}, {Path: "a/deep/y.txt"}})
	p.add(sideLocal, []watcher.Event{{Path: "b/x.txt"}, {Path: "b/.tandem-0123456789abcdef.part"}, {Path: "c/.tandem/z"}})
	p.add(sideRemote, []watcher.Event{{Path: "b/x.txt"}, {Path: "b/x.txt", Subtree: true}, {Path: "b/x.txt"}})
	sc, why, n := p.take()
	want := &engine.Scope{
		Local:  []engine.ScopePath{{Path: "a", Subtree: true}, {Path: "b/x.txt"}},
		Remote: []engine.ScopePath{{Path: "b/x.txt", Subtree: true}},
	}
	if !reflect.DeepEqual(sc, want) || why != "" || n != 3 {
		t.Fatalf("take = %+v %q %d, want %+v", sc, why, n, want)
	}
	if sc, _, n := p.take(); sc == nil || sc.Local != nil || sc.Remote != nil || n != 0 {
		t.Fatalf("take did not empty the scope: %+v", sc)
	}

	for _, c := range []struct {
		name string
		fill func(*pendingScope)
		why  string
	}{
		{"root", func(p *pendingScope) { p.add(sideLocal, []watcher.Event{{Path: "a"}, {Path: "", Subtree: true}}) }, whyWholeTree},
		{"root without subtree", func(p *pendingScope) { p.add(sideRemote, []watcher.Event{{Path: ""}}) }, whyWholeTree},
		{"unparsable", func(p *pendingScope) { p.add(sideLocal, []watcher.Event{{Path: "a/bad\xff"}}) }, whyBadPath},
		{"too many", func(p *pendingScope) {
			for i := range maxScopePaths/2 + 1 {
				p.add(sideLocal, []watcher.Event{{Path: fmt.Sprintf("l%d", i)}})
				p.add(sideRemote, []watcher.Event{{Path: fmt.Sprintf("r%d", i)}})
			}
		}, whyTooMany},
		{"first reason wins", func(p *pendingScope) {
			p.setFull(whyRescan)
			p.add(sideLocal, []watcher.Event{{Path: ""}})
			p.setFull(whySafetyNet)
		}, whyRescan},
	} {
		var p pendingScope
		c.fill(&p)
		if sc, why, _ := p.take(); sc != nil || why != c.why {
			t.Errorf("%s: take = %+v %q, want a full pass for %q", c.name, sc, why, c.why)
		}
	}

	// Exactly at the bound the pass is still scoped.
	p = pendingScope{}
	for i := range maxScopePaths {
		p.add(sideLocal, []watcher.Event{{Path: fmt.Sprintf("f%05d", i)}, {Path: fmt.Sprintf("f%05d", i), Subtree: true}})
	}
	if sc, _, n := p.take(); sc == nil || n != maxScopePaths {
		t.Fatalf("%d paths: scope %v, %d paths", maxScopePaths, sc != nil, n)
	}

	// A feed-less remote's poll tick walks the remote only; the local side keeps its paths.
	p = pendingScope{}
	p.add(sideLocal, []watcher.Event{{Path: "l.txt"}})
	p.add(sideRemote, []watcher.Event{{Path: "r/x.txt"}})
	p.rescanRemote()
	want = &engine.Scope{Local: []engine.ScopePath{{Path: "l.txt"}}, Remote: []engine.ScopePath{{Path: remote.Root, Subtree: true}}}
	if sc, _, _ := p.take(); !reflect.DeepEqual(sc, want) {
		t.Fatalf("after rescanRemote: %+v, want %+v", sc, want)
	}
}

// TestDaemonPassesAreScoped: the start-up pass and a rescan walk both sides; a local edit and the remote's feed
// news run scoped passes, and status says which.
func TestDaemonPassesAreScoped(t *testing.T) {
	mem := memremote.New(clockwork.NewRealClock(), memremote.Options{})
	local, cl := startDaemon(t, mem)
	s := waitState(t, cl, "the first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	if lp := s.LastPass; lp == nil || lp.Scope != "full" || lp.Reason != whyStartup {
		t.Fatalf("start-up pass: %+v", lp)
	}
	if err := os.WriteFile(filepath.Join(local, "edit.txt"), []byte("local edit"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = waitState(t, cl, "the upload", func(s PairStatus) bool {
		_, err := mem.Stat(context.Background(), "edit.txt")
		return err == nil && s.State == StateIdle && !s.Pending
	})
	// The last pass is the upload's (one watcher path) or the one the feed's echo of it kicked (none).
	if lp := s.LastPass; lp.Scope != "scoped" || lp.Paths > 1 || lp.Reason != "" {
		t.Fatalf("pass after a local edit: %+v", lp)
	}
	passes := s.Passes
	if _, err := cl.Rescan(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	s = waitState(t, cl, "the rescan", func(s PairStatus) bool {
		return s.Passes > passes && s.State == StateIdle && !s.Pending
	})
	if lp := s.LastPass; lp.Scope != "full" || lp.Reason != whyRescan {
		t.Fatalf("pass after a rescan: %+v", lp)
	}
	passes = s.Passes
	deadline := time.Now().Add(20 * time.Second)
	body := "remote edit"
	if _, err := mem.Put(context.Background(), "news.txt", strings.NewReader(body), int64(len(body)), time.Now(), remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(local, "news.txt")); err == nil && string(b) == body {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote change never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The file shows up while its pass is still running: wait for that pass to be counted, not only for idle.
	s = waitState(t, cl, "idle", func(s PairStatus) bool { return s.Passes > passes && s.State == StateIdle && !s.Pending })
	if lp := s.LastPass; lp.Scope != "scoped" {
		t.Fatalf("pass after feed news: %+v", lp)
	}
}

// failingPut refuses uploads named bad.txt while fail is set.
type failingPut struct {
	remote.Remote
	fail atomic.Bool
}

func (f *failingPut) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	if f.fail.Load() && p.Base() == "bad.txt" {
		return remote.Entry{}, errors.New("injected failure")
	}
	return f.Remote.Put(ctx, p, body, size, mtime, pre)
}

// passLog is the "pass done" entries so far, as scope/reason/paths/problems strings.
func passLog(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.FilterMessage("pass done").All() {
		m := e.ContextMap()
		out = append(out, fmt.Sprintf("%v/%v/%v/%v", m["scope"], m["reason"], m["paths"], m["problems"]))
	}
	return out
}

// TestDaemonRetriesProblemsScoped: after a pass with problems, the retry is a pass scoped to the failed path on
// both sides (its wait doubling: 0.3 s, 0.6 s, ...), never a full pass, and a new edit meanwhile is synced by a
// scoped pass of its own; once the path stops failing it syncs and the retries stop.
func TestDaemonRetriesProblemsScoped(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	lg := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	rem := &failingPut{Remote: memremote.New(clockwork.NewRealClock(), memremote.Options{})}
	rem.fail.Store(true)
	local, cl := startDaemonWith(t, rem, lg, nil, func(d *Daemon) { d.retryMin = 300 * time.Millisecond })
	waitState(t, cl, "the first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(local, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	onRemote := func(name string) bool {
		_, err := rem.Stat(context.Background(), remote.Path(name))
		return err == nil
	}
	write("bad.txt", "refused")
	waitState(t, cl, "the problem", func(s PairStatus) bool { return s.Problems == 1 && s.State == StateIdle })
	// The retry: bad.txt on both sides.
	waitState(t, cl, "a retry", func(s PairStatus) bool {
		return s.LastPass != nil && s.LastPass.Scope == "scoped" && s.LastPass.Paths == 2 && s.Problems == 1
	})
	write("good.txt", "fine")
	waitState(t, cl, "the other edit", func(s PairStatus) bool { return onRemote("good.txt") && s.State == StateIdle })
	rem.fail.Store(false)
	waitState(t, cl, "the failed path synced", func(s PairStatus) bool {
		return onRemote("bad.txt") && s.State == StateIdle && !s.Pending && s.Problems == 0
	})
	write("after.txt", "scoped again")
	waitState(t, cl, "the edit after the retry", func(s PairStatus) bool { return onRemote("after.txt") && s.State == StateIdle })

	passes := passLog(logs)
	t.Logf("passes (scope/reason/paths/problems): %q", passes)
	if len(passes) < 4 || passes[0] != "full/"+whyStartup+"/<nil>/0" || passes[1] != "scoped/<nil>/1/1" {
		t.Fatalf("the start of the pass sequence is not start-up, then a scoped pass with the problem: %q", passes)
	}
	for i, p := range passes[1:] {
		if !strings.HasPrefix(p, "scoped/") {
			t.Fatalf("pass %d is not scoped: %q", i+1, passes)
		}
	}
}

// slowFeed is a feed remote whose Changes takes 300 ms while slow is set: every pass reads the feed, so a pass
// takes at least that long.
type slowFeed struct {
	remote.Remote
	slow atomic.Bool
}

func (s *slowFeed) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	if s.slow.Load() {
		select {
		case <-ctx.Done():
			return remote.Batch{}, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return s.Remote.Changes(ctx, cur)
}

// TestDaemonFullPassesNeverBackToBack: a full pass asked for while another runs (two rescans) starts only as
// long after the first ended as the first took.
func TestDaemonFullPassesNeverBackToBack(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	lg := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	rem := &slowFeed{Remote: memremote.New(clockwork.NewRealClock(), memremote.Options{})}
	_, cl := startDaemonWith(t, rem, lg, nil, nil)
	s := waitState(t, cl, "the first pass", func(s PairStatus) bool { return s.State == StateIdle && s.LastSync != nil })
	rem.slow.Store(true)
	passes := s.Passes
	if _, err := cl.Rescan(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, "the first rescan's pass to run", func(s PairStatus) bool { return s.State == StateScanning })
	if _, err := cl.Rescan(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, "both rescans", func(s PairStatus) bool {
		return s.Passes >= passes+2 && s.State == StateIdle && !s.Pending
	})
	var full []observer.LoggedEntry
	for _, e := range logs.FilterMessage("pass done").All() {
		if e.ContextMap()["reason"] == whyRescan {
			full = append(full, e)
		}
	}
	if len(full) != 2 {
		t.Fatalf("%d full passes for two rescans, want 2: %q", len(full), passLog(logs))
	}
	took := func(e observer.LoggedEntry) time.Duration {
		return time.Duration(e.ContextMap()["took_ms"].(int64)) * time.Millisecond
	}
	firstEnd, secondBegin := full[0].Time, full[1].Time.Add(-took(full[1]))
	if gap := secondBegin.Sub(firstEnd); gap < took(full[0])-5*time.Millisecond {
		t.Fatalf("the second full pass began %s after the first ended, which took %s: back to back", gap, took(full[0]))
	}
}
