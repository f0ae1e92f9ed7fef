package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
)

func TestRoundTrip(t *testing.T) {
	s := open(t)
	loc := rec("a/b.txt", "dev:1")
	rem := rec("a/b.txt", "pc-1")
	rem.Inode, rem.CTime = 0, 0
	rem.Incomplete = true
	d := dir("a", "dev:2")
	base := Base{Path: "a/b.txt", Hash: loc.Hash, Local: loc, Remote: rem}
	// a case-folding remote may spell the path differently: that spelling must survive
	odd := Base{Path: "a/C.txt", Local: rec("a/C.txt", "dev:3"), Remote: rec("a/c.txt", "pc-3")}
	dirBase := Base{Path: "a", Dir: true, Local: d, Remote: dir("a", "pc-2")}
	in := Intent{Op: "download", Path: "a/b.txt", To: "a/x.txt", Temp: ".tandem-1.part", At: 99}
	cf := Conflict{Path: "a/b.txt", Copy: "a/b (conflict).txt", At: 7, Reason: "both edited", LocalHash: loc.Hash, RemoteHash: remote.Hash{Algo: "md5", Hex: "00"}}
	var id uint64
	mustUpdate(t, s, func(w Writer) error {
		var err error
		for _, e := range []error{w.Put(Local, loc), w.Put(Local, d), w.Put(Remote, rem), w.PutBase(base),
			w.PutBase(odd), w.PutBase(dirBase), w.AddConflict(cf)} {
			err = errors.Join(err, e)
		}
		if err != nil {
			return err
		}
		id, err = w.BeginIntent(in)
		return err
	})
	in.ID = id
	mustView(t, s, func(r Reader) error {
		for _, c := range []struct {
			side Side
			want Record
		}{{Local, loc}, {Local, d}, {Remote, rem}} {
			got, ok, err := r.Get(c.side, c.want.Path)
			if err != nil || !ok || !reflect.DeepEqual(got, c.want) {
				t.Errorf("Get(%s, %s) = %+v, %v, %v; want %+v", c.side, c.want.Path, got, ok, err, c.want)
			}
		}
		for _, want := range []Base{base, odd, dirBase} {
			got, ok, err := r.GetBase(want.Path)
			if err != nil || !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("GetBase(%s) = %+v, %v, %v; want %+v", want.Path, got, ok, err, want)
			}
		}
		if _, ok, err := r.Get(Remote, "a"); ok || err != nil {
			t.Errorf("Get(remote, a) = %v, %v; want absent", ok, err)
		}
		var ins []Intent
		if err := r.Intents(func(i Intent) error { ins = append(ins, i); return nil }); err != nil {
			return err
		}
		if !reflect.DeepEqual(ins, []Intent{in}) {
			t.Errorf("Intents = %+v, want %+v", ins, in)
		}
		var cfs []Conflict
		if err := r.Conflicts(func(c Conflict) error { cfs = append(cfs, c); return nil }); err != nil {
			return err
		}
		if !reflect.DeepEqual(cfs, []Conflict{cf}) {
			t.Errorf("Conflicts = %+v, want %+v", cfs, cf)
		}
		return nil
	})
}

func TestCodecEdgeTimes(t *testing.T) {
	for _, mt := range []time.Time{{}, time.Unix(0, 0), time.Unix(-1, 999_999_999), time.Date(3000, 1, 2, 3, 4, 5, 6, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)} {
		r := Record{Entry: remote.Entry{Path: "x", ModTime: mt, Size: -1}, CTime: -5}
		got, err := decodeRecord(encodeRecord(&r))
		if err != nil || !got.ModTime.Equal(mt) || got.ModTime.IsZero() != mt.IsZero() || got.Size != -1 || got.CTime != -5 {
			t.Errorf("round trip of %v: %+v, %v", mt, got, err)
		}
	}
}

var order = []remote.Path{"a", "a/b", "a/b/c", "a.txt", "a0", "b"}

func TestOrder(t *testing.T) {
	s := open(t)
	shuffled := slices.Clone(order)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	mustUpdate(t, s, func(w Writer) error {
		for _, p := range shuffled {
			if err := w.Put(Remote, rec(string(p), "")); err != nil {
				return err
			}
			if err := w.PutBase(Base{Path: p}); err != nil {
				return err
			}
		}
		return nil
	})
	if got := each(t, s, Remote, remote.Root); !slices.Equal(got, order) {
		t.Errorf("Each(root) = %q, want %q", got, order)
	}
	if got := eachBase(t, s, remote.Root); !slices.Equal(got, order) {
		t.Errorf("EachBase(root) = %q, want %q", got, order)
	}
	if got, want := each(t, s, Remote, "a"), order[:3]; !slices.Equal(got, want) {
		t.Errorf("Each(a) = %q, want %q", got, want)
	}
	if got, want := each(t, s, Remote, "a/b/c"), order[2:3]; !slices.Equal(got, want) {
		t.Errorf("Each(a/b/c) = %q, want %q", got, want)
	}
	if got := each(t, s, Remote, "zz"); len(got) != 0 {
		t.Errorf("Each(zz) = %q, want nothing", got)
	}
	if got := each(t, s, Local, remote.Root); len(got) != 0 {
		t.Errorf("Each(local) = %q, want nothing", got)
	}
	// Compare must agree with the store, since the engine merge-joins with it
	sorted := slices.Clone(shuffled)
	slices.SortFunc(sorted, Compare)
	if !slices.Equal(sorted, order) {
		t.Errorf("sorted by Compare = %q, want %q", sorted, order)
	}
	mustView(t, s, func(r Reader) error {
		got, err := r.Page(Remote, "a/b", 2)
		if want := order[2:4]; err != nil || !slices.Equal(paths(got), want) {
			t.Errorf("Page(after a/b, 2) = %q, %v; want %q", paths(got), err, want)
		}
		// after a path that is not stored: starts at the next one in store order
		got, err = r.Page(Remote, "a/a", 10)
		if want := order[1:]; err != nil || !slices.Equal(paths(got), want) {
			t.Errorf("Page(after a/a) = %q, %v; want %q", paths(got), err, want)
		}
		if has, err := r.HasBase(); err != nil || !has {
			t.Errorf("HasBase = %v, %v", has, err)
		}
		return nil
	})
}

func TestCompare(t *testing.T) {
	for i, a := range order {
		for j, b := range order {
			if got, want := Compare(a, b), cmpInt(i, j); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", a, b, got, want)
			}
			if got, want := Compare(a, b), bytes.Compare(key(a), key(b)); got != want {
				t.Errorf("Compare(%q, %q) = %d, key order %d", a, b, got, want)
			}
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestPageEqualsEach(t *testing.T) {
	s := open(t)
	fill(t, s, Local, 2500)
	all := each(t, s, Local, remote.Root)
	if len(all) != 2500 {
		t.Fatalf("Each found %d records", len(all))
	}
	if !slices.IsSortedFunc(all, Compare) {
		t.Error("Each is not in Compare order")
	}
	for _, n := range []int{1, 7, 100, 2500, 5000} {
		var got []remote.Path
		after := remote.Root
		for {
			var pg []Record
			mustView(t, s, func(r Reader) error {
				var err error
				pg, err = r.Page(Local, after, n)
				return err
			})
			got = append(got, paths(pg)...)
			if len(pg) < n {
				break
			}
			after = pg[len(pg)-1].Path
		}
		if !slices.Equal(got, all) {
			t.Errorf("pages of %d: %d records, differ from Each (%d)", n, len(got), len(all))
		}
	}
}

func TestPageBase(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error {
		for _, p := range order {
			if err := w.PutBase(Base{Path: p, Local: rec(string(p), "l"+string(p))}); err != nil {
				return err
			}
		}
		return nil
	})
	var got []remote.Path
	after := remote.Root
	for {
		var pg []Base
		mustView(t, s, func(r Reader) error {
			var err error
			pg, err = r.PageBase(after, 4)
			return err
		})
		for _, b := range pg {
			got = append(got, b.Path)
		}
		if len(pg) < 4 {
			break
		}
		after = pg[len(pg)-1].Path
	}
	if !slices.Equal(got, order) {
		t.Errorf("PageBase = %q, want %q", got, order)
	}
}

func TestMoveTree(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error {
		for _, side := range []Side{Local, Remote} {
			for _, p := range order {
				if err := w.Put(side, rec(string(p), side.String()+":"+string(p))); err != nil {
					return err
				}
			}
			// something already at the target in the local tree only: replaced there
			if side == Local {
				if err := w.Put(side, rec("x/y/old", "old")); err != nil {
					return err
				}
			}
		}
		for _, p := range order {
			b := Base{Path: p, Local: rec(string(p), "bl:"+string(p)), Remote: rec(string(p), "br:"+string(p))}
			if err := w.PutBase(b); err != nil {
				return err
			}
		}
		return w.Put(Local, rec("x/keep", "keep"))
	})
	mustUpdate(t, s, func(w Writer) error { return w.MoveTree("a", "x/y") })

	want := []remote.Path{"a.txt", "a0", "b", "x/keep", "x/y", "x/y/b", "x/y/b/c"}
	if got := each(t, s, Local, remote.Root); !slices.Equal(got, want) {
		t.Errorf("local after move = %q, want %q", got, want)
	}
	want = []remote.Path{"a.txt", "a0", "b", "x/y", "x/y/b", "x/y/b/c"}
	if got := each(t, s, Remote, remote.Root); !slices.Equal(got, want) {
		t.Errorf("remote after move = %q, want %q", got, want)
	}
	if got := eachBase(t, s, remote.Root); !slices.Equal(got, want) {
		t.Errorf("base after move = %q, want %q", got, want)
	}
	mustView(t, s, func(r Reader) error {
		b, ok, err := r.GetBase("x/y/b/c")
		if err != nil || !ok || b.Local.Path != "x/y/b/c" || b.Remote.Path != "x/y/b/c" || b.Local.ID != "bl:a/b/c" {
			t.Errorf("moved base = %+v, %v, %v", b, ok, err)
		}
		return nil
	})
	for _, c := range []struct {
		ix   Index
		id   string
		want remote.Path
		ok   bool
	}{
		{IDLocal, "local:a/b", "x/y/b", true},
		{IDRemote, "remote:a/b/c", "x/y/b/c", true},
		{IDBaseLocal, "bl:a", "x/y", true},
		{IDBaseRemote, "br:a/b", "x/y/b", true},
		{IDLocal, "old", "", false},
		{IDLocal, "local:a.txt", "a.txt", true},
	} {
		if p, ok := pathOfID(t, s, c.ix, c.id); p != c.want || ok != c.ok {
			t.Errorf("PathOfID(%s, %s) = %q, %v; want %q, %v", c.ix, c.id, p, ok, c.want, c.ok)
		}
	}
	for _, bad := range [][2]remote.Path{{"x", "x/z"}, {"x/y", "x"}, {remote.Root, "q"}, {"q", remote.Root}, {"x", "../q"}} {
		if err := s.Update(func(w Writer) error { return w.MoveTree(bad[0], bad[1]) }); err == nil {
			t.Errorf("MoveTree(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	// nothing at from: a no-op
	mustUpdate(t, s, func(w Writer) error { return w.MoveTree("nothing", "else") })
}

func TestDeleteTree(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error {
		for _, p := range order {
			if err := w.Put(Local, rec(string(p), "l:"+string(p))); err != nil {
				return err
			}
			if err := w.Put(Remote, rec(string(p), "r:"+string(p))); err != nil {
				return err
			}
			if err := w.PutBase(Base{Path: p, Local: rec(string(p), "bl:"+string(p))}); err != nil {
				return err
			}
		}
		return nil
	})
	mustUpdate(t, s, func(w Writer) error { return w.DeleteTree(Local, "a") })
	if got, want := each(t, s, Local, remote.Root), order[3:]; !slices.Equal(got, want) {
		t.Errorf("local = %q, want %q", got, want)
	}
	if got := each(t, s, Remote, remote.Root); !slices.Equal(got, order) {
		t.Errorf("remote changed: %q", got)
	}
	if _, ok := pathOfID(t, s, IDLocal, "l:a/b"); ok {
		t.Error("id of a deleted record still indexed")
	}
	mustUpdate(t, s, func(w Writer) error { return w.DeleteBaseTree("a/b") })
	if got, want := eachBase(t, s, remote.Root), []remote.Path{"a", "a.txt", "a0", "b"}; !slices.Equal(got, want) {
		t.Errorf("base = %q, want %q", got, want)
	}
	mustUpdate(t, s, func(w Writer) error { return w.DeleteTree(Remote, remote.Root) })
	if got := each(t, s, Remote, remote.Root); len(got) != 0 {
		t.Errorf("remote after clearing = %q", got)
	}
	if _, ok := pathOfID(t, s, IDRemote, "r:b"); ok {
		t.Error("remote index not cleared")
	}
	mustUpdate(t, s, func(w Writer) error { return w.DeleteBaseTree(remote.Root) })
	if got := eachBase(t, s, remote.Root); len(got) != 0 {
		t.Errorf("base after clearing = %q", got)
	}
	// the cleared trees are usable again
	mustUpdate(t, s, func(w Writer) error {
		return errors.Join(w.Put(Remote, rec("n", "r:n")), w.PutBase(Base{Path: "n", Remote: rec("n", "br:n")}))
	})
	if p, ok := pathOfID(t, s, IDBaseRemote, "br:n"); p != "n" || !ok {
		t.Errorf("PathOfID after clear = %q, %v", p, ok)
	}
}

func TestIDIndex(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("a", "1")) })
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("a", "2")) })
	if _, ok := pathOfID(t, s, IDLocal, "1"); ok {
		t.Error("old id still indexed after overwrite")
	}
	if p, ok := pathOfID(t, s, IDLocal, "2"); p != "a" || !ok {
		t.Errorf("PathOfID(2) = %q, %v", p, ok)
	}
	if _, ok := pathOfID(t, s, IDRemote, "2"); ok {
		t.Error("local id found in the remote index")
	}
	// two paths with one id (hard links): deleting one keeps the other findable
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("b", "2")) })
	mustUpdate(t, s, func(w Writer) error { return w.Delete(Local, "a") })
	if p, ok := pathOfID(t, s, IDLocal, "2"); p != "b" || !ok {
		t.Errorf("PathOfID(2) after deleting a = %q, %v", p, ok)
	}
	// an id that is a prefix of another must not match it
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("c", "22")) })
	mustUpdate(t, s, func(w Writer) error { return w.Delete(Local, "b") })
	if p, ok := pathOfID(t, s, IDLocal, "2"); ok {
		t.Errorf("PathOfID(2) = %q, want absent", p)
	}
	// clearing the id unindexes
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("c", "")) })
	if _, ok := pathOfID(t, s, IDLocal, "22"); ok {
		t.Error("cleared id still indexed")
	}
	// bases: each side's id, overwrite
	mustUpdate(t, s, func(w Writer) error {
		return w.PutBase(Base{Path: "f", Local: rec("f", "L1"), Remote: rec("f", "R1")})
	})
	mustUpdate(t, s, func(w Writer) error {
		return w.PutBase(Base{Path: "f", Local: rec("f", "L1"), Remote: rec("f", "R2")})
	})
	for _, c := range []struct {
		ix Index
		id string
		ok bool
	}{{IDBaseLocal, "L1", true}, {IDBaseRemote, "R1", false}, {IDBaseRemote, "R2", true}, {IDBaseLocal, "R2", false}} {
		if _, ok := pathOfID(t, s, c.ix, c.id); ok != c.ok {
			t.Errorf("PathOfID(%s, %s) found = %v, want %v", c.ix, c.id, ok, c.ok)
		}
	}
	mustUpdate(t, s, func(w Writer) error { return w.DeleteBase("f") })
	if _, ok := pathOfID(t, s, IDBaseLocal, "L1"); ok {
		t.Error("deleted base still indexed")
	}
}

func TestRejects(t *testing.T) {
	s := open(t)
	for name, fn := range map[string]func(Writer) error{
		"root":         func(w Writer) error { return w.Put(Local, rec("", "")) },
		"dotdot":       func(w Writer) error { return w.Put(Local, rec("a/../b", "")) },
		"nul":          func(w Writer) error { return w.Put(Remote, rec("a\x00b", "")) },
		"bad side":     func(w Writer) error { return w.Put(Side(7), rec("a", "")) },
		"base root":    func(w Writer) error { return w.PutBase(Base{}) },
		"reserved":     func(w Writer) error { return w.SetMeta(metaSchema, []byte{9}) },
		"empty meta":   func(w Writer) error { return w.SetMeta("", []byte{9}) },
		"conflict nul": func(w Writer) error { return w.AddConflict(Conflict{Path: "\x00"}) },
	} {
		if err := s.Update(fn); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	mustView(t, s, func(r Reader) error {
		if _, _, err := r.Get(Side(3), "a"); err == nil {
			t.Error("Get(bad side) succeeded")
		}
		if _, _, err := r.PathOfID(Index(9), "x"); err == nil {
			t.Error("PathOfID(bad index) succeeded")
		}
		return nil
	})
}

func TestUpdateRollsBack(t *testing.T) {
	s := open(t)
	boom := errors.New("boom")
	err := s.Update(func(w Writer) error {
		if err := w.Put(Local, rec("a", "1")); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update = %v, want fn's error as it is", err)
	}
	if got := each(t, s, Local, remote.Root); len(got) != 0 {
		t.Errorf("rolled back write visible: %q", got)
	}
	if _, ok := pathOfID(t, s, IDLocal, "1"); ok {
		t.Error("rolled back index visible")
	}
}

func TestBatch(t *testing.T) {
	s := open(t)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Batch(func(w Writer) error { return w.Put(Remote, rec("f"+strconv.Itoa(i), "id"+strconv.Itoa(i))) })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := each(t, s, Remote, remote.Root); len(got) != len(errs) {
		t.Errorf("%d records after %d batches", len(got), len(errs))
	}
}

func TestCursorAndMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	s := openAt(t, path)
	mustView(t, s, func(r Reader) error {
		c, err := r.Cursor()
		if err != nil || c != nil {
			t.Errorf("fresh Cursor = %q, %v; want nil", c, err)
		}
		m, err := r.Meta("config-hash")
		if err != nil || m != nil {
			t.Errorf("fresh Meta = %q, %v; want nil", m, err)
		}
		return nil
	})
	mustUpdate(t, s, func(w Writer) error {
		return errors.Join(w.SetCursor(remote.Cursor("diffid=42")), w.SetMeta("config-hash", []byte("abc")), w.SetMeta("gone", []byte("x")))
	})
	mustUpdate(t, s, func(w Writer) error { return w.SetMeta("gone", nil) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	mustView(t, s, func(r Reader) error {
		c, err := r.Cursor()
		if err != nil || string(c) != "diffid=42" {
			t.Errorf("Cursor = %q, %v", c, err)
		}
		m, err := r.Meta("config-hash")
		if err != nil || string(m) != "abc" {
			t.Errorf("Meta = %q, %v", m, err)
		}
		if m, _ := r.Meta("gone"); m != nil {
			t.Errorf("deleted meta = %q", m)
		}
		return nil
	})
	mustUpdate(t, s, func(w Writer) error { return w.SetCursor(nil) })
	mustView(t, s, func(r Reader) error {
		if c, err := r.Cursor(); c != nil || err != nil {
			t.Errorf("cleared Cursor = %q, %v", c, err)
		}
		return nil
	})
}

func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	s := openAt(t, path)
	var ids []uint64
	mustUpdate(t, s, func(w Writer) error {
		for _, op := range []string{"upload", "delete", "move"} {
			id, err := w.BeginIntent(Intent{Op: op, Path: "p/" + remote.Path(op), At: 5})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if !slices.IsSorted(ids) || ids[0] == 0 || ids[0] == ids[1] {
		t.Fatalf("intent ids %v", ids)
	}
	mustUpdate(t, s, func(w Writer) error { return errors.Join(w.EndIntent(ids[1]), w.EndIntent(12345)) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	var got []string
	mustView(t, s, func(r Reader) error {
		return r.Intents(func(in Intent) error { got = append(got, fmt.Sprint(in.ID, in.Op, in.Path)); return nil })
	})
	want := []string{fmt.Sprint(ids[0], "upload", "p/upload"), fmt.Sprint(ids[2], "move", "p/move")}
	if !slices.Equal(got, want) {
		t.Errorf("Intents after reopen = %q, want %q", got, want)
	}
	// ids keep growing across reopen: a replay never confuses a new intent with an old one
	mustUpdate(t, s, func(w Writer) error {
		id, err := w.BeginIntent(Intent{Op: "x", Path: "x"})
		if err == nil && id <= ids[2] {
			t.Errorf("new intent id %d after %d", id, ids[2])
		}
		return err
	})
}

func TestConflicts(t *testing.T) {
	s := open(t)
	mustUpdate(t, s, func(w Writer) error {
		return errors.Join(w.AddConflict(Conflict{Path: "b", Reason: "1"}), w.AddConflict(Conflict{Path: "a/x", Reason: "2"}),
			w.AddConflict(Conflict{Path: "b", Reason: "3"}))
	})
	list := func() (out []string) {
		mustView(t, s, func(r Reader) error {
			return r.Conflicts(func(c Conflict) error { out = append(out, string(c.Path)+"="+c.Reason); return nil })
		})
		return out
	}
	if got, want := list(), []string{"a/x=2", "b=3"}; !slices.Equal(got, want) {
		t.Errorf("Conflicts = %q, want %q", got, want)
	}
	mustUpdate(t, s, func(w Writer) error { return errors.Join(w.DeleteConflict("b"), w.DeleteConflict("none")) })
	if got, want := list(), []string{"a/x=2"}; !slices.Equal(got, want) {
		t.Errorf("Conflicts = %q, want %q", got, want)
	}
}

func TestInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	s := openAt(t, path)
	start := time.Now()
	// bbolt's flock is per open file description, so a second Open in this process contends like another process
	s2, err := Open(path, zaptest.NewLogger(t), Options{})
	took := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if took > 3*time.Second {
		t.Errorf("second Open took %v", took)
	}
	want := fmt.Sprintf("state database %s is in use by another tandem process (pid %d)", path, os.Getpid())
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if _, err := Open(path, nil, Options{ReadOnly: true, Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrInUse) {
		t.Errorf("read-only Open beside a writer: %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + pidSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after Close: %v", err)
	}
	openAt(t, path) // free again
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	if _, err := Open(path, nil, Options{ReadOnly: true}); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("read-only Open of a missing file: %v", err)
	}
	s := openAt(t, path)
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("a", "1")) })
	s.Close()
	ro, err := Open(path, zaptest.NewLogger(t), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ro2, err := Open(path, nil, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	ro2.Close()
	if got := each(t, ro, Local, remote.Root); !slices.Equal(got, []remote.Path{"a"}) {
		t.Errorf("read-only Each = %q", got)
	}
	if err := ro.Update(func(w Writer) error { return w.Put(Local, rec("b", "")) }); err == nil {
		t.Error("write through a read-only store succeeded")
	}
	if err := ro.Check(); err != nil {
		t.Error(err)
	}
}

func checkResyncHint(t *testing.T, err error) {
	t.Helper()
	if !strings.Contains(err.Error(), `run "tandem once --resync <local> <remote>" to move it aside`) {
		t.Errorf("error does not name the fix: %v", err)
	}
}

func TestGarbageIsCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{100, 5000, 64 << 10} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pair.db")
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, zaptest.NewLogger(t), Options{})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open(garbage) = %v, want ErrCorrupt", err)
			}
			t.Log(err)
			checkResyncHint(t, err)
			// the lock must have been released: MoveAside and a fresh Open work
			if _, err := MoveAside(path, time.Now()); err != nil {
				t.Fatal(err)
			}
			openAt(t, path)
		})
	}
}

// rawDB creates a bbolt file with fn's content, bypassing Open.
func rawDB(t *testing.T, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pair.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestForeignDatabases(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx) error{
		"no meta": func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err },
		"bad magic": func(tx *bolt.Tx) error {
			if err := initBuckets(tx); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put([]byte(metaMagic), []byte("nope"))
		},
		"no version": func(tx *bolt.Tx) error {
			if err := initBuckets(tx); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Delete([]byte(metaSchema))
		},
		"missing bucket": func(tx *bolt.Tx) error {
			if err := initBuckets(tx); err != nil {
				return err
			}
			return tx.DeleteBucket(bucketBase)
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			path := rawDB(t, fn)
			_, err := Open(path, zaptest.NewLogger(t), Options{})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			checkResyncHint(t, err)
		})
	}
	// an empty bbolt file (crash between creation and our first commit) is simply initialised
	openAt(t, rawDB(t, func(*bolt.Tx) error { return nil }))
}

func TestNewerSchema(t *testing.T) {
	path := rawDB(t, func(tx *bolt.Tx) error {
		if err := initBuckets(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte(metaSchema), encodeUint(99))
	})
	_, err := Open(path, zaptest.NewLogger(t), Options{})
	if !errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "version 99") {
		t.Errorf("error does not name the version: %v", err)
	}
	checkResyncHint(t, err)
}

// F18: bytes flipped in both meta pages.
func TestFlippedMetaPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	s := openAt(t, path)
	mustUpdate(t, s, func(w Writer) error { return w.Put(Local, rec("a", "1")) })
	ps := s.db.Info().PageSize
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{40, int64(ps) + 40} { // inside each meta page, past the magic: the checksum fails
		if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef}, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	_, err = Open(path, zaptest.NewLogger(t), Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	t.Log(err)
	checkResyncHint(t, err)
}

func TestCheckFindsBrokenInvariants(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx) error{
		"path differs from key": func(tx *bolt.Tx) error {
			r := rec("b", "")
			return tx.Bucket(bucketLocal).Put(key("a"), encodeRecord(&r))
		},
		"id not indexed": func(tx *bolt.Tx) error {
			r := rec("a", "7")
			return tx.Bucket(bucketRemote).Put(key("a"), encodeRecord(&r))
		},
		"dangling index": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIDs).Bucket(idsBuckets[IDBaseLocal]).Put(idKey("9", key("nowhere")), nil)
		},
		"undecodable value": func(tx *bolt.Tx) error { return tx.Bucket(bucketBase).Put(key("a"), []byte{1, 2, 3}) },
		"slash in key": func(tx *bolt.Tx) error {
			r := rec("a/b", "")
			return tx.Bucket(bucketLocal).Put([]byte("a/b"), encodeRecord(&r))
		},
		"invalid name": func(tx *bolt.Tx) error {
			r := rec("a/..", "")
			return tx.Bucket(bucketLocal).Put(key("a/.."), encodeRecord(&r))
		},
		"bad intent key": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketJournal).Put([]byte("x"), encodeIntent(&Intent{ID: 3}))
		},
		"old schema": func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(metaSchema), encodeUint(0)) },
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pair.db")
			s, err := Open(path, zaptest.NewLogger(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Check(); err != nil {
				t.Fatalf("fresh store: %v", err)
			}
			if err := s.db.Update(fn); err != nil {
				t.Fatal(err)
			}
			err = s.Check()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check = %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pair.db")
	now := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	for _, want := range []string{path + ".broken-20260301-101500", path + ".broken-20260301-101500-2"} {
		if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := MoveAside(path, now)
		if err != nil || got != want {
			t.Fatalf("MoveAside = %q, %v; want %q", got, err, want)
		}
		if b, err := os.ReadFile(got); err != nil || string(b) != want {
			t.Errorf("moved file holds %q, %v", b, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("original still there: %v", err)
		}
	}
	if _, err := MoveAside(filepath.Join(dir, "none.db"), now); err == nil {
		t.Error("MoveAside of a missing file succeeded")
	}
}

func TestPairID(t *testing.T) {
	a := PairID("/home/u/Sync", "pcloud:/Sync")
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("PairID = %q, want 32 hex digits", a)
	}
	if b := PairID("/home/u/Sync", "pcloud:/Sync/"); b != a {
		t.Errorf("trailing slash changes the id: %s vs %s", a, b)
	}
	if b := PairID("/home/u/Sync", "pcloud:/Other"); b == a {
		t.Error("different remotes, same id")
	}
	// the NUL separator keeps ("a", "bc") and ("ab", "c") apart
	if PairID("/a", "bc") == PairID("/ab", "c") {
		t.Error("ambiguous concatenation")
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if d, err := DefaultDir(); err != nil || d != "/xdg/state/tandem" {
		t.Errorf("DefaultDir = %q, %v", d, err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := DefaultDir(); err != nil || d != "/home/u/.local/state/tandem" {
		t.Errorf("DefaultDir = %q, %v", d, err)
	}
}

// TestOpenSchema2Records: a database written by schema 2 (version 1 values, one stamp per record) opens, moves
// to the current schema, and its records read the old stamp where each rule looks for it: HashedAt on the local
// side, ListGen on the remote side (and both, as the old stamp served both).
func TestOpenSchema2Records(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	s := openAt(t, path)
	v1, err := hex.DecodeString(v1Record)
	if err != nil {
		t.Fatal(err)
	}
	// The store writes the records (and their id indexes); their values are then put back as schema 2 wrote them.
	if err := s.Update(func(w Writer) error {
		r := rec("a/b", "dev:1")
		if err := w.Put(Local, r); err != nil {
			return err
		}
		return w.Put(Remote, r)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put([]byte(metaSchema), encodeUint(2)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLocal).Put(key("a/b"), v1); err != nil {
			return err
		}
		return tx.Bucket(bucketRemote).Put(key("a/b"), v1)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	const stamp = 1_700_000_002_000_000_000
	if err := s.View(func(r Reader) error {
		l, ok, err := r.Get(Local, "a/b")
		if err != nil || !ok || l.HashedAt != stamp {
			t.Errorf("local record %+v, %v, %v: want HashedAt %d", l, ok, err, int64(stamp))
		}
		rr, ok, err := r.Get(Remote, "a/b")
		if err != nil || !ok || rr.ListGen != stamp {
			t.Errorf("remote record %+v, %v, %v: want ListGen %d", rr, ok, err, int64(stamp))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPageCheckOnlyWhenItCanTellSomething: Open runs bbolt's page-level check on a new database, after a holder
// that did not close (kill -9, a crash: metaOpen still set), after a migration and when the last check is older
// than checkEvery, and skips it after a clean close (it read every page on every `tandem once`).
func TestPageCheckOnlyWhenItCanTellSomething(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pair.db")
	open := func() *Store {
		t.Helper()
		s, err := Open(path, zaptest.NewLogger(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if !s.checked {
		t.Error("new database: not checked")
	}
	must(t, s.Close())
	s = open()
	if s.checked {
		t.Error("after a clean close: checked again")
	}
	// A holder that ends without Close (the process was killed): bbolt's file is closed, metaOpen stays.
	must(t, s.db.Close())
	s.rw = false
	s = open()
	if !s.checked {
		t.Error("after a holder that did not close: not checked")
	}
	// A last check older than checkEvery.
	must(t, s.db.Update(func(tx *bolt.Tx) error {
		old := uint64(time.Now().Add(-checkEvery - time.Hour).Unix())
		return tx.Bucket(bucketMeta).Put([]byte(metaChecked), encodeUint(old))
	}))
	must(t, s.Close())
	s = open()
	if !s.checked {
		t.Errorf("last check older than %v: not checked", checkEvery)
	}
	must(t, s.Close())
	s = open()
	if s.checked {
		t.Error("right after a check and a clean close: checked again")
	}
	must(t, s.Close())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
