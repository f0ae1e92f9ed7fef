package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/conflict"
)

type addOpts struct {
	config   string
	name     string
	account  string
	conflict string
	ignore   []string
}

func newAddCmd(app *App) *cobra.Command {
	var o addOpts
	c := &cobra.Command{
		Use:   "add <local-dir> <remote>",
		Short: "Add a folder pair to the config file (created if missing)",
		Long: `Add a folder pair to the config file, creating the file if there is none. The pair is checked
first (the local folder must exist; the remote spec must be valid) and the whole file is validated before
it is written. A running daemon picks the pair up on SIGHUP (tandem status shows its pid).`,
		Example: `  tandem add ~/Documents dir:/mnt/nas/Documents
  tandem add --name photos --ignore '*.tmp' ~/Pictures dir:/media/usb/Pictures`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			return runAdd(c.Context(), app, o, args[0], args[1], c.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&o.config, "config", "", "config file (default ~/.config/tandem/config.yaml)")
	f.StringVar(&o.name, "name", "", "the pair's name (default: the local folder's name)")
	f.StringVar(&o.account, "account", "", "which stored login of the provider to use")
	f.StringVar(&o.conflict, "conflict", "", "conflict policy: keep-both (default), newer-wins, local-wins or remote-wins")
	f.StringArrayVar(&o.ignore, "ignore", nil, "an ignore pattern (gitignore syntax); repeat for more")
	return c
}

func runAdd(ctx context.Context, app *App, o addOpts, localArg, remoteArg string, w io.Writer) error {
	if _, err := conflict.ParsePolicy(o.conflict); err != nil {
		return usageError{fmt.Errorf("--conflict: %w", err)}
	}
	ps, err := resolvePair(app.Registry, localArg, remoteArg)
	if err != nil {
		return err
	}
	path, err := configPath(o.config)
	if err != nil {
		return err
	}
	p := config.Pair{Name: o.name, Local: ps.local, Remote: ps.spec, Account: o.account, Conflict: o.conflict, Ignore: o.ignore}
	c, err := config.AppendPair(path, p, func(c *config.Config) error {
		return c.Validate(validateOptions(app.Registry))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "added pair %q (%s <-> %s) to %s; %d pairs in all\n", p.PairName(), ps.local, ps.spec, path, len(c.Pairs))
	if cl, _, _, err := clientFor(app, o.config); err == nil {
		if st, err := cl.Status(ctx); err == nil {
			fmt.Fprintf(w, "tandem is running (pid %d): reload it with kill -HUP %d\n", st.PID, st.PID)
			return nil
		}
	}
	fmt.Fprintln(w, "start syncing with: tandem run (or tandem service install && tandem service start)")
	return nil
}
