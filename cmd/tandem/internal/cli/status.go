package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/remote"
)

type statusOpts struct {
	config   string
	json     bool
	watch    bool
	interval time.Duration
	count    int
}

func newStatusCmd(app *App) *cobra.Command {
	var o statusOpts
	c := &cobra.Command{
		Use:   "status",
		Short: "Show what the running daemon is doing, pair by pair",
		Long: `Show each pair's state (starting, idle, degraded, scanning, syncing, paused, error, login-required), the
actions in flight, the last sync, the last error and the number of conflicts, from the running daemon's status
socket.

The engine reports each transfer when it starts and when it ends, not while it runs: a transfer shows its
size, and the pass's progress counts finished bytes.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			return runStatus(c.Context(), app, o, c.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&o.config, "config", "", "config file of the daemon (default ~/.config/tandem/config.yaml)")
	f.BoolVar(&o.json, "json", false, "print the status document (GET /v1/status) as JSON")
	f.BoolVar(&o.watch, "watch", false, "redraw every second, with progress bars on a terminal")
	f.DurationVar(&o.interval, "interval", time.Second, "redraw interval of --watch")
	f.IntVar(&o.count, "count", 0, "with --watch: stop after this many redraws (0: until Ctrl-C)")
	_ = f.MarkHidden("count")
	return c
}

func runStatus(ctx context.Context, app *App, o statusOpts, w io.Writer) error {
	cl, _, _, err := clientFor(app, o.config)
	if err != nil {
		return err
	}
	if o.json && o.watch {
		return usagef("--json and --watch do not go together")
	}
	if !o.watch {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if o.json {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		printStatus(w, st, app.Now(), false)
		return nil
	}
	tty := app.IsTerminal(w)
	for i := 0; o.count == 0 || i < o.count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(o.interval):
			}
		}
		st, err := cl.Status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if tty {
			io.WriteString(w, "\x1b[H\x1b[2J") // home and clear: redraw in place
		} else if i > 0 {
			io.WriteString(w, "\n")
		}
		printStatus(w, st, app.Now(), tty)
	}
	return nil
}

// printStatus writes the human table. Every name that came from a file system or a config is escaped, so a
// hostile file name cannot put control sequences on the terminal.
func printStatus(w io.Writer, st *daemon.Status, now time.Time, bars bool) {
	if len(st.Pairs) == 0 {
		fmt.Fprintln(w, "tandem is running with no pairs: add one with \"tandem add <local-dir> <remote>\", then reload (kill -HUP "+fmt.Sprint(st.PID)+")")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PAIR\tSTATE\tLAST SYNC\tQUEUE\tCONFLICTS\tLOCAL <-> REMOTE")
	for _, p := range st.Pairs {
		last := "never"
		if p.LastSync != nil {
			last = ago(now.Sub(*p.LastSync)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s <-> %s\n", remote.Escape(p.Name), p.State, last, p.Queue, p.Conflicts,
			remote.Escape(p.Local), remote.Escape(p.Remote))
	}
	tw.Flush()
	if st.TokenStore != "" {
		fmt.Fprintf(w, "logins: %s (%s)\n", tokenStoreName(st.TokenStore), escapeLine(st.TokenStoreWhy))
	}
	for _, p := range st.Pairs {
		var notes []string
		if p.Message != "" {
			notes = append(notes, p.Message)
		}
		if p.LastError != "" && p.LastError != p.Message && !strings.HasPrefix(p.Message, p.LastError) {
			notes = append(notes, "last error: "+p.LastError)
		}
		if p.Watcher != "" {
			notes = append(notes, "watcher: "+p.Watcher)
		}
		if p.ReadOnly {
			notes = append(notes, readOnlyNote)
		}
		if p.Resynced != nil {
			notes = append(notes, "resynced (change cursor was out of sync) "+ago(now.Sub(*p.Resynced))+" ago")
		}
		for i, sk := range p.Skipped { // paths are escaped by the daemon
			if i == 5 {
				notes = append(notes, fmt.Sprintf("... and %d more skipped (tandem status --json lists them)", len(p.Skipped)-5))
				break
			}
			notes = append(notes, fmt.Sprintf("skipped %s %s: %s", sk.Side, sk.Path, sk.Reason))
		}
		if len(notes) == 0 && len(p.Transfers) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", remote.Escape(p.Name))
		for _, n := range notes {
			fmt.Fprintf(w, "  %s\n", escapeLine(n))
		}
		if p.PassBytesTotal > 0 {
			fmt.Fprintf(w, "  %s\n", passBar(p, bars))
		}
		for i, t := range p.Transfers {
			if i == 10 {
				fmt.Fprintf(w, "  ... and %d more\n", len(p.Transfers)-i)
				break
			}
			size := humanBytes(t.Total)
			if t.Done > 0 {
				size = humanBytes(t.Done) + " of " + size
			}
			fmt.Fprintf(w, "  %-12s %s (%s, %s)\n", t.Op, t.Path, size, ago(now.Sub(t.Started)))
		}
	}
}

// passBar is the running pass's finished bytes out of those started: a progress bar on a terminal, text
// elsewhere.
func passBar(p daemon.PairStatus, bar bool) string {
	// PassBytesDone counts finished transfers; the running ones report their bytes so far (what --json shows
	// per transfer), so one 300 MiB upload does not read "0 B of 300.0 MiB" until it ends.
	done := p.PassBytesDone
	for _, t := range p.Transfers {
		done += t.Done
	}
	done = min(done, p.PassBytesTotal)
	txt := fmt.Sprintf("%s of %s", humanBytes(done), humanBytes(p.PassBytesTotal))
	if p.Rate > 0 {
		txt += fmt.Sprintf(", %s/s", humanBytes(int64(p.Rate)))
	}
	if !bar {
		return txt
	}
	b := progressbar.NewOptions64(p.PassBytesTotal,
		progressbar.OptionSetWriter(io.Discard),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
	)
	_ = b.Set64(done)
	return strings.TrimSpace(b.String())
}

func escapeLine(s string) string {
	e := remote.Escape(s)
	if e != s {
		return e[1 : len(e)-1] // keep the escapes, drop the quotes
	}
	return s
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
