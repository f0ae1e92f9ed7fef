package engine

// Extra simulation operations for issue 9, holes 8, 10, 11 and 12 (names, temp files, remote edits and local
// rewrites during a pass):
//
//   - some worlds run against a remote that folds case and Unicode normalisation (memremote FoldsCase and
//     NormalizesUnicode, one seed in 13), where the user makes local names that differ only in case and
//     renames files to another case: collisions must be reported and never synced, never flip-flop, and
//     case-only renames must reach the remote (at quiescence the trees agree but for the collisions);
//   - the user keeps files named like tandem's temp files (.tandem-notes.part): they must survive every pass;
//   - a local file is rewritten in place while an upload reads it: no mixture of two versions may reach the
//     remote (I6 in checkPass);
//   - another client writes the remote while a pass uploads: the next scoped pass, with nothing new from the
//     watchers or the feed, must bring those writes down.

import (
	"bytes"
	"io"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/memremote"
)

// simNamesState is what these operations track in one world.
type simNamesState struct {
	temps map[string]string // user files named like temp files -> sha of their content
	// wrote: every temp-named file the user wrote, path -> sha: a power loss may undo its removal (crashed)
	wrote map[string]string
	// remote writes made during the last armed pass, path -> sha, checked after the scoped pass that follows
	during map[string]string
	armed  int // remote writes still to make at upload starts
}

func init() {
	simWorldHooks = append(simWorldHooks, func(w *world, mo *memremote.Options) {
		w.names = &simNamesState{temps: map[string]string{}, wrote: map[string]string{}}
		if w.seed%13 == 5 {
			mo.FoldsCase, mo.NormalizesUnicode = true, true
			w.foldR = remote.FoldName(remote.Capabilities{FoldsCase: true, NormalizesUnicode: true})
		}
	})
}

// caseVariant flips the case of the first letter of a name ("" if it has none).
func caseVariant(name string) string {
	r, n := utf8.DecodeRuneInString(name)
	if !unicode.IsLetter(r) {
		return ""
	}
	f := unicode.ToUpper(r)
	if unicode.IsUpper(r) {
		f = unicode.ToLower(r)
	}
	if f == r {
		return ""
	}
	return string(f) + name[n:]
}

// caseTwinTarget picks, on the local side of a world whose remote folds case, an existing file or folder p and a
// free name q that differs from it only in the case of its first letter (ok false when there is none).
func caseTwinTarget(w *world, c *simOpCtx) (p, q string, ok bool) {
	if !c.s.local || w.foldR == nil {
		return "", "", false
	}
	cands := append(append([]string{}, c.files...), c.folders...)
	if len(cands) == 0 {
		return "", "", false
	}
	p = pick(w.rng, cands)
	v := caseVariant(path.Base(p))
	if v == "" {
		return "", "", false
	}
	q = path.Join(path.Dir(p), v)
	if _, taken := c.exists[q]; taken {
		return "", "", false
	}
	return p, q, true
}

// simCaseTwin writes a new local file whose name differs from an existing local file or folder only in case.
func simCaseTwin(w *world, c *simOpCtx) {
	if _, q, ok := caseTwinTarget(w, c); ok {
		_ = w.userWrite(c.s, q, w.randContent())
	}
}

// simCaseRename renames a local file or folder to the same name in another case.
func simCaseRename(w *world, c *simOpCtx) {
	if p, q, ok := caseTwinTarget(w, c); ok {
		_ = w.userRename(c.s, p, q)
	}
}

// simTempNamed writes a local file of the user's named like a temp file; it is not tandem's to remove.
func simTempNamed(w *world, c *simOpCtx) {
	if !c.s.local {
		return
	}
	// In the root only: inside a folder that the other side deletes, an ignored file keeps the folder (issue 9,
	// hole 7, another change), which is not what this operation is about.
	p := remote.TempPrefix + pick(w.rng, []string{"notes", "x", "0123456789abcdef"}) + remote.TempSuffix
	data := w.content(10 + w.rng.IntN(20))
	if err := w.ffs.WriteFile(p, data); err != nil {
		return
	}
	w.names.temps[p] = shaHex(data)
	w.names.wrote[p] = shaHex(data)
	w.logf("user L write temp-named %q %s", p, shaHex(data)[:8])
}

// simTornUpload arms a rewrite in place of the next local file the engine opens in a pass (an upload's source):
// the reader gets the first half of the old bytes and the rest of the new ones, as from a real file.
func simTornUpload(w *world, c *simOpCtx) {
	w.openHook = func(p remote.Path, rc io.ReadCloser) io.ReadCloser {
		w.openHook = nil
		old, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || len(old) < 4 {
			return io.NopCloser(bytes.NewReader(old))
		}
		nw := w.content(len(old))
		if w.userWrite(w.L, string(p), nw) != nil {
			return io.NopCloser(bytes.NewReader(old))
		}
		w.tot.races.Add(1)
		w.logf("race (torn read) at %q", p)
		half := len(old) / 2
		return io.NopCloser(bytes.NewReader(append(append([]byte{}, old[:half]...), nw[half:]...)))
	}
	w.logf("armed a torn read")
}

// simRemoteDuringPass runs a scoped pass during whose uploads another client writes the remote, then a scoped
// pass with nothing new from the watchers: the remote writes must have come down by then.
func simRemoteDuringPass(w *world, c *simOpCtx) {
	if w.fullNext || w.eng == nil {
		return
	}
	st := w.names
	st.during = map[string]string{}
	st.armed = 1 + w.rng.IntN(3)
	w.actHook = func(a Action) {
		if st.armed == 0 || a.Op != Upload {
			return
		}
		st.armed--
		name := "during-" + string(rune('a'+w.rng.IntN(4)))
		if w.foldR != nil {
			for q := range st.during {
				if w.foldR(q) == w.foldR(name) {
					return
				}
			}
		}
		if e, ok := w.lookup(w.R, name); ok && e.dir {
			return
		}
		data := w.randContent()
		if w.userWrite(w.R, name, data) == nil {
			st.during[name] = shaHex(data)
		}
	}
	w.forceScoped = true
	rep := w.pass(false)
	w.actHook = nil
	clean := rep != nil && w.lastErr == nil && len(rep.Problems) == 0 && !w.fullNext && !w.failed
	if !clean || len(st.during) == 0 {
		w.forceScoped = false
		return
	}
	// Nothing new from the watchers: the remote's feed has moved past the writes, only the engine knows them.
	// A local user change the remote write met (a conflict) is fine: then the content is in a conflict copy.
	rep = w.pass(false)
	w.forceScoped = false
	if w.failed || rep == nil || w.lastErr != nil || len(rep.Problems) > 0 || w.fullNext {
		return
	}
	live := w.liveHashes(w.L, false)
	remoteNow := w.liveHashes(w.R, false)
	for p, sha := range st.during {
		if remoteNow[sha] && !live[sha] {
			w.fail("I8", "remote write %q made during a pass (%s) is not local after the next scoped pass", p, sha[:12])
			return
		}
	}
}

// checkPass: every temp-named file of the user's is still there, unchanged, or (moved with its folder, or sent
// to the trash with a folder deleted on the other side) somewhere on the local disk.
func (st *simNamesState) checkPass(w *world) {
	for p, sha := range st.temps {
		if b, err := w.ffs.ReadFile(p); err == nil && shaHex(b) == sha {
			continue
		}
		found := ""
		w.ffs.Walk(func(name string, dir bool, data []byte) {
			if !dir && found == "" && shaHex(data) == sha {
				found = name
			}
		})
		if found == "" {
			w.fail("I4", "the user's own %s (%s) is gone from the local disk, trash included", p, sha[:12])
			return
		}
		delete(st.temps, p)
		if !strings.HasPrefix(found, remote.ReservedDir+"/") {
			st.temps[found] = sha
		}
	}
}

// removed forgets the temp-named files the user removed (p and below).
func (st *simNamesState) removed(p string) {
	for q := range st.temps {
		if within(q, p) {
			delete(st.temps, q)
		}
	}
}

// crashed forgets temp-named files a power loss took (they were the user's unsynced writes), and takes back
// those it brought back: a removal not yet durable is undone (seed 60693: the root wiped mid-pass, the wipe
// lost in a crash, the user's .tandem-x.part back in the root, no longer known as the user's).
func (st *simNamesState) crashed(w *world) {
	for p, sha := range st.temps {
		if b, err := w.ffs.ReadFile(p); err != nil || shaHex(b) != sha {
			delete(st.temps, p)
			if err == nil {
				st.temps[p] = shaHex(b)
			}
		}
	}
	for p := range st.wrote {
		if _, ok := st.temps[p]; ok {
			continue
		}
		// Whatever content: the power loss may have torn the user's write too (seed 501002: the root wiped
		// mid-pass, the wipe and part of the write lost). No temp file of tandem's has a name the user wrote:
		// tandem's carry its session and 16 hex digits.
		if b, err := w.ffs.ReadFile(p); err == nil {
			st.temps[p] = shaHex(b)
		}
	}
}

// userTemp: name is one of the user's temp-named files.
func (st *simNamesState) userTemp(name string) bool {
	if st == nil {
		return false
	}
	_, ok := st.temps[name]
	return ok
}

// collisionGroups are the local paths (and what is below them) that share their folded name with another
// local path of the same folder: the remote can hold only one of each group.
func (w *world) collisionGroups(l []simEntry) map[string]bool {
	groups := map[string][]string{}
	for _, e := range l {
		k := path.Dir(e.path) + "/" + w.foldR(path.Base(e.path))
		groups[k] = append(groups[k], e.path)
	}
	out := map[string]bool{}
	for _, g := range groups {
		if len(g) > 1 {
			for _, p := range g {
				out[p] = true
			}
		}
	}
	return out
}

func underAny(p string, set map[string]bool) bool {
	for q := p; q != "." && q != ""; q = path.Dir(q) {
		if set[q] {
			return true
		}
	}
	return false
}

// withoutCollisions drops the colliding local paths and their remote counterparts from a comparison; the
// remote must hold exactly one spelling of each group.
func (w *world) withoutCollisions(l, r []simEntry) ([]simEntry, []simEntry) {
	col := w.collisionGroups(l)
	if len(col) == 0 {
		return l, r
	}
	folded := map[string]bool{}
	for p := range col {
		folded[w.foldR(p)] = true
	}
	var l2, r2 []simEntry
	for _, e := range l {
		if !underAny(e.path, col) {
			l2 = append(l2, e)
		}
	}
	for _, e := range r {
		drop := false
		for q := e.path; q != "." && q != ""; q = path.Dir(q) {
			if folded[w.foldR(q)] {
				drop = true
				break
			}
		}
		if !drop {
			r2 = append(r2, e)
		}
	}
	return l2, r2
}

// collidingSHA: a content that is live locally only below a colliding path.
func (w *world) collidingSHA(sha string) bool {
	l := w.list(w.L)
	col := w.collisionGroups(l)
	for _, e := range l {
		if e.sha == sha && !underAny(e.path, col) {
			return false
		}
	}
	return len(col) > 0
}
