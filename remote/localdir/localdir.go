// Package localdir makes a directory a remote.Remote: the local side of every pair and the `dir:` provider.
//
// All access goes through an FS (production: os.Root; simulation: fakefs), so nothing outside the root is ever
// touched and symlinks are never followed. Writes follow the durable write protocol of RELIABILITY.md: a temp
// file in the target folder, fsync, mtime, precondition re-check, rename, fsync of the folder and those above it.
package localdir

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// Options tunes a Dir. The zero value is a valid default.
type Options struct {
	Clock clockwork.Clock // trash batch names; default the real clock
	Hash  string          // digest Put reports; default "sha256"
	// Rand names temp files; seeded in simulation, crypto/rand by default.
	Rand func() uint64
	// Skip reports ignored paths; Walk neither emits nor descends into them, and nothing is reported.
	Skip func(p remote.Path, dir bool) bool
	// OnSkip is told about entries Walk leaves out that the user may care about: symlinks, special files,
	// invalid names, unreadable entries. p is printable (escaped). Default: logged at Info.
	OnSkip func(p string, reason string)
	Label  string // String(); default "dir:<path>" for Open, "localdir" for New
	// SyncFSBatch is the fewest writes in flight at which they share one filesystem-wide sync instead of each
	// fsyncing its file and folders (fsbarrier.go), where the FS offers one (FSSyncer). 0: 8; negative: never.
	SyncFSBatch int
}

const defaultSyncFSBatch = 8

// Dir is a directory as a remote.Remote. Safe for concurrent use.
type Dir struct {
	lg       *zap.Logger
	fs       FS
	o        Options
	rootPath string    // set by Open: lets CheckRoot notice a root that was replaced or unmounted under us
	closer   io.Closer // the os.Root Open created
	trashMu  sync.Mutex
	fsyncs   groupSync // folder fsyncs shared between concurrent writers
	bar      *fsBarrier
	barMark  atomic.Uint64 // bar.mark() at the last NewSyncEpoch (SyncObserved)
	dev      uint64        // the root's filesystem, the one bar's syncfs covers
	// session names the temp files of Puts (SetTempSession): the engine journals it before any of them is
	// created, so a crash sweep removes only tandem's own files, never a user's file that looks like one.
	session atomic.Value // string
	// canUnnamed's probe result: 0 not yet known, 1 yes, 2 no; unnamedMu serialises the probe
	unnamed   atomic.Int32
	unnamedMu sync.Mutex
	// ExactChange's probe result, once it ran
	exactMu    sync.Mutex
	exactKnown bool
	exact      bool
	// tempDirty: folders where a failed Put's temp removal, or the fsync after it, failed (TempLeft, CleanTemp)
	tempMu    sync.Mutex
	tempDirty map[string]bool
}

var (
	_ remote.Remote      = (*Dir)(nil)
	_ remote.Hasher      = (*Dir)(nil)
	_ remote.RootChecker = (*Dir)(nil)
	_ remote.ModeSetter  = (*Dir)(nil)
)

// trashLayout names one Delete batch folder in .tandem/trash (UTC, so it sorts and parses the same everywhere).
const trashLayout = "20060102-150405"

// Paths of tandem's own files, relative to the root.
const (
	trashDir   = remote.ReservedDir + "/trash"
	markerFile = remote.ReservedDir + "/MARKER"
)

// New returns a Dir over fsys.
func New(lg *zap.Logger, fsys FS, o Options) *Dir {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Hash == "" {
		o.Hash = "sha256"
	}
	if o.Rand == nil {
		o.Rand = cryptoRand
	}
	if o.Label == "" {
		o.Label = "localdir"
	}
	d := &Dir{lg: lg.Named("localdir"), fs: fsys, o: o}
	d.fsyncs.stat = fsys.Lstat
	min := cmp.Or(o.SyncFSBatch, defaultSyncFSBatch)
	var syncfs func() error
	if s, ok := fsys.(FSSyncer); ok && min > 0 {
		if fi, err := fsys.Lstat("."); err == nil {
			syncfs, d.dev = s.SyncFS, fi.Dev
		}
	}
	d.bar = newFSBarrier(syncfs, min)
	if d.o.OnSkip == nil {
		d.o.OnSkip = func(p, reason string) { d.lg.Info("skipped", zap.String("path", p), zap.String("reason", reason)) }
	}
	return d
}

// Open opens the existing directory path as a Dir; Close releases it. A missing path is an error that names it
// and wraps remote.ErrRootMissing and fs.ErrNotExist.
func Open(lg *zap.Logger, path string, o Options) (*Dir, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: open %s: %w", remote.ErrRootMissing, path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if o.Label == "" {
		o.Label = "dir:" + path
	}
	d := New(lg, OSFS(r), o)
	d.rootPath, d.closer = path, r
	return d, nil
}

func cryptoRand() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return binary.LittleEndian.Uint64(b[:])
}

func (d *Dir) String() string { return d.o.Label }

// Capabilities: every digest on request, the preferred one first; moves keep the inode; deletes go to the trash.
func (d *Dir) Capabilities() remote.Capabilities {
	hs := []string{d.o.Hash}
	for _, h := range []string{"sha256", "sha1", "md5"} {
		if h != d.o.Hash {
			hs = append(hs, h)
		}
	}
	// Parallel: a local write is bound by the latency of making it durable, not by bandwidth, so many in flight
	// overlap the waits, and with a batch in flight they share one syncfs (fsBarrier): the more in flight, the
	// fewer syncs. A first sync of 10,000 small files on a fresh ext4 (2 cores): 7.4-8.4 s with 16 and fsyncs
	// per file; with the shared syncfs 4.1-5.2 s with 64, 3.7-4.0 s with 128, 3.2-3.6 s with 256, 3.7-4.0 s with
	// 512. 128, not 256: a USB disk or a NAS seeks between the sources read at once. A Put that has written its
	// bytes yields its slot while it waits on the syncs (remote.Yield), so more writes share each syncfs without
	// more sources read at once.
	return remote.Capabilities{Hashes: hs, ServerMove: true, Trash: true, MTimeStep: time.Nanosecond, Parallel: 128}
}

// Close releases the root opened by Open; a Dir from New leaves its FS to the caller.
func (d *Dir) Close() error {
	if d.closer == nil {
		return nil
	}
	return d.closer.Close()
}

// Head is nil: a directory has no durable feed, the engine walks it every pass.
func (d *Dir) Head(ctx context.Context) (remote.Cursor, error) { return nil, ctx.Err() }

// Changes always fails with remote.ErrNoFeed.
func (d *Dir) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	return remote.Batch{}, fmt.Errorf("%s: %w", d.o.Label, remote.ErrNoFeed)
}

// name validates p again (a Path can be built by a plain conversion) and returns its FS name.
func name(p remote.Path) (string, error) {
	q, err := remote.ParsePath(string(p))
	if err != nil {
		return "", err
	}
	if q == remote.Root {
		return ".", nil
	}
	return string(q), nil
}

// wrap adds the operation and path, and makes a missing file match remote.ErrNotFound too.
func wrap(op string, p remote.Path, err error) error {
	if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("%s %s: %w: %w", op, p.Quoted(), remote.ErrNotFound, err)
	}
	return fmt.Errorf("%s %s: %w", op, p.Quoted(), err)
}

func conflict(op string, p remote.Path, why string) error {
	return fmt.Errorf("%s %s: %w: %s", op, p.Quoted(), remote.ErrConflict, why)
}

// rev is the stat fingerprint preconditions compare: a rewrite changes size, mtime, ctime or (replaced file)
// inode; one that puts size and mtime back (touch -r) still moves the ctime.
func rev(fi FileInfo) string { return fingerprint(fi).Rev() }

func fingerprint(fi FileInfo) remote.Fingerprint {
	return remote.Fingerprint{Size: fi.Size, MTime: fi.ModTime.UnixNano(), CTime: fi.CTime, Inode: fi.Ino}
}

func id(fi FileInfo) string {
	if fi.Ino == 0 {
		return "" // unknown on this platform: no move detection rather than false ones
	}
	var b [2*20 + 1]byte
	s := strconv.AppendUint(b[:0], fi.Dev, 10)
	return string(strconv.AppendUint(append(s, ':'), fi.Ino, 10))
}

// onDev tells whether id (made by id) names a file on filesystem dev: the syncfs of the root's filesystem
// covers only those.
func onDev(id string, dev uint64) bool {
	d, _, ok := strings.Cut(id, ":")
	return ok && d == strconv.FormatUint(dev, 10)
}

// entry describes fi at p. Folders carry no ModTime or Rev: they change with every child and have no content.
func entry(p remote.Path, fi FileInfo) remote.Entry {
	e := remote.Entry{Path: p, ID: id(fi), Mode: fi.Mode.Perm()}
	if fi.IsDir() {
		e.Dir = true
		return e
	}
	e.Size, e.ModTime, e.Rev = fi.Size, fi.ModTime, rev(fi)
	return e
}

// kind names what a non-synced entry is, for reports and errors.
func kind(fi FileInfo) string {
	switch {
	case fi.IsSymlink():
		return "symlink (not followed)"
	case fi.IsDir(), fi.IsRegular():
		return ""
	}
	return "special file (" + fi.Mode.Type().String() + ")"
}

func isTemp(name string) bool {
	return strings.HasPrefix(name, remote.TempPrefix) && strings.HasSuffix(name, remote.TempSuffix)
}

// tempOf reports whether name is a temp file of session: .tandem-<session>-<16 hex>.part.
func tempOf(name, session string) bool {
	return session != "" && strings.HasPrefix(name, remote.TempPrefix+session+"-") && strings.HasSuffix(name, remote.TempSuffix)
}

// swapSuffix ends the name a replacing Put gives its complete temp file just before the swap (exchangeInto):
// from then until the Put ends, that name holds either tandem's file or the one swapped out, which may be a
// change the user made at the last moment. CleanTemp moves such a file to the trash, never removes it.
const swapSuffix = ".swap"

// swapOf reports whether name is a swap file of session: .tandem-<session>-<16 hex>.swap.
func swapOf(name, session string) bool {
	return session != "" && strings.HasPrefix(name, remote.TempPrefix+session+"-") && strings.HasSuffix(name, swapSuffix)
}

// SetTempSession names the temp files of later Puts .tandem-<s>-<16 hex>.part ("": .tandem-<16 hex>.part).
// The engine records s in its journal before any transfer, and CleanTemp(s) after a crash removes exactly those
// files (and trashes the session's swap files). s must be a short run of letters and digits.
func (d *Dir) SetTempSession(s string) { d.session.Store(s) }

func (d *Dir) tempSession() string {
	s, _ := d.session.Load().(string)
	return s
}

// stat is Lstat of a validated path that must be a file or folder: anything else is not ours to touch.
func (d *Dir) stat(op string, p remote.Path) (FileInfo, error) {
	n, err := name(p)
	if err != nil {
		return FileInfo{}, fmt.Errorf("%s: %w", op, err)
	}
	fi, err := d.fs.Lstat(n)
	if err != nil {
		return FileInfo{}, wrap(op, p, err)
	}
	if k := kind(fi); k != "" {
		return fi, fmt.Errorf("%s %s: %w: %s", op, p.Quoted(), remote.ErrUnavailable, k)
	}
	return fi, nil
}

// Stat describes p; Root is the root folder. A symlink or special file is remote.ErrUnavailable: never synced.
func (d *Dir) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return remote.Entry{}, err
	}
	fi, err := d.stat("stat", p)
	if err != nil {
		return remote.Entry{}, err
	}
	return entry(p, fi), nil
}

// Open returns the content of file p and its Entry, taken from the open file.
func (d *Dir) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, remote.Entry{}, err
	}
	f, fi, err := d.openFile("open", p)
	if err != nil {
		return nil, remote.Entry{}, err
	}
	return openBody{f, p}, entry(p, fi), nil
}

var _ remote.OpenEntrier = openBody{}

// openBody is what Open returns: the open file, which describes itself through its descriptor (fstat).
type openBody struct {
	File
	p remote.Path
}

// OpenEntry is the Entry of the file being read, whatever is at its path now: a change to it since it was
// opened moves its Rev; a file renamed over its path meanwhile does not (a Stat of the path tells that).
func (b openBody) OpenEntry() (remote.Entry, error) {
	fi, err := b.File.Stat()
	if err != nil {
		return remote.Entry{}, wrap("stat", b.p, err)
	}
	return entry(b.p, fi), nil
}

// openFile opens regular file p after an Lstat, and checks the open file is the one stat'ed (os.Root follows a
// symlink swapped in meanwhile, inside the root only, but we never want its target). Where the FS opens without
// following symlinks (NoFollowOpener), it opens first and the open file's stat says what it is: a regular file
// is returned at once; anything else (a failed open, a folder, a special file) takes the Lstat way, whose errors
// say what is there.
func (d *Dir) openFile(op string, p remote.Path) (File, FileInfo, error) {
	if f, fi, ok := d.openRegular(p); ok {
		return f, fi, nil
	}
	fi, err := d.stat(op, p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	if fi.IsDir() {
		return nil, FileInfo{}, fmt.Errorf("%s %s: is a folder", op, p.Quoted())
	}
	n, _ := name(p)
	f, err := d.fs.Open(n)
	if err != nil {
		return nil, FileInfo{}, wrap(op, p, err)
	}
	ofi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, FileInfo{}, wrap(op, p, err)
	}
	if !ofi.IsRegular() || ofi.Ino != fi.Ino || ofi.Dev != fi.Dev {
		f.Close()
		return nil, FileInfo{}, conflict(op, p, "replaced while opening")
	}
	return f, ofi, nil
}

// openRegular opens p in one path resolution where the FS can (NoFollowOpener) and returns it when the open file
// is a regular one; ok is false otherwise, with nothing left open.
func (d *Dir) openRegular(p remote.Path) (File, FileInfo, bool) {
	o, can := d.fs.(NoFollowOpener)
	if !can {
		return nil, FileInfo{}, false
	}
	n, err := name(p)
	if err != nil {
		return nil, FileInfo{}, false
	}
	f, err := o.OpenNoFollow(n)
	if err != nil {
		return nil, FileInfo{}, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.IsRegular() {
		f.Close()
		return nil, FileInfo{}, false
	}
	return f, fi, true
}

// HashOf digests file p with algo. The Entry is the stat before reading; a file that changed while it was read
// gives an error wrapping remote.ErrConflict, so a digest never describes content that was not there.
func (d *Dir) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	if err := ctx.Err(); err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	h, err := remote.NewDigest(algo)
	if err != nil {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: %w", p.Quoted(), err)
	}
	f, fi, err := d.openFile("hash", p)
	if err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	_, err = copyBuffered(h, ctxReader{ctx, f})
	var after FileInfo
	if err == nil {
		// The open file's stat, not the path's: the digest describes this file's bytes, and a write to it
		// while it was read moved its ctime. A file renamed over p meanwhile is another inode, which the next
		// look at p tells from this one (one path resolution fewer per file hashed).
		after, err = f.Stat()
	}
	f.Close()
	if err != nil {
		return remote.Hash{}, remote.Entry{}, wrap("hash", p, err)
	}
	if rev(after) != rev(fi) {
		return remote.Hash{}, remote.Entry{}, conflict("hash", p, "changed while hashing")
	}
	return remote.Sum(algo, h), entry(p, fi), nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
