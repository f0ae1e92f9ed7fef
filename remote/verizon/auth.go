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
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// tandem's app key. A desktop app cannot keep a secret; the key identifies the app, the user's consent and the
// refresh token are what protect the account. The emulator accepts the same pair by default.
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
	var save func(*oauth2.Token) error
	if o.AccessToken != "" || o.RefreshToken != "" {
		tf = tokenFile{AccessToken: o.AccessToken.Reveal(), RefreshToken: o.RefreshToken.Reveal()}
	} else {
		path, err := TokenFile(o.StateDir, o.Account)
		if err != nil {
			return nil, err
		}
		if err := tokenstore.Load(path, &tf); err != nil {
			if errors.Is(err, tokenstore.ErrNoLogin) {
				return nil, fmt.Errorf("%w: %w: run `tandem login verizon`", remote.ErrUnauthorized, err)
			}
			return nil, err
		}
		save = func(t *oauth2.Token) error {
			next := tf
			next.AccessToken, next.RefreshToken, next.TokenType, next.Expiry = t.AccessToken, t.RefreshToken, t.TokenType, t.Expiry
			return tokenstore.Save(path, next)
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
	tok := &oauth2.Token{AccessToken: tf.AccessToken, RefreshToken: tf.RefreshToken, TokenType: "Bearer", Expiry: tf.Expiry}
	cfg := Config{Endpoint: ep.String(), Root: root, HTTP: base.HTTP()}
	cfg.Auth = httpx.NewOAuth(oauthConfig(ep.String(), tf.ClientID, tf.ClientSecret, ""), base.HTTP(), tok, save, nil)
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
	// ClientID/ClientSecret: the app key (default tandem's). RedirectPort is the loopback port of the callback
	// (0 = any free port; the real service needs the exact registered URL, so it is configurable), RedirectPath
	// its path (default "/callback").
	ClientID, ClientSecret string
	RedirectPort           int
	RedirectPath           string
	DeviceID               string // optional; each deviceid gets its own refresh token (§3.1)
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
	if o.RedirectPath == "" {
		o.RedirectPath = "/callback"
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
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.RedirectPort)))
	if err != nil {
		return fmt.Errorf("login: listen for the redirect: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + o.RedirectPath
	cfg := oauthConfig(ep.String(), o.ClientID, o.ClientSecret, redirect)
	state := randomState()
	opts := []oauth2.AuthCodeOption{}
	if o.DeviceID != "" {
		opts = append(opts, oauth2.SetAuthURLParam("deviceid", o.DeviceID))
	}
	authURL := cfg.AuthCodeURL(state, opts...)

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(o.RedirectPath, func(w http.ResponseWriter, r *http.Request) {
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
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

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
		Expiry: tok.Expiry, ClientID: o.ClientID, ClientSecret: o.ClientSecret}
	if o.Endpoint != DefaultEndpoint {
		tf.Endpoint = ep.String()
	}
	if err := tokenstore.Save(path, tf); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Logged in; token saved in %s\n", path)
	return nil
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
