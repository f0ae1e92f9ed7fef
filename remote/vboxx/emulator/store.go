package emulator

import (
	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote/internal/emukit"
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
	Modified  int64  `json:"modified,omitempty"` // the file's `modified`: when its revision was stored, or an agent's time
	Stored    int64  `json:"stored,omitempty"`   // when the server stored the current revision (0: = Modified)
	ReadOnly  bool   `json:"readOnly,omitempty"` // the caller lacks FILE_WRITE here (and below, for a folder)
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
	Client  string `json:"client,omitempty"` // the client_id it was issued to; "" in stores from before it was kept
}

var (
	bktItems  = []byte("items")
	bktRoots  = []byte("roots")
	bktTokens = []byte("tokens")
)

// openStore opens the data dir: the db, one content file per revision, temp files. sync makes every commit
// fsync (off by default, see emukit.OpenDB).
func openStore(dir string, sync bool) (*emukit.Store, error) {
	return emukit.OpenStore(emukit.StoreOptions{Dir: dir, TempPrefix: "vboxx-emu-", Subdirs: []string{"content", "tmp"},
		DBFile: "vboxx.db", Buckets: [][]byte{bktItems, bktRoots, bktTokens}, Sync: sync})
}

func idKey(v int64) []byte { return emukit.U64Key(uint64(v)) }

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
	return emukit.Persist(db, cnt, func(tx *bolt.Tx) error {
		if err := emukit.ApplyMap(tx.Bucket(bktItems), c.items, idKey); err != nil {
			return err
		}
		if err := emukit.ApplyMap(tx.Bucket(bktRoots), c.roots, idKey); err != nil {
			return err
		}
		return emukit.ApplyMap(tx.Bucket(bktTokens), c.tokens, emukit.StrKey)
	})
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
	var err error
	l.fresh, err = emukit.Load(db, &l.cnt, func(tx *bolt.Tx) error {
		if err := emukit.LoadBucket(tx, bktItems, func(_ []byte, it *item) { l.items[it.ID] = it }); err != nil {
			return err
		}
		if err := emukit.LoadBucket(tx, bktRoots, func(_ []byte, r *rootRec) { l.roots[r.ID] = r }); err != nil {
			return err
		}
		return emukit.LoadBucket(tx, bktTokens, func(k []byte, t *tokenRec) { l.tokens[string(k)] = t })
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}
