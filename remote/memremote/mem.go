// Package memremote is an in-memory remote.Remote with an injected clock: the simulation's remote side and the
// engine tests' fast double. It models what the engine relies on in a real provider: stable ids across moves,
// a revision per write, content digests, a trash, and a change feed with a bounded history. Driver helpers
// (WriteFile, Rename, Remove, ...) let a test act as "another client"; they go through the same code and feed.
package memremote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote"
)

// Options configures a store. The zero value is a sha256 store with unlimited history.
type Options struct {
	Hash   string // digest reported in entries: "sha256" (default), "sha1" or "md5"
	NoHash bool   // report no digest at all, like vBoxx: the engine must compare bytes
	// HistoryLimit is the number of feed events kept; a cursor older than the oldest kept event gets
	// ErrOutOfSync. 0 keeps everything (until Compact).
	HistoryLimit int
	// PageSize caps the changes in one Batch so callers exercise paging; 0 answers everything at once.
	PageSize int
	// MTimeStep truncates stored mtimes (pCloud keeps seconds); 0 keeps them to the nanosecond.
	MTimeStep time.Duration
	// FoldsCase makes names that differ only in case name one object, as on vBoxx: a write or mkdir under
	// another spelling reaches the existing object and keeps its name, and a rename to a spelling of the same
	// name is refused as a taken target (the least helpful reading; some servers allow it).
	FoldsCase bool
	// NormalizesUnicode makes names that differ only in Unicode normalisation (NFC/NFD) name one object.
	NormalizesUnicode bool
	Label             string // String() is "mem:" + Label
}

// TrashItem is a file that Delete moved to the trash.
type TrashItem struct {
	Path remote.Path
	Data []byte
	At   time.Time
}

// Mem is one client handle on a store. Handles made with Handle share the store, as two clients of one account
// do. Safe for concurrent use: one mutex guards the whole store.
type Mem struct{ s *store }

// New returns a handle on a new, empty store.
func New(clk clockwork.Clock, o Options) *Mem {
	algo := o.Hash
	switch {
	case o.NoHash:
		algo = ""
	case algo == "":
		algo = "sha256"
	}
	if _, err := remote.NewDigest(algo); algo != "" && err != nil {
		// A misspelt algorithm is a bug in the test that builds the store, not a runtime condition.
		panic(fmt.Sprintf("memremote: %v", err))
	}
	s := &store{clk: clk, o: o, algo: algo, nodes: map[remote.Path]*node{}}
	s.nodes[remote.Root] = &node{dir: true, id: s.newID(), rev: s.newRev(), mtime: clk.Now()}
	return &Mem{s: s}
}

// Handle returns another client on the same store.
func (m *Mem) Handle() *Mem { return &Mem{s: m.s} }

var (
	_ remote.Remote      = (*Mem)(nil)
	_ remote.Hasher      = (*Mem)(nil)
	_ remote.RootChecker = (*Mem)(nil)
)

type node struct {
	dir   bool
	data  []byte // never modified in place: a write replaces the slice, so readers may keep the old one
	id    string
	rev   string
	mtime time.Time
	hash  remote.Hash
}

type event struct {
	seq uint64
	at  time.Time
	c   remote.Change
}

type store struct {
	clk  clockwork.Clock
	o    Options
	algo string

	mu      sync.Mutex
	nodes   map[remote.Path]*node
	lastID  uint64
	lastRev uint64
	seq     uint64  // sequence number of the newest event
	floor   uint64  // cursors below floor are out of sync: the events after them were dropped
	events  []event // seq order, all > floor
	trash   []TrashItem
	noRoot  bool
}

// ids and revisions come from counters that never repeat in a store, so a stale Rev from a deleted file can
// never match a new file that happens to get the same path.
func (s *store) newID() string  { s.lastID++; return "m" + strconv.FormatUint(s.lastID, 10) }
func (s *store) newRev() string { s.lastRev++; return strconv.FormatUint(s.lastRev, 10) }

func (s *store) entry(p remote.Path, n *node) remote.Entry {
	e := remote.Entry{Path: p, Dir: n.dir, ModTime: n.mtime, ID: n.id, Rev: n.rev}
	if !n.dir {
		e.Size = int64(len(n.data))
		e.Hash = n.hash
	}
	return e
}

func (s *store) emit(c remote.Change) {
	s.seq++
	s.events = append(s.events, event{seq: s.seq, at: s.clk.Now(), c: c})
	if lim := s.o.HistoryLimit; lim > 0 && len(s.events) > lim {
		drop := len(s.events) - lim
		s.floor = s.events[drop-1].seq
		s.events = slices.Delete(s.events, 0, drop)
	}
}

// checkPath validates every component, so a Path that bypassed ParsePath ("../x") is refused here too.
func checkPath(op string, p remote.Path) error {
	if p == remote.Root {
		return nil
	}
	if len(p) > remote.MaxPathBytes {
		return fmt.Errorf("%s %s: %w: path too long", op, p.Quoted(), remote.ErrInvalidName)
	}
	for _, c := range strings.Split(string(p), "/") {
		if err := remote.ValidName(c); err != nil {
			return fmt.Errorf("%s %s: %w", op, p.Quoted(), err)
		}
	}
	return nil
}

// checkTarget validates a path that is about to be written: not the root, and its parent is a folder.
func (s *store) checkTarget(op string, p remote.Path) error {
	if err := checkPath(op, p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("%s root: %w: the root itself cannot be written", op, remote.ErrInvalidName)
	}
	if parent, ok := s.nodes[p.Dir()]; !ok || !parent.dir {
		return fmt.Errorf("%s %s: parent folder: %w", op, p.Quoted(), remote.ErrNotFound)
	}
	return nil
}

func checkPre(op string, p remote.Path, n *node, pre remote.Precondition) error {
	switch {
	case pre.Absent && n != nil:
		return fmt.Errorf("%s %s: %w: exists", op, p.Quoted(), remote.ErrConflict)
	case pre.Rev != "" && n == nil:
		return fmt.Errorf("%s %s: %w: gone, want rev %s", op, p.Quoted(), remote.ErrConflict, pre.Rev)
	case pre.Rev != "" && n.rev != pre.Rev:
		return fmt.Errorf("%s %s: %w: rev %s, want %s", op, p.Quoted(), remote.ErrConflict, n.rev, pre.Rev)
	}
	return nil
}

func ctxErr(ctx context.Context, op string, p remote.Path) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, p.Quoted(), err)
	}
	return nil
}

func (m *Mem) String() string { return "mem:" + m.s.o.Label }

// Capabilities: a provider with everything the engine can use, except long-poll (the simulation drives polls).
func (m *Mem) Capabilities() remote.Capabilities {
	c := remote.Capabilities{ServerMove: true, Trash: true, Feed: true, MTimeStep: m.s.o.MTimeStep,
		FoldsCase: m.s.o.FoldsCase, NormalizesUnicode: m.s.o.NormalizesUnicode}
	if c.MTimeStep == 0 {
		c.MTimeStep = time.Nanosecond
	}
	if m.s.algo != "" {
		c.Hashes = []string{m.s.algo}
	}
	return c
}

func (m *Mem) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := ctxErr(ctx, "stat", p); err != nil {
		return remote.Entry{}, err
	}
	if err := checkPath("stat", p); err != nil {
		return remote.Entry{}, err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p = s.res(p)
	n, ok := s.nodes[p]
	if !ok {
		return remote.Entry{}, fmt.Errorf("stat %s: %w", p.Quoted(), remote.ErrNotFound)
	}
	return s.entry(p, n), nil
}

// Walk takes a sorted snapshot under the lock and calls fn outside it, so fn may call back into the store.
// Sorted bytewise, a parent (a prefix) always comes before its children.
func (m *Mem) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	if err := checkPath("walk", dir); err != nil {
		return err
	}
	s := m.s
	s.mu.Lock()
	dir = s.res(dir)
	n, ok := s.nodes[dir]
	if !ok || !n.dir {
		s.mu.Unlock()
		return fmt.Errorf("walk %s: folder: %w", dir.Quoted(), remote.ErrNotFound)
	}
	var list []remote.Entry
	for p, n := range s.nodes {
		if p != dir && p.Within(dir) {
			list = append(list, s.entry(p, n))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b remote.Entry) int { return strings.Compare(string(a.Path), string(b.Path)) })
	for _, e := range list {
		if err := ctxErr(ctx, "walk", dir); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mem) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := ctxErr(ctx, "open", p); err != nil {
		return nil, remote.Entry{}, err
	}
	if err := checkPath("open", p); err != nil {
		return nil, remote.Entry{}, err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p = s.res(p)
	n, ok := s.nodes[p]
	switch {
	case !ok:
		return nil, remote.Entry{}, fmt.Errorf("open %s: %w", p.Quoted(), remote.ErrNotFound)
	case n.dir:
		return nil, remote.Entry{}, fmt.Errorf("open %s: is a folder: %w", p.Quoted(), remote.ErrConflict)
	}
	return io.NopCloser(bytes.NewReader(n.data)), s.entry(p, n), nil
}

// Put reads the whole body before taking the lock and checks the precondition only then, at the moment of the
// swap, as a provider does at commit: a body that fails part way stores nothing.
func (m *Mem) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	if err := checkPath("upload", p); err != nil {
		return remote.Entry{}, err
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return remote.Entry{}, fmt.Errorf("upload %s: %w", p.Quoted(), err)
	}
	if size >= 0 && int64(len(data)) != size {
		return remote.Entry{}, fmt.Errorf("upload %s: %w: got %d bytes, want %d", p.Quoted(), remote.ErrCorrupt, len(data), size)
	}
	if err := ctxErr(ctx, "upload", p); err != nil {
		return remote.Entry{}, err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(p, data, mtime, pre)
}

func (s *store) write(p remote.Path, data []byte, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	p = s.res(p)
	if err := s.checkTarget("upload", p); err != nil {
		return remote.Entry{}, err
	}
	old := s.nodes[p]
	if err := checkPre("upload", p, old, pre); err != nil {
		return remote.Entry{}, err
	}
	if old != nil && old.dir {
		return remote.Entry{}, fmt.Errorf("upload %s: %w: a folder has that name", p.Quoted(), remote.ErrConflict)
	}
	if mtime.IsZero() {
		mtime = s.clk.Now()
	}
	if step := s.o.MTimeStep; step > 0 {
		mtime = mtime.Truncate(step)
	}
	n := &node{data: data, rev: s.newRev(), mtime: mtime.Round(0)} // Round(0): no monotonic reading in state
	if old != nil {
		n.id = old.id // an overwrite is the same object with a new revision
	} else {
		n.id = s.newID()
	}
	if s.algo != "" {
		h, _ := remote.NewDigest(s.algo) // the algorithm was checked in New
		h.Write(data)
		n.hash = remote.Sum(s.algo, h)
	}
	s.nodes[p] = n
	e := s.entry(p, n)
	s.emit(remote.Change{Entry: e})
	return e, nil
}

// Mkdir on an existing folder returns it without a feed event: nothing changed.
func (m *Mem) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := ctxErr(ctx, "mkdir", p); err != nil {
		return remote.Entry{}, err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mkdir(p)
}

func (s *store) mkdir(p remote.Path) (remote.Entry, error) {
	p = s.res(p)
	if err := s.checkTarget("mkdir", p); err != nil {
		return remote.Entry{}, err
	}
	if n, ok := s.nodes[p]; ok {
		if n.dir {
			return s.entry(p, n), nil
		}
		return remote.Entry{}, fmt.Errorf("mkdir %s: %w: a file has that name", p.Quoted(), remote.ErrConflict)
	}
	n := &node{dir: true, id: s.newID(), rev: s.newRev(), mtime: s.clk.Now().Round(0)}
	s.nodes[p] = n
	e := s.entry(p, n)
	s.emit(remote.Change{Entry: e})
	return e, nil
}

// Move never replaces: a taken target is ErrConflict whatever pre says. pre.Rev guards the source.
func (m *Mem) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if err := ctxErr(ctx, "move", from); err != nil {
		return remote.Entry{}, err
	}
	if err := checkPath("move", from); err != nil {
		return remote.Entry{}, err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.move(from, to, remote.Precondition{Rev: pre.Rev})
}

func (s *store) move(from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	if from == remote.Root {
		return remote.Entry{}, fmt.Errorf("move root: %w: the root cannot move", remote.ErrInvalidName)
	}
	if err := s.checkTarget("move", to); err != nil {
		return remote.Entry{}, err
	}
	from = s.res(from)
	to = child(s.res(to.Dir()), to.Base())
	n, ok := s.nodes[from]
	if !ok {
		return remote.Entry{}, fmt.Errorf("move %s: %w", from.Quoted(), remote.ErrNotFound)
	}
	if err := checkPre("move", from, n, pre); err != nil {
		return remote.Entry{}, err
	}
	if _, taken := s.nodes[s.res(to)]; taken { // a folding store: also another spelling, the source's own included
		return remote.Entry{}, fmt.Errorf("move %s to %s: %w: target exists", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	if to.Within(from) {
		return remote.Entry{}, fmt.Errorf("move %s into itself (%s): %w", from.Quoted(), to.Quoted(), remote.ErrConflict)
	}
	var sub []remote.Path
	for p := range s.nodes {
		if p.Within(from) {
			sub = append(sub, p)
		}
	}
	for _, p := range sub {
		s.nodes[p.Rebase(from, to)] = s.nodes[p]
		delete(s.nodes, p)
	}
	// A move keeps id and revision: the content did not change. One event for the subtree, as providers send.
	e := s.entry(to, n)
	s.emit(remote.Change{Entry: e, From: from})
	return e, nil
}

// Delete moves a file's bytes to the trash; a folder must be empty.
func (m *Mem) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	if err := ctxErr(ctx, "delete", p); err != nil {
		return err
	}
	if err := checkPath("delete", p); err != nil {
		return err
	}
	if p == remote.Root {
		return fmt.Errorf("delete root: %w: the root cannot be deleted", remote.ErrInvalidName)
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p = s.res(p)
	n, ok := s.nodes[p]
	if !ok {
		return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrNotFound)
	}
	if err := checkPre("delete", p, n, pre); err != nil {
		return err
	}
	if n.dir && s.hasChildren(p) {
		return fmt.Errorf("delete %s: %w", p.Quoted(), remote.ErrNotEmpty)
	}
	if !n.dir {
		s.trash = append(s.trash, TrashItem{Path: p, Data: n.data, At: s.clk.Now()})
	}
	s.remove(p)
	return nil
}

func (s *store) hasChildren(dir remote.Path) bool {
	for p := range s.nodes {
		if p != dir && p.Within(dir) {
			return true
		}
	}
	return false
}

// remove drops one node and emits its delete.
func (s *store) remove(p remote.Path) {
	e := s.entry(p, s.nodes[p])
	delete(s.nodes, p)
	s.emit(remote.Change{Entry: e, Deleted: true})
}

// child is dir/name for names already validated (checkPath).
func child(dir remote.Path, name string) remote.Path {
	if dir == remote.Root {
		return remote.Path(name)
	}
	return dir + "/" + remote.Path(name)
}

// res maps p to the spelling the store holds, component by component, on a store that folds names; components
// that match nothing keep the caller's spelling. A store that does not fold returns p.
func (s *store) res(p remote.Path) remote.Path {
	fold := remote.FoldName(remote.Capabilities{FoldsCase: s.o.FoldsCase, NormalizesUnicode: s.o.NormalizesUnicode})
	if fold == nil || p == remote.Root {
		return p
	}
	if _, ok := s.nodes[p]; ok {
		return p
	}
	cur := remote.Root
	for _, c := range strings.Split(string(p), "/") {
		next := child(cur, c)
		if _, ok := s.nodes[next]; !ok {
			f := fold(c)
			for q := range s.nodes {
				if q != remote.Root && q.Dir() == cur && fold(q.Base()) == f {
					next = q
					break
				}
			}
		}
		cur = next
	}
	return cur
}

func encodeCursor(seq uint64) remote.Cursor { return remote.Cursor(strconv.FormatUint(seq, 10)) }

func (m *Mem) Head(ctx context.Context) (remote.Cursor, error) {
	if err := ctxErr(ctx, "head", remote.Root); err != nil {
		return nil, err
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return encodeCursor(m.s.seq), nil
}

func (m *Mem) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	b, _, err := m.ChangesAt(ctx, cur)
	return b, err
}

// ChangesAt is Changes plus the time each change happened (remotetest.Stamper), so a lagging wrapper can hold
// changes back by their real age.
func (m *Mem) ChangesAt(ctx context.Context, cur remote.Cursor) (remote.Batch, []time.Time, error) {
	if err := ctxErr(ctx, "changes", remote.Root); err != nil {
		return remote.Batch{}, nil, err
	}
	at, err := strconv.ParseUint(string(cur), 10, 64)
	if err != nil {
		return remote.Batch{}, nil, fmt.Errorf("changes from %q: %w: not a cursor of this store", cur, remote.ErrOutOfSync)
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if at < s.floor || at > s.seq {
		// Above seq: a cursor from another store or from a restored backup; either way it names no position.
		return remote.Batch{}, nil, fmt.Errorf("changes from %d: %w: history kept is %d..%d", at, remote.ErrOutOfSync, s.floor, s.seq)
	}
	i, _ := slices.BinarySearchFunc(s.events, at+1, func(e event, seq uint64) int { return compareU64(e.seq, seq) })
	evs := s.events[i:]
	if ps := s.o.PageSize; ps > 0 && len(evs) > ps {
		evs = evs[:ps]
	}
	b := remote.Batch{Next: encodeCursor(at)}
	var times []time.Time
	for _, e := range evs {
		b.Changes = append(b.Changes, e.c)
		times = append(times, e.at)
		b.Next = encodeCursor(e.seq)
	}
	return b, times, nil
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Close does nothing: a handle holds no resources, and other handles keep the store.
func (m *Mem) Close() error { return nil }

// HashOf answers from the stored digest; only the store's own algorithm is offered, none with NoHash.
func (m *Mem) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	if err := ctxErr(ctx, "hash", p); err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	if err := checkPath("hash", p); err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	s := m.s
	if s.algo == "" || algo != s.algo {
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: %s digest not offered by %s", p.Quoted(), algo, m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p = s.res(p)
	n, ok := s.nodes[p]
	switch {
	case !ok:
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: %w", p.Quoted(), remote.ErrNotFound)
	case n.dir:
		return remote.Hash{}, remote.Entry{}, fmt.Errorf("hash %s: is a folder: %w", p.Quoted(), remote.ErrConflict)
	}
	return n.hash, s.entry(p, n), nil
}

// CheckRoot reports ErrRootMissing only after SetRootMissing(true): a cloud root that vanished.
func (m *Mem) CheckRoot(ctx context.Context) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.s.noRoot {
		return fmt.Errorf("%s: %w: root folder gone", m, remote.ErrRootMissing)
	}
	return nil
}

// InitRoot does nothing: the in-memory root always exists and needs no marker.
func (m *Mem) InitRoot(ctx context.Context) error { return nil }

// SetRootMissing makes CheckRoot report the root as gone (true) or back (false).
func (m *Mem) SetRootMissing(missing bool) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.s.noRoot = missing
}

// Compact drops the whole feed history and moves the sequence on by one, so every cursor handed out so far,
// Head's included, is out of sync, as when a provider expires its change log.
func (m *Mem) Compact() {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.floor = s.seq
	s.events = nil
}

// Trash lists what Delete kept, oldest first.
func (m *Mem) Trash() []TrashItem {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	out := slices.Clone(m.s.trash)
	for i := range out {
		out[i].Data = slices.Clone(out[i].Data) // the caller may scribble on it; the store's copy stays
	}
	return out
}

// Snapshot maps every path (root excluded) to the sha256 hex of its content, or "dir": a cheap value to
// compare trees with in a test.
func (m *Mem) Snapshot() map[string]string {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.nodes))
	for p, n := range s.nodes {
		switch {
		case p == remote.Root:
		case n.dir:
			out[string(p)] = "dir"
		default:
			sum := sha256.Sum256(n.data)
			out[string(p)] = hex.EncodeToString(sum[:])
		}
	}
	return out
}
