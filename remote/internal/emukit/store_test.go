package emukit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

type rec struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
}

func TestStoreRoundTrip(t *testing.T) {
	bkt := []byte("recs")
	st, err := OpenStore(StoreOptions{Dir: t.TempDir(), Subdirs: []string{"content", "tmp"}, DBFile: "x.db", Buckets: [][]byte{bkt}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"content", "tmp"} {
		if fi, err := os.Stat(filepath.Join(st.Dir, sub)); err != nil || !fi.IsDir() {
			t.Fatalf("subdir %s: %v", sub, err)
		}
	}
	type counters struct{ Next uint64 }
	err = st.DB.View(func(tx *bolt.Tx) error {
		var c counters
		found, err := GetCounters(tx, &c)
		if found || err != nil {
			t.Errorf("fresh db: found %v, err %v", found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bkt)
		if err := ApplyMap(b, map[uint64]*rec{1: {ID: 1, Name: "a"}, 2: {ID: 2, Name: "b"}, 3: {ID: 3}}, U64Key); err != nil {
			return err
		}
		if err := ApplyMap(b, map[uint64]*rec{3: nil, 4: nil}, U64Key); err != nil { // 4 never existed
			return err
		}
		if err := PutList(b, []rec{{ID: 5, Name: "e"}}, func(r rec) []byte { return U64Key(r.ID) }); err != nil {
			return err
		}
		return PutCounters(tx, counters{Next: 6})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []rec
	var c counters
	err = st.DB.View(func(tx *bolt.Tx) error {
		if found, err := GetCounters(tx, &c); !found || err != nil {
			t.Errorf("counters: found %v, err %v", found, err)
		}
		return LoadBucket(tx, bkt, func(k []byte, r *rec) {
			if string(k) != string(U64Key(r.ID)) {
				t.Errorf("key %x holds id %d", k, r.ID)
			}
			got = append(got, *r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "a" || got[1].Name != "b" || got[2].Name != "e" || c.Next != 6 {
		t.Fatalf("loaded %+v, counters %+v", got, c)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.Dir); err != nil {
		t.Fatalf("a given data dir must survive Close: %v", err)
	}
}

func TestStoreTempDirRemovedByClose(t *testing.T) {
	st, err := OpenStore(StoreOptions{TempPrefix: "emukit-test-", DBFile: "x.db"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
		t.Fatalf("temp data dir still there after Close: %v", err)
	}
}

func TestLoadBucketNamesTheBadRecord(t *testing.T) {
	bkt := []byte("recs")
	db, err := OpenDB(filepath.Join(t.TempDir(), "x.db"), false, bkt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bkt).Put(U64Key(7), []byte("{")) })
	err = db.View(func(tx *bolt.Tx) error { return LoadBucket(tx, bkt, func([]byte, *rec) {}) })
	if err == nil || !strings.HasPrefix(err.Error(), "recs 0000000000000007: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenKey(t *testing.T) {
	// sha256("abc"): the key format persisted data dirs already use.
	if got := TokenKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal(got)
	}
	if a, b := RandomHex(8), RandomHex(8); len(a) != 16 || a == b {
		t.Fatal(a, b)
	}
}

func TestPersistAndLoad(t *testing.T) {
	bkt := []byte("recs")
	db, err := OpenDB(filepath.Join(t.TempDir(), "x.db"), false, bkt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type counters struct{ Next uint64 }
	var c counters
	if fresh, err := Load(db, &c, func(*bolt.Tx) error { return nil }); !fresh || err != nil {
		t.Fatalf("fresh db: %v %v", fresh, err)
	}
	err = Persist(db, counters{Next: 2}, func(tx *bolt.Tx) error {
		return PutJSON(tx.Bucket(bkt), U64Key(1), rec{ID: 1, Name: "a"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []rec
	fresh, err := Load(db, &c, func(tx *bolt.Tx) error {
		return LoadBucket(tx, bkt, func(_ []byte, r *rec) { got = append(got, *r) })
	})
	if fresh || err != nil || c.Next != 2 || len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("fresh %v err %v counters %+v recs %+v", fresh, err, c, got)
	}
	// A failing change writes nothing, counters included.
	boom := errors.New("boom")
	err = Persist(db, counters{Next: 9}, func(tx *bolt.Tx) error {
		_ = tx.Bucket(bkt).Delete(U64Key(1))
		return boom
	})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "persist: ") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(db, &c, func(*bolt.Tx) error { return nil }); err != nil || c.Next != 2 {
		t.Fatalf("after a failed change: %+v %v", c, err)
	}
}
