package engine

// The simulation's user: random operations on either side, recorded in the ledger.
// See sim_test.go.

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"

	"github.com/tandemsync/tandem/remote"
)

// ---------------------------------------------------------------------------------------------------------
// The user: random operations on either side, recorded in the ledger.

var simNames = []string{"a", "b", "c.txt", "d.txt", "caf\u00e9", "cafe\u0301", "Z"}

func (w *world) addVersion(side, p, sha string) {
	// Empty files all share one digest, so the ledger cannot tell whose an empty version is: not tracked by I2.
	w.versions = append(w.versions, &simVersion{side: side, path: p, sha: sha, step: w.step, pending: side == "L",
		exempt: sha == emptySHA})
	w.known[sha] = true
	w.tot.versions.Add(1)
}

// discard exempts the content a user overwrote or deleted: the user's own choice.
func (w *world) discard(sha string) {
	for _, v := range w.versions {
		if v.sha == sha {
			v.exempt, v.away = true, false
		}
	}
}

func (w *world) content(size int) []byte {
	w.counter++
	id := fmt.Sprintf("#%d.%d:", w.seed, w.counter)
	if size < len(id) {
		size = len(id)
	}
	b := make([]byte, size)
	copy(b, id)
	for i := len(id); i < size; i++ {
		b[i] = byte('a' + w.rng.IntN(26))
	}
	return b
}

func (w *world) randContent() []byte {
	if w.rng.IntN(25) == 0 {
		return []byte{} // empty files are files too
	}
	return w.content(w.rng.IntN(40))
}

func (w *world) lookup(s *simSide, p string) (simEntry, bool) {
	for _, e := range w.list(s) {
		if e.path == p || (!s.local && w.foldR != nil && w.foldR(e.path) == w.foldR(p)) {
			return e, true
		}
	}
	return simEntry{}, false
}

func (w *world) userWrite(s *simSide, p string, data []byte) error {
	if e, ok := w.lookup(s, p); ok && !e.dir {
		w.discard(e.sha)
	}
	var err error
	if s.local {
		err = w.ffs.WriteFile(p, data)
	} else {
		err = w.mem.WriteFile(p, data)
	}
	if err != nil {
		return err
	}
	w.replaced(s, p)
	w.addVersion(s.name(), p, shaHex(data))
	w.logf("user %s write %q %s (%d bytes)", s.name(), p, shaHex(data)[:8], len(data))
	w.watched(s, p, false)
	return nil
}

// replaced: a version the user deleted (trashed: it must reach a trash) whose path at or below p now holds a
// file again reaches the engine as an edit of that path, which replaces it like any edit (seed 65: rm -r a;
// mv b a). The path is where the version was deleted, not where it was written: moved there first (seed 60123:
// mv by the user; seed 26930: a remote move tandem replayed), it is that path the user's new file overwrites.
// A version deleted at several paths stays owed until every one of them is overwritten.
func (w *world) replaced(s *simSide, p string) {
	for _, v := range w.versions {
		if !v.trashed || v.exempt {
			continue
		}
		var left []string
		for _, q := range v.trashedAt {
			if within(q, p) {
				if e, ok := w.lookup(s, q); ok && !e.dir {
					continue
				}
			}
			left = append(left, q)
		}
		if len(left) < len(v.trashedAt) {
			v.trashedAt = left
			v.exempt = len(left) == 0
		}
		if s.local && !v.exempt && len(v.trashedAt) > 0 {
			for _, q := range v.lastSeenL {
				if within(q, p) && !slices.Contains(v.trashedAt, q) {
					if e, ok := w.lookup(s, q); ok && !e.dir {
						v.exempt, v.trashedAt = true, nil
						break
					}
				}
			}
		}
	}
}

// fileAtAny: whether side s holds a file at p or at any of ps.
func (w *world) fileAtAny(s *simSide, p string, ps []string) bool {
	for _, q := range append([]string{p}, ps...) {
		if e, ok := w.lookup(s, q); ok && !e.dir {
			return true
		}
	}
	return false
}

// pathsHolding lists the files of side s that hold content sha.
func (w *world) pathsHolding(s *simSide, sha string) []string {
	var ps []string
	for _, e := range w.list(s) {
		if !e.dir && e.sha == sha {
			ps = append(ps, e.path)
		}
	}
	return ps
}

// watched notes what a local watcher would report (a write, a removal, a new folder: its subtree).
func (w *world) watched(s *simSide, p string, subtree bool) {
	if s.local {
		w.scopeL = append(w.scopeL, ScopePath{Path: remote.Path(p), Subtree: subtree})
	}
}

func (w *world) userRemoveAll(s *simSide, p string) error {
	// A folding remote removes what it holds under any spelling of p (rm -r "z" takes "Z" and all below it).
	fold := func(q string) string { return q }
	if !s.local && w.foldR != nil {
		fold = w.foldR
	}
	fp := fold(p)
	for _, e := range w.list(s) {
		if fe := fold(e.path); (fe == fp || strings.HasPrefix(fe, fp+"/")) && !e.dir {
			w.discard(e.sha)
		}
	}
	var err error
	if s.local {
		err = w.ffs.RemoveAll(p)
		if w.names != nil {
			w.names.removed(p)
		}
	} else {
		err = w.mem.Remove(p)
	}
	w.logf("user %s rm -r %q: %v", s.name(), p, err)
	w.watched(s, p, true)
	return err
}

func (w *world) userMkdir(s *simSide, p string) error {
	var err error
	if s.local {
		err = w.ffs.MkdirAll(p)
	} else {
		err = w.mem.MkdirAll(p)
	}
	w.logf("user %s mkdir %q: %v", s.name(), p, err)
	for q := p; q != "." && q != ""; q = path.Dir(q) {
		w.watched(s, q, true) // MkdirAll: every new level is a new folder
	}
	return err
}

func (w *world) userRename(s *simSide, from, to string) error {
	// With -sim.lazydisk a user's rename stays volatile like a write: a power loss may undo it, or keep it and
	// lose the folder it went into (seed 1695: mv into a folder made and never synced, the move made durable by
	// an fsync of the source folder). What it moves is the user's to lose again until a pass makes it durable;
	// crash() still holds the engine to every content it propagated (live on the other side or its trash).
	type move struct{ sha, from, to string }
	var moved []move
	if s.local && *simLazyDisk {
		for _, e := range w.list(s) {
			if !e.dir && within(e.path, from) {
				moved = append(moved, move{e.sha, e.path, to + strings.TrimPrefix(e.path, from)})
			}
		}
	}
	var err error
	if s.local {
		err = w.ffs.Rename(from, to)
	} else {
		err = w.mem.Rename(from, to)
	}
	w.logf("user %s mv %q %q: %v", s.name(), from, to, err)
	if err == nil {
		w.replaced(s, to)
		for _, v := range w.versions {
			for _, m := range moved {
				if !v.exempt && m.sha == v.sha {
					v.pending, v.moved = true, true
					v.movedVia = append(v.movedVia, m.from, m.to)
				}
			}
		}
	}
	w.watched(s, from, true)
	w.watched(s, to, true)
	return err
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// simOpCtx is what userOp knows about a side when it picks an operation; extra operations get it too.
type simOpCtx struct {
	s, other                    *simSide
	exists                      map[string]simEntry
	dirs, files, folders, empty []string
	newPath                     func() (string, bool)
}

// simExtraOp is an operation beside userOp's built-in ones, written in the sim_*_test.go file of its concern.
// weight is its chance in 1000 per userOp; the built-in operations share what is left.
type simExtraOp struct {
	name   string
	weight int
	do     func(w *world, c *simOpCtx)
}

// simExtraOps lists every extra operation in one table: its order and weights fix every seed's trace, and the
// weights must leave room for the built-in operations.
var simExtraOps = []simExtraOp{
	// sim_fingerprint_test.go
	{name: "touch-r", weight: 60, do: simEditKeepMTime},
	{name: "replace-folder", weight: 25, do: simReplaceFolder},
	// sim_guard_test.go
	{name: "ignored-file", weight: 30, do: opIgnoredFile},
	{name: "storm-rounds", weight: 6, do: opStormRounds},
	{name: "storm-scoped", weight: 6, do: opStormScoped},
	{name: "wipe-root-mid-pass", weight: 5, do: opWipeRoot},
	{name: "folder-to-skip", weight: 10, do: opFolderToSkip},
	// sim_names_test.go
	{name: "case-twin", weight: 25, do: simCaseTwin},
	{name: "case-rename", weight: 15, do: simCaseRename},
	{name: "temp-named", weight: 8, do: simTempNamed},
	{name: "torn-upload", weight: 10, do: simTornUpload},
	{name: "remote-during-pass", weight: 10, do: simRemoteDuringPass},
}

// userOp does one random operation on side s.
func (w *world) userOp(s *simSide) {
	ents := w.list(s)
	exists := map[string]simEntry{}
	dirs := []string{""}
	var files, folders, empty []string
	for _, e := range ents {
		exists[e.path] = e
		if e.dir {
			folders = append(folders, e.path)
			if strings.Count(e.path, "/") < 2 {
				dirs = append(dirs, e.path)
			}
		} else {
			files = append(files, e.path)
		}
	}
	for _, d := range folders {
		hasKid := false
		for _, e := range ents {
			if strings.HasPrefix(e.path, d+"/") {
				hasKid = true
				break
			}
		}
		if !hasKid {
			empty = append(empty, d)
		}
	}
	newPath := func() (string, bool) {
		for range 6 {
			p := path.Join(pick(w.rng, dirs), pick(w.rng, simNames))
			if _, taken := exists[p]; !taken {
				return p, true
			}
		}
		return "", false
	}
	other := w.R
	if !s.local {
		other = w.L
	}
	if len(simExtraOps) > 0 {
		c := &simOpCtx{s: s, other: other, exists: exists, dirs: dirs, files: files, folders: folders, empty: empty,
			newPath: newPath}
		r := w.rng.IntN(1000)
		for _, op := range simExtraOps {
			if r < op.weight {
				w.logf("extra op %s on %s", op.name, s.name())
				op.do(w, c)
				return
			}
			r -= op.weight
		}
	}
	switch r := w.rng.IntN(100); {
	case r < 22 || len(files) == 0 && r < 60: // create
		if p, ok := newPath(); ok {
			_ = w.userWrite(s, p, w.randContent())
		}
	case r < 42: // edit, often a same-size rewrite (the racy window when the clock has not moved)
		p := pick(w.rng, files)
		size := len(w.mustRead(s, p))
		if w.rng.IntN(3) == 0 || size < 12 {
			size = w.rng.IntN(40)
		}
		_ = w.userWrite(s, p, w.content(size))
	case r < 49: // the same content as the other side holds at that path: no conflict may come of it
		var cands []simEntry
		for _, e := range w.list(other) {
			if x, ok := exists[e.path]; !e.dir && (!ok || !x.dir) {
				if _, pok := exists[path.Dir(e.path)]; pok || path.Dir(e.path) == "." {
					cands = append(cands, e)
				}
			}
		}
		if len(cands) > 0 {
			e := pick(w.rng, cands)
			_ = w.userWrite(s, e.path, w.mustRead(other, e.path))
		}
	case r < 58: // delete a file
		if len(files) > 0 {
			_ = w.userRemoveAll(s, pick(w.rng, files))
		}
	case r < 66: // move a file
		if len(files) > 0 {
			if to, ok := newPath(); ok {
				_ = w.userRename(s, pick(w.rng, files), to)
			}
		}
	case r < 72: // move a folder
		if len(folders) > 0 {
			from := pick(w.rng, folders)
			if to, ok := newPath(); ok && !within(to, from) {
				_ = w.userRename(s, from, to)
			}
		}
	case r < 80: // mkdir
		if p, ok := newPath(); ok {
			_ = w.userMkdir(s, p)
		}
	case r < 85: // rmdir of an empty folder
		if len(empty) > 0 {
			_ = w.userRemoveAll(s, pick(w.rng, empty))
		}
	case r < 89: // rm -r of a full folder
		if len(folders) > 0 {
			_ = w.userRemoveAll(s, pick(w.rng, folders))
		}
	case r < 95: // type change: file -> folder
		if len(files) > 0 {
			p := pick(w.rng, files)
			if w.userRemoveAll(s, p) == nil && w.userMkdir(s, p) == nil && w.rng.IntN(2) == 0 {
				_ = w.userWrite(s, path.Join(p, pick(w.rng, simNames)), w.randContent())
			}
		}
	default: // type change: folder -> file
		if len(folders) > 0 {
			p := pick(w.rng, folders)
			if w.userRemoveAll(s, p) == nil {
				_ = w.userWrite(s, p, w.randContent())
			}
		}
	}
}

func (w *world) mustRead(s *simSide, p string) []byte {
	var b []byte
	var err error
	if s.local {
		b, err = w.ffs.ReadFile(p)
	} else {
		b, err = w.mem.ReadFile(p)
	}
	if err != nil {
		w.t.Fatalf("seed %d: read %s %s: %v", w.seed, s.name(), p, err)
	}
	return b
}

// raceEdit is a user's edit of p on side s while the engine is about to change it (SIM-04): a file gets new
// content, a folder a new child, an absent path a new file.
func (w *world) raceEdit(s *simSide, p remote.Path, when string) {
	w.tot.races.Add(1)
	e, ok := w.lookup(s, string(p))
	switch {
	case ok && e.dir:
		_ = w.userWrite(s, path.Join(string(p), "race-"+fmt.Sprint(w.counter)), w.randContent())
	case ok:
		w.racedFile(s, p, w.content(len(w.mustRead(s, string(p)))+w.rng.IntN(2)*5))
	default:
		if d := path.Dir(string(p)); d != "." {
			if pe, ok := w.lookup(s, d); !ok || !pe.dir {
				return
			}
		}
		w.racedFile(s, p, w.randContent())
	}
	w.logf("race (%s) at %q on %s", when, p, s.name())
}

// racedFile is a race's write of data to file p on s, remembered (raced) for the I1 check of the action it
// lands in.
func (w *world) racedFile(s *simSide, p remote.Path, data []byte) {
	if w.userWrite(s, string(p), data) == nil {
		w.raceSeq++
		w.raced, w.racedAt, w.racedOn = pre{exists: true, data: data}, p, s
	}
}

// progress hears every action of the engine: the trace, and the SIM-04 races.
func (w *world) progress(ev Event) {
	if w.onProgress != nil && !ev.Progress {
		w.onProgress(ev)
	}
	if ev.Progress {
		return // bytes in flight: not part of the trace
	}
	if ev.Done {
		res := "ok"
		if ev.Err != nil {
			res = "err: " + ev.Err.Error()
		}
		w.logf(" done %s: %s", ev.Action, res)
		return
	}
	w.logf(" start %s (%s)", ev.Action, ev.Action.Reason)
	if w.actHook != nil && !w.crashed {
		w.actHook(ev.Action)
	}
	if !w.racesOn || w.crashed || w.rng.IntN(100) >= 12 {
		return
	}
	a := ev.Action
	var s *simSide
	switch a.Op {
	case Upload, DeleteRemote, MoveRemote:
		s = w.R
	case Download, DeleteLocal, MoveLocal, Conflict:
		s = w.L
	case TypeConflict:
		s = w.R
		if a.Local != nil && !a.Local.Dir {
			s = w.L
		}
	case Record, Compare:
		s = pick(w.rng, []*simSide{w.L, w.R})
	default:
		return
	}
	switch {
	case a.Op == Download && w.rng.IntN(2) == 0:
		w.raceLocal = a.Path // lands while the download is written to its temp file
		// or, for every other download (no draw: the seeds' other choices stay as they were), at its rename:
		// a new file appears there, or the file the download replaces is edited
		w.raceAtRename = w.counter%2 == 0
	case a.Op == Upload && w.rng.IntN(2) == 0:
		w.raceRemote = a.Path
	case a.Op == MoveLocal && a.To != "" && w.counter%2 == 0:
		// The user creates a file at the move's target at the last moment, at the rename itself (no draw: the
		// content counter's parity): a plain rename would replace it.
		w.raceLocal, w.raceAtRename = a.To, true
	default:
		w.raceEdit(s, a.Path, "before "+a.Op.String())
	}
}
