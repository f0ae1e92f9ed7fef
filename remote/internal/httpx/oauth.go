package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/tandemsync/tandem/engine/failpoint"
	"github.com/tandemsync/tandem/remote"
)

// OAuth is an Authorizer over an OAuth2 token with a refresh token (Verizon, vBoxx). A refresh is forced when
// the server refuses a token the client thought valid (x/oauth2 alone refreshes only near the expiry it was
// told), shared by every worker refused with the same token, and the new token, with a rotated refresh token,
// is saved before it is used: a crash in between then leaves the new token on disk, never only the old one.
type OAuth struct {
	cfg     *oauth2.Config
	hc      *http.Client
	save    func(*oauth2.Token) error
	now     func() time.Time
	refresh func(ctx context.Context, rt string) (*oauth2.Token, error)

	mu  sync.Mutex
	tok *oauth2.Token
}

// NewOAuth starts from tok (loaded from the token file or given on the command line). save persists a new
// token; it may be nil for tokens given on the command line. hc carries the TLS trust for the token endpoint.
func NewOAuth(cfg *oauth2.Config, hc *http.Client, tok *oauth2.Token, save func(*oauth2.Token) error, now func() time.Time) *OAuth {
	if now == nil {
		now = time.Now
	}
	o := &OAuth{cfg: cfg, hc: hc, save: save, now: now, tok: tok}
	o.refresh = o.exchange
	return o
}

// Token is the current token (for status and tests).
func (o *OAuth) Token() *oauth2.Token {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := *o.tok
	return &t
}

// Apply implements Authorizer: the access token goes in the Authorization header, refreshed first when it is
// known to be expired.
func (o *OAuth) Apply(ctx context.Context, req *http.Request) error {
	o.mu.Lock()
	tok := o.tok
	expired := tok.AccessToken == "" || (!tok.Expiry.IsZero() && !o.now().Before(tok.Expiry.Add(-10*time.Second)))
	o.mu.Unlock()
	if expired && tok.RefreshToken != "" {
		if err := o.refreshFrom(ctx, tok.AccessToken); err != nil {
			return err
		}
		o.mu.Lock()
		tok = o.tok
		o.mu.Unlock()
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}

// Refresh implements Authorizer.
func (o *OAuth) Refresh(ctx context.Context, used *http.Request) error {
	stale := strings.TrimPrefix(used.Header.Get("Authorization"), "Bearer ")
	return o.refreshFrom(ctx, stale)
}

// refreshFrom refreshes unless another worker already replaced the stale access token. Holding the mutex across
// the exchange is what makes the refresh single-flight.
func (o *OAuth) refreshFrom(ctx context.Context, stale string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tok.AccessToken != stale && o.tok.AccessToken != "" {
		return nil
	}
	if o.tok.RefreshToken == "" {
		return fmt.Errorf("%w: the access token was refused and there is no refresh token", remote.ErrUnauthorized)
	}
	nt, err := o.refresh(ctx, o.tok.RefreshToken)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.Response != nil && re.Response.StatusCode == 400 || re.Response != nil && re.Response.StatusCode == 401) {
			return fmt.Errorf("%w: refresh refused (%s)", remote.ErrUnauthorized, re.ErrorCode)
		}
		return Retry(fmt.Errorf("refresh token: %w", scrub(err)), 0)
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = o.tok.RefreshToken // not rotated
	}
	// The server has rotated the refresh token; a crash here loses the new one (the next process finds the
	// old one refused and asks for a login).
	if err := failpoint.Hit("oauth.refresh.beforeSave"); err != nil {
		return err
	}
	if o.save != nil {
		if err := o.save(nt); err != nil {
			return fmt.Errorf("save the refreshed token: %w", err)
		}
	}
	o.tok = nt
	return failpoint.Hit("oauth.refresh.afterSave")
}

func (o *OAuth) exchange(ctx context.Context, rt string) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.hc)
	// An expired token with only the refresh token set makes the token source refresh now.
	return o.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
}

// scrub drops everything after the first line of an oauth2 error: its text can quote the response body.
func scrub(err error) error {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return errors.New(msg)
}

// Bearer is an Authorizer for a fixed token that cannot be refreshed (pCloud tokens do not expire; a refusal
// means the user must log in again).
type Bearer struct{ Token remote.Secret }

// Apply implements Authorizer.
func (b Bearer) Apply(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+b.Token.Reveal())
	return nil
}

// Refresh implements Authorizer.
func (b Bearer) Refresh(context.Context, *http.Request) error {
	return fmt.Errorf("%w: the access token was refused", remote.ErrUnauthorized)
}
