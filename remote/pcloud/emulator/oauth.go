package emulator

import (
	"html"
	"net/http"
	"net/url"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// authorize stands in for https://my.pcloud.com/oauth2/authorize: it approves at once (there is no user to ask)
// and redirects like pCloud does (§3.1). Code flow: redirect_uri?code&state&locationid&hostname, or the code shown
// on a page when there is no redirect_uri. Token flow: the token in the fragment.
func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") == "" {
		http.Error(w, "client_id is required", http.StatusBadRequest)
		return
	}
	locationID := "1"
	if e.o.Region == RegionEU {
		locationID = "2"
	}
	redirect := q.Get("redirect_uri")
	switch q.Get("response_type") {
	case "code":
		code := emukit.RandomHex(16)
		e.mu.Lock()
		e.codes[code] = true
		e.mu.Unlock()
		if redirect == "" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<!DOCTYPE html><html><body><p>Your access code:</p><pre id=\"code\">" +
				html.EscapeString(code) + "</pre></body></html>\n"))
			return
		}
		u, err := url.Parse(redirect)
		if err != nil {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		v := u.Query()
		v.Set("code", code)
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		v.Set("locationid", locationID)
		v.Set("hostname", e.hostname(r))
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	case "token":
		if redirect == "" {
			http.Error(w, "redirect_uri is required for response_type=token", http.StatusBadRequest)
			return
		}
		u, err := url.Parse(redirect)
		if err != nil {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		tok := e.mint()
		frag := url.Values{"access_token": {tok}, "token_type": {"bearer"}, "locationid": {locationID}}
		frag.Set("uid", "7000001")
		if s := q.Get("state"); s != "" {
			frag.Set("state", s)
		}
		u.Fragment = frag.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	default:
		http.Error(w, "response_type must be code or token", http.StatusBadRequest)
	}
}

// mint creates and persists a new access token.
func (e *Emulator) mint() string {
	tok := emukit.RandomHex(20)
	e.mu.Lock()
	defer e.mu.Unlock()
	k := emukit.TokenKey(tok)
	st := &tokenState{}
	e.tokens[k] = st
	_ = e.commit(&change{tokens: map[string]*tokenState{k: st}})
	return tok
}

// oauth2Token exchanges a code from authorize for a token (§3.2). Client credentials may come as HTTP Basic or
// as form fields (Go's oauth2 tries both); they are not checked, and grant_type is ignored as pCloud does.
func (c *call) oauth2Token() (any, error) {
	code := c.p.Get("code")
	c.e.mu.Lock()
	valid := c.e.codes[code]
	delete(c.e.codes, code)
	c.e.mu.Unlock()
	if code == "" || !valid {
		return nil, fail(2012)
	}
	locationID := 1
	if c.e.o.Region == RegionEU {
		locationID = 2
	}
	return ok("access_token", c.e.mint(), "token_type", "bearer", "uid", c.e.cnt.UserID, "locationid", locationID), nil
}
