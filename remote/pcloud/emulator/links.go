package emulator

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote/internal/emukit"
)

// hostname is what the emulator tells clients to connect to: Options.Hostname, or the host:port this request
// reached, which is the emulator itself (rclone builds https://hosts[0]+path from it).
func (e *Emulator) hostname(r *http.Request) string {
	if e.o.Hostname != "" {
		return e.o.Hostname
	}
	return r.Host
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *call) getfilelink() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f, _, err := c.fileArg()
	if err != nil {
		return nil, err
	}
	if ct := c.p.Get("contenttype"); ct != "" && !strings.Contains(ct, "/") {
		return nil, fail(1005)
	}
	id := emukit.RandomHex(16)
	expires := e.clk.Now().Add(e.o.LinkTTL).Unix()
	e.links[id] = link{fileID: f.ID, expires: expires, ip: clientIP(c.r)}
	// Expired links are only dropped here: their number is bounded by the calls a test makes.
	now := e.clk.Now().Unix()
	for k, l := range e.links {
		if l.expires < now {
			delete(e.links, k)
		}
	}
	return ok("path", contentPrefix+id+"/"+url.PathEscape(f.Name), "expires", c.t(expires),
		"hosts", []string{e.hostname(c.r)}, "dwltag", emukit.RandomHex(12), "hash", f.Hash, "size", f.Size), nil
}

// serveContent serves a getfilelink URL, with Range support. Like pCloud's content servers it needs no token
// (the link is the credential) and answers 410 to an expired link or one made for another IP.
func (e *Emulator) serveContent(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, contentPrefix)
	id, _, _ := strings.Cut(rest, "/")
	e.mu.Lock()
	l, ok := e.links[id]
	var n *node
	if ok {
		n = e.liveFile(l.fileID)
	}
	var f *os.File
	var err error
	if n != nil {
		// Opened under the lock: a concurrent overwrite renames over the path, the open file keeps the old bytes.
		f, err = e.content.Open(blobID(n.ID))
	}
	var name, ctype string
	var mod int64
	if n != nil {
		name, ctype, mod = n.Name, n.ContentType, n.Modified
	}
	e.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "Invalid link", http.StatusNotFound)
		return
	case l.expires < e.clk.Now().Unix():
		http.Error(w, "Your download expired", http.StatusGone)
		return
	case e.o.BindLinksToIP && l.ip != clientIP(r):
		http.Error(w, "This link was generated for another IP address", http.StatusGone)
		return
	case n == nil || err != nil:
		http.Error(w, "File not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", ctype)
	if r.URL.Query().Get("forcedownload") != "" {
		w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	}
	http.ServeContent(w, r, "", time.Unix(mod, 0), f)
}
