package engine

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// Report is what a pass did, for the CLI's text and JSON output and the daemon's status. Safe for concurrent
// use while the pass runs; read it after RunPass returns.
type Report struct {
	mu          sync.Mutex
	Pair        string        `json:"pair"`
	DryRun      bool          `json:"dry_run"`
	Planned     []Action      `json:"-"`
	Done        []Done        `json:"done"`
	Conflicts   []ConflictRec `json:"conflicts"`
	Skipped     []Skip        `json:"skipped"`
	Problems    []Problem     `json:"problems"`
	Rounds      int           `json:"rounds"`
	FullListing bool          `json:"full_listing"`
	Resynced    bool          `json:"resynced"` // the remote's cursor was out of sync and the pass re-listed it
	// PendingRemote counts remote changes the pass read but left for the next one (stored; a scoped pass plans
	// them): a daemon runs that pass now rather than wait for news.
	PendingRemote int             `json:"pending_remote"`
	Recovered     int             `json:"recovered"` // temp files of an interrupted pass removed (named by the journal)
	Took          time.Duration   `json:"-"`
	skipSeen      map[string]bool // side + path of what skipOnce reported
}

// Done is one finished action.
type Done struct {
	Op    Op          `json:"op"`
	Path  remote.Path `json:"path"`
	To    remote.Path `json:"to,omitempty"`
	Bytes int64       `json:"bytes"`
}

// ConflictRec is a conflict and where each version ended up.
type ConflictRec struct {
	Path   remote.Path `json:"path"`
	Copy   remote.Path `json:"copy,omitempty"` // the renamed-aside version ("" when a policy sent the loser to a trash)
	Kept   string      `json:"kept"`           // which version stayed at Path: "remote", "local" or "both"; "collision": a local name the remote cannot hold, left unsynced
	Reason string      `json:"reason"`
}

// Skip is a path left alone this pass, with the reason (invalid name, symlink, unreadable, locked, refused).
type Skip struct {
	Path   remote.Path `json:"path"`
	Side   string      `json:"side,omitempty"` // "local" or "remote" where known
	Reason string      `json:"reason"`
}

// Problem is an action that failed; the path is re-planned on the next pass.
type Problem struct {
	Op   Op          `json:"op"`
	Path remote.Path `json:"path"`
	Err  string      `json:"error"`
	// RetryAt: the path failed in earlier passes and was held back in this one, untried, until then
	// (Options.PathBackoff). A retry before it would find the path held again.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

func (r *Report) done(a Action, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Done = append(r.Done, Done{Op: a.Op, Path: a.Path, To: a.To, Bytes: n})
}

// skip reports p on side ("local" or "remote") as left alone in this pass.
func (r *Report) skip(side string, p remote.Path, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Skipped = append(r.Skipped, Skip{Path: p, Side: side, Reason: why})
}

// skipOnce reports p as skipped on side, once per pass.
func (r *Report) skipOnce(side string, p remote.Path, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := side + "\x00" + string(p)
	if r.skipSeen[k] {
		return
	}
	if r.skipSeen == nil {
		r.skipSeen = map[string]bool{}
	}
	r.skipSeen[k] = true
	r.Skipped = append(r.Skipped, Skip{Path: p, Side: side, Reason: why})
}

func (r *Report) problem(a Action, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Problems = append(r.Problems, Problem{Op: a.Op, Path: a.Path, Err: err.Error()})
}

// heldBack reports a's path as held back by the path backoff until until.
func (r *Report) heldBack(a Action, until time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Problems = append(r.Problems, Problem{Op: a.Op, Path: a.Path, Err: err.Error(), RetryAt: until})
}

func (r *Report) conflict(c ConflictRec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Conflicts = append(r.Conflicts, c)
}

func (r *Report) hasConflict(p remote.Path) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.Conflicts, func(c ConflictRec) bool { return c.Path == p })
}

// Sort orders every list by path so that output is stable whatever order the pool finished in.
func (r *Report) Sort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	sort.SliceStable(r.Done, func(i, j int) bool { return r.Done[i].Path < r.Done[j].Path })
	sort.SliceStable(r.Skipped, func(i, j int) bool { return r.Skipped[i].Path < r.Skipped[j].Path })
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Path < r.Problems[j].Path })
	sort.SliceStable(r.Conflicts, func(i, j int) bool { return r.Conflicts[i].Path < r.Conflicts[j].Path })
}

// Totals counts what moved.
type Totals struct {
	Uploaded, Downloaded           int
	UpBytes, DownBytes             int64
	DeletedLocal, DeletedRemote    int
	MovedLocal, MovedRemote, Other int
}

// Totals sums the finished actions.
func (r *Report) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t Totals
	for _, d := range r.Done {
		switch d.Op {
		case Upload:
			t.Uploaded++
			t.UpBytes += d.Bytes
		case Download:
			t.Downloaded++
			t.DownBytes += d.Bytes
		case DeleteLocal:
			t.DeletedLocal++
		case DeleteRemote:
			t.DeletedRemote++
		case MoveLocal:
			t.MovedLocal++
		case MoveRemote:
			t.MovedRemote++
		default:
			t.Other++
		}
	}
	return t
}
