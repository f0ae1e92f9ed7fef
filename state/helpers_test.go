package state

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
)

// open opens a store in a temp dir, with bbolt's StrictMode (tx.Check on every commit), and checks and closes it
// when the test ends.
func open(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "pair.db"))
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	lg := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		lg = zaptest.NewLogger(tt)
	}
	s, err := Open(path, lg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.db.StrictMode = true
	t.Cleanup(func() {
		// a test that closed the store itself has nothing left to check
		if err := s.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Error(err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func mustUpdate(t testing.TB, s *Store, fn func(Writer) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func mustView(t testing.TB, s *Store, fn func(Reader) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatal(err)
	}
}

// rec is a file record with every field set, derived from the path so that tests can compare.
func rec(p string, id string) Record {
	return Record{
		Entry: remote.Entry{
			Path:    remote.Path(p),
			Size:    int64(len(p)) * 100,
			ModTime: time.Unix(1_700_000_000, 123_456_789),
			ID:      id,
			Rev:     "rev-" + p,
			Hash:    remote.Hash{Algo: "sha256", Hex: fmt.Sprintf("%064x", len(p))},
		},
		Inode:    42,
		CTime:    1_700_000_001_000_000_000,
		HashedAt: 1_700_000_002_000_000_000,
		ListGen:  1_700_000_003_000_000_000,
	}
}

func dir(p string, id string) Record {
	return Record{Entry: remote.Entry{Path: remote.Path(p), Dir: true, ID: id}}
}

func paths(rs []Record) []remote.Path {
	out := make([]remote.Path, len(rs))
	for i, r := range rs {
		out[i] = r.Path
	}
	return out
}

func each(t testing.TB, s *Store, side Side, under remote.Path) []remote.Path {
	t.Helper()
	var out []remote.Path
	mustView(t, s, func(r Reader) error {
		return r.Each(side, under, func(rc Record) error {
			out = append(out, rc.Path)
			return nil
		})
	})
	return out
}

func eachBase(t testing.TB, s *Store, under remote.Path) []remote.Path {
	t.Helper()
	var out []remote.Path
	mustView(t, s, func(r Reader) error {
		return r.EachBase(under, func(b Base) error {
			out = append(out, b.Path)
			return nil
		})
	})
	return out
}

func pathOfID(t testing.TB, s *Store, ix Index, id string) (remote.Path, bool) {
	t.Helper()
	var p remote.Path
	var ok bool
	mustView(t, s, func(r Reader) error {
		var err error
		p, ok, err = r.PathOfID(ix, id)
		return err
	})
	return p, ok
}

// fill puts n file records spread over folders, in one transaction.
func fill(t testing.TB, s *Store, side Side, n int) {
	t.Helper()
	const chunk = 20_000
	for lo := 0; lo < n; lo += chunk {
		mustUpdate(t, s, func(w Writer) error {
			for i := lo; i < min(lo+chunk, n); i++ {
				p := fmt.Sprintf("d%03d/sub%d/file-%06d.txt", i%97, i%5, i)
				if err := w.Put(side, rec(p, fmt.Sprintf("id%d", i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
}
