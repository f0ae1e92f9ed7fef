package emulator

import (
	bolt "go.etcd.io/bbolt"

	"github.com/tandemsync/tandem/remote/internal/emukit"
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

	replaced uint64 // a reply's copy only: the fileid this upload replaced (VariantNewFileID)
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
	// Kept: the diffids below Floor handed out as the end of a page of the compacted history: a client paging
	// from diffid 0 continues from them, so they are not "too old" (VariantResetOnCompaction). A cursor from
	// before the compaction that happens to equal one of them is accepted: the one imprecision left.
	Kept    []uint64 `json:"kept,omitempty"`
	UserID  uint64   `json:"userid"`
	Token   string   `json:"token"` // the default access token, stable across restarts of one data dir
	Created int64    `json:"created"`
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
	bktTokens  = []byte("tokens")
	bktUploads = []byte("uploads")
)

// openStore opens the data dir: the db, one content file per fileid, chunked uploads in progress, temp files.
func openStore(dir string) (*emukit.Store, error) {
	return emukit.OpenStore(emukit.StoreOptions{Dir: dir, TempPrefix: "pcloud-emu-",
		Subdirs: []string{"content", "uploads", "tmp"}, DBFile: "pcloud.db",
		Buckets: [][]byte{bktFolders, bktFiles, bktEvents, bktTokens, bktUploads}})
}

func u64key(v uint64) []byte { return emukit.U64Key(v) }

func eventKey(ev event) []byte { return u64key(ev.DiffID) }

// change collects what one API call mutated, so it reaches the db in one transaction.
type change struct {
	nodes   []*node
	events  []event
	uploads map[uint64]*uploadState // nil value: delete
	tokens  map[string]*tokenState
}

func (c *change) put(n *node) { c.nodes = append(c.nodes, n) }

func writeChange(db *bolt.DB, c *change, cnt counters, rewriteEvents []event) error {
	return emukit.Persist(db, cnt, func(tx *bolt.Tx) error {
		for _, n := range c.nodes {
			b := tx.Bucket(bktFiles)
			if n.Folder {
				b = tx.Bucket(bktFolders)
			}
			if err := emukit.PutJSON(b, u64key(n.ID), n); err != nil {
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
			if err := emukit.PutList(eb, rewriteEvents, eventKey); err != nil {
				return err
			}
		}
		if err := emukit.PutList(eb, c.events, eventKey); err != nil {
			return err
		}
		if err := emukit.ApplyMap(tx.Bucket(bktUploads), c.uploads, u64key); err != nil {
			return err
		}
		return emukit.ApplyMap(tx.Bucket(bktTokens), c.tokens, emukit.StrKey)
	})
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
	var err error
	l.fresh, err = emukit.Load(db, &l.cnt, func(tx *bolt.Tx) error {
		for _, b := range []struct {
			name []byte
			into map[uint64]*node
		}{{bktFolders, l.folders}, {bktFiles, l.files}} {
			if err := emukit.LoadBucket(tx, b.name, func(_ []byte, n *node) { b.into[n.ID] = n }); err != nil {
				return err
			}
		}
		if err := emukit.LoadBucket(tx, bktEvents, func(_ []byte, ev *event) { l.events = append(l.events, *ev) }); err != nil {
			return err
		}
		if err := emukit.LoadBucket(tx, bktTokens, func(k []byte, t *tokenState) { l.tokens[string(k)] = t }); err != nil {
			return err
		}
		return emukit.LoadBucket(tx, bktUploads, func(_ []byte, u *uploadState) { l.uploads[u.ID] = u })
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}
