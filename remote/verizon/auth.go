package verizon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// The emulator's app key (`tandem emulate verizon` registers it by default). The real service has no app key
// of tandem's: each user registers their own in ThingSpace and logs in with --client-id/--client-secret. Tokens
// given on the command line (which carry no app key) are refreshed with this one, which only the emulator knows.
const (
	DefaultClientID     = "tandem-desktop"
	DefaultClientSecret = "tandem-desktop-secret"
)

// Provider is the name in token files and the registry.
const Provider = "verizon"

// tokenFile is the login saved by Login and kept current by every refresh (mode 0600, see tokenstore).
type tokenFile struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// Endpoint and the client credentials the login was made with: a refresh must use the same app key, and an
	// emulator login keeps working without repeating --endpoint.
	Endpoint     string `json:"endpoint,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	RedirectURL  string `json:"redirect_url,omitempty"`
	// DeviceID is this installation's deviceid, generated at the first login and sent at every later one: without
	// it every installation of one app key shares one (single-use) refresh token (§3.1, documented).
	DeviceID string `json:"device_id,omitempty"`
}

func oauthConfig(endpoint, id, secret, redirect string) *oauth2.Config {
	if id == "" {
		id, secret = DefaultClientID, DefaultClientSecret
	}
	return &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: endpoint + "/oauth2/authorize", TokenURL: endpoint + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader}}
}

// TokenFile is where the login of account lives (dir "" = tokenstore.DefaultDir()).
func TokenFile(dir, account string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = tokenstore.DefaultDir(); err != nil {
			return "", err
		}
	}
	return tokenstore.File(dir, Provider, account), nil
}

// Open opens `verizon:<root>` for the registry (reg.Add("verizon", verizon.Open)). Tokens come from
// o.AccessToken/o.RefreshToken (scripts; a refreshed pair is then kept in memory only) or from the token file
// of o.Account in o.StateDir (default tokenstore.DefaultDir()), which every refresh rewrites before the new
// token is used. A root without a virtual folder ("Sync") is placed below VZMOBILE.
func Open(ctx context.Context, lg *zap.Logger, root string, o remote.OpenOptions) (remote.Remote, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if len(root) > 0 && root[0] != '/' {
		root = "/" + DefaultVirtualFolder + "/" + root
	}
	var tf tokenFile
	path := ""
	if o.AccessToken != "" || o.RefreshToken != "" {
		tf = tokenFile{AccessToken: o.AccessToken.Reveal(), RefreshToken: o.RefreshToken.Reveal()}
	} else {
		var err error
		if path, err = TokenFile(o.StateDir, o.Account); err != nil {
			return nil, err
		}
		if err := tokenstore.Load(path, &tf); err != nil {
			if errors.Is(err, tokenstore.ErrNoLogin) {
				return nil, fmt.Errorf("%w: %w: run `tandem login verizon`", remote.ErrUnauthorized, err)
			}
			return nil, err
		}
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = tf.Endpoint
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	ep, err := checkEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	// One http.Client, with the CA and redirect rules, serves the API and the token endpoint.
	base, err := httpx.New(httpx.Options{CAFile: o.CAFile})
	if err != nil {
		return nil, err
	}
	cfg := Config{Endpoint: ep.String(), Root: root, HTTP: base.HTTP()}
	cfg.Auth = newTokenAuth(lg, tf, path, ep.String(), base.HTTP(), nil)
	c, err := New(lg, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// LoginOptions configures Login. Zero values take the defaults shown.
type LoginOptions struct {
	Endpoint string // default DefaultEndpoint
	CAFile   string
	StateDir string // where the token file goes; default tokenstore.DefaultDir()
	Account  string // token file suffix, for several accounts
	// ClientID and ClientSecret are the app key the user registered in ThingSpace (required: tandem has none of
	// its own). RedirectURL is that app's Callback URL, an http loopback URL with a port
	// (http://localhost:PORT/callback): the service redirects only to the registered URL, exactly (§3.1), so
	// Login listens on its host and port and serves its path.
	ClientID, ClientSecret string
	RedirectURL            string
	// DeviceID overrides the installation's deviceid (tests). By default it is the one stored in the token file,
	// or a new random one at the first login.
	DeviceID string
	// NoBrowser only prints the URL. Otherwise OpenBrowser is called with it (the CLI passes its opener; nil
	// means print only). The URL always goes to Out (default io.Discard).
	NoBrowser   bool
	OpenBrowser func(url string) error
	Out         io.Writer
}

// Login runs the authorization-code flow with a loopback redirect (§3.1, §3.2): it listens on 127.0.0.1,
// prints the authorize URL (and opens it unless NoBrowser), waits for the redirect with a matching state,
// exchanges the code and saves the token file (mode 0600). It returns when the token is saved or ctx ends;
// give ctx a deadline (the CLI uses a few minutes).
func Login(ctx context.Context, lg *zap.Logger, o LoginOptions) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	ep, err := checkEndpoint(o.Endpoint)
	if err != nil {
		return err
	}
	path, err := TokenFile(o.StateDir, o.Account)
	if err != nil {
		return err
	}
	base, err := httpx.New(httpx.Options{CAFile: o.CAFile})
	if err != nil {
		return err
	}
	if o.ClientID == "" {
		return ErrNoAppKey
	}
	ru, err := checkRedirect(o.RedirectURL)
	if err != nil {
		return err
	}
	if o.DeviceID == "" {
		var old tokenFile
		if tokenstore.Load(path, &old) == nil {
			o.DeviceID = old.DeviceID
		}
		if o.DeviceID == "" {
			o.DeviceID = "tandem-" + randomState()
		}
	}
	ln, err := net.Listen("tcp", ru.Host)
	if err != nil {
		return fmt.Errorf("login: listen for the redirect on %s (the port of --redirect-url): %w", ru.Host, err)
	}
	defer ln.Close()
	redirect := o.RedirectURL
	cfg := oauthConfig(ep.String(), o.ClientID, o.ClientSecret, redirect)
	state := randomState()
	authURL := cfg.AuthCodeURL(state, oauth2.SetAuthURLParam("deviceid", o.DeviceID))
	redirectPath := ru.Path
	if redirectPath == "" {
		redirectPath = "/"
	}

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(redirectPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			res.err = errors.New("login: the redirect carried a wrong state (another login, or a forged request)")
		case q.Get("error") != "":
			res.err = fmt.Errorf("login refused: %s: %s", remote.Escape(q.Get("error")), remote.Escape(q.Get("error_description")))
		case q.Get("code") == "":
			res.err = errors.New("login: the redirect carried no code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "tandem is logged in to Verizon Cloud. You can close this window."
		if res.err != nil {
			msg = "Login failed: " + res.err.Error()
		}
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><p>"+html.EscapeString(msg)+"</p></body></html>\n")
		select {
		case got <- res:
		default: // a second redirect after the first: ignored
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	defer httpx.ServeRedirects(ctx, srv, ln)() // shut down, not closed under the browser's page

	fmt.Fprintf(o.Out, "Open this URL in a browser to log in to Verizon Cloud:\n\n  %s\n\n", authURL)
	if !o.NoBrowser && o.OpenBrowser != nil {
		if err := o.OpenBrowser(authURL); err != nil {
			lg.Warn("could not open a browser; open the URL by hand", zap.Error(err))
		}
	}
	var res result
	select {
	case <-ctx.Done():
		return fmt.Errorf("login: %w", ctx.Err())
	case res = <-got:
	}
	if res.err != nil {
		return res.err
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, base.HTTP()), res.code)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return fmt.Errorf("login: %w: the code was refused (%s)", remote.ErrUnauthorized, remote.Escape(re.ErrorCode))
		}
		return fmt.Errorf("login: exchange the code: %w", scrubURL(err))
	}
	if tok.RefreshToken == "" {
		return errors.New("login: the server sent no refresh token")
	}
	tf := tokenFile{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType,
		Expiry: tok.Expiry, ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: redirect, DeviceID: o.DeviceID}
	if o.Endpoint != DefaultEndpoint {
		tf.Endpoint = ep.String()
	}
	if err := tokenstore.Save(path, tf); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Logged in; token saved in %s\n", path)
	return nil
}

// ErrNoAppKey: Login was called without an app key. The message says how to get one.
var ErrNoAppKey = errors.New("no Verizon app key: register an app in ThingSpace (https://thingspace.verizon.com, " +
	"Key Management: create a key set for Verizon Cloud and set its Callback URL, e.g. http://localhost:53682/callback), " +
	"then run `tandem login verizon --client-id ID --client-secret SECRET --redirect-url http://localhost:53682/callback` " +
	"(or set TANDEM_VERIZON_CLIENT_ID, TANDEM_VERIZON_CLIENT_SECRET and TANDEM_VERIZON_REDIRECT_URL, or verizon.client_id, " +
	"client_secret and redirect_url in the config file)")

// checkRedirect accepts the registered Callback URL tandem can serve itself: http on a loopback host with an
// explicit port.
func checkRedirect(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no redirect URL: give --redirect-url with the Callback URL registered for your app " +
			"in ThingSpace, e.g. http://localhost:53682/callback")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Port() == "" || !isLoopback(u.Hostname()) || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("redirect URL %q: must be an http URL on localhost or 127.0.0.1 with a port and no query, "+
			"such as http://localhost:53682/callback, registered exactly so as your app's Callback URL", raw)
	}
	return u, nil
}

func randomState() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// scrubURL keeps a *url.Error's cause and drops the URL it quotes.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
