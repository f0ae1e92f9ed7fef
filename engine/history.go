package engine

import (
	"context"
	"errors"
	"maps"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// The per-path history (`tandem history PATH`): every executed action leaves an entry under its path (and under
// a move's target and a conflict's copy), written in the transaction that commits the action, so the history
// says "done" exactly when the store does. A failed or skipped action gets its entry in a small transaction
// of its own. The executor's hooks are histStart/histEnd around an action and histCommit in commit.

// actionHist follows one action through its commits. Only the action's goroutine touches it (bbolt runs a
// batched function while the caller waits).
type actionHist struct {
	a    Action
	pass string
	at   int64
	seqs map[remote.Path]uint64 // committed entries of this action, to replace rather than add on a later commit
}

type histCtxKey struct{}

// SetPassWhy says why the next passes run (the daemon: "start-up", "a local change", "hourly"; `tandem once`),
// for the history. Passes do not run concurrently on an Engine, so no lock.
func (e *Engine) SetPassWhy(why string) { e.passWhy = why }

func (e *Engine) passKind() string {
	kind := "full"
	if e.pass.scope != nil {
		kind = "scoped"
	}
	why := e.passWhy
	if e.o.Resync {
		why = "--resync"
	}
	if why == "" {
		return kind
	}
	return kind + ": " + why
}

// histStart attaches the history of a to ctx.
func (e *Engine) histStart(ctx context.Context, a Action) context.Context {
	return context.WithValue(ctx, histCtxKey{}, &actionHist{a: a, pass: e.passKind(), at: e.now()})
}

func histSide(r *state.Record) *state.HistorySide {
	if r == nil {
		return nil
	}
	return &state.HistorySide{Dir: r.Dir, Size: r.Size, Hash: hashPrefix(r.Hash), MTime: unixNano(r)}
}

func unixNano(r *state.Record) int64 {
	if r.ModTime.IsZero() {
		return 0
	}
	return r.ModTime.UnixNano()
}

func hashPrefix(h remote.Hash) string {
	if h.IsZero() {
		return ""
	}
	hex := h.Hex
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return h.Algo + ":" + hex
}

// entries writes the action's entries with the given outcome.
func (h *actionHist) write(tx state.Writer, outcome, errText string, seqs map[remote.Path]uint64) error {
	a := h.a
	base := state.HistoryEntry{At: h.at, Pass: h.pass, Op: a.Op.String(), Reason: a.Reason, Outcome: outcome,
		Error: errText, Local: histSide(a.Local), Remote: histSide(a.Remote)}
	if a.Base != nil {
		base.Base = &state.HistorySide{Dir: a.Base.Dir, Size: a.Base.Local.Size, Hash: hashPrefix(a.Base.Hash),
			MTime: unixNano(&a.Base.Local)}
	}
	if a.Op == Conflict || a.Op == TypeConflict {
		stop := errors.New("found")
		err := tx.Conflicts(func(c state.Conflict) error {
			if c.Path == a.Path {
				base.Copy = c.Copy
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			return err
		}
	}
	put := func(e state.HistoryEntry) error {
		e.Seq = seqs[e.Path]
		seq, err := tx.AddHistory(e)
		seqs[e.Path] = seq
		return err
	}
	main := base
	main.Path, main.To = a.Path, a.To
	if err := put(main); err != nil {
		return err
	}
	if a.To != "" && a.To != a.Path {
		in := base
		in.Path, in.From = a.To, a.Path
		if err := put(in); err != nil {
			return err
		}
	}
	if base.Copy != "" && base.Copy != a.Path {
		cp := base
		cp.Path, cp.From, cp.Copy = base.Copy, a.Path, ""
		cp.Reason = "conflict copy of " + string(a.Path) + ": " + a.Reason
		if err := put(cp); err != nil {
			return err
		}
	}
	return nil
}

// histDigest gives the history of the action in ctx the digest of its local file where the action took it
// itself (a new file the scan left undigested, digestLater).
func histDigest(ctx context.Context, h remote.Hash) {
	ah, _ := ctx.Value(histCtxKey{}).(*actionHist)
	if ah == nil || ah.a.Local == nil || !ah.a.Local.Hash.IsZero() {
		return
	}
	l := *ah.a.Local
	l.Hash = h
	ah.a.Local = &l
}

// histCommit runs commit(fn) with the action's history entries written in the same transaction. A batched
// transaction that fails is re-run, so the entries' new sequence numbers are kept only once the commit is in.
func (e *Engine) histCommit(ctx context.Context, commit func(func(state.Writer) error) error, fn func(state.Writer) error) error {
	h, _ := ctx.Value(histCtxKey{}).(*actionHist)
	if h == nil {
		return commit(fn)
	}
	var seqs map[remote.Path]uint64
	err := commit(func(tx state.Writer) error {
		if err := fn(tx); err != nil {
			return err
		}
		seqs = clone(h.seqs)
		return h.write(tx, "done", "", seqs)
	})
	if err == nil {
		h.seqs = seqs
	}
	return err
}

// clone copies m (nil: an empty map, which write adds to).
func clone(m map[remote.Path]uint64) map[remote.Path]uint64 {
	out := make(map[remote.Path]uint64, len(m)+2)
	maps.Copy(out, m)
	return out
}

// histEnd records how an action that did not succeed ended: skipped (it will be planned again: the path
// changed, the provider held it, a folder kept for ignored files) or failed with the error. A success was
// recorded by its commit.
func (e *Engine) histEnd(ctx context.Context, err error) {
	h, _ := ctx.Value(histCtxKey{}).(*actionHist)
	if err == nil || h == nil || errors.Is(err, errStore) {
		return
	}
	outcome := "failed"
	if errors.Is(err, errReplan) || errors.Is(err, errKept) || errors.Is(err, remote.ErrConflict) ||
		errors.Is(err, remote.ErrUnavailable) {
		outcome = "skipped"
	}
	werr := e.d.Store.Update(func(tx state.Writer) error {
		return h.write(tx, outcome, err.Error(), clone(h.seqs))
	})
	if werr != nil {
		e.lg.Warn("record history", zap.String("path", string(h.a.Path)), zap.Error(werr))
	}
}
