package emulator

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// diff serves the change feed (§6). Exactly one of diffid, after, last picks the start; none (or diffid=0) is
// the whole history. block=1 with diffid waits for a newer event up to DiffBlockTimeout.
func (c *call) diff() (any, error) {
	e := c.e
	var (
		diffID             uint64
		hasDiffID, hasLast bool
		after              int64
		hasAfter           bool
		last, limit        int
		err                error
	)
	if v := c.p.Get("diffid"); v != "" {
		if diffID, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fail(1013) // undocumented for a malformed number; "not understood" is the closest code
		}
		hasDiffID = true
	}
	if v := c.p.Get("after"); v != "" {
		t, ok := parseDateTime(v)
		if !ok {
			return nil, fail(1013)
		}
		after, hasAfter = t.Unix(), true
	}
	if v := c.p.Get("last"); v != "" {
		if last, err = strconv.Atoi(v); err != nil || last < 0 {
			return nil, fail(1013)
		}
		hasLast = true
	}
	if v := c.p.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			limit = 0
		}
	}
	block := c.flag("block") && hasDiffID

	// A timer that is stopped on return, not clk.After: a fake clock would otherwise count the finished poll as
	// still waiting, and tests use that count to know a poll is blocked.
	var deadline <-chan time.Time
	for {
		e.mu.Lock()
		if hasDiffID && diffID > 0 && diffID < e.cnt.Floor && !slices.Contains(e.cnt.Kept, diffID) {
			floor := e.cnt.Floor
			e.mu.Unlock()
			if e.o.TooOldResult != 0 {
				return nil, fail(e.o.TooOldResult)
			}
			// The history this cursor points into is gone: a `reset` tells the client to start over.
			return ok("diffid", floor, "entries", []map[string]any{{"event": "reset", "time": c.t(e.clk.Now().Unix()),
				"diffid": floor}}), nil
		}
		var sel []event
		switch {
		case hasDiffID:
			sel = eventsAfter(e.events, diffID)
		case hasAfter:
			for _, ev := range e.events {
				if ev.Time > after {
					sel = append(sel, ev)
				}
			}
		case hasLast:
			if last > 0 {
				sel = e.events[max(len(e.events)-last, 0):]
			}
		default:
			sel = e.events
		}
		cur := e.cnt.DiffID
		if len(sel) > 0 || !block {
			if limit > 0 && len(sel) > limit {
				sel = sel[:limit]
				cur = sel[len(sel)-1].DiffID
			}
			if cur < e.cnt.Floor && !slices.Contains(e.cnt.Kept, cur) {
				e.cnt.Kept = append(e.cnt.Kept, cur) // a page boundary inside the compacted history
			}
			if !e.is(VariantKeepCancelling) {
				// Documented: events cancelling each other inside one reply are dropped, so the reply may be
				// shorter than limit while more is waiting.
				sel = dropCancelling(sel)
			}
			entries := make([]map[string]any, 0, len(sel))
			for _, ev := range sel {
				entries = append(entries, c.entry(ev))
			}
			e.mu.Unlock()
			return ok("diffid", cur, "entries", entries), nil
		}
		wake := e.changed
		e.mu.Unlock()
		if deadline == nil {
			timer := e.clk.NewTimer(e.o.DiffBlockTimeout)
			defer timer.Stop()
			deadline = timer.Chan()
		}
		select {
		case <-wake:
		case <-deadline:
			return ok("diffid", cur, "entries", []map[string]any{}), nil
		case <-c.r.Context().Done():
			return nil, nil // the client left; nobody reads an answer
		case <-e.closed:
			return ok("diffid", cur, "entries", []map[string]any{}), nil
		}
	}
}

func eventsAfter(evs []event, id uint64) []event {
	// Events are in increasing diffid order: binary search for the first one after id.
	lo, hi := 0, len(evs)
	for lo < hi {
		mid := (lo + hi) / 2
		if evs[mid].DiffID <= id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return evs[lo:]
}

func (c *call) entry(ev event) map[string]any {
	m := map[string]any{"event": ev.Event, "time": c.t(ev.Time), "diffid": ev.DiffID}
	switch {
	case ev.Event == "modifyuserinfo":
		m["userinfo"] = c.userinfoFields(map[string]any{})
	case ev.Node != nil:
		md := c.meta(ev.Node)
		md.DeletedFileID = ev.DeletedFileID
		m["metadata"] = md
	}
	return m
}

// parseDateTime accepts the input forms of §4.2: Unix seconds, RFC 2822 (weekday optional), ISO 8601 prefixes
// (space for T allowed), YYYYMMDDhhmmss.
func parseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && len(s) != 14 {
		return time.Unix(n, 0), true
	}
	layouts := []string{
		time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700",
		"02 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 MST", time.RFC3339, "2006-01-02T15:04:05",
		"2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02",
		"20060102150405",
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Hook names pCloud adds to emukit's fault actions.
const (
	// HookExpireToken revokes the request's token (Action.Code 2095, default) or forgets it (2094), then serves
	// the request, which then fails with that code. Without a token in the request every token is affected.
	HookExpireToken = "expireToken"
	// HookCompactHistory drops the diff history (DropHistory), then serves the request.
	HookCompactHistory = "compactHistory"
	// HookResult answers HTTP 200 with {"result": Action.Code, "error": …}: 4000 throttling, 5000 internal, ….
	HookResult = "result"
	// HookResetEvent appends a `reset` event to the diff log, then serves the request.
	HookResetEvent = "resetEvent"
)

func (e *Emulator) registerHooks() {
	e.kit.RegisterHook(HookExpireToken, func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		tok := r.URL.Query().Get("access_token")
		if h := r.Header.Get("Authorization"); tok == "" && len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			tok = strings.TrimSpace(h[7:])
		}
		if tok == "" {
			tok = r.URL.Query().Get("auth")
		}
		e.mu.Lock()
		keys := []string{emukit.TokenKey(tok)}
		if tok == "" {
			keys = keys[:0]
			for k := range e.tokens {
				keys = append(keys, k)
			}
		}
		ch := &change{tokens: map[string]*tokenState{}}
		for _, k := range keys {
			if a.Code == 2094 {
				delete(e.tokens, k)
				ch.tokens[k] = nil
			} else {
				st := &tokenState{Revoked: true}
				e.tokens[k] = st
				ch.tokens[k] = st
			}
		}
		_ = e.commit(ch)
		e.mu.Unlock()
		next.ServeHTTP(w, r)
	})
	e.kit.RegisterHook(HookCompactHistory, func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		e.DropHistory()
		next.ServeHTTP(w, r)
	})
	e.kit.RegisterHook(HookResult, func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		code := a.Code
		if code == 0 {
			code = 5000
		}
		e.replyErr(w, r, r.URL.Query(), fail(code))
	})
	e.kit.RegisterHook(HookResetEvent, func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		e.mu.Lock()
		ch := &change{}
		e.appendEvent(ch, "reset", nil, 0)
		_ = e.commit(ch)
		e.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}
