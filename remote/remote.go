// Package remote defines the one interface through which the engine reaches either side of a pair: the Remote.
// The local folder is a Remote too (remote/localdir), so one planner and one executor serve every provider.
package remote

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

// Sentinel errors. Providers wrap them (errors.Is must match) and keep their own detail in the wrapping error.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("changed since last seen") // precondition failed or name taken: keep both
	ErrUnavailable  = errors.New("temporarily refused")     // locked, policy or quota refusal: skip, retry later, report
	ErrUnauthorized = errors.New("not authorized")          // after the single refresh attempt
	ErrOutOfSync    = errors.New("change cursor out of sync")
	ErrInvalidName  = errors.New("invalid name")
	ErrNotEmpty     = errors.New("folder not empty")      // non-recursive folder delete found children
	ErrCorrupt      = errors.New("content hash mismatch") // a body did not match the digest it was promised
	ErrNoFeed       = errors.New("no durable change feed")
	ErrRootMissing  = errors.New("sync root missing") // the root vanished or lost its marker: a safety stop
	ErrDiskFull     = errors.New("disk full")         // a write ran out of space (ENOSPC, EDQUOT): the message says how much was needed and where
)

// Hash is a strong content digest. A zero Hash means "not known".
type Hash struct{ Algo, Hex string }

// IsZero reports whether the digest is unknown.
func (h Hash) IsZero() bool { return h.Hex == "" }

func (h Hash) String() string {
	if h.IsZero() {
		return "-"
	}
	return h.Algo + ":" + h.Hex
}

// Entry describes one file or folder on a side.
type Entry struct {
	Path    Path
	Dir     bool
	Size    int64
	ModTime time.Time
	// ID identifies the object across renames: a provider id, or "dev:ino" locally. Used for move detection only.
	ID string
	// Rev changes whenever the content (or, locally, the stat fingerprint) changes; preconditions compare it.
	Rev  string
	Hash Hash // zero when the side did not report one in this call
	// Incomplete marks a folder whose listing failed part way (unreadable, error page): what is stored below it
	// must be kept as it is, never taken as deleted.
	Incomplete bool
	// Skip, when set, says why this entry cannot be synced: a symlink, a special file, a name tandem cannot
	// hold. Walk and Changes emit such entries instead of leaving them out, because a path that is skipped
	// is never evidence that what the other side holds there was deleted: the engine keeps what it knows of
	// the path (and, matched by ID, of the object's former path) and reports the skip. Path is the printable
	// path (it may not be a valid Path when the name itself is the problem); Dir and ID are set where known.
	Skip string
	// Mode is the permission bits (0o777 part) where the side keeps them (localdir: the local side and dir:
	// remotes), 0 where it does not (cloud providers). The engine carries it only between two sides that keep
	// modes (ModeSetter).
	Mode fs.FileMode
}

// Precondition guards a mutation. The zero value is unconditional; Absent requires that nothing exists at the
// target; Rev requires that the target currently holds exactly that revision. A violated precondition returns an
// error matching ErrConflict and changes nothing.
type Precondition struct {
	Absent bool
	Rev    string
}

// Cursor is a provider's opaque change-feed position. The state store keeps it verbatim.
type Cursor []byte

// Change is one entry of a change feed. From is set when the provider reported a move.
type Change struct {
	Entry   Entry
	Deleted bool
	From    Path
}

// Batch is one answer of Changes. Persist Next only in the transaction that applies Changes.
type Batch struct {
	Changes []Change
	Next    Cursor
}

// Capabilities tells the engine what it may rely on.
type Capabilities struct {
	// Hashes lists the digest algorithms this side can report (in Entry.Hash or through Hasher), by preference.
	// Empty: the side has no content digest, so sameness is decided by comparing bytes.
	Hashes     []string
	ServerMove bool // Move is a server-side operation that keeps the ID
	Trash      bool // Delete keeps the content in a trash
	Feed       bool // Changes is a durable change feed; without it the engine walks the side every pass
	LongPoll   bool // Changes blocks until something happens or ctx ends
	FoldsCase  bool // "A" and "a" name the same object
	// NormalizesUnicode: names that differ only in Unicode normalisation (NFC "é" and NFD "e\u0301") name the
	// same object.
	NormalizesUnicode bool
	MTimeStep         time.Duration
	Parallel          int // useful number of concurrent transfers; 0 = the engine's default
}

// Remote is one side of a pair, rooted at the pair's folder. All paths are relative to that root.
// Implementations are safe for concurrent use.
type Remote interface {
	String() string // "pcloud:/Sync" for logs and status; never holds a secret
	Capabilities() Capabilities
	Stat(ctx context.Context, p Path) (Entry, error)
	// Walk calls fn for every entry below dir (Root for everything), parents before their children. An error
	// from fn stops the walk and is returned. A walk that fails part way returns an error: never treat the
	// entries it did not reach as deleted.
	Walk(ctx context.Context, dir Path, fn func(Entry) error) error
	Open(ctx context.Context, p Path) (io.ReadCloser, Entry, error)
	// Put stores body (size bytes) at p, atomically: readers see the old or the new content, never a part.
	// The parent folder must exist.
	Put(ctx context.Context, p Path, body io.Reader, size int64, mtime time.Time, pre Precondition) (Entry, error)
	Mkdir(ctx context.Context, p Path) (Entry, error) // an existing folder is success
	Move(ctx context.Context, from, to Path, pre Precondition) (Entry, error)
	// Delete removes a file, or an empty folder (ErrNotEmpty otherwise), to the side's trash where it has one.
	Delete(ctx context.Context, p Path, pre Precondition) error
	// Head returns a cursor for "now"; take it before a full Walk so nothing falls between.
	Head(ctx context.Context) (Cursor, error)
	// Changes reports what happened after cur; it may long-poll until ctx ends. ErrOutOfSync: cur is dead, the
	// caller does Head + Walk. ErrNoFeed where Capabilities().Feed is false.
	Changes(ctx context.Context, cur Cursor) (Batch, error)
	Close() error
}

// Hasher is implemented by sides that can produce a strong digest of a file on request (localdir hashes the
// bytes; pCloud asks checksumfile). The returned Entry is the state the digest belongs to.
type Hasher interface {
	HashOf(ctx context.Context, p Path, algo string) (Hash, Entry, error)
}

// ModeSetter is implemented by sides that keep permission bits (Entry.Mode). Chmod sets p's permission bits
// to mode (only its 0o777 part) if p still holds pre's revision, and returns the new Entry (a chmod moves a local
// file's ctime, so its Rev).
type ModeSetter interface {
	Chmod(ctx context.Context, p Path, mode fs.FileMode, pre Precondition) (Entry, error)
}

// RootChecker is implemented by sides that can tell a vanished or unmounted root from an empty one. The engine
// calls CheckRoot before every pass that has a base, and InitRoot on a first sync.
type RootChecker interface {
	// CheckRoot returns an error wrapping ErrRootMissing, with the reason, when the root or its marker is gone.
	CheckRoot(ctx context.Context) error
	// InitRoot creates the root (where the side allows it) and its marker.
	InitRoot(ctx context.Context) error
}

type longPollKey struct{}

// WithLongPoll marks ctx so that Changes on a LongPoll side may block until something happens or ctx ends.
// Without it Changes answers at once (a `tandem once` pass must not wait for news).
func WithLongPoll(ctx context.Context) context.Context {
	return context.WithValue(ctx, longPollKey{}, true)
}

// LongPollAllowed reports whether Changes may block under ctx.
func LongPollAllowed(ctx context.Context) bool {
	v, _ := ctx.Value(longPollKey{}).(bool)
	return v
}

// Syncer is implemented by sides where a file written by someone else may still sit in a volatile cache (a
// local disk). Sync makes the content of p and its name durable, so that a sync point recorded afterwards cannot
// be undone by a power loss (an upload's base must not outlive the local bytes it describes).
type Syncer interface {
	Sync(ctx context.Context, p Path) error
}

// ExactChanger is a side whose files' ctime moves with every change made after it was read (Linux 6.13's
// multigrain timestamps on ext4, xfs, btrfs and tmpfs): a fingerprint read after the content was established
// then vouches for that content at once, with no racy window. ExactChange reports whether that was observed to
// hold here (false: not known, and the engine keeps its racy window).
type ExactChanger interface {
	ExactChange() bool
}

// ObservedSyncer is a Syncer that can count a sync it made since the last NewSyncEpoch (SyncEpocher) for a file
// the caller observed before the epoch at revision rev and that has not changed since: SyncObserved makes it
// durable, waiting on no sync of its own where one already covers it. now is the caller's fresh Stat of p on
// this side, which spares the side its own (the zero Entry: the side stats p).
type ObservedSyncer interface {
	SyncObserved(ctx context.Context, p Path, rev string, now Entry) error
}

// OpenEntrier is a body returned by Open that can describe the file it reads (its Entry now, through the open
// descriptor): a change made to that file since it was opened moves the Rev, without resolving its path again.
type OpenEntrier interface {
	OpenEntry() (Entry, error)
}

// Batcher is a side whose writes cost less in a batch (a local folder's shared syncfs): BeginBatch announces n
// writes about to run, and the returned func ends the announcement.
type Batcher interface {
	BeginBatch(n int) (end func())
}

// SyncEpocher is a Syncer that can count an fsync it already made for a later caller. NewSyncEpoch says that
// everything the caller will ask to make durable was observed before the call (the engine calls it between a
// round's observation and its actions); a folder fsynced after it, and unchanged since, then needs no second
// fsync for those entries.
type SyncEpocher interface {
	NewSyncEpoch()
}
