package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

type historyOpts struct {
	config, stateDir, remote string
	json                     bool
}

func newHistoryCmd(app *App) *cobra.Command {
	var o historyOpts
	c := &cobra.Command{
		Use:   "history PATH",
		Short: "Show the last decisions tandem took about a file or folder, and why",
		Long: `Show, newest first, the last decisions tandem took about PATH (a file or folder in a pair's local
folder, which may no longer exist): when, in which pass (full or scoped, and why), what each side and the
last sync point held (size, digest prefix, modification time), the action, the planner's reason, and how it
ended (done, failed with the error, skipped with the reason). Moves into and out of PATH and conflict copies
made from it are included. tandem keeps the last 20 decisions of each path and at most 100,000 in all per pair
(past that, the oldest tenth goes).

The pair is found from the config file; for a pair synced with "tandem once", name its remote with --remote.
Asks the running daemon when it holds the pair's state database.`,
		Example: `  tandem history ~/Documents/report.txt
  tandem history --remote dir:/mnt/nas/Documents ~/Documents/notes/todo.txt --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return runHistory(c.Context(), app, o, args[0], c.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&o.config, "config", "", "config file (default ~/.config/tandem/config.yaml)")
	f.StringVar(&o.stateDir, "state-dir", "", "where the pair's state database lives (default: the config's state_dir, else $XDG_STATE_HOME/tandem or ~/.local/state/tandem)")
	f.StringVar(&o.remote, "remote", "", "the pair's remote, for a pair synced with tandem once (e.g. dir:/mnt/nas/Documents)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	return c
}

// historyTarget resolves PATH like a pair's local root is resolved (absolute, symlinks of its folders
// evaluated), though PATH itself may be gone: a deleted file has a history too.
func historyTarget(arg string) (string, error) {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", usagef("path %q: %v", arg, err)
	}
	dir, rest := filepath.Dir(abs), filepath.Base(abs)
	for {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

// historyPair is the pair PATH belongs to: its name (config pairs), database and PATH within it.
type historyPair struct {
	name, db string
	rel      remote.Path
}

func findHistoryPair(app *App, o historyOpts, target string) (historyPair, *daemon.Client, error) {
	cl, cfg, sd, err := clientFor(app, o.config)
	if err != nil {
		return historyPair{}, nil, err
	}
	if o.stateDir != "" {
		sd = o.stateDir
	}
	relOf := func(root string) (remote.Path, error) {
		rel, err := filepath.Rel(root, target)
		if err != nil || rel == "." {
			return "", usagef("%s is the pair's root: give a file or folder inside it", target)
		}
		p, err := remote.ParsePath(filepath.ToSlash(rel))
		if err != nil {
			return "", usagef("%s: %v", target, err)
		}
		return p, nil
	}
	if o.remote != "" {
		for dir := filepath.Dir(target); ; dir = filepath.Dir(dir) {
			ps, err := resolvePair(app.Registry, dir, o.remote)
			if err == nil {
				db := filepath.Join(sd, ps.id+".db")
				if _, err := os.Stat(db); err == nil {
					rel, err := relOf(ps.local)
					return historyPair{db: db, rel: rel}, cl, err
				}
			} else if strings.Contains(err.Error(), "scheme") {
				return historyPair{}, nil, err
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
		return historyPair{}, nil, usagef("no pair with remote %s holds %s in %s (was it synced with a different --state-dir?)",
			o.remote, target, sd)
	}
	best := ""
	var found historyPair
	for _, p := range cfg.Pairs {
		l, err := p.LocalPath()
		if err != nil {
			continue
		}
		lr, err := resolveLocal(l)
		if err != nil || !within(target, lr) || len(lr) <= len(best) {
			continue
		}
		r, err := expandRemote(p.Remote)
		if err != nil {
			return historyPair{}, nil, err
		}
		ps, err := resolvePair(app.Registry, lr, r)
		if err != nil {
			return historyPair{}, nil, fmt.Errorf("pair %s: %w", remote.Escape(p.PairName()), err)
		}
		rel, err := relOf(ps.local)
		if err != nil {
			return historyPair{}, nil, err
		}
		best, found = lr, historyPair{name: p.PairName(), db: filepath.Join(sd, ps.id+".db"), rel: rel}
	}
	if best == "" {
		return historyPair{}, nil, usagef("%s is in no pair of the config file; for a pair synced with tandem once, "+
			"name its remote: tandem history --remote REMOTE %s", target, target)
	}
	return found, cl, nil
}

func runHistory(ctx context.Context, app *App, o historyOpts, arg string, w io.Writer) error {
	target, err := historyTarget(arg)
	if err != nil {
		return err
	}
	hp, cl, err := findHistoryPair(app, o, target)
	if err != nil {
		return err
	}
	out := &daemon.History{Pair: hp.name, Path: string(hp.rel), Entries: []daemon.HistoryInfo{}}
	st, err := state.Open(hp.db, nil, state.Options{ReadOnly: true})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// never synced: no decisions yet
	case errors.Is(err, state.ErrInUse) && hp.name != "":
		// the daemon holds the database: ask it
		if out, err = cl.History(ctx, hp.name, string(hp.rel)); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		err = st.View(func(r state.Reader) error {
			var err error
			out.Entries, err = daemon.ReadHistory(r, hp.rel)
			return err
		})
		st.Close()
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printHistory(w, target, out)
	return nil
}

func printHistory(w io.Writer, target string, h *daemon.History) {
	if len(h.Entries) == 0 {
		fmt.Fprintf(w, "no decisions recorded for %s\n", remote.Escape(target))
		return
	}
	fmt.Fprintf(w, "%s: the last %d decisions, newest first\n", remote.Escape(target), len(h.Entries))
	for _, e := range h.Entries {
		what := e.Op
		switch {
		case e.From != "" && e.Op == "conflict" || e.From != "" && e.Op == "type-conflict":
			what += " (this is the copy of " + remote.Escape(e.From) + ")"
		case e.From != "":
			what += " (moved in from " + remote.Escape(e.From) + ")"
		case e.To != "":
			what += " (moved out to " + remote.Escape(e.To) + ")"
		}
		kind, why, _ := strings.Cut(e.Pass, ": ")
		pass := kind + " pass"
		if why != "" {
			pass += ": " + why
		}
		fmt.Fprintf(w, "\n%s  %s  [%s]\n", e.At.Local().Format(time.DateTime), what, pass)
		fmt.Fprintf(w, "  why:        %s\n", escapeLine(e.Reason))
		fmt.Fprintf(w, "  local:      %s\n", sideText(e.Local))
		fmt.Fprintf(w, "  remote:     %s\n", sideText(e.Remote))
		fmt.Fprintf(w, "  sync point: %s\n", sideText(e.Base))
		if e.Copy != "" {
			fmt.Fprintf(w, "  copy:       %s\n", remote.Escape(e.Copy))
		}
		switch e.Outcome {
		case "done":
			fmt.Fprintf(w, "  outcome:    done\n")
		case "skipped":
			fmt.Fprintf(w, "  outcome:    skipped: %s\n", escapeLine(e.Error))
		default:
			fmt.Fprintf(w, "  outcome:    %s: %s\n", e.Outcome, escapeLine(e.Error))
		}
	}
}

func sideText(s *daemon.SideInfo) string {
	if s == nil {
		return "nothing"
	}
	if s.Dir {
		return "folder"
	}
	out := fmt.Sprintf("%d bytes", s.Size)
	if s.Digest != "" {
		out += ", " + s.Digest
	}
	if s.MTime != nil {
		out += ", modified " + s.MTime.Local().Format("2006-01-02 15:04:05.000")
	}
	return out
}
