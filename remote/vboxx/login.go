package vboxx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// tokenFile is what `tandem login vboxx` stores (mode 0600 or the OS keyring, see tokenstore). Never the password:
// only the tokens, the device guid (sent on every later grant so one installation stays one device), where to
// connect, and the registered app the tokens were issued to. A registered app's secret is a credential the
// refresh grant needs as much as the refresh token, so it lives with the tokens under the same protection, as
// Verizon's does; the built-in "anchor" client has none.
type tokenFile struct {
	Endpoint     string    `json:"endpoint"`
	Username     string    `json:"username,omitempty"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	Expiry       time.Time `json:"expiry"`
	GUID         string    `json:"guid,omitempty"`
	ClientID     string    `json:"client_id,omitempty"`
	ClientSecret string    `json:"client_secret,omitempty"`
}

func (f *tokenFile) token() *oauth2.Token {
	t := &oauth2.Token{AccessToken: f.AccessToken, RefreshToken: f.RefreshToken, Expiry: f.Expiry, TokenType: "Bearer"}
	return t.WithExtra(map[string]any{"guid": f.GUID})
}

func guidOf(t *oauth2.Token) string {
	g, _ := t.Extra("guid").(string)
	return g
}

// ErrTwoStep is returned by Login when the account has two-step verification on and no code was given (or the
// code was refused): ask for the code (the server has sent it by Mode, or it comes from an authenticator app)
// and call Login again with LoginOptions.AuthCode.
type ErrTwoStep struct{ Mode string }

func (e *ErrTwoStep) Error() string {
	return fmt.Sprintf("vboxx login: two-step verification (%s): give the code", e.Mode)
}

// LoginOptions is what `tandem login vboxx` collects. The CLI reads the password without echo (x/term) or, for
// scripts, from --password-stdin, and passes it here; it is sent once in the password grant and never stored.
type LoginOptions struct {
	Endpoint string        // https://host[:port] (--endpoint); http:// is refused before anything is sent
	Username string        // user name or e-mail
	Password remote.Secret // never logged, never stored
	AuthCode string        // two-step code, after an *ErrTwoStep
	CAFile   string        // --ca-file: extra trusted CA (PEM); verification stays on
	StateDir string        // token dir; default tokenstore.DefaultDir()
	Account  string        // token file name suffix, for several accounts
	// ClientID/ClientSecret of a registered app; default the built-in "anchor" client (no secret). The secret is
	// stored with the tokens: every refresh grant needs it.
	ClientID, ClientSecret string
	DeviceName             string          // dns_name of this machine in the account's device list; default hostname
	Clock                  clockwork.Clock // token expiry is local receipt time + expires_in
	HTTP                   *http.Client    // tests only: a client that already trusts the server
}

// Login performs the OAuth2 password grant and saves the tokens to tokenstore.File(StateDir, "vboxx", Account).
// An account with two-step verification answers with *ErrTwoStep first. A wrong password is an error wrapping
// remote.ErrUnauthorized whose text is the server's description.
func Login(ctx context.Context, lg *zap.Logger, o LoginOptions) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	base, err := CheckEndpoint(o.Endpoint)
	if err != nil {
		return err
	}
	if o.Username == "" || o.Password == "" {
		return errors.New("vboxx login: a user name and a password are needed")
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.ClientID == "" {
		o.ClientID = "anchor"
	}
	if o.DeviceName == "" {
		o.DeviceName, _ = os.Hostname()
	}
	dir := o.StateDir
	if dir == "" {
		if dir, err = tokenstore.DefaultDir(); err != nil {
			return err
		}
	}
	path := tokenstore.File(dir, "vboxx", o.Account)
	var old tokenFile
	_ = tokenstore.Load(path, &old) // an earlier login's guid keeps this machine one device
	hx, err := httpx.New(httpx.Options{HTTP: o.HTTP, CAFile: o.CAFile, Clock: o.Clock, Logger: lg})
	if err != nil {
		return fmt.Errorf("vboxx login: %w", err)
	}
	form := url.Values{"grant_type": {"password"}, "client_id": {o.ClientID}, "username": {o.Username},
		"password": {o.Password.Reveal()}, "guid": {old.GUID}, "dns_name": {o.DeviceName}}
	if t := osType(runtime.GOOS); t != "" {
		form.Set("os_type", t) // optional; only the documented values are sent
	}
	if o.ClientSecret != "" {
		form.Set("client_secret", o.ClientSecret)
	}
	if o.AuthCode != "" {
		form.Set("auth_code", o.AuthCode)
	}
	tok, err := tokenGrant(ctx, hx, base, form, o.Clock)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch {
			case re.ErrorCode == "missing_totp":
				return &ErrTwoStep{Mode: twoStepMode(re)}
			case re.ErrorCode == "invalid_grant" && o.AuthCode != "" && strings.Contains(re.ErrorDescription, "code"):
				return fmt.Errorf("%w: %s", &ErrTwoStep{Mode: "code refused"}, re.ErrorDescription)
			default:
				return fmt.Errorf("vboxx login: %w: %s %s", remote.ErrUnauthorized, re.ErrorCode, re.ErrorDescription)
			}
		}
		return fmt.Errorf("vboxx login: %w", err)
	}
	tf := tokenFile{Endpoint: base, Username: o.Username, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		Expiry: tok.Expiry, GUID: guidOf(tok), ClientID: o.ClientID, ClientSecret: o.ClientSecret}
	if err := tokenstore.Save(path, tf); err != nil {
		return fmt.Errorf("vboxx login: %w", err)
	}
	lg.Info("logged in", zap.String("endpoint", base), zap.String("user", o.Username), zap.String("file", path))
	return nil
}

// osType is the documented os_type of goos ("win", "osx"), or "" where the reference names none: the field is
// optional, and an undocumented value could be refused or registered as something else.
func osType(goos string) string {
	switch goos {
	case "windows":
		return "win"
	case "darwin":
		return "osx"
	}
	return ""
}

func twoStepMode(re *oauth2.RetrieveError) string {
	var b errorBody
	_ = json.Unmarshal(re.Body, &b)
	if b.TwoStepMode == "" {
		return "code"
	}
	return b.TwoStepMode
}

// tokenGrant POSTs one grant to /oauth/token. Error answers come back as *oauth2.RetrieveError (the shape
// httpx.OAuth sorts on: invalid_grant means "log in again"); the body is kept out of the error text.
func tokenGrant(ctx context.Context, hx *httpx.Client, base string, form url.Values, clk clockwork.Clock) (*oauth2.Token, error) {
	var tb tokenBody
	var rerr *oauth2.RetrieveError
	err := hx.Do(ctx, "oauth token", false, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	}, func(resp *http.Response) error { return hx.DecodeJSON(resp, &tb) })
	received := clk.Now()
	var se *httpx.StatusError
	if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
		var b errorBody
		_ = json.Unmarshal([]byte(se.Body), &b)
		rerr = &oauth2.RetrieveError{Response: &http.Response{StatusCode: se.Status}, Body: []byte(se.Body),
			ErrorCode: b.Error, ErrorDescription: b.Description}
		return nil, rerr
	}
	if err != nil {
		return nil, err
	}
	if tb.AccessToken == "" || tb.RefreshToken == "" {
		return nil, errors.New("the token answer holds no tokens")
	}
	t := &oauth2.Token{AccessToken: tb.AccessToken, RefreshToken: tb.RefreshToken, TokenType: "Bearer"}
	if tb.ExpiresIn > 0 {
		// Relative to local receipt, so a skewed server clock cannot make a fresh token look expired.
		t.Expiry = received.Add(time.Duration(tb.ExpiresIn) * time.Second)
	}
	return t.WithExtra(map[string]any{"guid": tb.GUID}), nil
}

// refreshGrant is the refresh_token grant with this installation's guid (x/oauth2 cannot add it). httpx.OAuth
// calls it single-flight and saves the result before using it.
func (c *Client) refreshGrant(ctx context.Context, rt string) (*oauth2.Token, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.cfg.ClientID}, "refresh_token": {rt}}
	if c.cfg.ClientSecret != "" {
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	// Not c.auth.Token(): httpx.OAuth holds its lock while it calls us.
	c.mu.Lock()
	guid := c.guid
	c.mu.Unlock()
	if guid != "" {
		form.Set("guid", guid)
	}
	// A client without retries and without the authorizer: the grant must not recurse into a refresh.
	hx, err := httpx.New(httpx.Options{Name: "vboxx", HTTP: c.hx.HTTP(), Clock: c.clk, Logger: c.lg, MaxAttempts: 2})
	if err != nil {
		return nil, err
	}
	t, err := tokenGrant(ctx, hx, c.base, form, c.clk)
	if err == nil && guidOf(t) != "" {
		c.mu.Lock()
		c.guid = guidOf(t)
		c.mu.Unlock()
	}
	return t, err
}

// Open opens a vboxx: spec for the registry (reg.Add("vboxx", vboxx.Open)). root is "/RootName/path" ("" or "/"
// is the user's sync root). Tokens come from o.AccessToken / o.RefreshToken when given (not saved on refresh),
// else from the token file `tandem login vboxx` wrote (refreshed tokens are saved back, before use). The
// endpoint is o.Endpoint, else the one stored at login.
func Open(ctx context.Context, lg *zap.Logger, root string, o remote.OpenOptions) (remote.Remote, error) {
	cfg := Config{Endpoint: o.Endpoint, CAFile: o.CAFile, OnSkip: o.OnSkip}
	if o.AccessToken != "" || o.RefreshToken != "" {
		cfg.Token = &oauth2.Token{AccessToken: o.AccessToken.Reveal(), RefreshToken: o.RefreshToken.Reveal(),
			TokenType: "Bearer"}
	} else {
		dir := o.StateDir
		if dir == "" {
			var err error
			if dir, err = tokenstore.DefaultDir(); err != nil {
				return nil, err
			}
		}
		path := tokenstore.File(dir, "vboxx", o.Account)
		var tf tokenFile
		if err := tokenstore.Load(path, &tf); err != nil {
			if errors.Is(err, tokenstore.ErrNoLogin) {
				return nil, fmt.Errorf("vboxx: %w: %w; run `tandem login vboxx`", remote.ErrUnauthorized, err)
			}
			return nil, err
		}
		if cfg.Endpoint == "" {
			cfg.Endpoint = tf.Endpoint
		}
		cfg.ClientID, cfg.ClientSecret = tf.ClientID, tf.ClientSecret
		cfg.Token = tf.token()
		cfg.Save = func(t *oauth2.Token) error {
			nf := tf
			nf.AccessToken, nf.RefreshToken, nf.Expiry = t.AccessToken, t.RefreshToken, t.Expiry
			if g := guidOf(t); g != "" {
				nf.GUID = g
			}
			return tokenstore.Save(path, nf)
		}
	}
	if cfg.Endpoint == "" {
		return nil, errors.New("vboxx: no endpoint: give --endpoint https://host or log in with one")
	}
	return New(ctx, lg, root, cfg)
}
