package daemon

import "time"

// The status API's JSON documents (HTTP+JSON on the unix socket, version 1). Fields are only ever added.

// Pair states.
const (
	StateStarting = "starting" // opening the state database and the remote
	StateIdle     = "idle"
	// StateDegraded: no pass is running or due, but a folder of the pair is not watched (moved away, or the
	// watch failed), so its changes wait for a full pass; Watcher says which and why.
	StateDegraded      = "degraded"
	StateScanning      = "scanning" // a pass is observing both sides
	StateSyncing       = "syncing"  // a pass is executing actions
	StatePaused        = "paused"
	StateError         = "error"          // a safety stop or repeated failure; Message says what to do
	StateLoginRequired = "login-required" // the remote refused the stored login; no passes until resumed
)

// Status is GET /v1/status.
type Status struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Config  string    `json:"config"`
	// TokenStore is where the daemon keeps logins: "keyring" (the OS keyring) or "file" (0600 files);
	// TokenStoreWhy says how token_store chose it.
	TokenStore    string       `json:"token_store,omitempty"`
	TokenStoreWhy string       `json:"token_store_why,omitempty"`
	Pairs         []PairStatus `json:"pairs"`
}

// PairStatus is one pair's state. The engine reports each action as it starts and ends, and a transfer's
// bytes every MiB while it runs: a transfer's Done is what it has moved so far, and Rate is the pass's bytes
// (finished and in flight) over its elapsed time.
type PairStatus struct {
	Name   string `json:"name"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
	State  string `json:"state"`
	// Message explains a paused, error or login-required state and says what to do.
	Message string `json:"message,omitempty"`
	// Queue is the actions of the running pass that have started and not finished (the engine announces an
	// action when it starts, so actions still waiting for a pool slot are not counted).
	Queue     int        `json:"queue"`
	Transfers []Transfer `json:"transfers"`
	// PassBytesDone/Total: bytes of the running pass's finished / started transfers.
	PassBytesDone  int64   `json:"pass_bytes_done"`
	PassBytesTotal int64   `json:"pass_bytes_total"`
	Rate           float64 `json:"rate_bytes_per_s"`

	LastSync    *time.Time `json:"last_sync,omitempty"` // end of the last pass that completed
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	Problems    int        `json:"problems"` // paths that failed in the last pass (retried)
	Conflicts   int        `json:"conflicts"`
	// CursorAge is how long ago the remote was last known complete: the end of the last pass's observation,
	// or the poller's last answer from the change feed, whichever is later. -1 before the first.
	CursorAge float64    `json:"cursor_age_s"`
	Resynced  *time.Time `json:"resynced,omitempty"` // the last time the change cursor was out of sync and re-listed
	Watcher   string     `json:"watcher,omitempty"`  // "" or what degrades the folder watch (e.g. the inotify limit)
	// NextFullScan is when the next safety-net pass (full_scan_interval) is due.
	NextFullScan *time.Time `json:"next_full_scan,omitempty"`
	// LastRemoteListing is when the last complete listing of a remote with a change feed began, for whatever
	// reason (the first pass, remote_relist_interval, a lost cursor: Resynced is only that last one); it is
	// kept in the state database. NextRemoteRelist is when the next is due (remote_relist_interval after
	// it; absent when that is off or the remote has no feed). A listing due is made by the next full pass.
	LastRemoteListing *time.Time `json:"last_remote_listing,omitempty"`
	NextRemoteRelist  *time.Time `json:"next_remote_relist,omitempty"`
	// ReadOnly: the remote refuses every change for this account (a vBoxx folder without write permission);
	// the pair syncs down only and local changes are listed as skipped.
	ReadOnly bool      `json:"read_only,omitempty"`
	Passes   int       `json:"passes"`
	Pending  bool      `json:"pending"` // a pass is due (changes seen, not yet synced)
	LastPass *PassInfo `json:"last_pass,omitempty"`
	// Skipped lists paths left alone (symlinks, special files, names tandem cannot hold, folders kept for
	// ignored files) as the last full pass and the scoped passes since saw them; never null.
	Skipped []SkipInfo `json:"skipped"`
}

// SkipInfo is one skipped path.
type SkipInfo struct {
	Path   string `json:"path"`
	Side   string `json:"side,omitempty"`
	Reason string `json:"reason"`
}

// Transfer is one action in flight.
type Transfer struct {
	Path    string    `json:"path"`
	Op      string    `json:"op"`
	Total   int64     `json:"total"`
	Done    int64     `json:"done"`
	Started time.Time `json:"started"`
}

// PassInfo summarises the last finished pass.
type PassInfo struct {
	TookMS     int64  `json:"took_ms"`
	Uploaded   int    `json:"uploaded"`
	Downloaded int    `json:"downloaded"`
	Deleted    int    `json:"deleted"`
	Moved      int    `json:"moved"`
	Bytes      int64  `json:"bytes"`
	Result     string `json:"result"` // ok, problems, error, cancelled
	// Scope is "full" when the pass walked both sides (Reason says why: start-up, rescan requested, safety-net
	// scan, retry after a failed pass, ...) and "scoped" when it observed only what changed: the Paths the
	// folder watchers reported, plus what a remote's change feed reported.
	Scope  string `json:"scope"`
	Reason string `json:"reason,omitempty"`
	Paths  int    `json:"paths,omitempty"`
	// RemoteListed: the pass listed the remote completely instead of reading its change feed.
	RemoteListed bool `json:"remote_listed,omitempty"`
}

// ControlRequest is the body of POST /v1/pause, /v1/resume and /v1/rescan. Pair "" means every pair.
type ControlRequest struct {
	Pair         string `json:"pair"`
	AllowDeletes bool   `json:"allow_deletes,omitempty"` // resume only: one pass may pass the big-delete guard
}

// ControlResponse lists the pairs the request reached.
type ControlResponse struct {
	Pairs []string `json:"pairs"`
}

// ConflictInfo is one recorded conflict, GET /v1/conflicts.
type ConflictInfo struct {
	Pair   string    `json:"pair"`
	Path   string    `json:"path"`
	Copy   string    `json:"copy,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Conflicts is GET /v1/conflicts.
type Conflicts struct {
	Conflicts []ConflictInfo `json:"conflicts"`
}

// apiError is the body of every non-2xx answer.
type apiError struct {
	Error string `json:"error"`
}
