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
	if endpoint == "" {
		endpoint = storedEndpoint(tf)
	}
	u, err := url.Parse(endpoint)
	eu := tf.LocationID == 2 || (err == nil && strings.EqualFold(u.Hostname(), "eapi.pcloud.com"))
	return New(lg, root, Options{Endpoint: endpoint, Token: tok, CAFile: o.CAFile, EU: eu})
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
