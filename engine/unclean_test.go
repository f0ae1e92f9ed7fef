package engine

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

// TestUncleanEndReadsUnsyncedFilesAgain (lazydisk seed 824356): a new local file was rewritten in place with a
// second version of the same size, scanned, uploaded, and a power loss took the rewrite's bytes but kept its
// metadata, so the file holds the first version under the fingerprint stored with the second's digest. The
// process died meanwhile. The next pass must read the file again rather than trust that digest: the two sides
// hold different versions and both must be kept (a conflict), not recorded as one.
func TestUncleanEndReadsUnsyncedFilesAgain(t *testing.T) {
	ctx := context.Background()
	clk := startClock()
	_, local := fakeDisk(clk, rand.New(rand.NewPCG(1, 2)), nil, false, false)
	rem := memremote.New(clk, memremote.Options{Label: "remote"})
	open := storeOpener(t)
	st := open()
	e := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{})
	cleanPass(t, e) // the roots' markers
	v1, v2 := "the first version, kept\n", "the second, lost locally\n"
	if _, err := local.Put(ctx, "f.txt", strings.NewReader(v1), int64(len(v1)), clk.Now(), remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := rem.WriteFile("f.txt", []byte(v2)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	ent, err := local.Stat(ctx, "f.txt")
	if err != nil {
		t.Fatal(err)
	}
	lost, _, err := remote.HashReader(e.Algo(), strings.NewReader(v2))
	if err != nil {
		t.Fatal(err)
	}
	// What the scan before the power loss stored: the file's fingerprint (the metadata survived) with the
	// digest of the bytes that did not; digested well after the file's times, so not racy.
	if err := st.Update(func(tx state.Writer) error {
		r := rec(ent, clk.Now().UnixNano())
		r.Hash, r.HashedAt = lost, clk.Now().UnixNano()
		return tx.Put(state.Local, r)
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Abandon(); err != nil { // the process died
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	// A dry run first shows what the real pass will do: not "record".
	dry := testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{DryRun: true})
	drep, err := dry.RunPass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range drep.Planned {
		if a.Path == "f.txt" && a.Op != Conflict {
			t.Errorf("the dry run plans %s for f.txt, want a conflict", a.Op)
		}
	}
	e = testEngine(t, Deps{Clock: clk, Local: local, Remote: rem, Store: st}, Options{})
	rep := cleanPass(t, e)
	if len(rep.Conflicts) != 1 {
		t.Errorf("conflicts %+v, done %v: want the two versions kept", rep.Conflicts, rep.Done)
	}
	cleanPass(t, e)
	for _, want := range []string{v1, v2} {
		for _, s := range []remote.Remote{local, rem} {
			found := false
			err := s.Walk(ctx, remote.Root, func(en remote.Entry) error {
				if en.Dir || strings.HasPrefix(string(en.Path), ".tandem") {
					return nil
				}
				body, _, err := s.Open(ctx, en.Path)
				if err != nil {
					return err
				}
				defer body.Close()
				b, err := io.ReadAll(body)
				if err != nil {
					return err
				}
				found = found || string(b) == want
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Errorf("%s lost %q", s, want)
			}
		}
	}
}
