package emulator

import (
	"crypto/subtle"
	"html"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// Names of the emulator's own fault actions, usable in a fault plan (`do: expireToken`).
const (
	HookExpireToken   = "expireToken"    // every access token expires now, then the request runs
	HookRevokeRefresh = "revokeRefresh"  // every refresh token is revoked, then the request runs
	HookOutOfSync     = "outOfSync"      // ForceOutOfSync, then the request runs
	HookCompact       = "compactHistory" // DropHistory, then the request runs
	HookClockOffset   = "clockOffset"    // skew the server clock by args.offset (a Go duration), then run
)

func (e *Emulator) registerHooks() {
	then := func(f func(a emukit.Action)) emukit.Hook {
		return func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
			f(a)
			next.ServeHTTP(w, r)
		}
	}
	e.kit.RegisterHook(HookExpireToken, then(func(emukit.Action) { e.ExpireAccessTokens() }))
	e.kit.RegisterHook(HookRevokeRefresh, then(func(emukit.Action) { e.RevokeRefreshTokens() }))
	e.kit.RegisterHook(HookOutOfSync, then(func(emukit.Action) { e.ForceOutOfSync() }))
	e.kit.RegisterHook(HookCompact, then(func(emukit.Action) { e.DropHistory() }))
	e.kit.RegisterHook(HookClockOffset, then(func(a emukit.Action) {
		if d, err := time.ParseDuration(a.Args["offset"]); err == nil {
			e.SetClockOffset(d)
		}
	}))
}

// isLoopbackRedirect accepts http://127.0.0.1:<port>/… and http://localhost:<port>/… (§3.1 project decision).
func isLoopbackRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// authorize approves at once for the configured user and redirects back with a single-use code (§3.1). A bad
// request is a 200 page, as the real endpoint answers failures.
func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page := func(msg string) error {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><html><body><h1>Verizon Cloud</h1><p>" + html.EscapeString(msg) +
			"</p></body></html>\n"))
		return nil
	}
	redirect := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != e.o.ClientID:
		return page("unknown client_id")
	case q.Get("response_type") != "code":
		return page("response_type must be code")
	case !slices.Contains(e.o.RedirectURIs, redirect) && !(e.v.is(VariantRedirectLoopback) && isLoopbackRedirect(redirect)):
		// documented: the redirect must equal the registered Callback URL exactly, case-sensitively
		return page("redirect_uri does not match the Callback URL registered for this app")
	}
	u, err := url.Parse(redirect)
	if err != nil {
		return page("bad redirect_uri")
	}
	code := "C-" + emukit.RandomHex(16)
	e.mu.Lock()
	e.codes[code] = authCode{redirect: redirect, device: q.Get("deviceid"), expires: e.now().Add(10 * time.Minute)}
	e.mu.Unlock()
	v := u.Query()
	v.Set("code", code)
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}

type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func oauthErr(status int, code, desc string) *apiError { return fail(status, code, "%s", desc) }

// token exchanges a code or a refresh token (§3.2). Client credentials come by Basic auth or form fields.
func (e *Emulator) token(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "bad form body")
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(e.o.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(e.o.ClientSecret)) != 1 {
		return oauthErr(http.StatusUnauthorized, "invalid_client", "bad client credentials")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	var at, rt string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		c, ok := e.codes[code]
		if code == "" {
			return oauthErr(http.StatusBadRequest, "invalid_request", "code is required")
		}
		delete(e.codes, code) // single use, even when the rest is wrong
		if !ok || e.now().After(c.expires) || r.PostForm.Get("redirect_uri") != c.redirect {
			return oauthErr(http.StatusUnauthorized, "invalid_grant", "bad, expired or used code")
		}
		// documented: each deviceid has its own refresh token; a login without one shares the app's
		e.revokeDevice(ch, c.device)
		at, rt = e.issue(ch, "", c.device)
	case "refresh_token":
		tok := r.PostForm.Get("refresh_token")
		if tok == "" {
			return oauthErr(http.StatusBadRequest, "invalid_request", "refresh_token is required")
		}
		k := emukit.TokenKey(tok)
		st := e.tokens[k]
		if st == nil || !st.Refresh || st.Revoked || e.nowMS() >= st.Expires {
			return oauthErr(http.StatusUnauthorized, "invalid_grant", "bad, expired or revoked refresh token")
		}
		e.settle(ch, k)
		// A retry with the same refresh token (its answer was lost) supersedes the pairs issued before.
		for _, p := range st.Pending {
			e.revokePair(ch, p)
		}
		st.Pending = nil
		if e.v.is(VariantRefreshGrace) {
			// variant: the old refresh token stays valid until the new pair is first used
			at, rt = e.issue(ch, k, st.Device)
		} else {
			// documented: a refresh token is single-use; a lost answer leaves the client with a dead token
			st.Revoked = true
			at, rt = e.issue(ch, "", st.Device)
		}
		ch.tok(k, st)
	case "":
		return oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return oauthErr(http.StatusBadRequest, "invalid_request", "unsupported grant_type")
	}
	if err := e.commit(ch); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tokenAnswer{AccessToken: at, TokenType: "Bearer",
		ExpiresIn: int64(e.o.AccessTTL / time.Second), RefreshToken: rt})
	return nil
}

// revokeDevice revokes every refresh token of device: a new login of the same device replaces them.
func (e *Emulator) revokeDevice(ch *change, device string) {
	for k, st := range e.tokens {
		if st.Refresh && !st.Revoked && st.Device == device {
			st.Revoked = true
			ch.tok(k, st)
		}
	}
}

// issue mints an access and refresh token pair; parent is the refresh token whose grace runs ("" after a login
// or a single-use refresh), device the login's deviceid.
func (e *Emulator) issue(ch *change, parent, device string) (string, string) {
	at, rt := "AT-"+emukit.RandomHex(20), "RT-"+emukit.RandomHex(20)
	ak, rk := emukit.TokenKey(at), emukit.TokenKey(rt)
	now := e.now()
	a := &tokenState{Expires: now.Add(e.o.AccessTTL).UnixMilli(), Parent: parent, Pair: rk, Device: device}
	f := &tokenState{Refresh: true, Expires: now.Add(e.o.RefreshTTL).UnixMilli(), Parent: parent, Pair: ak, Device: device}
	e.tokens[ak], e.tokens[rk] = a, f
	ch.tok(ak, a)
	ch.tok(rk, f)
	if p := e.tokens[parent]; p != nil {
		p.Pending = append(p.Pending, ak)
		ch.tok(parent, p)
	}
	return at, rt
}

// settle ends the grace of k's parent: the first use of either token of a pair invalidates the refresh token
// it was issued from, and any other pair issued from it that was never used.
func (e *Emulator) settle(ch *change, k string) {
	st := e.tokens[k]
	if st == nil || st.Parent == "" {
		return
	}
	parent := st.Parent
	mine := k
	if st.Refresh {
		mine = st.Pair
	}
	if p := e.tokens[parent]; p != nil {
		p.Revoked = true
		for _, other := range p.Pending {
			if other != mine {
				e.revokePair(ch, other)
			}
		}
		p.Pending = nil
		ch.tok(parent, p)
	}
	st.Parent = ""
	ch.tok(k, st)
	if pair := e.tokens[st.Pair]; pair != nil {
		pair.Parent = ""
		ch.tok(st.Pair, pair)
	}
}

func (e *Emulator) revokePair(ch *change, accessKey string) {
	a := e.tokens[accessKey]
	if a == nil {
		return
	}
	a.Revoked = true
	ch.tok(accessKey, a)
	if f := e.tokens[a.Pair]; f != nil {
		f.Revoked = true
		ch.tok(a.Pair, f)
	}
}

// checkAuth accepts a valid, unexpired access token from the Authorization header (the `access-token` query
// form was moved there before the request log).
func (e *Emulator) checkAuth(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return fail(http.StatusUnauthorized, "invalid_token", "missing access token")
	}
	k := emukit.TokenKey(strings.TrimSpace(h[7:]))
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.tokens[k]
	if st == nil || st.Refresh || st.Revoked || e.nowMS() >= st.Expires {
		return fail(http.StatusUnauthorized, "invalid_token", "invalid, expired or revoked access token")
	}
	if st.Parent != "" {
		ch := newChange()
		e.settle(ch, k)
		return e.commit(ch)
	}
	return nil
}

// Mint issues a token pair as a login would, for tests and `tandem emulate` to hand to a client.
func (e *Emulator) Mint() (access, refresh string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	access, refresh = e.issue(ch, "", "mint-"+emukit.RandomHex(6)) // a device of its own: logins do not revoke it
	_ = e.commit(ch)
	return access, refresh
}

// ExpireAccessTokens makes every access token issued so far expired: the next data call answers 401.
func (e *Emulator) ExpireAccessTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	past := e.nowMS() - 1
	for k, st := range e.tokens {
		if !st.Refresh && st.Expires > past {
			st.Expires = past
			ch.tok(k, st)
		}
	}
	_ = e.commit(ch)
}

// RevokeRefreshTokens revokes every refresh token: the next refresh answers 401 invalid_grant.
func (e *Emulator) RevokeRefreshTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := newChange()
	for k, st := range e.tokens {
		if st.Refresh && !st.Revoked {
			st.Revoked = true
			ch.tok(k, st)
		}
	}
	_ = e.commit(ch)
}
