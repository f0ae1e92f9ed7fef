package engine

// The simulation's tracer around both sides: every destructive call the engine makes is checked.
// See sim_test.go.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// ---------------------------------------------------------------------------------------------------------
// The sides as the engine sees them: a tracer around localdir and memremote that checks every destructive call
// (I1, I4), counts mutating calls (I8, I9), crashes the pass at its crash point, routes the remote through the
// Faulty wrapper while faults are on, and lands user edits in the middle of uploads (SIM-04).

type simSide struct {
	w      *world
	local  bool
	inner  remote.Remote
	faulty remote.Remote
}

var (
	_ remote.Remote      = (*simSide)(nil)
	_ remote.Hasher      = (*simSide)(nil)
	_ remote.RootChecker = (*simSide)(nil)
)

func (s *simSide) name() string {
	if s.local {
		return "L"
	}
	return "R"
}

func (s *simSide) cur() remote.Remote {
	if !s.local && s.w.faultsOn && s.faulty != nil {
		return s.faulty
	}
	return s.inner
}

// gate fails every call after a crash, and counts mutating ones.
func (s *simSide) gate(op string, p remote.Path, mutating bool) error {
	if s.w.crashed {
		return errSimCrash
	}
	if !mutating {
		return nil
	}
	if s.local { // the fakefs hook counts the local side's calls, one level down
		s.w.mutCalls++
		return nil
	}
	return s.w.tick(op + " " + string(p))
}

func (s *simSide) String() string                    { return s.inner.String() }
func (s *simSide) Capabilities() remote.Capabilities { return s.inner.Capabilities() }
func (s *simSide) Close() error                      { return nil }
func (s *simSide) Head(ctx context.Context) (remote.Cursor, error) {
	if err := s.gate("head", remote.Root, false); err != nil {
		return nil, err
	}
	return s.cur().Head(ctx)
}

func (s *simSide) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	if err := s.gate("changes", remote.Root, false); err != nil {
		return remote.Batch{}, err
	}
	return s.cur().Changes(ctx, cur)
}

func (s *simSide) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := s.gate("stat", p, false); err != nil {
		return remote.Entry{}, err
	}
	return s.cur().Stat(ctx, p)
}

func (s *simSide) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	if err := s.gate("walk", dir, false); err != nil {
		return err
	}
	return s.cur().Walk(ctx, dir, fn)
}

func (s *simSide) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	if err := s.gate("open", p, false); err != nil {
		return nil, remote.Entry{}, err
	}
	rc, e, err := s.cur().Open(ctx, p)
	if err == nil && s.local && s.w.openHook != nil && s.w.inPass {
		rc = s.w.openHook(p, rc)
	}
	return rc, e, err
}

func (s *simSide) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	if err := s.gate("hash", p, false); err != nil {
		return remote.Hash{}, remote.Entry{}, err
	}
	return s.cur().(remote.Hasher).HashOf(ctx, p, algo)
}

func (s *simSide) CheckRoot(ctx context.Context) error {
	if err := s.gate("checkroot", remote.Root, false); err != nil {
		return err
	}
	return s.cur().(remote.RootChecker).CheckRoot(ctx)
}

func (s *simSide) InitRoot(ctx context.Context) error {
	if err := s.gate("initroot", remote.Root, false); err != nil {
		return err
	}
	return s.cur().(remote.RootChecker).InitRoot(ctx)
}

func (s *simSide) CleanTemp(ctx context.Context, session string) (int, error) {
	c, ok := s.inner.(tempSide)
	if !ok {
		return 0, nil
	}
	if err := s.gate("cleantemp", remote.Root, false); err != nil {
		return 0, err
	}
	return c.CleanTemp(ctx, session)
}

func (s *simSide) TempLeft() bool {
	c, ok := s.inner.(tempSide)
	return ok && c.TempLeft()
}

func (s *simSide) SetTempSession(session string) {
	if c, ok := s.inner.(tempSide); ok {
		c.SetTempSession(session)
	}
}

func (s *simSide) PurgeTrash(ctx context.Context, olderThan time.Time) (int, error) {
	p, ok := s.inner.(interface {
		PurgeTrash(ctx context.Context, olderThan time.Time) (int, error)
	})
	if !ok {
		return 0, nil
	}
	if err := s.gate("purgetrash", remote.Root, false); err != nil {
		return 0, err
	}
	return p.PurgeTrash(ctx, olderThan)
}

func (s *simSide) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	if err := s.gate("mkdir", p, true); err != nil {
		return remote.Entry{}, err
	}
	e, err := s.cur().Mkdir(ctx, p)
	if err == nil {
		s.w.logf("  %s mkdir %q", s.name(), p)
	}
	return e, err
}

// pre is what a side held at a path just before an engine call.
type pre struct {
	exists, dir bool
	data        []byte
}

func (s *simSide) look(p remote.Path) pre {
	if s.local {
		s.w.peeking = true
		fi, err := s.w.ffs.Lstat(nameOf(p))
		s.w.peeking = false
		if err != nil {
			return pre{}
		}
		if fi.IsDir() {
			return pre{exists: true, dir: true}
		}
		b, err := s.w.ffs.ReadFile(nameOf(p))
		if err != nil {
			return pre{exists: true}
		}
		return pre{exists: true, data: b}
	}
	e, err := s.w.mem.Stat(context.Background(), p)
	if err != nil {
		return pre{}
	}
	if e.Dir {
		return pre{exists: true, dir: true}
	}
	b, _ := s.w.mem.ReadFile(string(p))
	return pre{exists: true, data: b}
}

func (s *simSide) base(p remote.Path) (state.Base, bool) {
	var b state.Base
	var ok bool
	if s.w.st == nil {
		return b, false
	}
	_ = s.w.st.View(func(r state.Reader) error {
		var err error
		b, ok, err = r.GetBase(p)
		return err
	})
	return b, ok
}

// preimageIsBase: the content an engine action destroyed equals the base of the path (I1).
func (s *simSide) preimageIsBase(p remote.Path, data []byte) (bool, string) {
	b, ok := s.base(p)
	if !ok {
		return false, "no base"
	}
	if b.Dir {
		return false, "base is a folder"
	}
	algo := s.w.eng.Algo()
	if got := digestHex(algo, data); b.Hash.Hex != got || b.Hash.Algo != algo {
		return false, fmt.Sprintf("base %s, pre-image %s:%s", b.Hash, algo, got[:12])
	}
	return true, ""
}

func (s *simSide) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pc remote.Precondition) (remote.Entry, error) {
	if err := s.gate("put", p, true); err != nil {
		return remote.Entry{}, err
	}
	if !s.local && s.w.raceRemote == p {
		// SIM-04: the user's edit lands while the body is in flight; the provider's revision check must catch it.
		s.w.raceRemote = ""
		b, err := io.ReadAll(body)
		if err != nil {
			return remote.Entry{}, err
		}
		body = bytes.NewReader(b)
		s.w.raceEdit(s, p, "mid-upload")
	}
	before, races := s.look(p), s.w.raceSeq
	e, err := s.cur().Put(ctx, p, body, size, mtime, pc)
	after := s.look(p)
	if s.w.raceSeq != races && s.w.racedOn == s && s.w.racedAt == p && after.exists && bytes.Equal(after.data, s.w.raced.data) {
		// A user's edit landed during the Put and is what the path holds: that change was the user's, and the Put
		// destroyed nothing (a new file's link refused the name the edit took).
		before = after
	}
	if before.exists && !before.dir && (!after.exists || !bytes.Equal(after.data, before.data)) {
		s.w.tot.overwrites.Add(1)
		if ok, why := s.preimageIsBase(p, before.data); !ok {
			s.w.fail("I1", "%s put %s overwrote %s, which is not the base (%s)", s.name(), p.Quoted(),
				shaHex(before.data)[:12], why)
		}
	}
	if err == nil {
		s.w.logf("  %s put %q %s", s.name(), p, shaHex(after.data)[:8])
	}
	return e, err
}

func (s *simSide) Delete(ctx context.Context, p remote.Path, pc remote.Precondition) error {
	if err := s.gate("delete", p, true); err != nil {
		return err
	}
	before := s.look(p)
	err := s.cur().Delete(ctx, p, pc)
	after := s.look(p)
	if before.exists && !after.exists {
		s.w.passDels++
		if !before.dir {
			s.w.tot.deletes.Add(1)
			i := 1
			if s.local {
				i = 0
			}
			if s.w.passFileDels[i] == nil {
				s.w.passFileDels[i] = map[string]bool{}
			}
			s.w.passFileDels[i][string(p)] = true
			if ok, why := s.preimageIsBase(p, before.data); !ok {
				s.w.fail("I4", "%s delete %s removed %s, which is not the base (%s)", s.name(), p.Quoted(),
					shaHex(before.data)[:12], why)
			}
			if !s.w.trashHashes(s)[shaHex(before.data)] {
				s.w.fail("I4", "%s delete %s: %s is not in the trash", s.name(), p.Quoted(), shaHex(before.data)[:12])
			}
		}
		s.w.logf("  %s delete %q", s.name(), p)
	}
	return err
}

func (s *simSide) Move(ctx context.Context, from, to remote.Path, pc remote.Precondition) (remote.Entry, error) {
	if err := s.gate("move", from, true); err != nil {
		return remote.Entry{}, err
	}
	before := s.look(to)
	e, err := s.cur().Move(ctx, from, to, pc)
	if after := s.look(to); err == nil && after.exists && !s.look(from).exists {
		s.w.tot.moves.Add(1)
		if before.exists {
			s.w.fail("I1", "%s move %s -> %s replaced what was at the target", s.name(), from.Quoted(), to.Quoted())
		}
		s.w.logf("  %s move %q -> %q", s.name(), from, to)
	}
	return e, err
}
