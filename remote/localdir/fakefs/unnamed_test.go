package fakefs

import (
	"errors"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote/localdir"
)

// unnamed writes data to a new unnamed file in folder dir, syncing it when syncFile is set, and returns it open.
func unnamed(t *testing.T, f *FS, dir, data string, syncFile bool) localdir.File {
	t.Helper()
	h, err := f.CreateUnnamed(dir, 0o600)
	must(t, err)
	_, err = h.Write([]byte(data))
	must(t, err)
	if syncFile {
		must(t, h.Sync())
	}
	return h
}

// The protocol a Put of a new file follows: bytes synced, then the link, then the folder synced. Every power
// loss shows the complete file or no name at all, never an empty or partial file under the name.
func TestUnnamedSyncedThenLinkedIsAllOrNothing(t *testing.T) {
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, syncDir := range []bool{false, true} {
		got := outcomes(t, 200, func(f *FS) {
			f.WriteFile("noise", []byte("unsynced"))
			h := unnamed(t, f, ".", "complete", true)
			fi, err := f.LinkNew(h, "f", mtime)
			must(t, err)
			if !fi.ModTime.Equal(mtime) || fi.Size != 8 || fi.Name != "f" {
				t.Fatalf("LinkNew's stat = %+v", fi)
			}
			must(t, h.Close())
			if syncDir {
				must(t, f.SyncDir("."))
			}
		}, func(f *FS) string {
			s, ok := content(f, "f")
			if !ok {
				return "gone"
			}
			return s
		})
		if got["gone"]+got["complete"] != 200 || got["complete"] == 0 || (syncDir && got["gone"] != 0) {
			t.Errorf("folder synced %v: outcomes = %v, want complete or gone (always complete once synced)", syncDir, got)
		}
	}
}

// The hazard the protocol avoids, shown by the model: a link made durable before the file's bytes leaves an
// empty file under the name after a power loss.
func TestUnnamedLinkedBeforeSyncCanBeEmpty(t *testing.T) {
	got := outcomes(t, 200, func(f *FS) {
		h := unnamed(t, f, ".", "complete", false)
		_, err := f.LinkNew(h, "f", time.Time{})
		must(t, err)
		must(t, f.SyncDir("."))
		must(t, h.Close())
	}, func(f *FS) string { s, _ := content(f, "f"); return "[" + s + "]" })
	if got["[]"] == 0 || got["[]"]+got["[complete]"] != 200 {
		t.Errorf("outcomes = %v, want empty and complete files under the name", got)
	}
}

// An unnamed file never linked is gone once closed, and after any crash, synced or not; its number is free
// again.
func TestUnnamedNeverLinkedLeavesNothing(t *testing.T) {
	for seed := range uint64(50) {
		f := newFS(seed)
		must(t, f.Mkdir("d", 0o755))
		h := unnamed(t, f, "d", "lost", seed%2 == 0)
		ino := h.(*file).ino
		must(t, h.Close())
		g, err := f.Create("d/next", 0o600)
		must(t, err)
		if got := g.(*file).ino; got != ino {
			t.Fatalf("seed %d: the next file got number %d, want the unnamed file's %d again", seed, got, ino)
		}
		must(t, g.Close())
		h = unnamed(t, f, "d", "lost", true)
		f.Crash()
		if _, err := h.Write([]byte("x")); err == nil {
			t.Fatalf("seed %d: an unnamed file still writable after a crash", seed)
		}
		for name := range f.Snapshot() {
			if name != "d" && name != "d/next" {
				t.Errorf("seed %d: %s after the crash", seed, name)
			}
		}
	}
}

// LinkNew never replaces: a taken name is EEXIST and the file there stays; without O_TMPFILE (SetUnnamed)
// CreateUnnamed is EOPNOTSUPP, which matches errors.ErrUnsupported.
func TestUnnamedLinkNeverReplaces(t *testing.T) {
	f := newFS(1)
	f.WriteFile("f", []byte("the user's"))
	h := unnamed(t, f, ".", "ours", true)
	if _, err := f.LinkNew(h, "f", time.Time{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("LinkNew onto a taken name = %v, want EEXIST", err)
	}
	if s, _ := content(f, "f"); s != "the user's" {
		t.Fatalf("f = %q after the failed link", s)
	}
	must(t, h.Close())
	f.SetUnnamed(false)
	if _, err := f.CreateUnnamed(".", 0o600); !errors.Is(err, syscall.EOPNOTSUPP) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CreateUnnamed without O_TMPFILE = %v", err)
	}
}
