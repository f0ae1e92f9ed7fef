package emulator

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// item is a file or folder as the emulator stores it. Times are Unix seconds of the server clock: vBoxx's
// date-times have second precision.
type item struct {
	ID        int64  `json:"id"`
	Root      int64  `json:"root"`
	Parent    int64  `json:"parent"` // folder id; 0 = the top level of the root
	Folder    bool   `json:"folder,omitempty"`
	Name      string `json:"name"`
	Deleted   bool   `json:"deleted,omitempty"`
	DeletedAt int64  `json:"deletedAt,omitempty"`
	Created   int64  `json:"created,omitempty"`
	Modified  int64  `json:"modified,omitempty"` // time the current revision was stored: what modified_since filters on
	Rev       int64  `json:"rev,omitempty"`
	Size      int64  `json:"size,omitempty"`
	LockedBy  int64  `json:"lockedBy,omitempty"` // person id; 0 = not locked
	LockedAt  int64  `json:"lockedAt,omitempty"`
}

// rootRec is one root (the user's sync root, an optional share root).
type rootRec struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"` // "sync" or "share"
	Deleted  bool   `json:"deleted,omitempty"`
	LockedBy int64  `json:"lockedBy,omitempty"`
	LockedAt int64  `json:"lockedAt,omitempty"`
}

// counters is the small mutable state beside the items.
type counters struct {
	NextID  int64 `json:"nextId"`
	NextRev int64 `json:"nextRev"`
	SyncID  int64 `json:"syncRoot"`
}

// tokenRec is kept under the sha256 of the token, so the data dir holds no usable token in clear.
type tokenRec struct {
	Refresh bool   `json:"refresh,omitempty"`
	Expires int64  `json:"expires"` // Unix nanoseconds, server clock
	GUID    string `json:"guid"`
	Revoked bool   `json:"revoked,omitempty"`
}

var (
	bktItems   = []byte("items")
	bktRoots   = []byte("roots")
	bktMeta    = []byte("meta")
	bktTokens  = []byte("tokens")
	keyCounter = []byte("counters")
)

func openDB(dir string, sync bool) (*bolt.DB, error) {
	// NoSync by default: a crashed emulator process loses nothing (the page cache survives it), and a
	// 10,000-file benchmark must not measure fsync.
	db, err := bolt.Open(filepath.Join(dir, "vboxx.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: !sync})
	if err != nil {
		return nil, fmt.Errorf("open emulator db: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktItems, bktRoots, bktMeta, bktTokens} {
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

func idKey(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// change collects what one call mutated, so it reaches the db in one transaction.
type change struct {
	items  map[int64]*item
	roots  map[int64]*rootRec
	tokens map[string]*tokenRec // nil value: delete
}

func newChange() *change {
	return &change{items: map[int64]*item{}, roots: map[int64]*rootRec{}, tokens: map[string]*tokenRec{}}
}

func (c *change) put(it *item) { c.items[it.ID] = it }

func writeChange(db *bolt.DB, c *change, cnt counters) error {
	err := db.Update(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bktItems)
		for _, it := range c.items {
			if err := putJSON(ib, idKey(it.ID), it); err != nil {
				return err
			}
		}
		rb := tx.Bucket(bktRoots)
		for _, r := range c.roots {
			if err := putJSON(rb, idKey(r.ID), r); err != nil {
				return err
			}
		}
		tb := tx.Bucket(bktTokens)
		for k, t := range c.tokens {
			if t == nil {
				if err := tb.Delete([]byte(k)); err != nil {
					return err
				}
			} else if err := putJSON(tb, []byte(k), t); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(bktMeta), keyCounter, cnt)
	})
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

type loaded struct {
	fresh  bool
	cnt    counters
	items  map[int64]*item
	roots  map[int64]*rootRec
	tokens map[string]*tokenRec
}

func load(db *bolt.DB) (*loaded, error) {
	l := &loaded{items: map[int64]*item{}, roots: map[int64]*rootRec{}, tokens: map[string]*tokenRec{}}
	err := db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktMeta).Get(keyCounter)
		if raw == nil {
			l.fresh = true
		} else if err := json.Unmarshal(raw, &l.cnt); err != nil {
			return fmt.Errorf("counters: %w", err)
		}
		if err := tx.Bucket(bktItems).ForEach(func(k, v []byte) error {
			it := new(item)
			if err := json.Unmarshal(v, it); err != nil {
				return fmt.Errorf("item %x: %w", k, err)
			}
			l.items[it.ID] = it
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bktRoots).ForEach(func(k, v []byte) error {
			r := new(rootRec)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("root %x: %w", k, err)
			}
			l.roots[r.ID] = r
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bktTokens).ForEach(func(k, v []byte) error {
			t := new(tokenRec)
			if err := json.Unmarshal(v, t); err != nil {
				return fmt.Errorf("token: %w", err)
			}
			l.tokens[string(k)] = t
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load emulator db: %w", err)
	}
	return l, nil
}
