package engine

import (
	"fmt"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Op is what an action does. The names read as the plan a user sees in --dry-run.
type Op uint8

const (
	OpNone       Op = iota
	Upload          // local file -> remote
	Download        // remote file -> local
	MkdirRemote     // create the folder on the remote
	MkdirLocal      // create the folder locally
	DeleteRemote    // remote file or empty folder -> provider trash
	DeleteLocal     // local file -> .tandem/trash, empty folder removed
	MoveRemote      // replay a local move on the remote
	MoveLocal       // replay a remote move locally
	Record          // both sides already agree: record the sync point
	Compare         // both sides hold a file whose sameness is unknown: compare digests or bytes, then record or conflict
	Conflict        // both changed differently: apply the conflict policy (keep both by default)
	TypeConflict    // file on one side, folder on the other: the file is renamed aside
	Forget          // the path became ignored: drop it from the views and the base, touch no file
	ChmodRemote     // only the local file's permission bits changed: set them on the remote (both keep modes)
	ChmodLocal      // only the remote file's permission bits changed: set them locally
)

var opNames = [...]string{"none", "upload", "download", "mkdir-remote", "mkdir-local", "delete-remote",
	"delete-local", "move-remote", "move-local", "record", "compare", "conflict", "type-conflict", "forget",
	"chmod-remote", "chmod-local"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", o)
}

// MarshalText makes Op readable in --json output.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Execution phases. DESIGN's order (renames aside and moves, folder creates, transfers, deletes) with one
// refinement: moves run after folder creates, because a move into a folder that is new on the other side
// needs that folder first, while renames aside (conflict losers, type changes) still come before anything else.
const (
	phaseAside    = iota // conflict renames, type conflicts, deleting a file a folder replaces
	phaseMkdir           // parents first
	phaseMove            // moves, in plan order
	phaseTransfer        // uploads, downloads, records, compares: the parallel pool
	phaseDelete          // children first
	numPhases
)

func (a Action) phase() int {
	switch a.Op {
	case Conflict, TypeConflict:
		return phaseAside
	case MkdirRemote, MkdirLocal:
		return phaseMkdir
	case MoveRemote, MoveLocal:
		return phaseMove
	case DeleteRemote, DeleteLocal:
		if a.replacesFile() {
			return phaseAside
		}
		return phaseDelete
	}
	return phaseTransfer
}

// replacesFile: a delete of a file whose path the other side now holds as a folder.
func (a Action) replacesFile() bool {
	switch a.Op {
	case DeleteRemote:
		return a.Remote != nil && !a.Remote.Dir && a.Local != nil && a.Local.Dir
	case DeleteLocal:
		return a.Local != nil && !a.Local.Dir && a.Remote != nil && a.Remote.Dir
	}
	return false
}

// Action is one planned step for one path, with the records the plan saw (the precondition inputs).
type Action struct {
	Op   Op
	Path remote.Path
	To   remote.Path // moves: destination
	// What the planner saw. The executor re-checks the side it changes against these just before acting.
	Local, Remote *state.Record
	Base          *state.Base
	Reason        string // why, for --dry-run and logs
}

func (a Action) String() string {
	if a.To != "" {
		return fmt.Sprintf("%s %s -> %s", a.Op, a.Path.Quoted(), a.To.Quoted())
	}
	return fmt.Sprintf("%s %s", a.Op, a.Path.Quoted())
}

// Bytes is the transfer size of the action (0 when it moves no content).
func (a Action) Bytes() int64 {
	switch a.Op {
	case Upload:
		if a.Local != nil {
			return a.Local.Size
		}
	case Download:
		if a.Remote != nil {
			return a.Remote.Size
		}
	}
	return 0
}

// skipSide is the side an action that met remote.ErrUnavailable is reported under: the side whose item cannot be
// used. Transfers meet it on the remote (a locked file it will not serve, a policy or permission that refuses
// the upload): a local file that cannot be synced (a symlink, a special file) never becomes an upload, the walk
// skips it. Other actions meet it on the side they change.
func (a Action) skipSide() string {
	switch a.Op {
	case MkdirLocal, MoveLocal, DeleteLocal, ChmodLocal:
		return "local"
	}
	return "remote"
}
