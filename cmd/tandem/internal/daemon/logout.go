package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
)

// LogoutRequest is the body of POST /v1/logout: the login `tandem logout` removed. The pairs that use it stop
// (login-required) until they are resumed after a new login. The answer is a ControlResponse.
type LogoutRequest struct {
	Provider string `json:"provider"`
	Account  string `json:"account,omitempty"`
}

// usesLogin: the pair syncs with provider's login of account.
func usesLogin(p config.Pair, provider, account string) bool {
	scheme, _, ok := strings.Cut(p.Remote, ":")
	return ok && scheme == provider && p.Account == account
}

func loggedOutMsg(p config.Pair, name string) string {
	scheme, _, _ := strings.Cut(p.Remote, ":")
	login := "tandem login " + scheme
	if p.Account != "" {
		login += " --account " + p.Account
	}
	return "logged out (tandem logout): log in again with `" + login + "`, then run `tandem resume " + name + "`"
}

func (d *Daemon) serveLogout(w http.ResponseWriter, r *http.Request) {
	var req LogoutRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Provider == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "want {\"provider\": ..., \"account\": ...}"})
		return
	}
	rs, _ := d.loops("")
	ctx, cancel := context.WithTimeout(r.Context(), d.ctlWait)
	defer cancel()
	resp := ControlResponse{Pairs: []string{}}
	for _, x := range rs {
		if !usesLogin(x.l.cfg, req.Provider, req.Account) {
			continue
		}
		if err := x.l.control(ctx, x.done, ctlReq{op: opLogout}); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		}
		resp.Pairs = append(resp.Pairs, x.l.name)
	}
	writeJSON(w, http.StatusOK, resp)
}

// Logout tells the daemon that provider's login of account is gone (POST /v1/logout).
func (c *Client) Logout(ctx context.Context, provider, account string) (*ControlResponse, error) {
	var out ControlResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/logout", LogoutRequest{Provider: provider, Account: account}, &out)
}
