package engine

import (
	"path"
	"testing"
)

// Tests of the simulation's own oracle: it must be exactly as strict as RELIABILITY I2, neither exempting a
// version the user did not give up (which would hide a loss by tandem) nor holding tandem to one the user did.

// A local version the user wrote, then moved, then a power loss: the power loss took it only if its content is
// nowhere live on L now. Judged by the path it was written at, a move that survived the power loss made it look lost,
// and the version was exempt from I2 although it sat at its new path for tandem to sync (or lose).
func TestSimOracleMovedVersionPowerLoss(t *testing.T) {
	var atNew, atOld, gone int
	for seed := uint64(1); seed <= 40; seed++ {
		w := newWorld(t, seed, 0, nil)
		data := w.content(24)
		if err := w.userWrite(w.L, "a", data); err != nil {
			t.Fatal(err)
		}
		if err := w.userRename(w.L, "a", "b"); err != nil {
			t.Fatal(err)
		}
		w.crash()
		sha := shaHex(data)
		switch {
		case w.lookupSHA(w.L, "b") == sha:
			atNew++
		case w.lookupSHA(w.L, "a") == sha:
			atOld++
		default:
			gone++
		}
		live := w.liveHashes(w.L, false)[sha]
		for _, v := range w.versions {
			if v.sha == sha && v.exempt == live {
				t.Errorf("seed %d: version live on L %v, exempt %v (L: %v)", seed, live, v.exempt, w.list(w.L))
			}
		}
		w.close()
	}
	t.Logf("after the power loss: at the new path %d, at the old path %d, gone %d", atNew, atOld, gone)
	if atNew == 0 || gone == 0 {
		t.Fatalf("the seeds no longer cover both outcomes (at the new path %d, gone %d): pick others", atNew, gone)
	}
}

func (w *world) lookupSHA(s *simSide, p string) string {
	if e, ok := w.lookup(s, p); ok && !e.dir {
		return e.sha
	}
	return ""
}

// simReplaceFolder removes a folder holding one content at two paths, one also on the remote, one not: the
// shared copy owes a trash whatever order the files come in; a content only the local side held owes nothing.
func TestSimOracleReplaceFolderMarksPerLocation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		shared   bool // R holds the content at d/f1 too
		trashed  bool
		exempted bool
	}{
		{"shared copy first", []string{"d/f1", "d/f2"}, true, true, false},
		{"local-only copy first", []string{"d/f2", "d/f1"}, true, true, false},
		{"no shared copy", []string{"d/f1", "d/f2"}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 1, 0, nil)
			defer w.close()
			data := w.content(24)
			for _, s := range []*simSide{w.L, w.R} {
				if err := w.userMkdir(s, "d"); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range []string{"d/f1", "d/f2"} {
				if err := w.userWrite(w.L, p, data); err != nil {
					t.Fatal(err)
				}
			}
			other := w.content(24)
			if tc.shared {
				other = data
			}
			if err := w.userWrite(w.R, "d/f1", other); err != nil {
				t.Fatal(err)
			}
			c := &simOpCtx{s: w.L, other: w.R, exists: map[string]simEntry{}, folders: []string{"d"}, files: tc.files,
				newPath: func() (string, bool) { return "e", true }}
			for _, e := range w.list(w.L) {
				c.exists[e.path] = e
			}
			simReplaceFolder(w, c)
			if _, ok := w.lookup(w.L, "d"); ok {
				t.Fatalf("d not replaced: %v", w.list(w.L))
			}
			sha := shaHex(data)
			for _, v := range w.versions {
				if v.sha != sha {
					continue
				}
				if v.trashed != tc.trashed || v.exempt != tc.exempted {
					t.Errorf("%s version of %s: trashed %v (want %v), exempt %v (want %v)", v.side, v.path,
						v.trashed, tc.trashed, v.exempt, tc.exempted)
				}
				if tc.trashed && (len(v.trashedAt) != 1 || path.Clean(v.trashedAt[0]) != "d/f1") {
					t.Errorf("%s version of %s: trashed at %v, want [d/f1]", v.side, v.path, v.trashedAt)
				}
			}
		})
	}
}

// A version away with its folder (opFolderToSkip: the folder on another disk, a special file in its place) is
// exempt only while it is away. A user who overwrites its content on the other side meanwhile gives it up as
// anywhere else (discard), and the folder's return must not make it owed again. Seed 170765 (-sim.lazydisk): the
// remote user overwrote the moved copy of storm2/s13 while storm2 was away; tandem rightly trashed the local
// copy, which held the base, as the remote delete it was, and I2 counted the version lost at quiescence.
func TestSimOracleDiscardWhileFolderAway(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		w := newWorld(t, seed, 0, nil)
		data := w.content(24)
		if err := w.userMkdir(w.L, "d"); err != nil {
			t.Fatal(err)
		}
		if err := w.userWrite(w.L, "d/f", data); err != nil {
			t.Fatal(err)
		}
		w.pass(false)
		sha := shaHex(data)
		if w.lookupSHA(w.R, "d/f") != sha {
			t.Fatalf("seed %d: d/f not synced: %v", seed, w.list(w.R))
		}
		fired := false
		w.beforePass = append(w.beforePass, func() {
			if !fired {
				fired = true
				_ = w.userWrite(w.R, "d/f", w.content(24)) // gives up sha, as any overwrite does
			}
		})
		opFolderToSkip(w, &simOpCtx{})
		if !fired {
			t.Fatalf("seed %d: the operation ran no pass", seed)
		}
		for _, v := range w.versions {
			if v.sha == sha && !v.exempt {
				t.Errorf("seed %d: %s version of %s owed again after its folder came back, though the remote "+
					"user overwrote its content while it was away", seed, v.side, v.path)
			}
		}
		if !w.failed {
			w.quiesce()
		}
		w.close()
	}
}
