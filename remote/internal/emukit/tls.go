package emukit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TLS is the emulator's certificate setup: a private CA and a server certificate it signed.
type TLS struct {
	Config *tls.Config    // for the server; HTTP/1.1 only, because fault actions hijack connections
	CAFile string         // PEM of the CA: give it to clients (--ca-cert, SSL_CERT_FILE)
	CAPEM  []byte         // the same PEM
	Pool   *x509.CertPool // the CA as a pool, for Go clients
}

// ClientConfig is a client TLS config that trusts only the emulator's CA (verification stays on).
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: t.Pool, MinVersion: tls.VersionTLS12}
}

// HTTPClient is a client whose transport trusts only the emulator's CA (verification stays on).
func (t *TLS) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: t.ClientConfig()}}
}

const (
	caCertFile  = "ca.pem"
	caKeyFile   = "ca-key.pem"
	srvCertFile = "server.pem"
	srvKeyFile  = "server-key.pem"
)

// LoadOrCreateTLS loads the CA and server certificate from dir, or creates them there. The server certificate
// covers 127.0.0.1, ::1, localhost and extraHosts (names or IPs); a stored one missing a host, or close to
// expiry, is re-issued by the stored CA so clients that trust the CA file keep working across restarts.
//
// Certificate validity uses the wall clock on purpose: peers check it against theirs, so an injected fake
// clock must not leak in here.
func LoadOrCreateTLS(dir string, extraHosts ...string) (*TLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls dir: %w", err)
	}
	hosts := append([]string{"127.0.0.1", "::1", "localhost"}, extraHosts...)
	now := time.Now()

	caCert, caKey, err := loadPair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
	if err != nil || now.Add(24*time.Hour).After(caCert.NotAfter) {
		caCert, caKey, err = newCA(dir, now)
		if err != nil {
			return nil, err
		}
		_ = os.Remove(filepath.Join(dir, srvCertFile)) // signed by the old CA
	}
	srvCert, srvKey, err := loadPair(filepath.Join(dir, srvCertFile), filepath.Join(dir, srvKeyFile))
	if err != nil || !covers(srvCert, hosts) || now.Add(24*time.Hour).After(srvCert.NotAfter) ||
		srvCert.CheckSignatureFrom(caCert) != nil {
		srvCert, srvKey, err = newServerCert(dir, caCert, caKey, hosts, now)
		if err != nil {
			return nil, err
		}
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &TLS{
		Config: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw, caCert.Raw}, PrivateKey: srvKey, Leaf: srvCert}},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		CAFile: filepath.Join(dir, caCertFile),
		CAPEM:  caPEM,
		Pool:   pool,
	}, nil
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("no PEM block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse cert: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse key: %w", err)
	}
	return cert, key, nil
}

func newCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tandem emulator CA", Organization: []string{"tandem"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca cert: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ca cert: %w", err)
	}
	if err := writePair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func newServerCert(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "tandem emulator", Organization: []string{"tandem"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("server cert: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("server cert: %w", err)
	}
	if err := writePair(filepath.Join(dir, srvCertFile), filepath.Join(dir, srvKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeAtomic writes via a temp file and rename so a crash never leaves half a PEM behind.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
