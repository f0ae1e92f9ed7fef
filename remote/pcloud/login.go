package pcloud

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// AuthorizeURL is pCloud's OAuth authorize page, the same for both regions (§3.1).
const AuthorizeURL = "https://my.pcloud.com/oauth2/authorize"

// LoginOptions configure Login. `tandem login pcloud [--endpoint URL] [--no-browser]` fills them.
type LoginOptions struct {
	// Endpoint is an API base URL to log in against instead of pCloud (an emulator): the authorize page is then
	// Endpoint + "/oauth2/authorize" and the token exchange stays on that server. "" = the real service, where the
	// redirect's hostname/locationid pick the region's API host.
	Endpoint     string
	AuthURL      string // overrides the authorize page
	ClientID     string // the pCloud app's client id (required)
	ClientSecret remote.Secret
	CAFile       string // extra trusted CA certificates (PEM)
	StateDir     string // where the token file goes; "" = tokenstore.DefaultDir()
	Account      string // names the token file when one user has several accounts
	// NoBrowser only prints the URL; otherwise OpenBrowser (nil: print only) is called with it. The URL is always
	// an https (or the emulator's) URL built here, never one a server supplied.
	NoBrowser   bool
	OpenBrowser func(url string) error
	Out         io.Writer // where the URL and the result are printed; nil = discarded
	Listen      string    // loopback address for the redirect; default "127.0.0.1:0"
	Timeout     time.Duration
	HTTP        *http.Client // token exchange client (tests); default trusts the system roots plus CAFile
}

// Login runs pCloud's OAuth2 authorization-code flow with a loopback redirect: it prints the authorize URL
// (and opens it unless NoBrowser), waits for the redirect on 127.0.0.1, checks the state parameter, takes the
// API host from the redirect's hostname (or locationid), exchanges the code at that host's oauth2_token, and
// saves {access_token, endpoint, hostname, locationid, userid} in the token file (mode 0600). No token or code is
// ever printed or logged.
func Login(ctx context.Context, lg *zap.Logger, o LoginOptions) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	lg = lg.Named("pcloud-login")
	if o.ClientID == "" {
		return errors.New("pcloud login: a client id is required (register an app in pCloud's My Apps)")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	var custom *url.URL
	authURL := AuthorizeURL
	if o.Endpoint != "" {
		u, err := checkEndpoint(o.Endpoint)
		if err != nil {
			return fmt.Errorf("pcloud login: %w", err)
		}
		custom, authURL = u, strings.TrimSuffix(u.String(), "/")+"/oauth2/authorize"
	}
	if o.AuthURL != "" {
		authURL = o.AuthURL
	}
	hc := o.HTTP
	if hc == nil {
		c, err := httpx.New(httpx.Options{CAFile: o.CAFile})
		if err != nil {
			return fmt.Errorf("pcloud login: %w", err)
		}
		hc = c.HTTP()
	}

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("pcloud login: listen for the redirect: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/"
	state := randomState()
	q := url.Values{"client_id": {o.ClientID}, "response_type": {"code"}, "redirect_uri": {redirect}, "state": {state}}
	au, err := url.Parse(authURL)
	if err != nil || (au.Scheme != "https" && !(au.Scheme == "http" && isLoopback(au.Hostname()))) {
		ln.Close()
		return fmt.Errorf("pcloud login: authorize URL %q: want https", remote.Escape(authURL))
	}
	au.RawQuery = q.Encode()
	fmt.Fprintf(o.Out, "Open this URL in a browser to allow tandem to use your pCloud account:\n\n  %s\n\n", au)
	if !o.NoBrowser && o.OpenBrowser != nil {
		if err := o.OpenBrowser(au.String()); err != nil {
			lg.Warn("could not open a browser; open the URL yourself", zap.Error(err))
		}
	}

	type result struct {
		q   url.Values
		err error
	}
	got := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		rq := r.URL.Query()
		var res result
		switch s := rq.Get("state"); {
		case rq.Get("error") != "":
			res.err = fmt.Errorf("pcloud refused the authorization: %s", remote.Escape(rq.Get("error")))
		case s == "":
			// pCloud has been seen to drop the state (§3.1; rclone accepts that); the code still only
			// reaches this one-shot loopback listener, whose port nobody else was told.
			lg.Warn("the authorize redirect carried no state parameter")
			res.q = rq
		case subtle.ConstantTimeCompare([]byte(s), []byte(state)) != 1:
			http.Error(w, "state mismatch: this redirect is not from the login tandem started", http.StatusBadRequest)
			return // not ours: keep waiting for the real redirect
		default:
			res.q = rq
		}
		if res.err == nil && rq.Get("code") == "" {
			res.err = errors.New("the authorize redirect carried no code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if res.err != nil {
			_, _ = io.WriteString(w, "<html><body><p>tandem: login failed. See the terminal.</p></body></html>\n")
		} else {
			_, _ = io.WriteString(w, "<html><body><p>tandem is now allowed to use your pCloud account. You can close this window.</p></body></html>\n")
		}
		select {
		case got <- res:
		default:
		}
	})}
	defer httpx.ServeRedirects(ctx, srv, ln)()

	var res result
	wait := time.NewTimer(o.Timeout)
	defer wait.Stop()
	select {
	case res = <-got:
	case <-ctx.Done():
		return fmt.Errorf("pcloud login: %w", ctx.Err())
	case <-wait.C:
		return fmt.Errorf("pcloud login: no answer from the browser within %v", o.Timeout)
	}
	if res.err != nil {
		return fmt.Errorf("pcloud login: %w", res.err)
	}

	base, hostname, loc, err := apiBase(custom, res.q)
	if err != nil {
		return fmt.Errorf("pcloud login: %w", err)
	}
	cfg := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: base + "/oauth2_token"}}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), res.q.Get("code"))
	if err != nil {
		return fmt.Errorf("pcloud login: exchange the code at %s: %w", base, firstLine(err))
	}
	if r := numExtra(tok, "result"); r != 0 {
		return fmt.Errorf("pcloud login: oauth2_token answered result %.0f", r)
	}
	if l := numExtra(tok, "locationid"); l == 1 || l == 2 {
		loc = int(l)
	}
	tf := tokenFile{AccessToken: tok.AccessToken, TokenType: "bearer", Endpoint: base, Hostname: hostname,
		LocationID: loc, UserID: uint64(numExtra(tok, "uid"))}
	path, err := tokenPath(o.StateDir, o.Account)
	if err != nil {
		return fmt.Errorf("pcloud login: %w", err)
	}
	if err := tokenstore.Save(path, tf); err != nil {
		return fmt.Errorf("pcloud login: %w", err)
	}
	fmt.Fprintf(o.Out, "Logged in to pCloud (%s); token saved in %s\n", base, path)
	lg.Info("logged in", zap.String("endpoint", base), zap.Uint64("userid", tf.UserID))
	return nil
}

// apiBase picks the API host from the redirect. Against the real service only pCloud's own hosts are accepted
// (the code and client secret must not go to a host a tampered redirect names); otherwise locationid decides.
// Against a custom endpoint (an emulator) its loopback hostname is used with the endpoint's scheme.
func apiBase(custom *url.URL, q url.Values) (base, hostname string, loc int, err error) {
	hostname = q.Get("hostname")
	loc, _ = strconv.Atoi(q.Get("locationid"))
	plainHost := hostname != "" && !strings.ContainsAny(hostname, "/\\@?#% \t\r\n")
	if custom != nil {
		if plainHost {
			if h, _, serr := net.SplitHostPort(hostname); (serr == nil && isLoopback(h)) || hostname == custom.Host {
				return custom.Scheme + "://" + hostname, hostname, loc, nil
			}
		}
		return strings.TrimSuffix(custom.String(), "/"), custom.Host, loc, nil
	}
	if plainHost {
		h := strings.ToLower(hostname)
		if h == "api.pcloud.com" || h == "eapi.pcloud.com" || strings.HasSuffix(h, ".pcloud.com") {
			return "https://" + h, h, loc, nil
		}
		return "", "", 0, fmt.Errorf("the redirect names API host %q, which is not pCloud's", remote.Escape(hostname))
	}
	if loc == 2 {
		return EUEndpoint, "eapi.pcloud.com", loc, nil
	}
	return USEndpoint, "api.pcloud.com", loc, nil
}

func numExtra(tok *oauth2.Token, key string) float64 {
	switch v := tok.Extra(key).(type) {
	case float64:
		return v
	case string:
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	return 0
}

// firstLine keeps the first line of an oauth2 error: the rest can quote the response body.
func firstLine(err error) error {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return errors.New(msg)
}

func randomState() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
