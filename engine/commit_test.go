package engine

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// TestGroupCommitQueuesIntoOneTransaction: commits that arrive while one runs share the next transaction; a
// failing one fails alone, and the others are recorded.
func TestGroupCommitQueuesIntoOneTransaction(t *testing.T) {
	st := memStore(t)
	var g groupCommit
	var mu sync.Mutex
	txOf := map[string]state.Writer{}
	put := func(name string, fail error) func(state.Writer) error {
		return func(tx state.Writer) error {
			mu.Lock()
			txOf[name] = tx
			mu.Unlock()
			if err := tx.Put(state.Local, state.Record{Entry: remote.Entry{Path: remote.Path(name), Size: 1}}); err != nil {
				return err
			}
			return fail
		}
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := g.run(st, func(tx state.Writer) error {
			close(entered)
			<-release
			return put("first", nil)(tx)
		})
		if err != nil {
			t.Errorf("first: %v", err)
		}
	}()
	<-entered
	boom := errors.New("boom")
	names := []string{"a", "b", "c", "d"}
	errs := make([]error, len(names))
	for i, n := range names {
		var fail error
		if n == "c" {
			fail = boom
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.run(st, put(n, fail))
		}()
	}
	for queued := 0; queued < len(names); runtime.Gosched() {
		g.mu.Lock()
		queued = len(g.pending)
		g.mu.Unlock()
	}
	close(release)
	wg.Wait()
	for i, n := range names {
		if want := error(nil); n == "c" {
			if !errors.Is(errs[i], boom) {
				t.Errorf("%s: %v, want boom", n, errs[i])
			}
		} else if errs[i] != want {
			t.Errorf("%s: %v", n, errs[i])
		}
	}
	err := st.View(func(r state.Reader) error {
		for _, n := range append(names, "first") {
			_, ok, err := r.Get(state.Local, remote.Path(n))
			if err != nil {
				return err
			}
			if ok == (n == "c") {
				t.Errorf("%s stored: %v", n, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The queued four first ran in one transaction (which c failed); then each alone.
	if g.leading || len(g.pending) != 0 {
		t.Errorf("left leading %v with %d pending", g.leading, len(g.pending))
	}
	if txOf["first"] == txOf["a"] {
		t.Error("the queued commits joined the running transaction")
	}
}

// TestGroupCommitBatchesQueued: with the failing one out, every queued commit lands in one transaction.
func TestGroupCommitBatchesQueued(t *testing.T) {
	st := memStore(t)
	var g groupCommit
	var mu sync.Mutex
	var txs []state.Writer
	record := func(tx state.Writer) error {
		mu.Lock()
		defer mu.Unlock()
		txs = append(txs, tx)
		return nil
	}
	release, entered := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = g.run(st, func(tx state.Writer) error { close(entered); <-release; return record(tx) })
	}()
	<-entered
	const n = 20
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); _ = g.run(st, record) }()
	}
	for queued := 0; queued < n; runtime.Gosched() {
		g.mu.Lock()
		queued = len(g.pending)
		g.mu.Unlock()
	}
	close(release)
	wg.Wait()
	distinct := map[state.Writer]bool{}
	for _, tx := range txs {
		distinct[tx] = true
	}
	if len(txs) != n+1 || len(distinct) != 2 {
		t.Errorf("%d commits in %d transactions, want %d in 2", len(txs), len(distinct), n+1)
	}
}
