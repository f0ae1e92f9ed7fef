package verizon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
	"github.com/tandemsync/tandem/state"
)

var deltaReadings = []string{emulator.VariantDeltaMoveNone, emulator.VariantDeltaMoveFolder, emulator.VariantDeltaMoveSubtree}

// feedView applies a batch to a view of paths the way the engine's store does: From moves a subtree, Deleted
// removes one, anything else is an upsert.
func feedView(view map[remote.Path]bool, b remote.Batch) {
	for _, ch := range b.Changes {
		if ch.Entry.Skip != "" {
			continue
		}
		if ch.From != "" {
			for p := range view {
				if p.Within(ch.From) {
					delete(view, p)
					view[p.Rebase(ch.From, ch.Entry.Path)] = true
				}
			}
		}
		if ch.Deleted {
			for p := range view {
				if p.Within(ch.Entry.Path) {
					delete(view, p)
				}
			}
			continue
		}
		view[ch.Entry.Path] = true
	}
}

// TestMovedThenDeletedLeavesNoOldPath: another client moves a file (and a folder) and then deletes it at its
// new path between two looks. Under the default reading the delta names nothing at all for it: not the old path
// (the item moved away from it) and not the new one (it did not exist at the old etag). The feed must still end
// with the old paths gone, under every delta reading (found by the torture, seeds 132279 and 71999).
func TestMovedThenDeletedLeavesNoOldPath(t *testing.T) {
	for _, v := range deltaReadings {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c, other := newClient(t, r, nil), newClient(t, r, nil)
			mustMkdir(t, c, "d")
			mustMkdir(t, c, "dst")
			mustPut(t, c, "d/x.txt", []byte("x"))
			mustPut(t, c, "f.txt", []byte("f"))
			mustPut(t, c, "stay.txt", []byte("s"))
			cur, err := c.Head(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			view := map[remote.Path]bool{}
			if err := c.Walk(t.Context(), remote.Root, func(e remote.Entry) error { view[e.Path] = true; return nil }); err != nil {
				t.Fatal(err)
			}
			for _, mv := range [][2]remote.Path{{"f.txt", "dst/m.txt"}, {"d", "dst/e"}} {
				if _, err := other.Move(t.Context(), mv[0], mv[1], remote.Precondition{}); err != nil {
					t.Fatal(err)
				}
				if err := other.Delete(t.Context(), mv[1], remote.Precondition{}); err != nil && mv[1] == "dst/m.txt" {
					t.Fatal(err)
				} else if err != nil { // a folder that is not empty: delete what is inside first
					if err := other.Delete(t.Context(), "dst/e/x.txt", remote.Precondition{}); err != nil {
						t.Fatal(err)
					}
					if err := other.Delete(t.Context(), mv[1], remote.Precondition{}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := 0; ; i++ {
				b, err := c.Changes(t.Context(), cur)
				if err != nil {
					t.Fatalf("Changes: %v", err)
				}
				feedView(view, b)
				if len(b.Changes) == 0 || i > 10 {
					break
				}
				cur = b.Next
			}
			want := map[remote.Path]bool{"dst": true, "stay.txt": true}
			if len(view) != len(want) || !view["dst"] || !view["stay.txt"] {
				t.Fatalf("view after the feed: %v, want %v", view, want)
			}
		})
	}
}

// TestMovedThenDeletedEngine: the same through engine passes against a local folder: the old name leaves the
// local side without a --resync.
func TestMovedThenDeletedEngine(t *testing.T) {
	for _, v := range deltaReadings {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c := newClient(t, r, nil)
			L := t.TempDir()
			pass := enginePass(t, c, L)
			for name, data := range map[string]string{"f549.txt": "moved then deleted", "stay.txt": "stays",
				"d415/keep.txt": "keeps the folder"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(L, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(L, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pass()
			o := newClient(t, r, nil)
			if _, err := o.Move(t.Context(), "f549.txt", "d415/m525.txt", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			if err := o.Delete(t.Context(), "d415/m525.txt", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			pass()
			if rep := pass(); len(rep.Done) > 0 {
				t.Fatalf("the pass after convergence did %+v", rep.Done)
			}
			for name, want := range map[string]bool{"f549.txt": false, "d415/m525.txt": false, "stay.txt": true,
				"d415/keep.txt": true} {
				_, err := os.Stat(filepath.Join(L, name))
				if got := err == nil; got != want {
					t.Errorf("local %s present: %v, want %v (%v)", name, got, want, err)
				}
			}
		})
	}
}

// openPair opens a state store (checked when the test ends) and the local folder L, for engine passes against
// the emulator.
func openPair(t *testing.T, L string) (*state.Store, *localdir.Dir) {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "pair.db"), zaptest.NewLogger(t), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("state check: %v", err)
		}
		st.Close()
	})
	ld, err := localdir.Open(zaptest.NewLogger(t), L, localdir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ld.Close() })
	return st, ld
}

// enginePass returns a function that runs one engine pass of c against the local folder L, with one state
// store for all of them, and fails the test on an error or a problem.
func enginePass(t *testing.T, c *Client, L string) func() *engine.Report {
	t.Helper()
	st, ld := openPair(t, L)
	return func() *engine.Report {
		t.Helper()
		e, err := engine.New(engine.Deps{Local: ld, Remote: c, Store: st, Logger: zaptest.NewLogger(t)},
			engine.Options{Host: "testhost"})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := e.RunPass(context.Background())
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("pass: %v %+v", err, rep.Problems)
		}
		return rep
	}
}

// TestRenamedThenTypeChanged: another client renames a synced file and then turns the new name into a folder
// (the torture's V2, under delta-move-subtree: the local file stayed). In one interval between two passes, and
// across two; under every delta reading the old name must leave the local side and the folder arrive.
func TestRenamedThenTypeChanged(t *testing.T) {
	for _, v := range deltaReadings {
		for _, split := range []bool{false, true} {
			name := v + "/one-interval"
			if split {
				name = v + "/two-intervals"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := startEmu(t, emulator.Options{Variants: []string{v}})
				c := newClient(t, r, nil)
				L := t.TempDir()
				pass := enginePass(t, c, L)
				for name, data := range map[string]string{"a.txt": "renamed, then its name became a folder",
					"stay.txt": "stays"} {
					if err := os.WriteFile(filepath.Join(L, name), []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				pass()
				o := newClient(t, r, nil)
				if _, err := o.Move(t.Context(), "a.txt", "b.txt", remote.Precondition{}); err != nil {
					t.Fatal(err)
				}
				if split {
					pass()
				}
				if err := o.Delete(t.Context(), "b.txt", remote.Precondition{}); err != nil {
					t.Fatal(err)
				}
				mustMkdir(t, o, "b.txt")
				mustPut(t, o, "b.txt/inside.txt", []byte("inside"))
				pass()
				if rep := pass(); len(rep.Done) > 0 {
					t.Fatalf("the pass after convergence did %+v", rep.Done)
				}
				for name, want := range map[string]bool{"a.txt": false, "b.txt/inside.txt": true, "stay.txt": true} {
					_, err := os.Stat(filepath.Join(L, name))
					if got := err == nil; got != want {
						t.Errorf("local %s present: %v, want %v (%v)", name, got, want, err)
					}
				}
			})
		}
	}
}

// TestExistingFolderIsNotTakenForAMovedOne: a folder deleted while a folder that already existed receives files
// of the same names is a delete and new files, not a move of the one folder onto the other; a real rename in
// the same interval is still one move.
func TestExistingFolderIsNotTakenForAMovedOne(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c, other := newClient(t, r, nil), newClient(t, r, nil)
	mustMkdir(t, c, "a")
	mustMkdir(t, c, "b")
	mustMkdir(t, c, "r")
	mustPut(t, c, "a/x.txt", []byte("x in a"))
	mustPut(t, c, "r/y.txt", []byte("y"))
	cur, err := c.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(t.Context(), "a/x.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(t.Context(), "a", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "b/x.txt", []byte("another x in b"))
	if _, err := other.Move(t.Context(), "r", "s", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	b, err := c.Changes(t.Context(), cur)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range b.Changes {
		switch {
		case ch.From != "":
			got = append(got, "move "+string(ch.From)+" "+string(ch.Entry.Path))
		case ch.Deleted:
			got = append(got, "delete "+string(ch.Entry.Path))
		default:
			got = append(got, "put "+string(ch.Entry.Path))
		}
	}
	// The moved folder's items are listed again at their new paths (upserts of what the move carried).
	want := []string{"delete a", "move r s", "put b/x.txt", "put s", "put s/y.txt"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("changes %v, want %v", got, want)
	}
}
