package localdir_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
)

// TestPutNewFileIsWrittenUnnamed: a Put of a new file creates no temp name and renames nothing: it writes an
// unnamed file and links it in (one change to the folder where a temp file made two). A replace, and a new file
// on a filesystem without O_TMPFILE, take the temp file.
func TestPutNewFileIsWrittenUnnamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unnamed  bool // the filesystem has O_TMPFILE
		replace  bool
		wantLink bool
	}{
		{"new file", true, false, true},
		{"replace", true, true, false},
		{"new file without O_TMPFILE", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "fake", localdir.Options{})
			e.fake.SetUnnamed(tc.unnamed)
			put(t, e, "warm", "x", remote.Precondition{Absent: true}) // the probe runs here, once
			pre := remote.Precondition{Absent: true}
			if tc.replace {
				pre = remote.Precondition{Rev: put(t, e, "f", "old", remote.Precondition{Absent: true}).Rev}
			}
			l := logOps(e.fake, nil)
			got := put(t, e, "f", "content", pre)
			e.fake.SetFault(nil)
			links, renames := l.count("link"), l.count("rename")
			// Its one lookup is the stat after the link: the link itself checks that the name is free.
			if tc.wantLink && (links != 1 || l.count("tmpfile") != 1 || renames != 0 || l.count("create") != 0 ||
				l.count("lstat") != 1) {
				t.Errorf("ops %q: want one unnamed file linked in, no temp file, one lookup", l.ops)
			}
			if !tc.wantLink && (links != 0 || renames == 0 || l.count("create") != 1) {
				t.Errorf("ops %q: want a temp file renamed", l.ops)
			}
			if s := mustRead(t, e, "f"); s != "content" {
				t.Errorf("f = %q", s)
			}
			if now, err := e.d.Stat(context.Background(), "f"); err != nil || now.Rev != got.Rev {
				t.Errorf("Put's Rev %q, a stat now %q (%v): the fingerprint must be the one after the link", got.Rev, now.Rev, err)
			}
			noTemp(t, e)
			if !tc.wantLink {
				return
			}
			// Created with its final mode: no chmod, and the mode a temp file's way gives.
			if n := l.count("chmod"); n != 0 {
				t.Errorf("ops %q: want no chmod of a file created with its mode", l.ops)
			}
			e.fake.SetUnnamed(false)
			viaTemp := put(t, e, "g", "content", remote.Precondition{Absent: true})
			if got.Mode != viaTemp.Mode || got.Mode == 0 {
				t.Errorf("mode %v, a temp file's %v", got.Mode, viaTemp.Mode)
			}
		})
	}
}

// TestFaultsReachCallerUnnamed: a fault at any step of a new file's unnamed way reaches the caller naming the
// path; until the link nothing is at the path, and nothing is left behind. A failure to create the unnamed file
// sends the Put the temp file's way (a folder on a filesystem without O_TMPFILE), which succeeds here.
// (No chmod: the unnamed file is created with its mode. fill's chmod, shared with the temp file's way, meets its
// fault in TestFaultsReachCaller.)
func TestFaultsReachCallerUnnamed(t *testing.T) {
	for _, op := range []string{"tmpfile", "write", "sync", "link", "syncdir"} {
		t.Run(op, func(t *testing.T) {
			e := newEnv(t, "fake", localdir.Options{})
			put(t, e, "warm", "x", remote.Precondition{Absent: true})
			l := logOps(e.fake, map[string]error{op: syscall.ENOSPC})
			_, err := e.d.Put(context.Background(), "f", strings.NewReader("content"), 7, t0, remote.Precondition{Absent: true})
			e.fake.SetFault(nil)
			if l.count(op) == 0 {
				t.Fatalf("ops %q: the Put never reached %s", l.ops, op)
			}
			s, rerr := e.read("f")
			switch op {
			case "tmpfile":
				if err != nil || s != "content" || l.count("create") != 1 || l.count("rename") != 1 {
					t.Errorf("Put = %v, f = %q (%v), ops %q: want the temp file's way to succeed", err, s, rerr, l.ops)
				}
			case "syncdir": // linked already: the content is there, only not yet durable
				if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "f") || s != "content" {
					t.Errorf("Put = %v, f = %q (%v): want ENOSPC naming the path, the content there", err, s, rerr)
				}
			default:
				if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "f") || rerr == nil {
					t.Errorf("Put = %v, f = %q (%v): want ENOSPC naming the path, nothing there", err, s, rerr)
				}
			}
			if e.d.TempLeft() {
				t.Error("TempLeft after a failed unnamed Put")
			}
			noTemp(t, e)
		})
	}
}

// TestPutUnnamedThroughSyncFSSurvivesPowerLoss: new files written unnamed, with their two syncs shared through
// the barrier's syncfs, are complete under their names after any power loss once Put returned.
func TestPutUnnamedThroughSyncFSSurvivesPowerLoss(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 40; seed++ {
		f, d := barrierDir(t, seed, 1)
		if err := f.MkdirAll("u/v"); err != nil {
			t.Fatal(err)
		}
		l := logOps(f, nil)
		for n, data := range map[remote.Path]string{"u/v/a": "aaa", "u/b": "bee"} {
			if _, err := d.Put(ctx, n, strings.NewReader(data), 3, t0, remote.Precondition{Absent: true}); err != nil {
				t.Fatalf("seed %d: Put: %v", seed, err)
			}
		}
		if l.count("syncfs") == 0 || l.count("link") < 2 {
			t.Fatalf("seed %d: ops %q: the test does not exercise unnamed files through the barrier", seed, l.ops)
		}
		f.SetFault(nil)
		f.Crash()
		for n, want := range map[string]string{"u/v/a": "aaa", "u/b": "bee"} {
			if got, err := f.ReadFile(n); err != nil || string(got) != want {
				t.Errorf("seed %d: after a power loss %s holds %q (%v), want %q", seed, n, got, err, want)
			}
		}
	}
}
