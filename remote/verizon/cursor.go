package verizon

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/tandemsync/tandem/remote"
)

// The change feed. A fullview delta is used only as a signal: 412 nothing changed, 205 the etag is too old, 200
// something changed (documented). What a 200 says is not trusted to be complete, because the reference does not say
// what a delta names after a move (the emulator's delta-move-none, delta-move-folder and delta-move-subtree
// variants), and under the least helpful reading (the emulator's default, delta-move-none) an item moved and then
// deleted between two looks is named nowhere: not at its old path (it moved away) and not at its new one (it did
// not exist at the etag). Nothing in such a delta can tell it; only a complete listing can. So on a 200 the client
// takes a complete fullview and compares it with the previous one, which travels in the cursor (as the vBoxx client
// keeps its tree): every old path the new listing no longer holds is deleted, a file whose contentToken left an old
// path for a new one is a move, a folder whose whole subtree reappears elsewhere is one move. This is correct under
// every reading of the delta, at the cost of one complete fullview of the virtual folder per pass that finds
// changes (a pass that finds none costs one bodyless 412, as before).
//
// Keeping the previous listing in the cursor, not in a side file, means the engine commits it in the same
// transaction as the changes it covers: it can never run ahead of what was recorded.

// cursorMagic starts a cursor: the etag follows, then a NUL (header values hold none), then a flate stream of
// the JSON-encoded previous listing. Cursors of older versions ("vz1:", "vz2:" with only an etag) are not read:
// Changes answers ErrOutOfSync and the engine lists everything once.
const cursorMagic = "vz3:"

// maxCursor bounds what a cursor may inflate to, so a damaged one cannot exhaust memory.
const maxCursor = 512 << 20

// seen is the previous complete listing below the root, as the cursor carries it.
type seen struct {
	// E holds every entry: [path, rev] for a file, [path, ""] for a folder (implied ones included).
	E [][2]string `json:"e"`
	// S holds the skipped items: [path, id, "d" for a folder or ""], so that only new ones are reported.
	S [][3]string `json:"s,omitempty"`
}

type seenEntry struct {
	dir bool
	rev string
}

type seenSkip struct {
	id  string
	dir bool
}

// view is a decoded seen.
type view struct {
	entries map[remote.Path]seenEntry
	skips   map[remote.Path]seenSkip
}

func viewOf(l *listing) *view {
	v := &view{entries: make(map[remote.Path]seenEntry, len(l.entries)), skips: map[remote.Path]seenSkip{}}
	for p, e := range l.entries {
		v.entries[p] = seenEntry{dir: e.Dir, rev: e.Rev}
	}
	for _, e := range l.skips {
		v.skips[e.Path] = seenSkip{id: e.ID, dir: e.Dir}
	}
	return v
}

func encodeCursor(etag string, l *listing) remote.Cursor {
	var s seen
	for p, e := range l.entries {
		rev := ""
		if !e.Dir {
			rev = e.Rev
		}
		s.E = append(s.E, [2]string{string(p), rev})
	}
	sort.Slice(s.E, func(i, j int) bool { return s.E[i][0] < s.E[j][0] }) // the same listing, the same cursor
	for _, e := range l.skips {
		d := ""
		if e.Dir {
			d = "d"
		}
		s.S = append(s.S, [3]string{string(e.Path), e.ID, d})
	}
	raw, _ := json.Marshal(s) // strings only: cannot fail
	var out bytes.Buffer
	out.WriteString(cursorMagic)
	out.WriteString(etag)
	out.WriteByte(0)
	zw, _ := flate.NewWriter(&out, flate.BestSpeed)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return out.Bytes()
}

var errCursor = errors.New("unusable cursor")

// decodeCursor reads a cursor back. Anything else (an older version, damage) is errCursor: the caller answers
// ErrOutOfSync, and the engine lists everything, which is always safe.
func decodeCursor(cur remote.Cursor) (string, *view, error) {
	rest, ok := bytes.CutPrefix(cur, []byte(cursorMagic))
	etag, packed, ok2 := bytes.Cut(rest, []byte{0})
	if !ok || !ok2 || len(etag) == 0 {
		return "", nil, fmt.Errorf("%w: not a %s cursor", errCursor, cursorMagic)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(packed)), maxCursor))
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", errCursor, err)
	}
	var s seen
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", nil, fmt.Errorf("%w: %v", errCursor, err)
	}
	v := &view{entries: make(map[remote.Path]seenEntry, len(s.E)), skips: map[remote.Path]seenSkip{}}
	for _, e := range s.E {
		p, err := remote.ParsePath(e[0])
		if err != nil || string(p) != e[0] || p == remote.Root {
			return "", nil, fmt.Errorf("%w: bad path %s", errCursor, remote.Escape(e[0]))
		}
		v.entries[p] = seenEntry{dir: e[1] == "", rev: e[1]}
	}
	for _, e := range s.S {
		v.skips[remote.Path(e[0])] = seenSkip{id: e[1], dir: e[2] == "d"}
	}
	return string(etag), v, nil
}

// diff turns the previous listing and the current one into the engine's changes: new skipped items first (so
// that a synced file renamed to a name tandem cannot hold is found by its id before anything could delete it),
// then what the documented delta would say (every path gone in deleted, every new or changed item listed),
// through listing.changes, which pairs a folder whose subtree reappears elsewhere into one move. A deleted file
// whose contentToken now sits at a new path becomes a move of that file.
func diff(old *view, now *listing) []remote.Change {
	var out []remote.Change
	held := map[string]bool{} // ids of skipped items: their old records are kept, not deleted
	for _, e := range now.skips {
		if e.ID != "" {
			held[e.ID] = true
		}
		if o, ok := old.skips[e.Path]; !ok || o.id != e.ID || o.dir != e.Dir {
			out = append(out, remote.Change{Entry: e})
		}
	}
	d := &listing{entries: map[remote.Path]remote.Entry{}}
	for p, e := range now.entries {
		if o, ok := old.entries[p]; !ok || o.dir != e.Dir || o.rev != e.Rev {
			d.entries[p] = e
		}
	}
	keep := map[remote.Path]bool{} // held files and the folders above them
	for p, o := range old.entries {
		if _, tok, ok := parseRev(o.rev); ok && !o.dir && held[tok] {
			for q := p; q != remote.Root; q = q.Dir() {
				keep[q] = true
			}
		}
	}
	for p, o := range old.entries {
		if e, ok := now.entries[p]; (!ok || e.Dir != o.dir) && !keep[p] {
			d.deleted = append(d.deleted, p)
		}
	}
	chs := d.changes(old)
	// A deleted file whose token is now listed at a path that is new: the same file, moved.
	at := map[string]int{}
	for i, ch := range chs {
		if !ch.Deleted && ch.From == "" && !ch.Entry.Dir && ch.Entry.ID != "" {
			if _, known := old.entries[ch.Entry.Path]; !known {
				if _, dup := at[ch.Entry.ID]; !dup {
					at[ch.Entry.ID] = i
				}
			}
		}
	}
	drop := map[int]bool{}
	for i, ch := range chs {
		if !ch.Deleted {
			continue
		}
		o := old.entries[ch.Entry.Path]
		_, tok, ok := parseRev(o.rev)
		if _, still := now.entries[ch.Entry.Path]; o.dir || !ok || still {
			continue
		}
		if j, moved := at[tok]; moved {
			chs[j].From = ch.Entry.Path
			delete(at, tok)
			drop[i] = true
		}
	}
	// A folder that is new since the previous listing, and not the new place of a folder move, is answered as
	// "nothing here" first and then with everything the listing holds below it (all of it new, so all of it
	// listed): the stored view then holds exactly the listing there. The previous listing predates tandem's own
	// writes since it was taken: a folder tandem moved here carried its stored children along, and a child
	// another client deleted before the feed read past that move was never in either listing at this path, so
	// nothing else would ever say it is gone (torture, Verizon seed 365200). A folder that existed before is
	// compared item by item, as the listings hold all of it.
	moved := map[remote.Path]bool{}
	for _, ch := range chs {
		if ch.From != "" && ch.Entry.Dir {
			moved[ch.Entry.Path] = true
		}
	}
	var fresh []remote.Path
	for p, e := range now.entries {
		if o, ok := old.entries[p]; !e.Dir || (ok && o.dir) || moved[p] {
			continue
		}
		// Only the topmost: below a new folder, the new folder's own reset covers it.
		if d := p.Dir(); d == remote.Root || old.entries[d].dir {
			fresh = append(fresh, p)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return less(fresh[i], fresh[j]) })
	for _, p := range fresh {
		out = append(out, remote.Change{Entry: remote.Entry{Path: p}, Deleted: true})
	}
	for i, ch := range chs {
		if !drop[i] {
			out = append(out, ch)
		}
	}
	return out
}
