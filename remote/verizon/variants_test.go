package verizon

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/verizon/emulator"
)

// One test per reading the documentation leaves open: the client is correct under each (PROVIDER.md).

func countOps(r *emulator.Running, op string, status int) int {
	n := 0
	for _, e := range r.Log() {
		if e.Op == op && (status == 0 || e.Status == status) {
			n++
		}
	}
	return n
}

// Item 3: a server that refuses the undocumented intent parameters with 400 is asked again without them, and
// never sent them again.
func TestIntentRejectStopsSendingUndocumentedParameters(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{Variants: []string{emulator.VariantIntentReject}})
	c := newClient(t, r, nil)
	mustMkdir(t, c, "d")
	for i, data := range []string{"one", "two", "three"} {
		pre := remote.Precondition{Absent: true}
		if i > 0 {
			e, err := c.Stat(t.Context(), "d/a.txt")
			if err != nil {
				t.Fatal(err)
			}
			pre = remote.Precondition{Rev: e.Rev}
		}
		if _, err := c.Put(t.Context(), "d/a.txt", strings.NewReader(data), int64(len(data)), time.Now(), pre); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if got, _ := readAll(t, c, "d/a.txt"); string(got) != "three" {
		t.Fatalf("content %q", got)
	}
	if n := countOps(r, "fileupload/intent", http.StatusBadRequest); n != 1 {
		t.Fatalf("%d refused intents, want 1 (the parameters are dropped after the first refusal)", n)
	}
}

// Item 3: under the default reading (the parameters are ignored), a version another device stored between the
// client's look and its upload is replaced: the pass reports it instead of calling the upload a success, and a
// file created in the same window is a conflict, never replaced silently.
func TestOverwriteInTheWindowIsReported(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{})
	c := newClient(t, r, nil)
	mustMkdir(t, c, "d")
	seen := mustPut(t, c, "d/a.txt", []byte("base"))
	// Another device writes while the intent is on its way.
	r.Kit().RegisterHook("foreignWrite", func(w http.ResponseWriter, req *http.Request, a emukit.Action, next http.Handler) {
		if err := r.PutFile(testRoot+"/d/a.txt", []byte("theirs")); err != nil {
			t.Error(err)
		}
		next.ServeHTTP(w, req)
	})
	if err := r.SetFaults(emukit.Rule{Match: "^fileupload/intent$", Times: 1, Action: emukit.Action{Do: "foreignWrite"}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Put(t.Context(), "d/a.txt", strings.NewReader("mine"), 4, time.Time{}, remote.Precondition{Rev: seen.Rev})
	if err == nil || !strings.Contains(err.Error(), "another device") {
		t.Fatalf("an upload that replaced a foreign version: %v", err)
	}
}

// Item 3: a new file over one that appeared since the plan is a conflict, whatever the server does with safe.
func TestNewFileOverExistingIsConflictUnderEveryIntentReading(t *testing.T) {
	for _, v := range []string{emulator.VariantIntentIgnore, emulator.VariantIntentEnforce, emulator.VariantIntentReject} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c, other := newClient(t, r, nil), newClient(t, r, nil)
			mustPut(t, other, "a.txt", []byte("theirs"))
			_, err := c.Put(t.Context(), "a.txt", strings.NewReader("mine"), 4, time.Time{}, remote.Precondition{Absent: true})
			if !errors.Is(err, remote.ErrConflict) {
				t.Fatalf("Put Absent over a file: %v", err)
			}
			if got, _ := readAll(t, c, "a.txt"); string(got) != "theirs" {
				t.Fatalf("content %q", got)
			}
		})
	}
}

// Item 6: moves to another folder under another name, files and folders, under both readings of the target;
// the reading is found once.
func TestMoveUnderBothTargetReadings(t *testing.T) {
	for _, v := range []string{emulator.VariantMoveTargetFolder, emulator.VariantMoveTargetPath} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c := newClient(t, r, nil)
			mustMkdir(t, c, "src")
			mustMkdir(t, c, "dst")
			mustMkdir(t, c, "src/sub")
			mustPut(t, c, "src/a.txt", []byte("a"))
			mustPut(t, c, "src/sub/b.txt", []byte("b"))
			mustPut(t, c, "src/c.txt", []byte("c"))
			for _, m := range [][2]remote.Path{{"src/a.txt", "dst/renamed.txt"}, {"src/sub", "dst/moved"}, {"src/c.txt", "dst/c.txt"}} {
				e, err := c.Move(t.Context(), m[0], m[1], remote.Precondition{})
				if err != nil || e.Path != m[1] {
					t.Fatalf("move %s to %s: %+v %v", m[0], m[1], e, err)
				}
				if _, err := c.Stat(t.Context(), m[0]); !errors.Is(err, remote.ErrNotFound) {
					t.Fatalf("%s still there: %v", m[0], err)
				}
			}
			if got, _ := readAll(t, c, "dst/moved/b.txt"); string(got) != "b" {
				t.Fatalf("moved folder content %q", got)
			}
			if n := countOps(r, "fops/move", http.StatusNotFound); n > 1 {
				t.Fatalf("%d moves answered 404: the reading must be found once", n)
			}
			// A taken target is a conflict under both readings, and nothing moves.
			mustPut(t, c, "x.txt", []byte("x"))
			if _, err := c.Move(t.Context(), "x.txt", "dst/c.txt", remote.Precondition{}); !errors.Is(err, remote.ErrConflict) {
				t.Fatalf("move onto a taken name: %v", err)
			}
		})
	}
}

// Item 6: a move whose source name is taken in the target folder (the torture's seed 417876: inside.txt moved
// into a folder holding another inside.txt, under a new name). Under the folder reading the server keeps the
// name while moving, so the item is renamed in its own folder first; under either reading it arrives, the
// other file is untouched, and nothing is left at a name of tandem's own.
func TestMoveWhenTheSourceNameIsTakenInTheTarget(t *testing.T) {
	for _, v := range []string{emulator.VariantMoveTargetFolder, emulator.VariantMoveTargetPath} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c := newClient(t, r, nil)
			mustMkdir(t, c, "src")
			mustMkdir(t, c, "dst")
			mustPut(t, c, "src/inside.txt", []byte("moving"))
			mustPut(t, c, "dst/inside.txt", []byte("staying"))
			mustPut(t, c, "src/m.txt", []byte("in the way")) // the new name is taken in the source folder too
			e, err := c.Move(t.Context(), "src/inside.txt", "dst/m.txt", remote.Precondition{})
			if err != nil || e.Path != "dst/m.txt" {
				t.Fatalf("move src/inside.txt to dst/m.txt: %+v %v", e, err)
			}
			for p, want := range map[string]string{"dst/m.txt": "moving", "dst/inside.txt": "staying", "src/m.txt": "in the way"} {
				if got, _ := readAll(t, c, p); string(got) != want {
					t.Fatalf("%s holds %q, want %q", p, got, want)
				}
			}
			if _, err := c.Stat(t.Context(), "src/inside.txt"); !errors.Is(err, remote.ErrNotFound) {
				t.Fatalf("src/inside.txt still there: %v", err)
			}
			var names []remote.Path
			if err := c.Walk(t.Context(), remote.Root, func(e remote.Entry) error { names = append(names, e.Path); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(names) != 5 { // src, dst and the three files: no name of tandem's own left behind
				t.Fatalf("after the move the remote holds %v", names)
			}
		})
	}
}

// Item 6: Mkdir of an existing folder is success and leaves no "name (1)" behind, under both readings of
// override=modify (the client sends none and verifies the answer).
func TestMkdirUnderBothModifyReadings(t *testing.T) {
	for _, v := range []string{emulator.VariantMkdirModifyRenames, emulator.VariantMkdirModifyExisting} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c := newClient(t, r, nil)
			mustMkdir(t, c, "d")
			mustMkdir(t, c, "d")
			if err := c.InitRoot(t.Context()); err != nil {
				t.Fatal(err)
			}
			for p := range r.Snapshot() {
				if strings.Contains(p, "(1)") {
					t.Fatalf("a stray folder %s", p)
				}
			}
		})
	}
}

// Item 7: chunked uploads under both readings of the chunk checksum.
func TestChunkChecksumReadings(t *testing.T) {
	for _, v := range []string{emulator.VariantChunkChecksumEach, emulator.VariantChunkChecksumWhole} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := startEmu(t, emulator.Options{Variants: []string{v}})
			c := newClient(t, r, func(c *Config) { c.ChunkThreshold, c.ChunkSize = 1<<10, 512 })
			data := bytes.Repeat([]byte("0123456789abcdef"), 200)
			for _, name := range []string{"a.bin", "b.bin"} {
				if _, err := c.Put(t.Context(), remote.Path(name), bytes.NewReader(data), int64(len(data)), time.Time{}, remote.Precondition{}); err != nil {
					t.Fatalf("chunked put %s: %v", name, err)
				}
				if got, _ := readAll(t, c, name); !bytes.Equal(got, data) {
					t.Fatalf("%s read back %d bytes", name, len(got))
				}
			}
		})
	}
}

// Item 4: a remote file carries no mtime (Verizon's times are upload times), whatever was sent at upload.
func TestRemoteTimesAreNotUserTimes(t *testing.T) {
	t.Parallel()
	r := startEmu(t, emulator.Options{Variants: []string{emulator.VariantIntentEnforce}})
	c := newClient(t, r, nil)
	user := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	e, err := c.Put(t.Context(), "a.txt", strings.NewReader("a"), 1, user, remote.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Stat(t.Context(), "a.txt")
	if err != nil || !e.ModTime.IsZero() || !st.ModTime.IsZero() {
		t.Fatalf("remote mtime %v / %v (%v): an upload or server time passed off as the user's", e.ModTime, st.ModTime, err)
	}
}

// Item 5: one item the client cannot understand is skipped and reported; plausible encodings of numbers and
// times are accepted; the rest of the listing stands.
func TestOddItemDoesNotStopTheListing(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	body := `{"data":{"file":[
	  {"parentPath":"/VZMOBILE/t","name":"ok.txt","size":3,"checksum":"` + sum + `","contentToken":"ct1","version":1,"versionCreated":"2024-05-01T10:00:00.000Z"},
	  {"parentPath":"/VZMOBILE/t","name":"str.txt","size":"12","checksum":"` + sum + `","contentToken":"ct2","version":"2","modificationDate":1714557600000},
	  {"parentPath":"/VZMOBILE/t","name":"epoch.txt","size":4.0,"checksum":"` + sum + `","contentToken":"ct3","version":1,"versionCreated":1714557600},
	  {"parentPath":"/VZMOBILE/t","name":"bad.txt","size":{"n":1},"checksum":"` + sum + `","contentToken":"ct4","version":1}
	],"folder":[{"parentPath":"/VZMOBILE/t","name":"e","versionCreated":17}, {"parentPath":7}]}}`
	l, err := listingOf(body)
	if err != nil {
		t.Fatalf("one odd item failed the listing: %v", err)
	}
	for _, p := range []remote.Path{"ok.txt", "str.txt", "epoch.txt", "e"} {
		if _, ok := l[p]; !ok {
			t.Errorf("%s missing from the listing: %v", p, l)
		}
	}
	if e := l["str.txt"]; e.Size != 12 || !strings.HasPrefix(e.Rev, "2:") {
		t.Errorf("size and version as strings: %+v", e)
	}
	if _, ok := l["bad.txt"]; ok {
		t.Error("an item with an unreadable size was listed")
	}
}
