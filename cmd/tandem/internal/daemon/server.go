package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handler serves the API. metricsOnly is the optional TCP listener: read-only, /metrics alone, no file names.
func (d *Daemon) handler(metricsOnly bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}))
	if metricsOnly {
		return mux
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Status{Version: d.o.Version, PID: os.Getpid(), Started: d.started.UTC(),
			Config: d.o.ConfigPath, TokenStore: d.o.TokenStore, TokenStoreWhy: d.o.TokenStoreWhy, Pairs: d.snapshot()})
	})
	mux.HandleFunc("GET /v1/conflicts", func(w http.ResponseWriter, r *http.Request) {
		rs, _ := d.loops("")
		out := Conflicts{Conflicts: []ConflictInfo{}}
		for _, x := range rs {
			cs, err := x.l.conflicts()
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
				return
			}
			out.Conflicts = append(out.Conflicts, cs...)
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/history", d.serveHistory)
	mux.HandleFunc("POST /v1/logout", d.serveLogout)
	mux.HandleFunc("POST /v1/pause", d.control(opPause))
	mux.HandleFunc("POST /v1/resume", d.control(opResume))
	mux.HandleFunc("POST /v1/rescan", d.control(opRescan))
	return mux
}

func (d *Daemon) control(op ctlOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ControlRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "bad request body: " + err.Error()})
			return
		}
		rs, err := d.loops(req.Pair)
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d.ctlWait)
		defer cancel()
		resp := ControlResponse{Pairs: []string{}}
		for _, x := range rs {
			if err := x.l.control(ctx, x.done, ctlReq{op: op, allowDeletes: req.AllowDeletes}); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
				return
			}
			resp.Pairs = append(resp.Pairs, x.l.name)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
