package httpx

import (
	"context"
	"net"
	"net/http"
	"time"
)

// ServeRedirects serves a login's redirect listener ln with srv until the returned stop is called. stop shuts
// the server down gracefully, at most 2 s (ctx's cancellation does not cut it short), and waits for it: the
// redirect's handler hands the code over before its page is written out, and a login that then failed at once
// (a refused code, a bad certificate) closed the connection under that page, so the browser saw it drop.
func ServeRedirects(ctx context.Context, srv *http.Server, ln net.Listener) (stop func()) {
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}
}
