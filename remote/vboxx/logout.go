package vboxx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/httpx"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// LogoutOptions name the stored login to revoke.
type LogoutOptions struct {
	StateDir string       // token dir; default tokenstore.DefaultDir()
	Account  string       // which login
	CAFile   string       // extra trusted CA (PEM), as at login
	HTTP     *http.Client // tests only
}

// Logout revokes the stored login at the server: POST /oauth/revoke for the refresh token, then the access
// token (the reference shows the endpoint; the {"status":"ok"} answer is our reading, so any 2xx counts). It does
// not delete the login: the caller does, whatever the server said. A missing login wraps tokenstore.ErrNoLogin.
func Logout(ctx context.Context, lg *zap.Logger, o LogoutOptions) (remote.LogoutResult, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	dir := o.StateDir
	if dir == "" {
		var err error
		if dir, err = tokenstore.DefaultDir(); err != nil {
			return remote.LogoutResult{}, err
		}
	}
	var tf tokenFile
	if err := tokenstore.Load(tokenstore.File(dir, "vboxx", o.Account), &tf); err != nil {
		return remote.LogoutResult{}, fmt.Errorf("vboxx logout: %w", err)
	}
	base, err := CheckEndpoint(tf.Endpoint)
	if err != nil {
		return remote.LogoutResult{}, fmt.Errorf("vboxx logout: the stored login names no usable server: %w", err)
	}
	hx, err := httpx.New(httpx.Options{HTTP: o.HTTP, CAFile: o.CAFile, Logger: lg})
	if err != nil {
		return remote.LogoutResult{}, fmt.Errorf("vboxx logout: %w", err)
	}
	client := tf.ClientID
	if client == "" {
		client = "anchor"
	}
	var errs []error
	for _, t := range []struct{ tok, hint string }{{tf.RefreshToken, "refresh_token"}, {tf.AccessToken, "access_token"}} {
		if t.tok == "" {
			continue
		}
		form := url.Values{"client_id": {client}, "token": {t.tok}, "token_type_hint": {t.hint}}
		if tf.ClientSecret != "" {
			form.Set("client_secret", tf.ClientSecret) // a registered app authenticates as in its grants (RFC 7009 §2.1)
		}
		err := hx.Do(ctx, "oauth revoke", true, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/revoke", strings.NewReader(form.Encode()))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			return req, nil
		}, func(resp *http.Response) error { return nil })
		if err != nil {
			errs = append(errs, fmt.Errorf("revoke the %s: %w", strings.ReplaceAll(t.hint, "_", " "), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return remote.LogoutResult{Note: "the server did not confirm the revocation; remove this device in the vBoxx " +
			"account's device list to be sure"}, fmt.Errorf("vboxx logout: %w", err)
	}
	lg.Info("tokens revoked", zap.String("endpoint", base))
	return remote.LogoutResult{Revoked: true}, nil
}
