// Package state is tandem's persistent memory of a folder pair: one bbolt database per pair holding what each
// side held at each path (the local and remote trees), the sync point both sides last agreed on (the base), id
// indexes for move detection, the provider's change cursor, the journal of in-flight actions and the conflicts.
//
// Trees are never loaded into Go maps: readers stream them in store order (see Each and Page), so memory stays
// flat as trees grow. A Store is safe for concurrent use; bbolt allows one writer and many readers at a time.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

// SchemaVersion is the layout this code reads and writes. A database with a higher version was written by a
// newer tandem and is refused (ErrNewerSchema); a lower one is migrated on open.
const SchemaVersion = 3

// resyncHint is the fix every fatal open error names.
const resyncHint = `run "tandem once --resync <local> <remote>" to move it aside and re-merge both sides without deleting anything`

var (
	// ErrInUse: another process holds the database's lock (a second daemon or `once` on the same pair).
	ErrInUse = errors.New("in use by another tandem process")
	// ErrCorrupt: the file is not a tandem state database, fails bbolt's consistency check, or holds a value
	// that does not decode. The pair must stop; --resync moves the file aside.
	ErrCorrupt = errors.New("state database is corrupt")
	// ErrNewerSchema: the database was written by a newer tandem than this one.
	ErrNewerSchema = errors.New("state database has a newer schema")
)

// Side names one of the two observed trees.
type Side uint8

const (
	Local Side = iota
	Remote
)

func (s Side) String() string {
	switch s {
	case Local:
		return "local"
	case Remote:
		return "remote"
	}
	return "side(" + strconv.Itoa(int(s)) + ")"
}

// Record is what one side held at a path.
type Record struct {
	remote.Entry        // Path, Dir, Size, ModTime, ID, Rev, Hash, Incomplete
	Inode        uint64 // local only: stat fast-check
	CTime        int64  // local only: ctime in ns
	// HashedAt is the unix ns time of the scan (or transfer) that last digested or verified the file, on a side
	// whose content tandem digests itself (the local folder, a dir: remote). The racy-clean rule re-digests a
	// file whose mtime or ctime lies this close to it. 0: never (the next scan digests it again).
	HashedAt int64
	// ListGen is the generation of the last complete listing of the remote that saw this record, on the remote
	// side of a remote with a change feed: a complete listing drops every record without its own generation
	// (mark and sweep). 0: no complete listing saw it (a feed change or tandem's own write put it there).
	ListGen int64
}

// Base is the sync point of a path: what both sides held the last time they agreed. Local.Path and Remote.Path
// are normally Path; they are stored separately only when they differ (e.g. a case-folding remote's spelling).
type Base struct {
	Path   remote.Path
	Dir    bool
	Hash   remote.Hash // the content digest both sides agreed on (zero for dirs, or when the remote has no digest)
	Local  Record
	Remote Record
}

// Intent is a journal entry written before a destructive or multi-step action and removed (EndIntent) in the
// transaction that commits its result; whatever is left at start-up is replayed or rolled back.
type Intent struct {
	ID       uint64 // assigned by BeginIntent
	Op       string
	Path, To remote.Path
	Temp     string // temporary file the action writes, if any
	At       int64  // unix ns
}

// Conflict is a kept-both conflict reported to the user: Copy is the name the losing version was saved under.
type Conflict struct {
	Path, Copy            remote.Path
	At                    int64 // unix ns
	Reason                string
	LocalHash, RemoteHash remote.Hash
}

// Index names an id -> path index. The indexes are maintained by Put/Delete/PutBase/DeleteBase/MoveTree from
// the records' Entry.ID (an empty ID is not indexed).
type Index uint8

const (
	IDLocal      Index = iota // local tree, Record.ID
	IDRemote                  // remote tree, Record.ID
	IDBaseLocal               // base tree, Base.Local.ID
	IDBaseRemote              // base tree, Base.Remote.ID
)

func (ix Index) String() string {
	if int(ix) < len(idsBuckets) {
		return string(idsBuckets[ix])
	}
	return "index(" + strconv.Itoa(int(ix)) + ")"
}

// Options tune Open. The zero value is the default.
type Options struct {
	Timeout  time.Duration // how long to wait for the file lock before ErrInUse; <= 0 means 1 s
	ReadOnly bool          // shared lock, no writes (status tools); the database must exist at the current schema
}

// Bucket names. ids holds one sub-bucket per Index.
var (
	bucketMeta      = []byte("meta")
	bucketLocal     = []byte("local")
	bucketRemote    = []byte("remote")
	bucketBase      = []byte("base")
	bucketIDs       = []byte("ids")
	bucketJournal   = []byte("journal")
	bucketConflicts = []byte("conflicts")
)

// idsBuckets is indexed by Index.
var idsBuckets = [...][]byte{[]byte("local"), []byte("remote"), []byte("base-local"), []byte("base-remote")}

// Reserved meta keys; SetMeta refuses them.
const (
	metaMagic  = "magic"
	metaSchema = "schema"
	// metaOpen is set while a read-write opener holds the database and deleted by its Close: found set at the
	// next open, the last holder ended without closing (a crash, kill -9, a power loss).
	metaOpen = "open"
	// metaChecked: unix seconds of the last page-level check that passed.
	metaChecked = "checked"
	metaCursor  = "cursor"
	magic       = "tandem-state"
)

const pidSuffix = ".pid"

// Store is one pair's database.
type Store struct {
	rw      bool // opened read-write: Close clears metaOpen
	trackMu sync.Mutex
	tracker *Tracker // settled.go
	// unclean: the last read-write holder did not close the store (Unclean)
	unclean  atomic.Bool
	checked  bool // Open ran the page-level check (tests)
	db       *bolt.DB
	path     string
	lg       *zap.Logger
	wrotePID bool
}

// migration upgrades a database from version from to from+1, inside the opening write transaction.
type migration struct {
	from uint64
	up   func(tx *bolt.Tx) error
}

// migrations are the schema upgrades, in order.
func migrations() []migration {
	return []migration{
		// 2: records may carry permission bits (a new flag); version 1 values read as they are, so nothing is
		// rewritten. The version moves only so that an older tandem refuses the file as newer (with the hint to
		// upgrade) instead of calling the unknown flag damage.
		{from: 1, up: func(*bolt.Tx) error { return nil }},
		// 3: a record's one stamp (Scanned) became two, HashedAt and ListGen, in values of a new encoding
		// version (valueV2). Version 1 values read as they are (their stamp into both fields: each rule reads
		// what it read before) and are rewritten as records change. The version moves for the same reason.
		{from: 2, up: func(*bolt.Tx) error { return nil }},
	}
}

// Open opens (creating if needed) the database at path. A second opener of the same file waits at most
// o.Timeout and then gets ErrInUse naming the holder's pid. A damaged or foreign file gives ErrCorrupt, a newer
// schema ErrNewerSchema; both messages tell the user how to recover. Open runs bbolt's page-level consistency
// check, so a Store it returns is sound at the page level.
func Open(path string, lg *zap.Logger, o Options) (*Store, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	lg = lg.Named("state").With(zap.String("path", path))
	start := time.Now()
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
	}
	db, err := boltOpen(path, o)
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, inUse(path)
		case isIOError(err):
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
		return nil, corrupt(path, err)
	}
	s := &Store{db: db, path: path, lg: lg}
	if !o.ReadOnly {
		// Best effort: it only names the holder in a second opener's error.
		if err := os.WriteFile(path+pidSuffix, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
			lg.Warn("write pid file", zap.Error(err))
		} else {
			s.wrotePID = true
		}
	}
	v, err := s.prepare(o.ReadOnly)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.rw = !o.ReadOnly // prepare set metaOpen
	lg.Info("state opened", zap.Uint64("schema", v), zap.Duration("took", time.Since(start)))
	return s, nil
}

// boltOpen turns a panic inside bbolt (it panics on some damaged pages) into an error.
func boltOpen(path string, o Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("bbolt panicked: %v", r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        o.Timeout,
		ReadOnly:       o.ReadOnly,
		NoFreelistSync: false, // a synced freelist makes reopening after a crash cheap
		FreelistType:   bolt.FreelistMapType,
	})
}

// isIOError tells an environment problem (permissions, missing file, disk) from a damaged file: only the
// latter may be moved aside.
func isIOError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrChecksum) {
		return false
	}
	return errors.As(err, &pe) || errors.As(err, &errno)
}

func inUse(path string) error {
	pid := "unknown"
	if b, err := os.ReadFile(path + pidSuffix); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pid = strconv.Itoa(n)
		}
	}
	return fmt.Errorf("state database %s is %w (pid %s)", path, ErrInUse, pid)
}

func corrupt(path string, cause error) error {
	return fmt.Errorf("%w: %s: %w; %s", ErrCorrupt, path, cause, resyncHint)
}

// checkEvery bounds how long a database that is always closed cleanly goes without a page-level check.
const checkEvery = 7 * 24 * time.Hour

// prepare creates a new database's buckets, or checks and migrates an existing one, then runs bbolt's
// page-level check when it can tell something: after a holder that did not close (metaOpen found set), after
// a migration, for a read-only opener (it records nothing), or when the last check is older than checkEvery.
// The check reads every page (at 100,000 files about an eighth of a no-change pass's CPU); after a clean close
// bbolt's own meta-page checksums already guard the commit protocol, and the weekly check finds what the disk
// did to the file meanwhile.
func (s *Store) prepare(readOnly bool) (v uint64, err error) {
	check := true
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("bbolt panicked: %v", r))
		}
	}()
	if readOnly {
		err = s.db.View(func(tx *bolt.Tx) error {
			var err error
			v, err = s.schema(tx)
			if err == nil && v != SchemaVersion {
				err = fmt.Errorf("read-only: schema version %d needs a migration to %d; open it read-write once", v, SchemaVersion)
			}
			if err != nil {
				return err
			}
			return s.layout(tx)
		})
	} else {
		err = s.db.Update(func(tx *bolt.Tx) error {
			var err error
			if v, err = s.schema(tx); err != nil {
				return err
			}
			from := v
			if err := s.migrate(tx, &v); err != nil {
				return err
			}
			if err := s.layout(tx); err != nil {
				return err
			}
			meta := tx.Bucket(bucketMeta)
			last, _ := decodeUint(meta.Get([]byte(metaChecked)), "last check")
			fresh := time.Since(time.Unix(int64(last), 0)) < checkEvery
			if meta.Get([]byte(metaOpen)) == nil && from == v && fresh {
				check = false
			}
			s.unclean.Store(meta.Get([]byte(metaOpen)) != nil)
			return meta.Put([]byte(metaOpen), []byte{1})
		})
	}
	switch {
	case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNewerSchema):
		return v, err // these name the path and the fix already
	case err != nil: // e.g. disk full while creating the buckets: not damage, keep the file
		return v, fmt.Errorf("open state %s: %w", s.path, err)
	}
	if !check {
		return v, nil
	}
	s.checked = true
	if err := s.db.View(func(tx *bolt.Tx) error { return boltCheck(tx) }); err != nil {
		return v, corrupt(s.path, err)
	}
	if !readOnly {
		err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put([]byte(metaChecked), encodeUint(uint64(time.Now().Unix())))
		})
		if err != nil {
			return v, fmt.Errorf("open state %s: %w", s.path, err)
		}
	}
	return v, nil
}

// schema reads the version, initialising an empty database (a crash between bbolt's file creation and our
// first commit leaves one of those, so it is not treated as damage).
func (s *Store) schema(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return 0, corrupt(s.path, errors.New("no meta bucket"))
		}
		if !tx.Writable() {
			return 0, corrupt(s.path, errors.New("no meta bucket"))
		}
		if err := initBuckets(tx); err != nil {
			return 0, fmt.Errorf("create buckets: %w", err)
		}
		s.lg.Info("state created", zap.Int("schema", SchemaVersion))
		return SchemaVersion, nil
	}
	if string(meta.Get([]byte(metaMagic))) != magic {
		return 0, corrupt(s.path, errors.New("bad magic"))
	}
	raw := meta.Get([]byte(metaSchema))
	if raw == nil {
		return 0, corrupt(s.path, errors.New("no schema version"))
	}
	v, err := decodeUint(raw, "schema version")
	if err != nil || v == 0 {
		return 0, corrupt(s.path, fmt.Errorf("bad schema version %q", raw))
	}
	if v > SchemaVersion {
		return v, fmt.Errorf("%w: %s has version %d, this tandem reads up to %d: upgrade tandem, or %s",
			ErrNewerSchema, s.path, v, SchemaVersion, resyncHint)
	}
	return v, nil
}

// layout checks that every bucket of the current schema exists.
func (s *Store) layout(tx *bolt.Tx) error {
	if _, err := newTxn(tx); err != nil {
		return corrupt(s.path, err)
	}
	return nil
}

func initBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketLocal, bucketRemote, bucketBase, bucketJournal, bucketConflicts} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	ids, err := tx.CreateBucketIfNotExists(bucketIDs)
	if err != nil {
		return err
	}
	for _, name := range idsBuckets {
		if _, err := ids.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put([]byte(metaMagic), []byte(magic)); err != nil {
		return err
	}
	return meta.Put([]byte(metaSchema), encodeUint(SchemaVersion))
}

// migrate runs the migrations from *v up to SchemaVersion in the open transaction, so a crash leaves either
// the old or the new schema.
func (s *Store) migrate(tx *bolt.Tx, v *uint64) error {
	for *v < SchemaVersion {
		var m *migration
		for _, c := range migrations() {
			if c.from == *v {
				m = &c
				break
			}
		}
		if m == nil {
			return corrupt(s.path, fmt.Errorf("no migration from schema version %d", *v))
		}
		if err := m.up(tx); err != nil {
			return fmt.Errorf("migrate from schema version %d: %w", *v, err)
		}
		if _, err := bumpTreeGen(tx.Bucket(bucketMeta)); err != nil { // a migration may rewrite the trees
			return fmt.Errorf("migrate from schema version %d: %w", *v, err)
		}
		*v++
		if err := tx.Bucket(bucketMeta).Put([]byte(metaSchema), encodeUint(*v)); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", *v, err)
		}
		s.lg.Info("state migrated", zap.Uint64("schema", *v))
	}
	return nil
}

// Unclean reports whether the last read-write holder of the store ended without closing it (a crash, kill -9,
// a power loss), until Recovered is called. After a power loss the local disk may hold older content than the
// holder last saw, which the engine must not overwrite unseen (engine/DESIGN.md, "After an unclean end").
func (s *Store) Unclean() bool { return s.unclean.Load() }

// Recovered records that a pass after an unclean end completed: Unclean reports false from then on.
func (s *Store) Recovered() { s.unclean.Store(false) }

// Abandon releases the database and its lock the way a process that dies does, without recording a clean
// close: the next Open finds it Unclean (crash tests; a real program calls Close).
func (s *Store) Abandon() error {
	s.rw = false
	return s.db.Close()
}

// Close releases the database and its lock. Transactions must have finished.
func (s *Store) Close() error {
	if s.rw {
		s.rw = false
		// Best effort: a failure here only makes the next open run the page check.
		uerr := s.db.Update(func(tx *bolt.Tx) error {
			if meta := tx.Bucket(bucketMeta); meta != nil {
				return meta.Delete([]byte(metaOpen))
			}
			return nil
		})
		if uerr != nil {
			s.lg.Warn("could not mark the state closed; the next open checks every page", zap.Error(uerr))
		}
	}
	err := s.db.Close()
	if s.wrotePID {
		s.wrotePID = false
		_ = os.Remove(s.path + pidSuffix)
	}
	if err != nil {
		return fmt.Errorf("close state %s: %w", s.path, err)
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Reads is how many read transactions the store began since it opened (bbolt's count): a test's way to see that
// a walk reads the store once per batch of files, not once per file.
func (s *Store) Reads() int { return s.db.Stats().TxN }

// View runs fn in a read transaction: a consistent snapshot. Values fn receives stay valid after it returns.
// Keep it short: a long read transaction pins pages and grows the file under concurrent writes.
func (s *Store) View(fn func(Reader) error) error {
	var ferr error
	err := s.db.View(func(tx *bolt.Tx) error {
		t, err := newTxn(tx)
		if err != nil {
			return err
		}
		ferr = fn(t)
		return ferr
	})
	if err != nil && err != ferr {
		return fmt.Errorf("state %s: %w", s.path, err)
	}
	return err
}

// Update runs fn in one write transaction, committed (and fsynced) when fn returns nil and rolled back
// entirely otherwise; fn's error is returned as it is.
func (s *Store) Update(fn func(Writer) error) error {
	return s.write("update", s.db.Update, fn)
}

// Batch commits one of the engine's grouped commits: fn records every action that finished while the previous
// commit ran (engine/commit.go does the grouping, without bbolt's DB.Batch and its 10 ms timer). It is Update
// under failpoint names of its own (state.batch.*), so crash tests can kill inside a grouped commit.
func (s *Store) Batch(fn func(Writer) error) error {
	return s.write("batch", s.db.Update, fn)
}

// kind names the failpoints (the failpoints build only): state.<kind>.inside before fn runs, .beforeCommit
// after it succeeded and before bbolt commits, .afterCommit once the commit is on disk.
func (s *Store) write(kind string, run func(func(*bolt.Tx) error) error, fn func(Writer) error) error {
	var ferr error
	var written []remote.Path
	var gen uint64
	err := run(func(tx *bolt.Tx) error {
		if ferr = failpoint.Hit("state." + kind + ".inside"); ferr != nil {
			return ferr
		}
		t, err := newTxn(tx)
		if err != nil {
			ferr = err
			return err
		}
		if ferr = fn(t); ferr == nil && len(t.written) > 0 {
			if gen, ferr = bumpTreeGen(t.meta); ferr != nil {
				return ferr
			}
		}
		if ferr == nil {
			ferr = failpoint.Hit("state." + kind + ".beforeCommit")
		}
		if ferr == nil {
			written = t.written
		}
		return ferr
	})
	if err == nil && len(written) > 0 {
		if tr := s.tracking(); tr != nil {
			tr.add(gen, written)
		}
	}
	if err != nil && err != ferr {
		return fmt.Errorf("commit state %s: %w", s.path, err)
	}
	if err == nil {
		err = failpoint.Hit("state." + kind + ".afterCommit")
	}
	return err
}
