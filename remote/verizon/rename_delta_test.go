package verizon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// TestRenameBesideADeleteIsNotLost: under the default reading a delta shows a renamed file at its new path and
// nothing at its old one, and a genuine delete in the same delta once hid that from the client (found by the
// crash-points suite: the old name stayed on the local side and every later pass found nothing to do). The feed
// now compares complete listings (cursor.go); the old name must leave the local side as the rename's echo,
// under every delta reading.
func TestRenameBesideADeleteIsNotLost(t *testing.T) {
	for _, v := range []string{emulator.VariantDeltaMoveNone, emulator.VariantDeltaMoveFolder, emulator.VariantDeltaMoveSubtree} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c := newClient(t, r, nil)
			L := t.TempDir()
			pass := enginePass(t, c, L)
			for name, data := range map[string]string{"ren0.txt": "renamed elsewhere", "gone.txt": "deleted elsewhere",
				"stay.txt": "stays", "d/x.txt": "in a renamed folder", "gone2.txt": "deleted elsewhere too"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(L, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(L, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pass()
			o := newClient(t, r, nil)
			if _, err := o.Move(t.Context(), "ren0.txt", "renamed0.txt", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			if err := o.Delete(t.Context(), "gone.txt", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			// A folder renamed beside a second delete: its file is carried by its ID, the folder has none.
			if _, err := o.Move(t.Context(), "d", "e", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			if err := o.Delete(t.Context(), "gone2.txt", remote.Precondition{}); err != nil {
				t.Fatal(err)
			}
			pass()
			if rep := pass(); len(rep.Done) > 0 {
				t.Fatalf("the pass after convergence did %+v", rep.Done)
			}
			for name, want := range map[string]bool{"ren0.txt": false, "gone.txt": false, "renamed0.txt": true,
				"stay.txt": true, "d": false, "e/x.txt": true, "gone2.txt": false} {
				_, err := os.Stat(filepath.Join(L, name))
				if got := err == nil; got != want {
					t.Errorf("local %s present: %v, want %v (%v)", name, got, want, err)
				}
			}
		})
	}
}
