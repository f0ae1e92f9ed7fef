package engine

// The simulation's faults: disk errors, crash points, mid-transfer races, and the power loss itself.
// See sim_test.go.

import (
	"path"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// ---------------------------------------------------------------------------------------------------------
// Faults: the fakefs hook (disk errors, crash points, mid-transfer races) and the crash itself.

func mutatingFS(op string) bool {
	switch op {
	case "create", "tmpfile", "mkdir", "rename", "link", "remove", "chtimes", "chmod", "syncdir", "write", "sync", "syncfs":
		return true
	}
	return false
}

func (w *world) fsHook(op, name string) error {
	if !w.inPass || w.peeking {
		return nil
	}
	if w.crashed {
		return errSimCrash
	}
	// The download's file is created: a temp file in the target's folder, or an unnamed one (fakefs "tmpfile",
	// named by its folder).
	if w.raceLocal != "" && !w.raceAtRename && ((op == "create" && path.Dir(name) == path.Dir(nameOf(w.raceLocal)) &&
		strings.HasPrefix(path.Base(name), remote.TempPrefix)) || (op == "tmpfile" && name == path.Dir(nameOf(w.raceLocal)))) {
		p := w.raceLocal
		w.raceLocal = ""
		w.clk.Advance(5 * time.Millisecond) // the edit lands during the transfer, a clock tick after it began
		w.raceEdit(w.L, p, "mid-download")
	}
	if (op == "rename" || op == "link") && w.raceLocal != "" && w.raceAtRename && name == nameOf(w.raceLocal) {
		p := w.raceLocal
		w.raceLocal, w.raceAtRename = "", false
		// After the transfer, as the edit mid-download: a clock tick later than the download began. (An edit in
		// place that keeps the size within the tick of the last check is the one change the swap cannot see:
		// see localdir.swappedOut.)
		w.clk.Advance(5 * time.Millisecond)
		w.raceEdit(w.L, p, "at the rename")
	}
	if !mutatingFS(op) {
		return nil
	}
	if err := w.tick("fs " + op + " " + name); err != nil {
		return err
	}
	isSync := op == "sync" || op == "syncdir" || op == "syncfs"
	if isSync {
		w.syncCalls++
	}
	if w.fsFaultAt > 0 && (*simSyncFaults || !isSync) {
		w.fsFaultAt--
		if w.fsFaultAt == 0 {
			w.tot.fsFaults.Add(1)
			w.logf("disk fault %v on %s %s", w.fsFaultErr, op, name)
			return w.fsFaultErr
		}
	}
	return nil
}

func nameOf(p remote.Path) string {
	if p == remote.Root {
		return "."
	}
	return string(p)
}

// tick counts a mutating call and crashes the pass at the chosen one.
func (w *world) tick(what string) error {
	w.mutCalls++
	if w.crashAt > 0 && w.mutCalls == w.crashAt {
		w.logf("CRASH before %s", what)
		w.crashed = true
		w.cancel()
		return errSimCrash
	}
	return nil
}

// crash is a power loss: the fake disk keeps what was durable (and a random part of the rest), the engine's
// memory is gone, and the store is reopened from its file (bbolt: the last commit), found not closed.
func (w *world) crash() {
	w.fullNext = true
	w.ffs.Crash()
	if w.names != nil {
		w.names.crashed(w)
	}
	if w.st != nil {
		w.st.Abandon() // as the process died: the next open finds the store unclean
		w.st = nil
	}
	w.openStore()
	w.newEngine()
	// A local version the power loss took from where the user wrote it, before it was written back, was
	// never the engine's to keep: the user's write did not happen. (With -sim.lazydisk nothing is written
	// back, so only versions gone from everywhere are exempt, and those no finished pass saw: that shows stale
	// files uploaded over newer ones. A write no pass saw, torn by the power loss, is a local edit to the engine,
	// as it is to the user; seed 145: the same content rewritten, emptied, uploaded over the remote copy.)
	//
	// Whether the power loss took a version is decided by its content, not by v.path: the user may have moved
	// it since the write (mv a b, or mv of its folder), and a power loss keeps or undoes that move, so the
	// version may sit at a, at b, or nowhere. Only nowhere live on L is a loss; a version still at any path is
	// the engine's to keep like any other. (A trash does not count: a power loss puts nothing there, and an
	// older copy the engine trashed is not the version the user's torn write held; seed 80225, -sim.lazydisk.)
	onL := w.liveHashes(w.L, false)
	liveL := w.liveHashes(w.L, true)
	liveR := w.liveHashes(w.R, true)
	for _, v := range w.versions {
		if !v.pending || v.away {
			continue // away: on another disk with its folder (opFolderToSkip), out of the power loss's reach
		}
		lost := !onL[v.sha]
		if *simLazyDisk && v.moved && !v.exempt && !liveL[v.sha] && liveR[v.sha] && !w.fileAtAny(w.L, v.path, v.movedVia) {
			// Seed 50418: the user's mv into a folder never synced; the power loss kept the move (an fsync of
			// the source folder) and lost the folder, so the file is gone locally. The engine sees a local delete
			// and must take the remote copy to the trash, as for the user's rm (I4), not keep it live.
			//
			// Only when no file is left where the version was written nor at any end of the user's mvs since:
			// seed 100305, the power loss undid the mv and tore a rewrite of the same content no pass had seen,
			// leaving an empty file at the source. The engine sees an edit there, not a delete, and rightly
			// uploads it over the remote copy; the version is the torn write's, below (!v.seen: discarded).
			// This hides no real loss: the torn-write rule below discards only a version no pass has seen (the
			// user's to lose, as any unsynced write); one a pass has seen, with a file left at one of its paths,
			// must still be found on a side, in a trash or in a conflict copy (I2, checked after every pass), and
			// one gone from every file of L while the remote holds it still has to reach a trash, as before.
			v.trashed = true
			v.trashedAt = w.pathsHolding(w.R, v.sha)
			w.logf("power loss took the moved L version %s of %q: a delete to the engine", v.sha[:8], v.path)
			continue
		}
		if (*simLazyDisk && ((!v.exempt && !liveL[v.sha] && !liveR[v.sha]) || (!v.seen && lost))) || (!*simLazyDisk && lost) {
			// What the user's torn write left replaces that content in the user's eyes, wherever it is. (Every
			// version of the content, as for any overwrite: seed 80124, the remote user's copy of the lost local
			// write equals the base the local user had deleted, and tandem rightly takes it to the trash.)
			w.discard(v.sha)
			w.logf("power loss took %s version %s of %q", v.side, v.sha[:8], v.path)
		}
	}
	for _, v := range w.versions {
		v.pending, v.moved, v.movedVia = false, false, nil
	}
	// What the disk shows now (an older content, an empty file) is known content, not a new user version: a
	// stale file that overwrites a newer version shows up as that version's loss.
	for _, e := range w.list(w.L) {
		if !e.dir && !w.known[e.sha] {
			w.known[e.sha] = true
			w.logf("power loss left %s at %q", e.sha[:8], e.path)
		}
	}
}
