// Package emulate runs a provider emulator as a server: the provider's API over HTTPS (and plain HTTP where the
// provider has it), an admin endpoint for faults and the request log, a persistent data folder and a
// self-signed certificate. It is what `tandem emulate` and `tandem demo` start; it lives under remote/ because
// the emulators' shared kit is internal to remote.
package emulate

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote/internal/emukit"
	pcloudemu "github.com/tandemsync/tandem/remote/pcloud/emulator"
	vboxxemu "github.com/tandemsync/tandem/remote/vboxx/emulator"
	verizonemu "github.com/tandemsync/tandem/remote/verizon/emulator"
)

// Providers lists the emulators this build has.
var Providers = []string{"pcloud", "verizon", "vboxx"}

// Options configure Start.
type Options struct {
	Listen, HTTPS, Admin string // listen addresses; "" = 127.0.0.1:0
	Data                 string // data folder; "" = a new temporary folder
	Faults               string // fault plan (YAML) loaded at start
	Token                string // pCloud: preset access token
	AllowRootRecursive   bool   // pCloud: serve a recursive listing of the account root (rclone 1.60 needs it)
	AccessTTL            time.Duration
	// Variants picks readings of what the provider's documentation leaves open (VariantsOf lists them); the
	// default of each is the least helpful reading.
	Variants []string
	Region   string // pCloud: "us" (default) or "eu" (the same as the variant eu)
	// ClientID, ClientSecret and RedirectURL: the OAuth app registered with the emulator (Verizon; vBoxx takes
	// the id and secret, registered besides its built-in `anchor` client), as a developer registers one in the
	// provider's console. Empty: the emulator's defaults.
	ClientID, ClientSecret, RedirectURL string
}

// Variant is one named reading of an undocumented or ambiguous behaviour an emulator offers.
type Variant struct{ Name, Doc string }

// VariantsOf lists the variants provider's emulator offers (nil: none).
func VariantsOf(provider string) []Variant {
	var out []Variant
	switch provider {
	case "pcloud":
		for _, v := range pcloudemu.Variants {
			out = append(out, Variant{Name: v.Name, Doc: v.Doc})
		}
	case "verizon":
		for _, v := range verizonemu.VariantDocs {
			out = append(out, Variant{Name: v.Name, Doc: v.Doc})
		}
	case "vboxx":
		for _, n := range vboxxemu.VariantNames() {
			out = append(out, Variant{Name: n, Doc: vboxxemu.Variants[n]})
		}
	}
	return out
}

// Info is what a client needs to reach a running emulator.
type Info struct {
	Provider     string `json:"provider"`
	Endpoint     string `json:"endpoint"` // what to give `tandem once --endpoint`
	URL          string `json:"url,omitempty"`
	HTTPSURL     string `json:"https_url,omitempty"`
	Host         string `json:"host,omitempty"` // host:port of the HTTPS listener (rclone's pCloud "hostname")
	AdminURL     string `json:"admin_url,omitempty"`
	CAFile       string `json:"ca_file,omitempty"`
	DataDir      string `json:"data_dir"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	// The OAuth app registered with the emulator, for `tandem login verizon|vboxx --client-id ...` (vBoxx: only
	// when one was registered with --client-id).
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	RedirectURL  string   `json:"redirect_url,omitempty"`
	Variants     []string `json:"variants,omitempty"`
}

// Server is a running emulator.
type Server struct {
	Info   Info
	close  []func() error
	pcloud *pcloudemu.Emulator
}

// PCloud is the pCloud emulator itself when the server runs one (nil otherwise): an in-process benchmark checks
// a replica through its Snapshot and ReadFile.
func (s *Server) PCloud() *pcloudemu.Emulator { return s.pcloud }

// Close stops the listeners and the emulator.
func (s *Server) Close() error {
	var first error
	for i := len(s.close) - 1; i >= 0; i-- {
		if err := s.close[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// emulator is one provider's emulator as Start needs it.
type emulator struct {
	handler http.Handler
	admin   http.Handler // nil: emukit's admin handler
	kit     *emukit.Kit
	close   func() error
	info    func(i *Info, s *emukit.Server)
	// plainHTTP: the provider's API is also served without TLS (pCloud; vBoxx refuses plain HTTP by design).
	plainHTTP bool
	pcloud    *pcloudemu.Emulator
}

// Start runs provider's emulator until Close.
func Start(ctx context.Context, lg *zap.Logger, provider string, o Options) (*Server, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	for _, a := range []*string{&o.Listen, &o.HTTPS, &o.Admin} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	if o.Data == "" {
		d, err := os.MkdirTemp("", "tandem-emulate-"+provider+"-")
		if err != nil {
			return nil, err
		}
		o.Data = d
	} else if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	switch {
	case o.Region == "" || o.Region == "us":
	case o.Region == "eu" && provider == "pcloud":
		o.Variants = append(o.Variants, pcloudemu.VariantEU)
	default:
		return nil, fmt.Errorf("--region %q: only pcloud has regions (us, eu)", o.Region)
	}
	if len(o.Variants) > 0 && VariantsOf(provider) == nil {
		return nil, fmt.Errorf("the %s emulator has no variants", provider)
	}
	if provider == "vboxx" {
		return startVBoxx(lg, o)
	}
	emu, err := newEmulator(lg, provider, o)
	if err != nil {
		return nil, err
	}
	s := &Server{close: []func() error{emu.close}, pcloud: emu.pcloud}
	fail := func(err error) (*Server, error) {
		s.Close()
		return nil, err
	}
	if o.Faults != "" {
		if err := emu.kit.LoadPlanFile(o.Faults); err != nil {
			return fail(fmt.Errorf("fault plan %s: %w", o.Faults, err))
		}
	}
	tlsConf, err := emukit.LoadOrCreateTLS(filepath.Join(o.Data, "tls"))
	if err != nil {
		return fail(fmt.Errorf("certificate: %w", err))
	}
	so := emukit.ServerOptions{HTTPS: o.HTTPS, TLS: tlsConf}
	if emu.plainHTTP {
		so.HTTP = o.Listen
	}
	if emu.admin == nil {
		so.Admin = o.Admin
	}
	srv, err := emukit.Serve(lg, emu.handler, emu.kit, so)
	if err != nil {
		return fail(err)
	}
	s.close = append(s.close, func() error { srv.Close(); return nil })
	if emu.admin != nil {
		// The provider's own admin handler (OutOfSync, token expiry, ...) also serves the fault and log endpoints.
		adm, err := emukit.Serve(lg, emu.admin, nil, emukit.ServerOptions{HTTP: o.Admin})
		if err != nil {
			return fail(err)
		}
		s.close = append(s.close, func() error { adm.Close(); return nil })
		srv.AdminURL = adm.URL
	}
	s.Info = Info{Provider: provider, URL: srv.URL, HTTPSURL: srv.TLSURL, AdminURL: srv.AdminURL,
		CAFile: tlsConf.CAFile, DataDir: o.Data}
	emu.info(&s.Info, srv)
	return s, nil
}

func newEmulator(lg *zap.Logger, provider string, o Options) (*emulator, error) {
	switch provider {
	case "pcloud":
		e, err := pcloudemu.New(lg, pcloudemu.Options{DataDir: filepath.Join(o.Data, "store"), Token: o.Token,
			AllowRootRecursive: o.AllowRootRecursive, Variants: o.Variants})
		if err != nil {
			return nil, err
		}
		return &emulator{handler: e.Handler(), kit: e.Kit(), close: e.Close, plainHTTP: true, pcloud: e,
			info: func(i *Info, s *emukit.Server) {
				i.AccessToken = e.Token()
				i.Host = hostOf(s.TLSURL)
				i.Endpoint = s.URL
			}}, nil
	case "verizon":
		vo := verizonemu.Options{DataDir: filepath.Join(o.Data, "store"), AccessTTL: o.AccessTTL, Variants: o.Variants,
			ClientID: o.ClientID, ClientSecret: o.ClientSecret}
		if o.RedirectURL != "" {
			vo.RedirectURIs = []string{o.RedirectURL}
		}
		e, err := verizonemu.New(lg, vo)
		if err != nil {
			return nil, err
		}
		return &emulator{handler: e.Handler(), admin: e.AdminHandler(), kit: e.Kit(), close: e.Close,
			info: func(i *Info, s *emukit.Server) {
				i.AccessToken, i.RefreshToken = e.Mint()
				i.Endpoint = s.TLSURL + "/cloud/1"
				i.ClientID, i.ClientSecret, i.RedirectURL = e.App()
				i.Variants = o.Variants
			}}, nil
	}
	return nil, fmt.Errorf("no emulator for %q: want one of %v", provider, Providers)
}

func hostOf(u string) string {
	for i := 0; i+3 <= len(u); i++ {
		if u[i:i+3] == "://" {
			return u[i+3:]
		}
	}
	return u
}

// startVBoxx: vBoxx is HTTPS only, and a plain-HTTP request on its port must get the API's insecure_transport
// answer, which the vboxx emulator's own Serve does by sniffing each connection.
func startVBoxx(lg *zap.Logger, o Options) (*Server, error) {
	if o.ClientSecret != "" && o.ClientID == "" {
		return nil, fmt.Errorf("--client-secret needs --client-id: the vboxx emulator's built-in client (anchor) has no secret")
	}
	e, err := vboxxemu.New(lg, vboxxemu.Options{DataDir: filepath.Join(o.Data, "store"), AccessTTL: o.AccessTTL,
		Variants: o.Variants, ClientID: o.ClientID, ClientSecret: o.ClientSecret})
	if err != nil {
		return nil, err
	}
	srv, err := vboxxemu.Serve(lg, e, vboxxemu.ServeOptions{Addr: o.HTTPS, Admin: o.Admin,
		TLSDir: filepath.Join(o.Data, "tls"), FaultPlan: o.Faults})
	if err != nil {
		e.Close()
		return nil, err
	}
	user, pass := e.Credentials()
	return &Server{
		Info: Info{Provider: "vboxx", Endpoint: srv.URL, HTTPSURL: srv.URL, AdminURL: srv.AdminURL, CAFile: srv.CAFile,
			DataDir: o.Data, Username: user, Password: pass,
			ClientID: o.ClientID, ClientSecret: o.ClientSecret},
		close: []func() error{e.Close, srv.Close},
	}, nil
}
