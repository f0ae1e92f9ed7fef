package emulator

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// serveToken is POST /oauth/token: the password and refresh_token grants (section 2 of the reference).
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) error {
	if err := need(r, http.MethodPost); err != nil {
		return err
	}
	// The grant may come as a urlencoded body (documented), in the query string or as multipart form data (public
	// clients send both): r.Form holds all three.
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return errf(http.StatusBadRequest, "invalid_request", "")
	}
	f := r.Form
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	switch {
	case clientID == "":
		return missingParam("client_id")
	case clientID == "anchor" && secret == "":
	case e.o.ClientID != "" && clientID == e.o.ClientID && secret == e.o.ClientSecret:
	default:
		return errf(http.StatusUnauthorized, "invalid_client", "")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch f.Get("grant_type") {
	case "password":
		for _, p := range []string{"username", "password"} {
			if f.Get(p) == "" {
				return missingParam(p)
			}
		}
		user := f.Get("username")
		if (user != e.o.Username && !strings.EqualFold(user, e.o.Email)) || f.Get("password") != e.o.Password {
			return errf(http.StatusBadRequest, "invalid_grant", "Invalid credentials given.")
		}
		if e.o.TwoStep != "" {
			switch code := f.Get("auth_code"); {
			case code == "":
				ae := errf(http.StatusUnauthorized, "missing_totp", "")
				ae.extra = map[string]any{"two_step_mode": e.o.TwoStep}
				return ae
			case code != e.o.TOTPCode:
				return errf(http.StatusBadRequest, "invalid_grant", "Invalid authentication code.")
			}
		}
		return e.issue(w, f.Get("guid"), clientID)
	case "refresh_token":
		rt := f.Get("refresh_token")
		if rt == "" {
			return missingParam("refresh_token")
		}
		t := e.tokens[emukit.TokenKey(rt)]
		// A refresh token is refreshed only by the client it was issued to (RFC 6749 §6; the vendor pages say
		// nothing): project reading, the strict one.
		if t == nil || !t.Refresh || t.Revoked || e.nowLocked().UnixNano() >= t.Expires ||
			(t.Client != "" && t.Client != clientID) {
			return errf(http.StatusBadRequest, "invalid_grant", "Invalid refresh token.")
		}
		guid := f.Get("guid")
		if guid == "" {
			guid = t.GUID
		}
		// The old refresh token stays valid until it expires (project decision: no single use, so a crash
		// between receiving and storing a new pair never locks the user out).
		return e.issue(w, guid, clientID)
	case "":
		return missingParam("grant_type")
	}
	return errf(http.StatusBadRequest, "unsupported_grant_type", "")
}

// issue mints an access and a refresh token of client for device guid (a new device when the guid is unknown).
func (e *Emulator) issue(w http.ResponseWriter, guid, client string) error {
	if guid == "" || !e.guids[guid] {
		guid = emukit.RandomHex(4) + "-" + emukit.RandomHex(2) + "-" + emukit.RandomHex(2) + "-" + emukit.RandomHex(2) + "-" + emukit.RandomHex(6)
	}
	e.guids[guid] = true
	now := e.nowLocked()
	access, refresh := emukit.RandomHex(16), emukit.RandomHex(16)
	ch := newChange()
	at := &tokenRec{Expires: now.Add(e.o.AccessTTL).UnixNano(), GUID: guid}
	rt := &tokenRec{Refresh: true, Expires: now.Add(e.o.RefreshTTL).UnixNano(), GUID: guid, Client: client}
	e.tokens[emukit.TokenKey(access)], ch.tokens[emukit.TokenKey(access)] = at, at
	e.tokens[emukit.TokenKey(refresh)], ch.tokens[emukit.TokenKey(refresh)] = rt, rt
	e.pruneTokens(now, ch)
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "expires_in": int64((e.o.AccessTTL + time.Second - 1) / time.Second),
		"guid": guid, "refresh_token": refresh, "scope": "full", "token_type": "Bearer",
	})
	return nil
}

// pruneTokens forgets tokens that expired a day ago, so a long-running emulator does not grow without bound.
func (e *Emulator) pruneTokens(now time.Time, ch *change) {
	limit := now.Add(-24 * time.Hour).UnixNano()
	for k, t := range e.tokens {
		if t.Expires < limit {
			delete(e.tokens, k)
			ch.tokens[k] = nil
		}
	}
}

// serveRevoke is POST /oauth/revoke.
func (e *Emulator) serveRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := need(r, http.MethodPost); err != nil {
		return err
	}
	tok := r.PostFormValue("token")
	if tok == "" {
		return missingParam("token")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.tokens[emukit.TokenKey(tok)]; t != nil {
		t.Revoked = true
		ch := newChange()
		ch.tokens[emukit.TokenKey(tok)] = t
		if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, okBody())
	return nil
}

// authorize checks the bearer token: missing, unknown, expired and revoked all answer 401 access_denied.
func (e *Emulator) authorize(r *http.Request) error {
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || tok == "" {
		return errDenied
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tokens[emukit.TokenKey(tok)]
	if t == nil || t.Refresh || t.Revoked || e.nowLocked().UnixNano() >= t.Expires {
		return errDenied
	}
	return nil
}

// ExpireAccessTokens ends the life of every access token issued so far (refresh tokens stay valid): the next
// call of each client gets 401 and must refresh once.
func (e *Emulator) ExpireAccessTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setTokens(func(t *tokenRec) {
		if !t.Refresh {
			t.Expires = 0
		}
	})
}

// RevokeRefreshTokens revokes every refresh token: refreshes answer invalid_grant ("log in again").
func (e *Emulator) RevokeRefreshTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setTokens(func(t *tokenRec) {
		if t.Refresh {
			t.Revoked = true
		}
	})
}

func (e *Emulator) setTokens(fn func(*tokenRec)) {
	ch := newChange()
	for k, t := range e.tokens {
		fn(t)
		ch.tokens[k] = t
	}
	if err := writeChange(e.store.DB, ch, e.cnt); err != nil {
		e.lg.Error("persist tokens", zap.Error(err))
	}
}

// registerHooks adds the vBoxx fault actions to the kit:
//
//	expireToken    every access token expires, then the request is served (so it gets 401)
//	revokeRefresh  every refresh token is revoked, then the request is served
//	clockOffset    the server clock skew becomes args.offset (a Go duration, e.g. "-2h"), then the request is served
//	rootDeleted    the sync root is deleted, then the request is served (410 root_deleted from then on)
func (e *Emulator) registerHooks() {
	e.kit.RegisterHook("expireToken", func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		e.ExpireAccessTokens()
		next.ServeHTTP(w, r)
	})
	e.kit.RegisterHook("revokeRefresh", func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		e.RevokeRefreshTokens()
		next.ServeHTTP(w, r)
	})
	e.kit.RegisterHook("clockOffset", func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		if d, err := time.ParseDuration(a.Args["offset"]); err == nil {
			e.SetClockSkew(d)
		}
		next.ServeHTTP(w, r)
	})
	e.kit.RegisterHook("rootDeleted", func(w http.ResponseWriter, r *http.Request, a emukit.Action, next http.Handler) {
		e.DeleteRoot()
		next.ServeHTTP(w, r)
	})
}
