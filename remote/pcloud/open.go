package pcloud

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// tokenFile is what Login stores (tokenstore, mode 0600). pCloud tokens do not expire and there is no refresh
// token; the API host is fixed by the account's region, so it is stored with the token.
type tokenFile struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type,omitempty"`
	Endpoint    string `json:"endpoint"`           // API base URL, e.g. https://eapi.pcloud.com
	Hostname    string `json:"hostname,omitempty"` // as the authorize redirect named it
	LocationID  int    `json:"locationid,omitempty"`
	UserID      uint64 `json:"userid,omitempty"`
}

// tokenPath is the token file of o's account: o.StateDir, or tokenstore.DefaultDir().
func tokenPath(stateDir, account string) (string, error) {
	dir := stateDir
	if dir == "" {
		d, err := tokenstore.DefaultDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	return tokenstore.File(dir, "pcloud", account), nil
}

// Open is the registry's opener for "pcloud:/path" (reg.Add("pcloud", pcloud.Open)). Credentials: o.AccessToken
// (scripts) or the token file that Login wrote. The API endpoint: o.Endpoint, else the one stored at login
// (the region's host), else the US host. It makes no request; a missing root shows in CheckRoot.
func Open(ctx context.Context, lg *zap.Logger, root string, o remote.OpenOptions) (remote.Remote, error) {
	return openWith(ctx, lg, root, o, [2]string{USEndpoint, EUEndpoint})
}

// openWith is Open with the two regions' API hosts (tests give two emulators).
func openWith(ctx context.Context, lg *zap.Logger, root string, o remote.OpenOptions, hosts [2]string) (remote.Remote, error) {
	var tf tokenFile
	tok := o.AccessToken
	if tok == "" {
		path, err := tokenPath(o.StateDir, o.Account)
		if err != nil {
			return nil, err
		}
		if err := tokenstore.Load(path, &tf); err != nil {
			if errors.Is(err, tokenstore.ErrNoLogin) {
				return nil, fmt.Errorf("pcloud: %w: %w; run `tandem login pcloud`", remote.ErrUnauthorized, err)
			}
			return nil, fmt.Errorf("pcloud: %w", err)
		}
		if tf.AccessToken == "" {
			return nil, fmt.Errorf("pcloud: %w: the token file holds no token; run `tandem login pcloud`", remote.ErrUnauthorized)
		}
		tok = remote.Secret(tf.AccessToken)
	}
	endpoint := o.Endpoint
	eu := tf.LocationID == 2
	switch {
	case endpoint != "":
	case tf.Endpoint != "" || tf.Hostname != "" || tf.LocationID != 0:
		endpoint = storedEndpoint(tf)
	default:
		// A token without its region (given on the command line, or an old token file): an account lives in one
		// region and a token fails on the other's host (§1.1), so ask the US host, then the EU host.
		var err error
		if endpoint, eu, err = probeRegion(ctx, lg, root, tok, o.CAFile, hosts); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(endpoint)
	eu = eu || (err == nil && strings.EqualFold(u.Hostname(), "eapi.pcloud.com"))
	return New(lg, root, Options{Endpoint: endpoint, Token: tok, CAFile: o.CAFile, EU: eu, OnSkip: o.OnSkip})
}

// probeRegion finds the region whose API host accepts tok (userinfo). A refused token on both is the US host's
// error (ErrUnauthorized); a host that cannot be reached is that error.
func probeRegion(ctx context.Context, lg *zap.Logger, root string, tok remote.Secret, caFile string,
	hosts [2]string) (string, bool, error) {
	var first error
	for i, h := range hosts {
		c, err := New(lg, root, Options{Endpoint: h, Token: tok, CAFile: caFile})
		if err != nil {
			return "", false, err
		}
		_, _, err = c.Quota(ctx)
		if err == nil {
			return h, i == 1, nil
		}
		if !errors.Is(err, remote.ErrUnauthorized) {
			return "", false, fmt.Errorf("pcloud: find the account's region at %s: %w", h, err)
		}
		if first == nil {
			first = err
		}
	}
	return "", false, fmt.Errorf("pcloud: the token is refused by both regions' hosts: %w", first)
}

func storedEndpoint(tf tokenFile) string {
	switch {
	case tf.Endpoint != "":
		return tf.Endpoint
	case tf.Hostname != "":
		return "https://" + tf.Hostname
	case tf.LocationID == 2:
		return EUEndpoint
	}
	return USEndpoint
}
