package httpx

import (
	"context"
	"time"

	"golang.org/x/oauth2"
)

// NewOAuthFunc is NewOAuth for providers whose refresh grant needs fields x/oauth2 cannot send (vBoxx sends the
// device guid with every grant, so one installation stays one device). refresh performs the grant; to be told
// "log in again" it returns an *oauth2.RetrieveError (ErrorCode "invalid_grant", or a 400/401 Response), exactly
// as x/oauth2 would. Everything else (single-flight forced refresh, save before use) is NewOAuth's.
func NewOAuthFunc(tok *oauth2.Token, save func(*oauth2.Token) error, now func() time.Time,
	refresh func(ctx context.Context, refreshToken string) (*oauth2.Token, error)) *OAuth {
	o := NewOAuth(&oauth2.Config{}, nil, tok, save, now) // no config or client: refresh replaces the exchange
	o.refresh = refresh
	return o
}
