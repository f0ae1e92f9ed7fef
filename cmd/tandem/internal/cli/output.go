package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
)

// result is the outcome of one `tandem once`: the --json document (schema in README.md) and the input of the
// text printer. Paths are raw (JSON escapes them); the text printer escapes them for the terminal.
type result struct {
	Pair      string         `json:"pair"`
	Local     string         `json:"local"`
	Remote    string         `json:"remote"`
	DryRun    bool           `json:"dry_run"`
	OK        bool           `json:"ok"`
	ExitCode  int            `json:"exit_code"`
	Notes     []string       `json:"notes"`
	Planned   []plannedJSON  `json:"planned"`
	Done      []doneJSON     `json:"done"`
	Conflicts []conflictJSON `json:"conflicts"`
	Skipped   []skipJSON     `json:"skipped"`
	Problems  []problemJSON  `json:"problems"`
	Totals    totalsJSON     `json:"totals"`
	TookMS    int64          `json:"took_ms"`
	Error     string         `json:"error"`
}

type plannedJSON struct {
	Op     string `json:"op"`
	Path   string `json:"path"`
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}

type doneJSON struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	To    string `json:"to,omitempty"`
	Bytes int64  `json:"bytes"`
}

type conflictJSON struct {
	Path   string `json:"path"`
	Copy   string `json:"copy,omitempty"`
	Kept   string `json:"kept"` // "both", "local" or "remote"
	Type   bool   `json:"type_change"`
	Reason string `json:"reason"`
}

type skipJSON struct {
	Path   string `json:"path"`
	Side   string `json:"side"` // "local" or "remote"
	Reason string `json:"reason"`
}

type problemJSON struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Error string `json:"error"`
}

type totalsJSON struct {
	Uploaded      int   `json:"uploaded"`
	Downloaded    int   `json:"downloaded"`
	UpBytes       int64 `json:"up_bytes"`
	DownBytes     int64 `json:"down_bytes"`
	DeletedLocal  int   `json:"deleted_local"`
	DeletedRemote int   `json:"deleted_remote"`
	MovedLocal    int   `json:"moved_local"`
	MovedRemote   int   `json:"moved_remote"`
	Other         int   `json:"other"`
	Conflicts     int   `json:"conflicts"`
	Skipped       int   `json:"skipped"`
	Problems      int   `json:"problems"`
}

// fill copies an engine report into the result, sorted by path so output does not depend on pool order.
func (res *result) fill(rep *engine.Report) {
	rep.Sort()
	if rep.Recovered > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("removed %d temp %s an interrupted pass left (its journal named them); "+
			"both sides were looked at afresh", rep.Recovered, plural(rep.Recovered, "file", "files")))
	}
	for _, a := range rep.Planned {
		res.Planned = append(res.Planned, plannedJSON{Op: a.Op.String(), Path: string(a.Path), To: string(a.To), Reason: a.Reason})
	}
	typeChange := map[remote.Path]bool{}
	for _, d := range rep.Done {
		if d.Op == engine.TypeConflict {
			typeChange[d.Path] = true
		}
		res.Done = append(res.Done, doneJSON{Op: d.Op.String(), Path: string(d.Path), To: string(d.To), Bytes: d.Bytes})
	}
	for _, c := range rep.Conflicts {
		res.Conflicts = append(res.Conflicts, conflictJSON{Path: string(c.Path), Copy: string(c.Copy), Kept: c.Kept,
			Type: typeChange[c.Path], Reason: c.Reason})
	}
	for _, s := range rep.Skipped {
		res.Skipped = append(res.Skipped, skipJSON{Path: storedName(string(s.Path)), Side: s.Side, Reason: s.Reason})
	}
	for _, p := range rep.Problems {
		res.Problems = append(res.Problems, problemJSON{Op: p.Op.String(), Path: string(p.Path), Error: p.Err})
	}
	t := rep.Totals()
	res.Totals = totalsJSON{Uploaded: t.Uploaded, Downloaded: t.Downloaded, UpBytes: t.UpBytes, DownBytes: t.DownBytes,
		DeletedLocal: t.DeletedLocal, DeletedRemote: t.DeletedRemote, MovedLocal: t.MovedLocal,
		MovedRemote: t.MovedRemote, Other: t.Other}
}

// storedName turns the printable form of a skipped name back into the name as stored: the sides report a name
// that cannot be a Path (control characters) Go-quoted, so that logs and terminals are safe, while JSON carries
// any valid UTF-8 as it is. A name that is not valid UTF-8 stays quoted (JSON cannot hold its bytes). Only the
// exact output of remote.Escape is undone, so an ordinary name is never altered; a name that literally reads
// like a quoted one (quotes and a backslash escape in it) cannot be told from it and is shown unquoted.
func storedName(p string) string {
	if len(p) < 2 || p[0] != '"' {
		return p
	}
	raw, err := strconv.Unquote(p)
	if err != nil || !utf8.ValidString(raw) || remote.Escape(raw) != p {
		return p
	}
	return raw
}

// finish records the outcome. Lists are never null in JSON, so consumers can iterate without checks.
func (res *result) finish(err error, took time.Duration) {
	res.ExitCode = ExitCode(err)
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	res.TookMS = took.Milliseconds()
	res.Totals.Conflicts, res.Totals.Skipped, res.Totals.Problems = len(res.Conflicts), len(res.Skipped), len(res.Problems)
	for _, l := range []*[]string{&res.Notes} {
		if *l == nil {
			*l = []string{}
		}
	}
	if res.Planned == nil {
		res.Planned = []plannedJSON{}
	}
	if res.Done == nil {
		res.Done = []doneJSON{}
	}
	if res.Conflicts == nil {
		res.Conflicts = []conflictJSON{}
	}
	if res.Skipped == nil {
		res.Skipped = []skipJSON{}
	}
	if res.Problems == nil {
		res.Problems = []problemJSON{}
	}
}

// printer renders a result. Text and JSON output share it so that both always say the same thing.
type printer interface {
	print(w io.Writer, res *result) error
}

type jsonPrinter struct{}

func (jsonPrinter) print(w io.Writer, res *result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}

type textPrinter struct{}

// doneOrder groups finished actions the way a user reads them: what moved, what was created, what was copied
// each way, what was deleted.
var doneOrder = []string{"move-remote", "move-local", "mkdir-remote", "mkdir-local", "upload", "download",
	"chmod-remote", "chmod-local", "delete-remote", "delete-local"}

func (textPrinter) print(w io.Writer, res *result) error {
	// Buffered: a first sync prints a line per file, and a write(2) per line was 10,000 system calls in a row
	// after the pass (about 0.1 s of a 10,000-file first sync, the process doing nothing else).
	bw := bufio.NewWriterSize(w, 64<<10)
	ew := &errWriter{w: bw}
	for _, n := range res.Notes {
		ew.printf("note: %s\n", n)
	}
	if res.DryRun {
		printPlan(ew, res)
	}
	for _, op := range doneOrder {
		for _, d := range res.Done {
			if d.Op == op {
				ew.printf("%s\n", doneLine(d))
			}
		}
	}
	same, forgot := 0, 0
	for _, d := range res.Done {
		switch d.Op {
		case "record", "compare":
			same++
		case "forget":
			forgot++
		}
	}
	if same > 0 {
		ew.printf("= %d %s already the same on both sides (recorded)\n", same, plural(same, "path", "paths"))
	}
	if forgot > 0 {
		ew.printf("- %d ignored or deleted-on-both-sides %s forgotten\n", forgot, plural(forgot, "path", "paths"))
	}
	for _, c := range res.Conflicts {
		printConflict(ew, c)
	}
	for _, s := range res.Skipped {
		side := ""
		if s.Side != "" {
			side = s.Side + " "
		}
		ew.printf("~ skipped %s%s: %s\n", side, remote.Escape(s.Path), s.Reason)
	}
	for _, p := range res.Problems {
		// Engine errors name the operation and the path already; add them only when one does not.
		msg := remote.Escape(p.Error)
		if !strings.Contains(msg, remote.Escape(p.Path)) {
			msg = p.Op + " " + remote.Escape(p.Path) + ": " + msg
		}
		ew.printf("! failed: %s\n", msg)
	}
	ew.printf("%s\n", summary(res))
	if err := bw.Flush(); ew.err == nil {
		ew.err = err
	}
	return ew.err
}

func printPlan(ew *errWriter, res *result) {
	if len(res.Planned) == 0 {
		return
	}
	ew.printf("Plan (dry run: nothing was changed; later rounds of a real pass may add the copies of conflicts):\n")
	tw := tabwriter.NewWriter(ew, 2, 8, 2, ' ', 0)
	for _, a := range res.Planned {
		p := remote.Escape(a.Path)
		if a.To != "" {
			p += " → " + remote.Escape(a.To)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Op, p, a.Reason)
	}
	tw.Flush()
}

func doneLine(d doneJSON) string {
	p := remote.Escape(d.Path)
	switch d.Op {
	case "upload":
		return fmt.Sprintf("↑ upload %s (%s)", p, humanBytes(d.Bytes))
	case "download":
		return fmt.Sprintf("↓ download %s (%s)", p, humanBytes(d.Bytes))
	case "move-remote":
		return fmt.Sprintf("→ move remote %s → %s", p, remote.Escape(d.To))
	case "move-local":
		return fmt.Sprintf("← move local %s → %s", p, remote.Escape(d.To))
	case "mkdir-remote":
		return fmt.Sprintf("+ create folder remote %s/", p)
	case "mkdir-local":
		return fmt.Sprintf("+ create folder local %s/", p)
	case "chmod-remote":
		return fmt.Sprintf("↑ permissions remote %s (as the local file's)", p)
	case "chmod-local":
		return fmt.Sprintf("↓ permissions local %s (as the remote file's)", p)
	case "delete-remote":
		return fmt.Sprintf("✗ delete remote %s (to the remote's trash)", p)
	case "delete-local":
		return fmt.Sprintf("✗ delete local %s (to .tandem/trash)", p)
	}
	return d.Op + " " + p
}

func printConflict(ew *errWriter, c conflictJSON) {
	p, cp := remote.Escape(c.Path), remote.Escape(c.Copy)
	ew.printf("! conflict %s: %s\n", p, c.Reason)
	switch {
	case c.Type:
		ew.printf("    the file was renamed to %s; the folder stays at %s (both are on both sides)\n", cp, p)
	case c.Kept == "both":
		ew.printf("    remote version: %s (both sides)\n    local version:  %s (both sides)\n", p, cp)
	case c.Kept == "local":
		ew.printf("    local version kept at %s; the remote version went to the remote's trash\n", p)
	case c.Kept == "remote":
		ew.printf("    remote version kept at %s; the local version went to .tandem/trash\n", p)
	case c.Kept == "collision":
		ew.printf("    %s stays on this computer only, unsynced, until one of the two names is changed\n", p)
	}
}

func summary(res *result) string {
	t := res.Totals
	took := time.Duration(res.TookMS) * time.Millisecond
	if res.DryRun {
		return fmt.Sprintf("Dry run: %d %s planned, nothing changed (%s).", len(res.Planned),
			plural(len(res.Planned), "action", "actions"), took)
	}
	var parts []string
	add := func(n int, s string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if t.Uploaded > 0 {
		parts = append(parts, fmt.Sprintf("%d up (%s)", t.Uploaded, humanBytes(t.UpBytes)))
	}
	if t.Downloaded > 0 {
		parts = append(parts, fmt.Sprintf("%d down (%s)", t.Downloaded, humanBytes(t.DownBytes)))
	}
	add(t.MovedLocal+t.MovedRemote, "moved")
	add(t.DeletedLocal+t.DeletedRemote, "deleted")
	add(t.Conflicts, plural(t.Conflicts, "conflict", "conflicts"))
	add(t.Skipped, "skipped")
	add(t.Problems, "failed")
	switch {
	case t.Problems > 0:
		return fmt.Sprintf("Finished in %s with failures: %s.", took, strings.Join(parts, ", "))
	case !res.OK:
		if len(parts) == 0 {
			return fmt.Sprintf("Stopped after %s; nothing was changed.", took)
		}
		return fmt.Sprintf("Stopped after %s: %s.", took, strings.Join(parts, ", "))
	case len(res.Done) == 0 && len(parts) == 0:
		return fmt.Sprintf("Already in sync (%s).", took)
	case len(parts) == 0:
		return fmt.Sprintf("Done in %s.", took)
	}
	return fmt.Sprintf("Done in %s: %s.", took, strings.Join(parts, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// errWriter keeps the first write error so the printers can stay linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) { fmt.Fprintf(e, format, a...) }
