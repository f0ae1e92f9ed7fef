package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud"
	"github.com/tandemsync/tandem/remote/tokens"
	"github.com/tandemsync/tandem/remote/vboxx"
	"github.com/tandemsync/tandem/remote/verizon"
)

type loginOpts struct {
	endpoint, caFile, account, tokenDir string
	username, code                      string
	passwordStdin                       bool
	clientID, clientSecret, redirectURL string
	config, tokenStore                  string
	noBrowser                           bool
	timeout                             time.Duration
	verbose                             bool
}

// pcloudClientID names tandem's app at pCloud; --client-id overrides it for a self-registered app.
const pcloudClientID = "tandem"

func newLoginCmd(app *App) *cobra.Command {
	var o loginOpts
	c := &cobra.Command{
		Use:   "login <pcloud|verizon|vboxx>",
		Short: "Log in to a provider and store the token (mode 0600) for tandem once and tandem run",
		Long: `Log in to a provider and store its token in ~/.config/tandem/tokens (mode 0600).

pCloud and Verizon use OAuth2 in the browser: tandem prints the address to open (and opens it unless
--no-browser) and waits for the provider to redirect back to this computer; passwords never pass
through tandem. Verizon needs your own app key: register an app in ThingSpace Key Management with a
Callback URL such as http://localhost:53682/callback, then give --client-id, --client-secret and
--redirect-url (or TANDEM_VERIZON_CLIENT_ID, TANDEM_VERIZON_CLIENT_SECRET, TANDEM_VERIZON_REDIRECT_URL,
or the config file's verizon: section). vBoxx uses its password grant: tandem asks for the password without echo (or reads
one line from standard input with --password-stdin), sends it once over HTTPS and keeps only the
tokens, never the password. To log in to vBoxx as an app your server registered, give its --client-id
and --client-secret: token refreshes need the secret too, so it is kept with the tokens.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("login takes one provider: pcloud, verizon or vboxx")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runLogin(c.Context(), app, o, args[0])
		},
	}
	f := c.Flags()
	f.StringVar(&o.endpoint, "endpoint", "", "API base URL (an emulator or a private deployment)")
	f.StringVar(&o.caFile, "ca-file", "", "extra trusted CA certificates (PEM)")
	f.StringVar(&o.account, "account", "", "name for this login when you use several accounts of one provider")
	f.StringVar(&o.tokenDir, "token-dir", "", "where tokens are stored (default ~/.config/tandem/tokens)")
	f.StringVar(&o.clientID, "client-id", "", "OAuth app id (pCloud: default tandem's; Verizon: required, your ThingSpace app key)")
	f.StringVar(&o.clientSecret, "client-secret", "", "OAuth app secret, if your app has one (kept with the tokens: refreshes need it)")
	f.StringVar(&o.redirectURL, "redirect-url", "", "Verizon: your app's registered Callback URL, http://localhost:PORT/callback")
	f.StringVar(&o.config, "config", "", "config file to read verizon.client_id/client_secret/redirect_url from (default ~/.config/tandem/config.yaml)")
	f.BoolVar(&o.noBrowser, "no-browser", false, "only print the address to open")
	f.StringVar(&o.tokenStore, "token-store", "", "auto, keyring or file (default: the config's token_store, else auto: the OS keyring if it answers, else a 0600 file)")
	f.StringVar(&o.username, "username", "", "vBoxx: your login name")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "vBoxx: read the password from standard input (for scripts)")
	f.StringVar(&o.code, "code", "", "vBoxx: the two-step verification code, when your account asks for one")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the browser login")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "debug logging")
	return c
}

func runLogin(ctx context.Context, app *App, o loginOpts, provider string) error {
	lg := app.NewLogger(app.Stderr, o.verbose)
	defer lg.Sync()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	switch provider {
	case "pcloud", "verizon", "vboxx":
	default:
		return usagef("no login for %q: want pcloud, verizon or vboxx", provider)
	}
	store, why, err := tokenStore(o.config, o.tokenStore)
	if err != nil {
		return err
	}
	path, err := tokens.Path(o.tokenDir, provider, o.account)
	if err != nil {
		return err
	}
	return loginStore(app.Stdout, path, store, why, func() error { return login(ctx, app, lg, o, provider) })
}

func login(ctx context.Context, app *App, lg *zap.Logger, o loginOpts, provider string) error {
	var err error
	switch provider {
	case "pcloud":
		id := o.clientID
		if id == "" {
			id = pcloudClientID
		}
		err = pcloud.Login(ctx, lg, pcloud.LoginOptions{Endpoint: o.endpoint, ClientID: id,
			ClientSecret: remote.Secret(o.clientSecret), CAFile: o.caFile, StateDir: o.tokenDir, Account: o.account,
			NoBrowser: o.noBrowser, OpenBrowser: openBrowser, Out: app.Stdout, Timeout: o.timeout})
	case "verizon":
		id, secret, redirect := verizonApp(o)
		err = verizon.Login(ctx, lg, verizon.LoginOptions{Endpoint: o.endpoint, CAFile: o.caFile, StateDir: o.tokenDir,
			Account: o.account, ClientID: id, ClientSecret: secret, RedirectURL: redirect, NoBrowser: o.noBrowser,
			OpenBrowser: openBrowser, Out: app.Stdout})
	case "vboxx":
		err = loginVBoxx(ctx, app, lg, o)
	default:
		return usagef("no login for %q: want pcloud, verizon or vboxx", provider)
	}
	if err != nil {
		return fmt.Errorf("login %s: %w", provider, err)
	}
	return nil
}

// verizonApp is the Verizon app key: the flags, else the environment (TANDEM_VERIZON_CLIENT_ID,
// TANDEM_VERIZON_CLIENT_SECRET, TANDEM_VERIZON_REDIRECT_URL), else the config file's verizon section.
func verizonApp(o loginOpts) (id, secret, redirect string) {
	id, secret, redirect = o.clientID, o.clientSecret, o.redirectURL
	pick := func(v *string, env string, conf string) {
		if *v == "" {
			*v = os.Getenv(env)
		}
		if *v == "" {
			*v = conf
		}
	}
	var app config.VerizonApp
	if path, err := configPath(o.config); err == nil {
		if c, err := config.Load(path, true); err == nil && c != nil {
			app = c.Verizon
		}
	}
	pick(&id, "TANDEM_VERIZON_CLIENT_ID", app.ClientID)
	pick(&secret, "TANDEM_VERIZON_CLIENT_SECRET", app.ClientSecret)
	pick(&redirect, "TANDEM_VERIZON_REDIRECT_URL", app.RedirectURL)
	return id, secret, redirect
}

// openBrowser hands an address tandem built itself to the desktop's opener. Only http(s) addresses are ever
// opened: a URL scheme is an attack surface (Nextcloud CVE-2021-22879).
func openBrowser(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") {
		return fmt.Errorf("refusing to open %q", u)
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	return cmd.Start()
}

func loginVBoxx(ctx context.Context, app *App, lg *zap.Logger, o loginOpts) error {
	if o.username == "" {
		return usagef("login vboxx needs --username")
	}
	pw, err := readPassword(app, o.passwordStdin)
	if err != nil {
		return err
	}
	lo := vboxx.LoginOptions{Endpoint: o.endpoint, Username: o.username, Password: pw, AuthCode: o.code,
		CAFile: o.caFile, StateDir: o.tokenDir, Account: o.account, ClientID: o.clientID, ClientSecret: o.clientSecret}
	err = vboxx.Login(ctx, lg, lo)
	var two *vboxx.ErrTwoStep
	if errors.As(err, &two) && o.code == "" {
		return fmt.Errorf("your account uses two-step verification (%s): run again with --code <code>", two.Mode)
	}
	if err == nil {
		fmt.Fprintln(app.Stdout, "logged in to vBoxx as", o.username)
	}
	return err
}

// readPassword reads a password without echo from the terminal, or one line from standard input for scripts.
func readPassword(app *App, fromStdin bool) (remote.Secret, error) {
	if fromStdin {
		line, err := bufio.NewReader(app.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", usagef("--password-stdin: standard input held no password")
		}
		return remote.Secret(line), nil
	}
	f, ok := app.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("no terminal to ask for the password: use --password-stdin")
	}
	fmt.Fprint(app.Stderr, "vBoxx password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(app.Stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return remote.Secret(b), nil
}
