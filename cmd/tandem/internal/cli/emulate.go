package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/remote/emulate"
)

type emulateOpts struct {
	emulate.Options
	json    bool
	verbose bool
}

func newEmulateCmd(app *App) *cobra.Command {
	var o emulateOpts
	c := &cobra.Command{
		Use:   "emulate <pcloud|verizon|vboxx>",
		Short: "Run a local emulator of a provider's API (for tests, demos and trying tandem out)",
		Long: `Run a local emulator of a provider's API, following the provider's documented API closely enough
that real clients work against it. Files and metadata persist in --data. The emulator prints its
endpoint, credentials and the CA file of its self-signed certificate, then serves until interrupted.

Faults can be injected with --faults plan.yaml or at run time through the admin URL
(POST /faults, DELETE /faults, GET /log).`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains(emulate.Providers, args[0]) {
				return usagef("emulate takes one provider: %s", strings.Join(emulate.Providers, ", "))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			lg := app.NewLogger(app.Stderr, o.verbose)
			defer lg.Sync()
			s, err := emulate.Start(c.Context(), lg, args[0], o.Options)
			if err != nil {
				return err
			}
			defer s.Close()
			printEmuInfo(app.Stdout, s.Info, o.json)
			<-c.Context().Done()
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:0", "plain-HTTP listen address (pCloud only)")
	f.StringVar(&o.HTTPS, "https", "127.0.0.1:0", "HTTPS listen address")
	f.StringVar(&o.Admin, "admin", "127.0.0.1:0", "admin listen address (faults, request log); keep it on loopback")
	f.StringVar(&o.Data, "data", "", "data folder, kept across restarts (default: a new temporary folder)")
	f.StringVar(&o.Faults, "faults", "", "fault plan (YAML) to load at start")
	f.StringVar(&o.Token, "token", "", "preset access token (pCloud)")
	f.BoolVar(&o.AllowRootRecursive, "allow-root-recursive", false,
		"pCloud: answer a recursive listing of the account root (today's service refuses it; rclone 1.60 needs it)")
	f.DurationVar(&o.AccessTTL, "access-ttl", 0, "lifetime of access tokens (Verizon, vBoxx; default the provider's)")
	f.StringSliceVar(&o.Variants, "variant", nil,
		"NAME[,NAME]: readings of the provider's API reference other than the emulator's default (the least "+
			"helpful one); remote/<provider>/PROVIDER.md lists them")
	f.BoolVar(&o.json, "json", false, "print the connection details as one JSON line")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log every request")
	return c
}

func printEmuInfo(w io.Writer, i emulate.Info, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(i)
		return
	}
	fmt.Fprintf(w, "%s emulator running (Ctrl-C stops it)\n", i.Provider)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-14s %s\n", k, v)
		}
	}
	row("endpoint", i.Endpoint)
	row("url", i.URL)
	row("https url", i.HTTPSURL)
	row("host", i.Host)
	row("admin url", i.AdminURL)
	row("ca file", i.CAFile)
	row("data", i.DataDir)
	row("access token", i.AccessToken)
	row("refresh token", i.RefreshToken)
	row("username", i.Username)
	row("password", i.Password)
}
