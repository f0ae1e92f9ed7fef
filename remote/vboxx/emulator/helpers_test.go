package emulator

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
)

func emukitTLS(t *testing.T, caFile string) (*tls.Config, error) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
