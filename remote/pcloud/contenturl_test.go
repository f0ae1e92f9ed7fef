package pcloud

import (
	"net/url"
	"testing"
)

// TestContentURLRefusesServerSchemes (SEC-06): getfilelink's hosts and path are the server's; the scheme never
// is. A host that smuggles a scheme, credentials, a path or an empty port is refused, not turned into a URL.
func TestContentURLRefusesServerSchemes(t *testing.T) {
	for _, base := range []string{"https://api.pcloud.com", "http://127.0.0.1:8080"} {
		u, _ := url.Parse(base)
		c := &Client{base: u}
		for _, h := range []string{"file:", "file:///etc/passwd", "x@127.0.0.1", "127.0.0.1/../etc", "host:",
			"host:0x50", "host:99999", "-bad.example", "a..b", "", "javascript:alert(1)"} {
			if got, err := c.contentURL(h, "/etc/passwd"); err == nil {
				t.Errorf("%s: host %q accepted as %s", base, h, got)
			}
		}
		for _, p := range []string{"etc", "//evil.example/x", ""} {
			if got, err := c.contentURL("127.0.0.1", p); err == nil {
				t.Errorf("%s: path %q accepted as %s", base, p, got)
			}
		}
		good := map[string]string{"https://api.pcloud.com": "c123.pcloud.com", "http://127.0.0.1:8080": "127.0.0.1:8081"}[base]
		if got, err := c.contentURL(good, "/dl/x.txt"); err != nil || got != u.Scheme+"://"+good+"/dl/x.txt" {
			t.Errorf("%s: a good host: %q %v", base, got, err)
		}
	}
}
