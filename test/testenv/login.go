package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BrowserLogin runs `bin login <provider> --no-browser args...` with env added to the environment, and approves
// the authorize URL it prints as a browser would: a GET that follows the emulator's redirect to the login's
// loopback listener. caFile (may be "") is trusted for that GET, for an emulator's HTTPS authorize page. It fails
// the test unless the login exits 0 within a minute.
func BrowserLogin(t testing.TB, bin string, env []string, caFile, provider string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"login", provider, "--no-browser"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tandem login %s: %v", provider, err)
	}
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	sc := bufio.NewScanner(out)
	var link string
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); strings.HasPrefix(s, "http") && strings.Contains(s, "authorize") {
			link = s
			break
		}
	}
	if link == "" {
		t.Fatalf("tandem login %s printed no authorize URL; stderr:\n%s", provider, stderr)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	hc := &http.Client{Timeout: 30 * time.Second}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no PEM certificate", caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	resp, err := hc.Get(link) // the emulator approves at once and redirects to the loopback listener
	if err != nil {
		t.Fatalf("approve the %s login: %v", provider, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waited = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tandem login %s: %v\nstderr:\n%s", provider, err, stderr)
	}
}
