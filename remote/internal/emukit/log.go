package emukit

import (
	"net/url"
	"strings"
	"sync"
	"time"
)

// Entry is one served request as the request log keeps it. It never holds a credential: the query is stripped of
// secret parameters and headers are not recorded at all.
type Entry struct {
	Time     time.Time     `json:"time"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Op       string        `json:"op"`              // provider's name for the call, e.g. "listfolder"
	Query    string        `json:"query,omitempty"` // sanitized (see secretParams)
	Status   int           `json:"status"`
	BytesIn  int64         `json:"bytesIn"`
	BytesOut int64         `json:"bytesOut"`
	Took     time.Duration `json:"took"`
	Fault    string        `json:"fault,omitempty"` // the fault action applied, if any
}

// secretParams are dropped from logged queries. Lower-case; compared case-insensitively because providers differ.
var secretParams = map[string]bool{
	"access_token": true, "auth": true, "password": true, "passworddigest": true, "digest": true,
	"client_secret": true, "code": true, "refresh_token": true, "token": true, "id_token": true,
}

// SanitizeQuery returns the query with every secret parameter removed, so it can be logged.
func SanitizeQuery(q url.Values) string {
	clean := url.Values{}
	for k, v := range q {
		if secretParams[strings.ToLower(k)] {
			continue
		}
		clean[k] = v
	}
	return clean.Encode()
}

// requestLog is a ring buffer: an emulator serving a 10,000-file benchmark must not grow without bound.
type requestLog struct {
	mu      sync.Mutex
	max     int
	entries []Entry
	start   int    // index of the oldest entry once the ring is full
	gen     uint64 // bumped by reset: a request that began before a reset is not logged after it
}

func newRequestLog(max int) *requestLog {
	if max <= 0 {
		max = 10000
	}
	return &requestLog{max: max}
}

// begin is called when a request arrives; add takes what it returned.
func (l *requestLog) begin() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// add logs a finished request that began in generation gen. One that began before the last reset is dropped: a
// test that clears the log and then drives a client must not see the tail of its own earlier requests (a
// download whose answer the client had read in full before the handler returned and logged it).
func (l *requestLog) add(e Entry, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen != l.gen {
		return
	}
	if len(l.entries) < l.max {
		l.entries = append(l.entries, e)
		return
	}
	l.entries[l.start] = e
	l.start = (l.start + 1) % l.max
}

func (l *requestLog) snapshot() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(l.entries))
	out = append(out, l.entries[l.start:]...)
	return append(out, l.entries[:l.start]...)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.start = nil, 0
	l.gen++
}
