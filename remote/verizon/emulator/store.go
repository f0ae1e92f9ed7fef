package emulator

import (
	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// kind of the item at a path, as the change journal records it.
type kind uint8

const (
	kindNone kind = iota
	kindFile
	kindFolder
)

// node is a file or folder, live or in the trash. Parent and Name are kept apart (rather than one path string)
// so that a test can plant a hostile name such as "a/b" and the emulator still serves it exactly as stored.
// Times are Unix milliseconds: the API's precision.
type node struct {
	ID             uint64 `json:"id"`
	Parent         string `json:"parent"` // absolute path of the containing folder; "/" for a virtual folder
	Name           string `json:"name"`
	Folder         bool   `json:"folder,omitempty"`
	Size           int64  `json:"size,omitempty"`
	Checksum       string `json:"checksum,omitempty"`
	ContentToken   string `json:"contentToken,omitempty"`
	Version        int    `json:"version,omitempty"`
	VersionCreated int64  `json:"versionCreated"`
	Created        int64  `json:"created,omitempty"`
	Modified       int64  `json:"modified,omitempty"`
	Mime           string `json:"mime,omitempty"`
	Favorite       bool   `json:"favorite,omitempty"`
	// Trash: Trashed items keep the Parent/Name they had when deleted. TrashGroup is the id of the topmost
	// deleted item (itself for that one), so a restore brings back exactly what one delete took away.
	Trashed    bool   `json:"trashed,omitempty"`
	TrashedAt  int64  `json:"trashedAt,omitempty"`
	TrashGroup uint64 `json:"trashGroup,omitempty"`
}

func (n *node) path() string { return join(n.Parent, n.Name) }

func (n *node) kind() kind {
	if n == nil {
		return kindNone
	}
	if n.Folder {
		return kindFolder
	}
	return kindFile
}

// join builds an absolute path; the parent of a virtual folder is "/".
func join(parent, name string) string {
	if parent == "/" || parent == "" {
		return "/" + name
	}
	return parent + "/" + name
}

// jentry is one record of the change journal that fullview etags index: the path was touched at Seq and held
// Before just before. A delta since seq S compares, per path, the Before of its first entry after S with the live
// state now.
type jentry struct {
	Seq    uint64 `json:"seq"`
	VF     string `json:"vf"`
	Path   string `json:"path"`
	Before kind   `json:"before"`
	Time   int64  `json:"time"`
	Move   bool   `json:"move,omitempty"` // the path was left by a move or rename (the delta variants need it)
}

// counters is the small mutable state beside the items.
type counters struct {
	NextID uint64 `json:"nextID"`
	Seq    uint64 `json:"seq"`   // last journal sequence number handed out
	Floor  uint64 `json:"floor"` // etags with a seq below this predate the retained journal
	Epoch  uint64 `json:"epoch"` // bumped by ForceOutOfSync: every etag of an older epoch is stale
	UserID string `json:"userID"`
}

// intent is an upload in progress (§9).
type intent struct {
	ID       string         `json:"id"`
	Parent   string         `json:"parent"`
	Name     string         `json:"name"`
	Size     int64          `json:"size"`
	Checksum string         `json:"checksum"`
	Chunked  bool           `json:"chunked"`
	Safe     bool           `json:"safe,omitempty"`
	Version  *int           `json:"version,omitempty"`
	ModDate  int64          `json:"modDate,omitempty"`
	Created  int64          `json:"created"`
	Done     bool           `json:"done,omitempty"`
	Chunks   map[int]int64  `json:"chunks,omitempty"` // sequence number -> size
	Sums     map[int]string `json:"sums,omitempty"`
}

// tokenState is kept under the sha256 of the token, so the data dir never holds a token in clear.
type tokenState struct {
	Refresh bool  `json:"refresh,omitempty"`
	Expires int64 `json:"expires"` // Unix ms
	Revoked bool  `json:"revoked,omitempty"`
	// Parent is the refresh token (key) this pair was issued from while its grace runs: the parent stays valid
	// until either token of the pair is first used. Pair is the key of the other token of the pair.
	Parent string `json:"parent,omitempty"`
	Pair   string `json:"pair,omitempty"`
	// Pending (refresh tokens only) lists the access-token keys of pairs issued from this one and not yet used.
	Pending []string `json:"pending,omitempty"`
	// Device is the deviceid of the login the token descends from ("" = none sent). A new login for a device
	// revokes the refresh tokens that device had: without a deviceid, every installation is the same device
	// (§3.1, documented).
	Device string `json:"device,omitempty"`
}

var (
	bktNodes   = []byte("nodes")
	bktJournal = []byte("journal")
	bktTokens  = []byte("tokens")
	bktUploads = []byte("uploads")
)

// openStore opens the data dir: the db, content-addressed blobs, chunks of uploads in progress, temp files.
func openStore(dir string) (*emukit.Store, error) {
	return emukit.OpenStore(emukit.StoreOptions{Dir: dir, TempPrefix: "verizon-emu-",
		Subdirs: []string{"blobs", "uploads", "tmp"}, DBFile: "verizon.db",
		Buckets: [][]byte{bktNodes, bktJournal, bktTokens, bktUploads}})
}

func u64key(v uint64) []byte { return emukit.U64Key(v) }

// change collects what one API call mutated so that it reaches the db in one transaction.
type change struct {
	nodes   map[uint64]*node // nil value: delete
	journal []jentry
	dropJ   []uint64 // journal seqs pruned
	uploads map[string]*intent
	tokens  map[string]*tokenState
}

func newChange() *change {
	return &change{nodes: map[uint64]*node{}, uploads: map[string]*intent{}, tokens: map[string]*tokenState{}}
}

func (c *change) put(n *node)                 { c.nodes[n.ID] = n }
func (c *change) drop(n *node)                { c.nodes[n.ID] = nil }
func (c *change) tok(k string, t *tokenState) { c.tokens[k] = t }

func writeChange(db *bolt.DB, c *change, cnt counters) error {
	return emukit.Persist(db, cnt, func(tx *bolt.Tx) error {
		if err := emukit.ApplyMap(tx.Bucket(bktNodes), c.nodes, u64key); err != nil {
			return err
		}
		jb := tx.Bucket(bktJournal)
		for _, seq := range c.dropJ {
			if err := jb.Delete(u64key(seq)); err != nil {
				return err
			}
		}
		if err := emukit.PutList(jb, c.journal, func(j jentry) []byte { return u64key(j.Seq) }); err != nil {
			return err
		}
		if err := emukit.ApplyMap(tx.Bucket(bktUploads), c.uploads, emukit.StrKey); err != nil {
			return err
		}
		return emukit.ApplyMap(tx.Bucket(bktTokens), c.tokens, emukit.StrKey)
	})
}

// loaded is everything read back at start.
type loaded struct {
	cnt     counters
	fresh   bool
	nodes   []*node
	journal []jentry
	uploads map[string]*intent
	tokens  map[string]*tokenState
}

func load(db *bolt.DB) (*loaded, error) {
	l := &loaded{uploads: map[string]*intent{}, tokens: map[string]*tokenState{}}
	var err error
	l.fresh, err = emukit.Load(db, &l.cnt, func(tx *bolt.Tx) error {
		if err := emukit.LoadBucket(tx, bktNodes, func(_ []byte, n *node) { l.nodes = append(l.nodes, n) }); err != nil {
			return err
		}
		if err := emukit.LoadBucket(tx, bktJournal, func(_ []byte, j *jentry) { l.journal = append(l.journal, *j) }); err != nil {
			return err
		}
		if err := emukit.LoadBucket(tx, bktUploads, func(_ []byte, u *intent) { l.uploads[u.ID] = u }); err != nil {
			return err
		}
		return emukit.LoadBucket(tx, bktTokens, func(k []byte, t *tokenState) { l.tokens[string(k)] = t })
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}
