package engine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// TestWritesCommitBesideTheWalkInOrder: a group is committed while the next one is collected (more than a group
// while a commit runs), at most one commit runs, groups land in order, done leaves nothing in flight, a failed
// commit is reported at the next flush and drop forgets what was not handed over yet. With the commits in the
// walk's goroutine (as before), the first flush below never returns and the test fails on go test's timeout.
func TestWritesCommitBesideTheWalkInOrder(t *testing.T) {
	st := memStore(t)
	put := func(p string, size int64) func(state.Writer) error {
		return func(tx state.Writer) error {
			return tx.Put(state.Local, state.Record{Entry: remote.Entry{Path: remote.Path(p), Size: size}})
		}
	}
	size := func(p string) (int64, bool) {
		t.Helper()
		var r state.Record
		var ok bool
		if err := st.View(func(tx state.Reader) error {
			var err error
			r, ok, err = tx.Get(state.Local, remote.Path(p))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return r.Size, ok
	}

	// A commit held inside its transaction: the walk goes on collecting, and the next flush waits for it.
	w := &writes{st: st}
	release, entered := make(chan struct{}), make(chan struct{})
	if err := w.add(func(tx state.Writer) error {
		close(entered)
		<-release
		return put("a", 1)(tx)
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := range pageSize - 2 { // with "a" below, one short of a group: nothing handed over, nothing waits
		if err := w.add(put(fmt.Sprintf("b%04d", i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.add(put("a", 3)); err != nil { // the same path again, in the second group: it must land last
		t.Fatal(err)
	}
	if w.running == nil || len(w.ops) != pageSize-1 {
		t.Fatalf("running %v, %d ops buffered; want the first commit in flight and a group collected", w.running, len(w.ops))
	}
	// A full group while the commit before it still runs: the walk goes on gathering (up to gatherMax) rather
	// than wait. (Flushing at a page, as before, waited here for the held commit: a hang until go test's timeout.)
	for i := range gatherMax - pageSize {
		if err := w.add(put(fmt.Sprintf("c%04d", i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	if !w.committing() || len(w.ops) != gatherMax-1 {
		t.Fatalf("%d ops buffered (committing %v); want %d gathered behind the held commit",
			len(w.ops), w.committing(), gatherMax-1)
	}
	close(release)
	if err := w.done(); err != nil {
		t.Fatal(err)
	}
	if w.running != nil || len(w.ops) != 0 {
		t.Fatal("done left a commit in flight or updates buffered")
	}
	if got, _ := size("a"); got != 3 {
		t.Fatalf("a has size %d, want 3: the groups landed out of order", got)
	}
	if _, ok := size(fmt.Sprintf("b%04d", pageSize-3)); !ok {
		t.Fatal("the second group was not committed")
	}
	if _, ok := size(fmt.Sprintf("c%04d", gatherMax-pageSize-1)); !ok {
		t.Fatal("the gathered updates were not committed")
	}

	// With no commit in flight a full group goes at once.
	w = &writes{st: st}
	for i := range pageSize {
		if err := w.add(put(fmt.Sprintf("f%04d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if w.running == nil || len(w.ops) != 0 {
		t.Fatalf("%d ops buffered, running %v: want a full group handed to a commit", len(w.ops), w.running)
	}
	if err := w.done(); err != nil {
		t.Fatal(err)
	}

	// A commit that fails: the next flush reports it and the group collected meanwhile is not committed.
	w = &writes{st: st}
	boom := errors.New("boom")
	if err := w.add(func(state.Writer) error { return boom }); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.add(put("c", 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); !errors.Is(err, boom) {
		t.Fatalf("flush after a failed commit: %v, want boom", err)
	}
	if _, ok := size("c"); ok || w.running != nil || len(w.ops) != 0 {
		t.Fatal("after a failed commit the next group was committed or kept")
	}

	// drop: what was handed over lands, what was not is forgotten.
	w = &writes{st: st}
	if err := w.add(put("d", 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.add(put("e", 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.drop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := size("d"); !ok {
		t.Fatal("drop lost the group already handed over")
	}
	if _, ok := size("e"); ok {
		t.Fatal("drop committed a group not handed over")
	}
}
