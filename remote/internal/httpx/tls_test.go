package httpx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// signer is a CA of the test's own.
type signer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &signer{cert: cert, key: key}
}

func (s *signer) leaf(t *testing.T, host string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, &key.PublicKey, s.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSFailuresSayWhich (SEC-06): a certificate from an unknown CA, for another host, or expired is refused
// with a message that says which and what to check, is not retried, and no request reaches the server.
func TestTLSFailuresSayWhich(t *testing.T) {
	trusted, stranger := newSigner(t), newSigner(t)
	later := time.Now().Add(time.Hour)
	for _, c := range []struct {
		name, want string
		cert       tls.Certificate
	}{
		{"unknown CA", "give the CA with --ca-file", stranger.leaf(t, "127.0.0.1", later)},
		{"another host", "not for this host", trusted.leaf(t, "api.example.com", later)},
		{"expired", "expired", trusted.leaf(t, "127.0.0.1", time.Now().Add(-time.Hour))},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
			srv.Listener = tls.NewListener(srv.Listener, &tls.Config{Certificates: []tls.Certificate{c.cert}})
			srv.Start()
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(trusted.cert)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			var attempts atomic.Int32
			cl := fast(Options{HTTP: hc, Auth: Bearer{Token: "SECRET-AT"}})
			err := cl.Do(context.Background(), "op", true, func(ctx context.Context) (*http.Request, error) {
				attempts.Add(1)
				return http.NewRequestWithContext(ctx, "GET", strings.Replace(srv.URL, "http:", "https:", 1), nil)
			}, ok)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("want an error saying %q: %v", c.want, err)
			}
			if hits.Load() != 0 || attempts.Load() != 1 {
				t.Fatalf("%d requests reached the server, %d attempts", hits.Load(), attempts.Load())
			}
			// The default client's own transport says the same to callers that bypass Do (oauth2's exchange).
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: trusted.cert.Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			def, err := New(Options{CAFile: caFile})
			if err != nil {
				t.Fatal(err)
			}
			_, err = def.HTTP().Get(strings.Replace(srv.URL, "http:", "https:", 1))
			if err == nil || !strings.Contains(err.Error(), c.want) || hits.Load() != 0 {
				t.Fatalf("the default transport: want an error saying %q: %v (%d requests)", c.want, err, hits.Load())
			}
		})
	}
}
