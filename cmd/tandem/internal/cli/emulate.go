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
(POST /faults, DELETE /faults, GET /log). Items with names the API refuses, as a hostile server
would list them, through POST /inject/file?parent=P&name=N (body: content), /inject/folder and
/inject/rename?path=P&name=N (the name percent-encoded, any bytes).

Where the provider's documentation is silent or ambiguous, the emulator defaults to the least helpful
reading; --variant NAME[,NAME] picks others:
` + variantHelp(),
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains(emulate.Providers, args[0]) {
				return usagef("emulate takes one provider: %s", strings.Join(emulate.Providers, ", "))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkVariants(args[0], o.Variants); err != nil {
				return err
			}
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
	f.StringSliceVar(&o.Variants, "variant", nil, "readings of undocumented behaviour, NAME[,NAME] (listed above)")
	f.StringVar(&o.Region, "region", "us", "pCloud: the account's region, us or eu (eu: sha1+sha256 digests, no md5)")
	f.DurationVar(&o.AccessTTL, "access-ttl", 0, "lifetime of access tokens (Verizon, vBoxx; default the provider's)")
	f.StringVar(&o.ClientID, "client-id", "",
		"Verizon, vBoxx: the OAuth app id registered with the emulator (Verizon's default tandem-desktop; vBoxx also keeps its built-in anchor)")
	f.StringVar(&o.ClientSecret, "client-secret", "", "Verizon, vBoxx: that app's secret")
	f.StringVar(&o.RedirectURL, "redirect-url", "", "Verizon: that app's registered callback URL (default http://127.0.0.1:53682/callback)")
	f.BoolVar(&o.json, "json", false, "print the connection details as one JSON line")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log every request")
	return c
}

// checkVariants makes an unknown --variant a usage error (exit 2) that lists the provider's variants.
func checkVariants(provider string, given []string) error {
	known := map[string]bool{}
	var names []string
	for _, v := range emulate.VariantsOf(provider) {
		known[v.Name] = true
		names = append(names, v.Name)
	}
	for _, g := range given {
		for _, n := range strings.Split(g, ",") {
			if n = strings.TrimSpace(n); n != "" && !known[n] {
				if len(names) == 0 {
					return usagef("the %s emulator has no variants", provider)
				}
				return usagef("unknown %s variant %q: want one of %s", provider, n, strings.Join(names, ", "))
			}
		}
	}
	return nil
}

// variantHelp lists every provider's variants for --help.
func variantHelp() string {
	var b strings.Builder
	for _, p := range emulate.Providers {
		for _, v := range emulate.VariantsOf(p) {
			fmt.Fprintf(&b, "  %s %-22s %s\n", p, v.Name, v.Doc)
		}
	}
	return b.String()
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
	row("client id", i.ClientID)
	row("client secret", i.ClientSecret)
	row("redirect url", i.RedirectURL)
	if len(i.Variants) > 0 {
		row("variants", strings.Join(i.Variants, ","))
	}
}
