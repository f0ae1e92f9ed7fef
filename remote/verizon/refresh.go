package verizon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// tokenAuth is the httpx.Authorizer of a Verizon login. Verizon's refresh tokens are single-use (§3.2,
// documented): the refresh answer's new refresh token replaces the old one, which is dead from then on. So a
// refresh is serialised three ways: within the process (mu, one refresh for every worker refused with the same
// token), across processes sharing the token file (tokenstore.Lock; under it the file is re-read and the refresh
// happens only if the stored access token is still the one that was refused), and in time (the new pair is saved
// durably before it is used). A refresh whose answer was lost cannot be replayed with the old token: it is tried
// once more (a server with a grace period answers), and then the login is reported spent, never retried in a
// loop.
type tokenAuth struct {
	lg       *zap.Logger
	path     string // token file; "" for tokens given on the command line (kept in memory only)
	tokenURL string
	hc       *http.Client
	now      func() time.Time

	mu sync.Mutex
	tf tokenFile
}

func newTokenAuth(lg *zap.Logger, tf tokenFile, path, endpoint string, hc *http.Client, now func() time.Time) *tokenAuth {
	if now == nil {
		now = time.Now
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &tokenAuth{lg: lg.Named("verizon-auth"), path: path, tokenURL: endpoint + "/oauth2/token", hc: hc, now: now, tf: tf}
}

// Apply implements httpx.Authorizer: the access token goes in the Authorization header, refreshed first when it
// is known to be expired.
func (a *tokenAuth) Apply(ctx context.Context, req *http.Request) error {
	a.mu.Lock()
	tf := a.tf
	a.mu.Unlock()
	if tf.AccessToken == "" || (!tf.Expiry.IsZero() && !a.now().Before(tf.Expiry.Add(-10*time.Second))) {
		if err := a.refresh(ctx, tf.AccessToken); err != nil {
			return err
		}
		a.mu.Lock()
		tf = a.tf
		a.mu.Unlock()
	}
	req.Header.Set("Authorization", "Bearer "+tf.AccessToken)
	return nil
}

// Refresh implements httpx.Authorizer: the server refused the token req carried.
func (a *tokenAuth) Refresh(ctx context.Context, used *http.Request) error {
	return a.refresh(ctx, strings.TrimPrefix(used.Header.Get("Authorization"), "Bearer "))
}

// loginAgain ends the message of every refusal that only new tokens cure, in the words of where the tokens came
// from: a stored login is renewed by `tandem login verizon`; tokens given with --access-token/--refresh-token
// are used as given (a refreshed pair is kept in memory only), so a new stored login does not help that command.
func (a *tokenAuth) loginAgain() string {
	if a.path == "" {
		return "give a fresh pair with --access-token and --refresh-token (tokens given as flags are not saved when " +
			"refreshed and Verizon's refresh tokens are single-use, so a pair that one run refreshed is spent), or drop " +
			"those flags and use a stored login from `tandem login verizon`"
	}
	return "run `tandem login verizon` (with your app's --client-id, --client-secret and --redirect-url)"
}

// refresh replaces the access token stale, unless another worker or process already has.
func (a *tokenAuth) refresh(ctx context.Context, stale string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tf.AccessToken != stale && a.tf.AccessToken != "" {
		return nil // another worker of this process refreshed
	}
	if a.path != "" {
		unlock, err := tokenstore.Lock(a.path)
		if err != nil {
			return fmt.Errorf("refresh the Verizon login: %w", err)
		}
		defer unlock()
		var disk tokenFile
		if err := tokenstore.Load(a.path, &disk); err != nil {
			return fmt.Errorf("%w: refresh the Verizon login: %w", remote.ErrUnauthorized, err)
		}
		if disk.AccessToken != stale && disk.AccessToken != "" {
			a.tf = disk // another process refreshed while we waited for the lock
			return nil
		}
		a.tf = disk
	}
	if a.tf.RefreshToken == "" {
		return fmt.Errorf("%w: the access token was refused and there is no refresh token: %s", remote.ErrUnauthorized, a.loginAgain())
	}
	next, err := a.grant(ctx, a.tf)
	var lost *lostAnswer
	if errors.As(err, &lost) {
		// The server may have used up the refresh token without our hearing the answer. One more try tells:
		// a server with a grace period answers it; a single-use one refuses it, and only a login helps.
		a.lg.Warn("the answer to a token refresh was lost; trying once more", zap.Error(lost.err))
		next, err = a.grant(ctx, a.tf)
		var refused *refusedGrant
		if errors.As(err, &refused) {
			return fmt.Errorf("%w: the answer to a token refresh was lost and Verizon's refresh tokens are single-use, "+
				"so this login is spent: %s", remote.ErrUnauthorized, a.loginAgain())
		}
		if errors.As(err, &lost) {
			return fmt.Errorf("%w: the answers to two token refreshes were lost; the login may be spent. If the next "+
				"pass reports the same, %s", remote.ErrUnavailable, a.loginAgain())
		}
	}
	var refused *refusedGrant
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%w: Verizon refused the refresh token (HTTP %d %s: expired, revoked, or already used by "+
			"another computer or program sharing this login): %s", remote.ErrUnauthorized, refused.status,
			remote.Escape(refused.code), a.loginAgain())
	case err != nil:
		return httpx.Retry(fmt.Errorf("refresh the Verizon login: %w", err), 0)
	}
	if err := failpoint.Hit("verizon.refresh.beforeSave"); err != nil { // the server rotated the token
		return err
	}
	if a.path != "" {
		if err := tokenstore.Save(a.path, next); err != nil {
			// The server has already retired the old refresh token: without the new one on disk the login is
			// lost for the next process. Keep it in memory so this process at least goes on.
			a.tf = next
			return fmt.Errorf("save the refreshed Verizon login: %w", err)
		}
	}
	a.tf = next
	return failpoint.Hit("verizon.refresh.afterSave")
}

// refusedGrant: the token endpoint answered 400 or 401; only a new login helps.
type refusedGrant struct {
	status int
	code   string
}

func (r *refusedGrant) Error() string {
	return fmt.Sprintf("token refresh refused: HTTP %d %s", r.status, r.code)
}

// lostAnswer: the request may have reached the server, but no answer came back.
type lostAnswer struct{ err error }

func (l *lostAnswer) Error() string { return "token refresh answer lost: " + l.err.Error() }

// grant runs the refresh grant (§3.2): form-encoded, client credentials by Basic auth, redirect_uri as the SDK
// sends it.
func (a *tokenAuth) grant(ctx context.Context, tf tokenFile) (tokenFile, error) {
	id, secret := tf.ClientID, tf.ClientSecret
	if id == "" {
		id, secret = DefaultClientID, DefaultClientSecret
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tf.RefreshToken}}
	if tf.RedirectURL != "" {
		form.Set("redirect_uri", tf.RedirectURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tf, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return tf, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return tf, fmt.Errorf("reach the token endpoint: %w", scrubURL(err)) // never sent: the token is intact
		}
		return tf, &lostAnswer{err: scrubURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return tf, &lostAnswer{err: err}
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized:
		var eb errorBody
		_ = json.Unmarshal(body, &eb)
		return tf, &refusedGrant{status: resp.StatusCode, code: eb.Error}
	case resp.StatusCode != http.StatusOK:
		// A server error may or may not have used the token up: the same as a lost answer.
		return tf, &lostAnswer{err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	var ta struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &ta); err != nil || ta.AccessToken == "" {
		return tf, &lostAnswer{err: errors.New("token answer without an access token")}
	}
	next := tf
	next.AccessToken, next.TokenType = ta.AccessToken, ta.TokenType
	if ta.RefreshToken != "" {
		next.RefreshToken = ta.RefreshToken
	}
	next.Expiry = time.Time{}
	if ta.ExpiresIn > 0 {
		next.Expiry = a.now().Add(time.Duration(ta.ExpiresIn) * time.Second)
	}
	return next, nil
}
