package emulator

import (
	"context"
	"fmt"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// ServeOptions is where `tandem emulate vboxx` listens. cmd/tandem cannot import remote/internal/emukit, so this
// is its way in.
type ServeOptions struct {
	Addr      string   // API, TLS only (plain HTTP on the same port gets insecure_transport); e.g. "127.0.0.1:8443"
	Admin     string   // emukit admin endpoint (faults, request log); "" = off; keep it on loopback
	TLSDir    string   // where the generated CA and certificate live; default <DataDir>/tls (reused across runs)
	Hosts     []string // extra names or IPs the certificate must cover besides localhost
	FaultPlan string   // a YAML/JSON fault plan file to load at start; "" = none
}

// Server is a running emulator.
type Server struct {
	Emu      *Emulator
	URL      string // https://host:port
	AdminURL string
	CAFile   string // give it to clients: --ca-file
	srv      *emukit.Server
}

// Serve starts e on so.Addr with a generated certificate.
func Serve(lg *zap.Logger, e *Emulator, so ServeOptions) (*Server, error) {
	dir := so.TLSDir
	if dir == "" {
		dir = filepath.Join(e.DataDir(), "tls")
	}
	tc, err := emukit.LoadOrCreateTLS(dir, so.Hosts...)
	if err != nil {
		return nil, fmt.Errorf("vboxx emulator tls: %w", err)
	}
	if so.FaultPlan != "" {
		if err := e.Kit().LoadPlanFile(so.FaultPlan); err != nil {
			return nil, err
		}
	}
	s, err := emukit.ServeTLSOnly(lg, e.Handler(), e.Kit(), emukit.TLSOnlyOptions{Addr: so.Addr, Admin: so.Admin, TLS: tc})
	if err != nil {
		return nil, err
	}
	return &Server{Emu: e, URL: s.TLSURL, AdminURL: s.AdminURL, CAFile: tc.CAFile, srv: s}, nil
}

// Shutdown stops gracefully (in-flight requests get until ctx ends); the Emulator stays open for Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Emu.Kit().Close()
	return s.srv.Shutdown(ctx)
}

// Close stops at once.
func (s *Server) Close() error { return s.srv.Close() }
