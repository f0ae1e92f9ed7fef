package emukit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The persistence every emulator shares: a data dir holding a bbolt db whose buckets map keys to JSON records,
// plus a meta bucket with the emulator's counters. The bucket names, keys and JSON stay the provider's own, so
// a `tandem emulate --data` folder keeps working across versions.

// MetaBucket is created in every emulator db; it holds the counters (see PutCounters).
var MetaBucket = []byte("meta")

var countersKey = []byte("counters")

// StoreOptions describes an emulator's data dir.
type StoreOptions struct {
	Dir        string   // the data dir; "" = a fresh temp dir that Store.Close removes
	TempPrefix string   // os.MkdirTemp pattern of that temp dir, e.g. "pcloud-emu-"
	Subdirs    []string // created inside Dir (0700), e.g. "content", "tmp"
	DBFile     string   // the bbolt file inside Dir, e.g. "pcloud.db"
	Buckets    [][]byte // created in the db besides MetaBucket
	Sync       bool     // fsync every commit (see OpenDB)
}

// Store is an open data dir and its db.
type Store struct {
	Dir  string
	DB   *bolt.DB
	temp bool // Dir was made by OpenStore: Close removes it
}

// OpenStore makes (or reuses) the data dir and its subdirectories and opens the db in it.
func OpenStore(o StoreOptions) (*Store, error) {
	s := &Store{Dir: o.Dir}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", o.TempPrefix)
		if err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		s.Dir, s.temp = d, true
	}
	for _, sub := range o.Subdirs {
		if err := os.MkdirAll(filepath.Join(s.Dir, sub), 0o700); err != nil {
			s.removeTemp()
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	db, err := OpenDB(filepath.Join(s.Dir, o.DBFile), o.Sync, o.Buckets...)
	if err != nil {
		s.removeTemp()
		return nil, err
	}
	s.DB = db
	return s, nil
}

// Close closes the db and removes a temporary data dir. Nothing may use the db any more.
func (s *Store) Close() error {
	err := s.DB.Close()
	s.removeTemp()
	return err
}

func (s *Store) removeTemp() {
	if s.temp {
		_ = os.RemoveAll(s.Dir)
	}
}

// OpenDB opens (or creates) the bbolt file at path and makes sure buckets and MetaBucket exist.
//
// Without sync the db is opened NoSync: a crashed emulator process loses nothing (the page cache survives it);
// only a power cut could, and the emulator is a test fixture. Without it, a 10,000-file benchmark would measure
// fsync.
func OpenDB(path string, sync bool, buckets ...[]byte) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: !sync})
	if err != nil {
		return nil, fmt.Errorf("open emulator db: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range append([][]byte{MetaBucket}, buckets...) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init emulator db: %w", err)
	}
	return db, nil
}

// PutJSON stores v as JSON under key.
func PutJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// GetJSON decodes the JSON under key into v. It reports false, and leaves v alone, when there is none.
func GetJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// Persist writes one change in one read-write transaction: what fn puts and deletes, then counters in
// MetaBucket. An error comes back as "persist: …".
func Persist(db *bolt.DB, counters any, fn func(*bolt.Tx) error) error {
	err := db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return PutCounters(tx, counters)
	})
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

// Load reads the counters into counters and then runs fn, in one read transaction. fresh reports a db without
// counters (counters is left alone). An error comes back as "load emulator db: …".
func Load(db *bolt.DB, counters any, fn func(*bolt.Tx) error) (fresh bool, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		found, err := GetCounters(tx, counters)
		if err != nil {
			return err
		}
		fresh = !found
		return fn(tx)
	})
	if err != nil {
		return false, fmt.Errorf("load emulator db: %w", err)
	}
	return fresh, nil
}

// PutCounters stores an emulator's counters in MetaBucket.
func PutCounters(tx *bolt.Tx, v any) error { return PutJSON(tx.Bucket(MetaBucket), countersKey, v) }

// GetCounters reads the counters back into v; false means a fresh db (v is left alone).
func GetCounters(tx *bolt.Tx, v any) (bool, error) {
	found, err := GetJSON(tx.Bucket(MetaBucket), countersKey, v)
	if err != nil {
		return false, fmt.Errorf("counters: %w", err)
	}
	return found, nil
}

// ApplyMap writes a change map into b: each record as JSON under key(k), a nil record deletes its key.
func ApplyMap[K comparable, V any](b *bolt.Bucket, m map[K]*V, key func(K) []byte) error {
	for k, v := range m {
		if v == nil {
			if err := b.Delete(key(k)); err != nil {
				return err
			}
		} else if err := PutJSON(b, key(k), v); err != nil {
			return err
		}
	}
	return nil
}

// PutList stores each record as JSON under key(record).
func PutList[T any](b *bolt.Bucket, list []T, key func(T) []byte) error {
	for _, v := range list {
		if err := PutJSON(b, key(v), v); err != nil {
			return err
		}
	}
	return nil
}

// LoadBucket decodes every record of the bucket named name, in key order, and hands each to add.
func LoadBucket[T any](tx *bolt.Tx, name []byte, add func(k []byte, v *T)) error {
	return tx.Bucket(name).ForEach(func(k, raw []byte) error {
		v := new(T)
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("%s %x: %w", name, k, err)
		}
		add(k, v)
		return nil
	})
}

// U64Key is the big-endian key of a numeric id, so that bbolt's key order is numeric order.
func U64Key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// StrKey is a string map key as a bbolt key, for ApplyMap.
func StrKey(s string) []byte { return []byte(s) }

// TokenKey is what a token is stored under: its sha256 in hex, so a data dir never holds a usable token in
// clear.
func TokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// RandomHex is n random bytes in hex: tokens, codes, temp names.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
