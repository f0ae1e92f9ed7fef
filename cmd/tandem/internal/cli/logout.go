package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/tokens"
	"github.com/tandemsync/tandem/remote/vboxx"
)

type logoutOpts struct {
	account, tokenDir, caFile, config string
	verbose                           bool
}

func newLogoutCmd(app *App) *cobra.Command {
	var o logoutOpts
	c := &cobra.Command{
		Use:   "logout <pcloud|verizon|vboxx>",
		Short: "Revoke a stored login where the provider allows it, delete it, and stop the pairs that use it",
		Long: `Remove a login that "tandem login" stored, from the OS keyring or its token file.

vBoxx: the tokens are revoked at the server first (POST /oauth/revoke), so a copy of them elsewhere stops
working too. pCloud and Verizon document no way for an app to revoke its OAuth token: the login is deleted
here, and the token stays valid at the provider until you remove tandem's access in the account's settings
(pCloud: Settings > Apps; Verizon: the ThingSpace app key, whose refresh tokens die after 14 days).

The pairs of a running "tandem run" that use the login go to "login required": log in again, then
"tandem resume <pair>". Exit codes: 0 logged out; 1 the login was deleted but the revocation failed (the
message says what to do), or there was no such login; 2 usage.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("logout takes one provider: pcloud, verizon or vboxx")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runLogout(c.Context(), app, o, args[0])
		},
	}
	f := c.Flags()
	f.StringVar(&o.account, "account", "", "which login of the provider (as given to tandem login --account)")
	f.StringVar(&o.tokenDir, "token-dir", "", "where tokens are stored (default ~/.config/tandem/tokens)")
	f.StringVar(&o.caFile, "ca-file", "", "extra trusted CA certificates (PEM) for the revocation request")
	f.StringVar(&o.config, "config", "", "config file of the running daemon to tell (default ~/.config/tandem/config.yaml)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "debug logging")
	return c
}

func runLogout(ctx context.Context, app *App, o logoutOpts, provider string) error {
	switch provider {
	case "pcloud", "verizon", "vboxx":
	default:
		return usagef("no login for %q: want pcloud, verizon or vboxx", provider)
	}
	lg := app.NewLogger(app.Stderr, o.verbose)
	defer lg.Sync()
	path, err := tokens.Path(o.tokenDir, provider, o.account)
	if err != nil {
		return err
	}
	where, err := tokens.Where(path)
	if err != nil {
		return err
	}
	who := provider
	if o.account != "" {
		who += " (account " + o.account + ")"
	}
	if where == "" {
		return fmt.Errorf("not logged in to %s: no login at %s", who, path)
	}
	var res remote.LogoutResult
	var revokeErr error
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	switch provider {
	case "vboxx":
		res, revokeErr = vboxx.Logout(rctx, lg, vboxx.LogoutOptions{StateDir: o.tokenDir, Account: o.account, CAFile: o.caFile})
	case "pcloud":
		res.Note = "pCloud documents no revocation of an app's OAuth token: remove tandem in My pCloud > Settings > Apps to revoke it"
	case "verizon":
		res.Note = "Verizon documents no token revocation: the refresh token lives until it expires (14 days); " +
			"delete or rotate the app key in ThingSpace Key Management to end it sooner"
	}
	cancel()
	if err := tokens.Delete(path); err != nil {
		return fmt.Errorf("delete the login of %s: %w", who, err)
	}
	if res.Revoked {
		fmt.Fprintf(app.Stdout, "revoked the %s tokens at the provider\n", provider)
	}
	store := "its token file " + path
	if where == tokens.Keyring {
		store = "the OS keyring"
	}
	fmt.Fprintf(app.Stdout, "deleted the %s login from %s\n", who, store)
	if res.Note != "" {
		fmt.Fprintln(app.Stdout, res.Note)
	}
	cl, _, _, err := clientFor(app, o.config)
	if err == nil {
		out, err := cl.Logout(ctx, provider, o.account)
		switch {
		case errors.Is(err, daemon.ErrNotRunning):
		case err != nil:
			fmt.Fprintf(app.Stderr, "tandem: could not tell the running daemon (%v): restart it so that its pairs stop using the login\n", err)
		case len(out.Pairs) > 0:
			fmt.Fprintf(app.Stdout, "login required now: %s\n", strings.Join(out.Pairs, ", "))
		}
	}
	if revokeErr != nil {
		return fmt.Errorf("the login was deleted here, but %w; %s", revokeErr, res.Note)
	}
	return nil
}
