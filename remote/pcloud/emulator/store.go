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

// node is a file or folder as the emulator stores it. Times are Unix seconds: pCloud's precision is one second.
type node struct {
	ID          uint64 `json:"id"`
	Folder      bool   `json:"folder,omitempty"`
	Parent      uint64 `json:"parent"`
	Name        string `json:"name"`
	Created     int64  `json:"created"`
	Modified    int64  `json:"modified"`
	Size        int64  `json:"size,omitempty"`
	Hash        uint64 `json:"hash,omitempty"`
	ContentType string `json:"contenttype,omitempty"`
	SHA1        string `json:"sha1,omitempty"`
	MD5         string `json:"md5,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	Deleted     bool   `json:"deleted,omitempty"`
}

// event is one entry of the diff log. Node is the item's state after the event (a copy, never the live node).
type event struct {
	DiffID        uint64 `json:"diffid"`
	Event         string `json:"event"`
	Time          int64  `json:"time"`
	Node          *node  `json:"node,omitempty"`
	DeletedFileID uint64 `json:"deletedfileid,omitempty"`
}

// counters is the small mutable state next to the items.
type counters struct {
	NextFolderID uint64 `json:"nextfolderid"`
	NextFileID   uint64 `json:"nextfileid"`
	NextUploadID uint64 `json:"nextuploadid"`
	DiffID       uint64 `json:"diffid"`
	Floor        uint64 `json:"floor"` // diffids in (0, Floor) are too old: history before Floor was compacted
	UserID       uint64 `json:"userid"`
	Token        string `json:"token"` // the default access token, stable across restarts of one data dir
	Created      int64  `json:"created"`
}

// tokenState is kept under the sha256 of the token, so the data dir does not hold minted tokens in clear.
type tokenState struct {
	Revoked bool `json:"revoked,omitempty"`
}

// uploadState is a chunked upload session (upload_create … upload_save).
type uploadState struct {
	ID      uint64 `json:"id"`
	Created int64  `json:"created"`
}

var (
	bktFolders = []byte("folders")
	bktFiles   = []byte("files")
	bktEvents  = []byte("events")
	bktMeta    = []byte("meta")
	bktTokens  = []byte("tokens")
	bktUploads = []byte("uploads")
	keyCounter = []byte("counters")
)

func openDB(dir string) (*bolt.DB, error) {
	// NoSync: a crashed emulator process loses nothing (the page cache survives it); only a power cut could,
	// and the emulator is a test fixture. Without it, a 10,000-file benchmark would measure fsync.
	db, err := bolt.Open(filepath.Join(dir, "pcloud.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("open emulator db: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktFolders, bktFiles, bktEvents, bktMeta, bktTokens, bktUploads} {
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

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func tokenKey(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return []byte(hex.EncodeToString(sum[:]))
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// change collects what one API call mutated, so it reaches the db in one transaction.
type change struct {
	nodes   []*node
	events  []event
	uploads map[uint64]*uploadState // nil value: delete
	tokens  map[string]*tokenState
}

func (c *change) put(n *node) { c.nodes = append(c.nodes, n) }

func writeChange(db *bolt.DB, c *change, cnt counters, rewriteEvents []event) error {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, n := range c.nodes {
			b := tx.Bucket(bktFiles)
			if n.Folder {
				b = tx.Bucket(bktFolders)
			}
			if err := putJSON(b, u64key(n.ID), n); err != nil {
				return err
			}
		}
		eb := tx.Bucket(bktEvents)
		if rewriteEvents != nil {
			if err := tx.DeleteBucket(bktEvents); err != nil {
				return err
			}
			var err error
			if eb, err = tx.CreateBucket(bktEvents); err != nil {
				return err
			}
			for _, ev := range rewriteEvents {
				if err := putJSON(eb, u64key(ev.DiffID), ev); err != nil {
					return err
				}
			}
		}
		for _, ev := range c.events {
			if err := putJSON(eb, u64key(ev.DiffID), ev); err != nil {
				return err
			}
		}
		for id, u := range c.uploads {
			b := tx.Bucket(bktUploads)
			if u == nil {
				if err := b.Delete(u64key(id)); err != nil {
					return err
				}
			} else if err := putJSON(b, u64key(id), u); err != nil {
				return err
			}
		}
		for key, t := range c.tokens {
			b := tx.Bucket(bktTokens)
			if t == nil {
				if err := b.Delete([]byte(key)); err != nil {
					return err
				}
			} else if err := putJSON(b, []byte(key), t); err != nil {
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

// loaded is everything read back at start.
type loaded struct {
	cnt     counters
	fresh   bool
	folders map[uint64]*node
	files   map[uint64]*node
	events  []event
	tokens  map[string]*tokenState
	uploads map[uint64]*uploadState
}

func load(db *bolt.DB) (*loaded, error) {
	l := &loaded{folders: map[uint64]*node{}, files: map[uint64]*node{}, tokens: map[string]*tokenState{},
		uploads: map[uint64]*uploadState{}}
	err := db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktMeta).Get(keyCounter)
		if raw == nil {
			l.fresh = true
		} else if err := json.Unmarshal(raw, &l.cnt); err != nil {
			return fmt.Errorf("counters: %w", err)
		}
		for _, b := range []struct {
			name []byte
			into map[uint64]*node
		}{{bktFolders, l.folders}, {bktFiles, l.files}} {
			err := tx.Bucket(b.name).ForEach(func(k, v []byte) error {
				n := new(node)
				if err := json.Unmarshal(v, n); err != nil {
					return fmt.Errorf("%s %x: %w", b.name, k, err)
				}
				b.into[n.ID] = n
				return nil
			})
			if err != nil {
				return err
			}
		}
		err := tx.Bucket(bktEvents).ForEach(func(k, v []byte) error {
			var ev event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			l.events = append(l.events, ev)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bktTokens).ForEach(func(k, v []byte) error {
			t := new(tokenState)
			if err := json.Unmarshal(v, t); err != nil {
				return fmt.Errorf("token: %w", err)
			}
			l.tokens[string(k)] = t
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bktUploads).ForEach(func(k, v []byte) error {
			u := new(uploadState)
			if err := json.Unmarshal(v, u); err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			l.uploads[u.ID] = u
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load emulator db: %w", err)
	}
	return l, nil
}
