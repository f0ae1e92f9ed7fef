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
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

type controlOpts struct {
	config       string
	allowDeletes bool
}

// newControlCmd builds pause, resume and rescan: each acts on one pair, or every pair without an argument.
func newControlCmd(app *App, verb string) *cobra.Command {
	var o controlOpts
	short := map[string]string{
		"pause":  "Pause syncing (a pass in flight is cancelled; nothing is left half-written)",
		"resume": "Resume a paused pair, or one stopped by a safety stop or a refused login",
		"rescan": "Run a full pass now (both sides are walked and compared)",
	}[verb]
	c := &cobra.Command{
		Use:   verb + " [pair]",
		Short: short,
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			pair := ""
			if len(args) == 1 {
				pair = args[0]
			}
			return runControl(c.Context(), app, o, verb, pair, c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&o.config, "config", "", "config file of the daemon (default ~/.config/tandem/config.yaml)")
	if verb == "resume" {
		c.Flags().BoolVar(&o.allowDeletes, "allow-deletes", false, "let the next pass through the big-delete guard (once)")
	}
	return c
}

func runControl(ctx context.Context, app *App, o controlOpts, verb, pair string, w io.Writer) error {
	cl, _, _, err := clientFor(app, o.config)
	if err != nil {
		return err
	}
	var r *daemon.ControlResponse
	switch verb {
	case "pause":
		r, err = cl.Pause(ctx, pair)
	case "resume":
		r, err = cl.Resume(ctx, pair, o.allowDeletes)
	default:
		r, err = cl.Rescan(ctx, pair)
	}
	if err != nil {
		return err
	}
	past := map[string]string{"pause": "paused", "resume": "resumed", "rescan": "rescan requested for"}[verb]
	names := make([]string, len(r.Pairs))
	for i, n := range r.Pairs {
		names[i] = remote.Escape(n)
	}
	if len(names) == 0 {
		fmt.Fprintln(w, "no pairs")
		return nil
	}
	msg := past + " " + strings.Join(names, ", ")
	if o.allowDeletes {
		msg += " (the next pass may delete past the max_delete guard)"
	}
	fmt.Fprintln(w, msg)
	return nil
}

type conflictsOpts struct {
	config string
	json   bool
}

func newConflictsCmd(app *App) *cobra.Command {
	var o conflictsOpts
	c := &cobra.Command{
		Use:   "conflicts",
		Short: "List the conflicts tandem kept both versions of",
		Long: `List every recorded conflict: the path, where the other version was saved, and why.
Asks the running daemon; when none runs, reads the pairs' state databases read-only.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			return runConflicts(c.Context(), app, o, c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&o.config, "config", "", "config file (default ~/.config/tandem/config.yaml)")
	c.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return c
}

func runConflicts(ctx context.Context, app *App, o conflictsOpts, w io.Writer) error {
	cl, cfg, sd, err := clientFor(app, o.config)
	if err != nil {
		return err
	}
	cs, err := cl.Conflicts(ctx)
	if errors.Is(err, daemon.ErrNotRunning) {
		cs, err = conflictsFromState(app, cfg, sd)
	}
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(cs)
	}
	if len(cs.Conflicts) == 0 {
		fmt.Fprintln(w, "no conflicts")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PAIR\tPATH\tOTHER VERSION\tWHEN\tWHY")
	for _, c := range cs.Conflicts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", remote.Escape(c.Pair), remote.Escape(c.Path), remote.Escape(c.Copy),
			c.At.Local().Format(time.DateTime), escapeLine(c.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nWhat tandem saw and decided about each: tandem history <the file in the pair's local folder>, e.g.")
	fmt.Fprintln(w, "  tandem history "+shellQuote(historyExample(cfg, cs.Conflicts[0])))
	return nil
}

// historyExample is the local path of conflict c, for the hint to `tandem history`.
func historyExample(cfg *config.Config, c daemon.ConflictInfo) string {
	for _, p := range cfg.Pairs {
		if p.PairName() == c.Pair {
			if l, err := p.LocalPath(); err == nil {
				return filepath.Join(l, filepath.FromSlash(c.Path))
			}
		}
	}
	return c.Path
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+~,:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// conflictsFromState reads each configured pair's database read-only (no daemon holds them).
func conflictsFromState(app *App, cfg *config.Config, sd string) (*daemon.Conflicts, error) {
	out := &daemon.Conflicts{Conflicts: []daemon.ConflictInfo{}}
	for _, p := range cfg.Pairs {
		l, err := p.LocalPath()
		if err != nil {
			return nil, err
		}
		r, err := expandRemote(p.Remote)
		if err != nil {
			return nil, err
		}
		ps, err := resolvePair(app.Registry, l, r)
		if err != nil {
			return nil, fmt.Errorf("pair %s: %w", remote.Escape(p.PairName()), err)
		}
		db := filepath.Join(sd, ps.id+".db")
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			continue // never synced
		}
		st, err := state.Open(db, nil, state.Options{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("pair %s: %w", remote.Escape(p.PairName()), err)
		}
		err = st.View(func(r state.Reader) error {
			return r.Conflicts(func(c state.Conflict) error {
				out.Conflicts = append(out.Conflicts, daemon.ConflictInfo{Pair: p.PairName(), Path: string(c.Path),
					Copy: string(c.Copy), At: time.Unix(0, c.At).UTC(), Reason: c.Reason})
				return nil
			})
		})
		st.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
