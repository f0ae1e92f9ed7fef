package emukit

// Test scaffolding for the provider emulators' exported Start helpers. The emulator packages' running.go files
// import "testing" anyway (Start takes a testing.TB), so keeping these here adds no dependency; it only needs
// testing.TB, and Go registers the test flags in testing.Init, which only a test binary calls.

import (
	"net/http"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// TestLogger is the logger a test emulator gets: its warnings and errors go to the test's output.
func TestLogger(t testing.TB) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

// OpenForTest opens a provider emulator for a test with open, and creates TLS for its listeners in a temp dir of
// t; name ("pcloud") labels a failure, which ends the test. The emulator's Close is registered in t.Cleanup
// before any server is started, so it runs after their cleanups: the db closes once no request is in flight.
func OpenForTest[E interface{ Close() error }](t testing.TB, name string, open func() (E, error)) (E, *TLS) {
	t.Helper()
	e, err := open()
	if err != nil {
		t.Fatalf("%s emulator: %v", name, err)
	}
	tc, err := LoadOrCreateTLS(t.TempDir())
	if err != nil {
		t.Fatalf("%s emulator tls: %v", name, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, tc
}

// ServeTest is Serve for a test: a failure ends it, and t.Cleanup releases k's stalled responses (k may be nil)
// and then stops the listeners.
func ServeTest(t testing.TB, lg *zap.Logger, h http.Handler, k *Kit, o ServerOptions) *Server {
	t.Helper()
	s, err := Serve(lg, h, k, o)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	cleanupServer(t, k, s)
	return s
}

// StartTest serves h on 127.0.0.1 for a test: plain HTTP, HTTPS when tlsConf is set, and the admin endpoint when
// k is set. Everything stops in t.Cleanup.
func StartTest(t testing.TB, h http.Handler, k *Kit, tlsConf *TLS) *Server {
	t.Helper()
	o := ServerOptions{HTTP: "127.0.0.1:0", TLS: tlsConf}
	if tlsConf != nil {
		o.HTTPS = "127.0.0.1:0"
	}
	if k != nil {
		o.Admin = "127.0.0.1:0"
	}
	return ServeTest(t, nil, h, k, o)
}

// StartTestTLSOnly is ServeTLSOnly on 127.0.0.1 for a test, with the admin endpoint when k is set; everything
// stops in t.Cleanup.
func StartTestTLSOnly(t testing.TB, h http.Handler, k *Kit, tlsConf *TLS) *Server {
	t.Helper()
	o := TLSOnlyOptions{Addr: "127.0.0.1:0", TLS: tlsConf}
	if k != nil {
		o.Admin = "127.0.0.1:0"
	}
	s, err := ServeTLSOnly(nil, h, k, o)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	cleanupServer(t, k, s)
	return s
}

func cleanupServer(t testing.TB, k *Kit, s *Server) {
	t.Cleanup(func() {
		if k != nil {
			k.Close() // release stalled responses first, or Close waits on them
		}
		_ = s.Close()
	})
}
