package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// HistoryInfo is one decision tandem took about a path (GET /v1/history), newest first in History.
type HistoryInfo struct {
	At      time.Time `json:"at"`
	Pass    string    `json:"pass"` // "full" or "scoped", then why
	Op      string    `json:"op"`
	Path    string    `json:"path"`
	From    string    `json:"from,omitempty"` // a move into Path, or a conflict copy made from From
	To      string    `json:"to,omitempty"`   // a move out of Path
	Copy    string    `json:"copy,omitempty"` // a conflict: where the other version was saved
	Reason  string    `json:"reason"`
	Outcome string    `json:"outcome"` // done, failed, skipped
	Error   string    `json:"error,omitempty"`
	// What each side held when the decision was taken, and the sync point; null: nothing there.
	Local  *SideInfo `json:"local"`
	Remote *SideInfo `json:"remote"`
	Base   *SideInfo `json:"base"`
}

// SideInfo is what one side held at a path.
type SideInfo struct {
	Dir    bool       `json:"dir,omitempty"`
	Size   int64      `json:"size"`
	Digest string     `json:"digest,omitempty"` // "algo:" and the first 12 hex digits
	MTime  *time.Time `json:"mtime,omitempty"`
}

// History is GET /v1/history?pair=NAME&path=PATH.
type History struct {
	Pair    string        `json:"pair"`
	Path    string        `json:"path"`
	Entries []HistoryInfo `json:"entries"`
}

// historyWhy says why a pass runs, for the history: a full pass's reason, or what a scoped pass looks at.
func historyWhy(why string, paths int) string {
	if why != "" {
		return why
	}
	if paths == 0 {
		return "what the remote's change feed reported"
	}
	if paths == 1 {
		return "1 path the watchers or the feed reported"
	}
	return strconv.Itoa(paths) + " paths the watchers or the feed reported"
}

// ReadHistory lists p's entries in r, newest first.
func ReadHistory(r state.Reader, p remote.Path) ([]HistoryInfo, error) {
	out := []HistoryInfo{}
	err := r.History(p, func(h state.HistoryEntry) error {
		out = append(out, HistoryInfo{At: time.Unix(0, h.At).UTC(), Pass: h.Pass, Op: h.Op, Path: string(h.Path),
			From: string(h.From), To: string(h.To), Copy: string(h.Copy), Reason: h.Reason, Outcome: h.Outcome,
			Error: h.Error, Local: sideInfo(h.Local), Remote: sideInfo(h.Remote), Base: sideInfo(h.Base)})
		return nil
	})
	return out, err
}

func sideInfo(s *state.HistorySide) *SideInfo {
	if s == nil {
		return nil
	}
	out := &SideInfo{Dir: s.Dir, Size: s.Size, Digest: s.Hash}
	if s.MTime != 0 {
		t := time.Unix(0, s.MTime).UTC()
		out.MTime = &t
	}
	return out
}

func (d *Daemon) serveHistory(w http.ResponseWriter, r *http.Request) {
	name, path := r.URL.Query().Get("pair"), r.URL.Query().Get("path")
	p, err := remote.ParsePath(path)
	if err != nil || name == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "want ?pair=NAME&path=PATH"})
		return
	}
	rs, err := d.loops(name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
		return
	}
	l := rs[0].l
	l.mu.Lock()
	deps := l.deps
	l.mu.Unlock()
	if deps == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "pair " + name + " is not open (see tandem status)"})
		return
	}
	out := History{Pair: name, Path: path}
	err = deps.Store.View(func(rd state.Reader) error {
		var err error
		out.Entries, err = ReadHistory(rd, p)
		return err
	})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// History is GET /v1/history: the decisions about path in pair, newest first.
func (c *Client) History(ctx context.Context, pair, path string) (*History, error) {
	var h History
	q := url.Values{"pair": {pair}, "path": {path}}
	err := c.do(ctx, http.MethodGet, "/v1/history?"+q.Encode(), nil, &h)
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	return &h, err
}
