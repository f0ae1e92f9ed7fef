package remotetest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// Rule picks calls of a Faulty remote to fail.
type Rule struct {
	// Op is the method name ("Stat", "Walk", "Open", "Put", "Mkdir", "Move", "Delete", "Head", "Changes",
	// "Close", "HashOf", "CheckRoot", "InitRoot"); "" matches every one of them.
	Op string
	// Nth fires the rule on the Nth matching call only (1-based); 0 fires it on every matching call.
	Nth int
	// Err is returned (wrapped with the operation and path). nil: ErrInjected, which also matches
	// remote.ErrUnavailable so callers treat it as transient.
	Err error
	// After applies the operation first and then returns the error: the answer was lost ("ack loss"), the
	// effect was not.
	After bool
	// CutAt > 0 cuts a body after that many bytes instead of failing the call: Open succeeds and its body
	// returns the error after CutAt bytes (a reset mid-download); Put hands the wrapped remote a body that
	// fails after CutAt bytes (a reset mid-upload).
	CutAt int64
}

// ErrInjected is the default error of a Rule. It wraps remote.ErrUnavailable: a fault nobody named is a
// transient refusal.
var ErrInjected = fmt.Errorf("injected fault: %w", remote.ErrUnavailable)

// Faulty wraps r so that the calls the rules pick fail. Rules are checked in order, each counting its own
// matching calls; the first one that fires decides. It implements remote.Hasher and remote.RootChecker exactly
// when r does, so a type assertion on the wrapper gives the same answer as on r. Safe for concurrent use; with
// concurrent callers "the Nth call" is the Nth to reach the wrapper.
func Faulty(r remote.Remote, rules ...Rule) remote.Remote {
	f := &faulty{r: r, rules: rules, seen: make([]int, len(rules))}
	h, isH := r.(remote.Hasher)
	rc, isRC := r.(remote.RootChecker)
	switch {
	case isH && isRC:
		return &struct {
			*faulty
			faultyHasher
			faultyRoot
		}{f, faultyHasher{f, h}, faultyRoot{f, rc}}
	case isH:
		return &struct {
			*faulty
			faultyHasher
		}{f, faultyHasher{f, h}}
	case isRC:
		return &struct {
			*faulty
			faultyRoot
		}{f, faultyRoot{f, rc}}
	}
	return f
}

type faulty struct {
	r     remote.Remote
	mu    sync.Mutex
	rules []Rule
	seen  []int // matching calls per rule so far
}

// fault is the decision for one call: the zero value lets it through.
type fault struct {
	err   error
	after bool
	cutAt int64
}

func (f *faulty) pick(op string) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out fault
	fired := false
	for i, r := range f.rules {
		if r.Op != "" && r.Op != op {
			continue
		}
		// Every matching rule counts the call, even when an earlier one fires, so "the 3rd Put" means the 3rd
		// Put whatever the other rules do.
		f.seen[i]++
		if fired || (r.Nth != 0 && f.seen[i] != r.Nth) {
			continue
		}
		fired = true
		out = fault{err: r.Err, after: r.After, cutAt: r.CutAt}
		if out.err == nil {
			out.err = ErrInjected
		}
	}
	return out
}

func (f *faulty) String() string                    { return "faulty(" + f.r.String() + ")" }
func (f *faulty) Capabilities() remote.Capabilities { return f.r.Capabilities() }
func injected(op string, p remote.Path, err error) error {
	return fmt.Errorf("%s %s: %w", op, p.Quoted(), err)
}

// do runs one call under the fault decision for op.
func do[T any](f *faulty, op string, p remote.Path, call func() (T, error)) (T, error) {
	return decide(f.pick(op), op, p, call)
}

// decide runs call under the decision ft. CutAt only means something for bodies, so elsewhere it lets the call
// through.
func decide[T any](ft fault, op string, p remote.Path, call func() (T, error)) (T, error) {
	var zero T
	if ft.err == nil || ft.cutAt > 0 {
		return call()
	}
	if !ft.after {
		return zero, injected(op, p, ft.err)
	}
	if _, err := call(); err != nil {
		return zero, err // the operation itself failed: there is no answer to lose
	}
	return zero, injected(op, p, ft.err)
}

func (f *faulty) Stat(ctx context.Context, p remote.Path) (remote.Entry, error) {
	return do(f, "Stat", p, func() (remote.Entry, error) { return f.r.Stat(ctx, p) })
}

func (f *faulty) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	_, err := do(f, "Walk", dir, func() (struct{}, error) { return struct{}{}, f.r.Walk(ctx, dir, fn) })
	return err
}

func (f *faulty) Open(ctx context.Context, p remote.Path) (io.ReadCloser, remote.Entry, error) {
	ft := f.pick("Open")
	if ft.err != nil && ft.cutAt <= 0 && !ft.after {
		return nil, remote.Entry{}, injected("Open", p, ft.err)
	}
	rc, e, err := f.r.Open(ctx, p)
	switch {
	case err != nil || ft.err == nil:
		return rc, e, err
	case ft.cutAt > 0:
		return &cutReadCloser{cutReader: cutReader{r: rc, left: ft.cutAt, err: injected("read", p, ft.err)}, c: rc}, e, nil
	default: // After: the body was opened, the answer "lost"
		rc.Close()
		return nil, remote.Entry{}, injected("Open", p, ft.err)
	}
}

func (f *faulty) Put(ctx context.Context, p remote.Path, body io.Reader, size int64, mtime time.Time, pre remote.Precondition) (remote.Entry, error) {
	ft := f.pick("Put")
	if ft.err != nil && ft.cutAt > 0 {
		// The wrapped remote sees the upload die part way; what it stores (nothing, if it is atomic) is its own
		// answer, which is exactly what the cut is meant to test.
		return f.r.Put(ctx, p, &cutReader{r: body, left: ft.cutAt, err: injected("upload", p, ft.err)}, size, mtime, pre)
	}
	return decide(ft, "Put", p, func() (remote.Entry, error) { return f.r.Put(ctx, p, body, size, mtime, pre) })
}

func (f *faulty) Mkdir(ctx context.Context, p remote.Path) (remote.Entry, error) {
	return do(f, "Mkdir", p, func() (remote.Entry, error) { return f.r.Mkdir(ctx, p) })
}

func (f *faulty) Move(ctx context.Context, from, to remote.Path, pre remote.Precondition) (remote.Entry, error) {
	return do(f, "Move", from, func() (remote.Entry, error) { return f.r.Move(ctx, from, to, pre) })
}

func (f *faulty) Delete(ctx context.Context, p remote.Path, pre remote.Precondition) error {
	_, err := do(f, "Delete", p, func() (struct{}, error) { return struct{}{}, f.r.Delete(ctx, p, pre) })
	return err
}

func (f *faulty) Head(ctx context.Context) (remote.Cursor, error) {
	return do(f, "Head", remote.Root, func() (remote.Cursor, error) { return f.r.Head(ctx) })
}

func (f *faulty) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	return do(f, "Changes", remote.Root, func() (remote.Batch, error) { return f.r.Changes(ctx, cur) })
}

func (f *faulty) Close() error {
	_, err := do(f, "Close", remote.Root, func() (struct{}, error) { return struct{}{}, f.r.Close() })
	return err
}

type faultyHasher struct {
	f *faulty
	h remote.Hasher
}

func (fh faultyHasher) HashOf(ctx context.Context, p remote.Path, algo string) (remote.Hash, remote.Entry, error) {
	type res struct {
		h remote.Hash
		e remote.Entry
	}
	r, err := do(fh.f, "HashOf", p, func() (res, error) {
		h, e, err := fh.h.HashOf(ctx, p, algo)
		return res{h, e}, err
	})
	return r.h, r.e, err
}

type faultyRoot struct {
	f  *faulty
	rc remote.RootChecker
}

func (fr faultyRoot) CheckRoot(ctx context.Context) error {
	_, err := do(fr.f, "CheckRoot", remote.Root, func() (struct{}, error) { return struct{}{}, fr.rc.CheckRoot(ctx) })
	return err
}

func (fr faultyRoot) InitRoot(ctx context.Context) error {
	_, err := do(fr.f, "InitRoot", remote.Root, func() (struct{}, error) { return struct{}{}, fr.rc.InitRoot(ctx) })
	return err
}

// cutReader yields left bytes of r, then err: a connection that died mid-body.
type cutReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err // io.EOF before the cut: the body was shorter, nothing to break
}

type cutReadCloser struct {
	cutReader
	c io.Closer
}

func (c *cutReadCloser) Close() error { return c.c.Close() }
