package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"time"
)

// ErrNotRunning: nothing answers on the status socket.
var ErrNotRunning = errors.New("tandem is not running (start it with: tandem run, or tandem service start)")

// Client talks to a daemon's status socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon whose state dir is stateDir.
func NewClient(stateDir string) *Client {
	sock := SocketPath(stateDir)
	return &Client{socket: sock, hc: &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Conflicts is GET /v1/conflicts.
func (c *Client) Conflicts(ctx context.Context) (*Conflicts, error) {
	var s Conflicts
	return &s, c.do(ctx, http.MethodGet, "/v1/conflicts", nil, &s)
}

// Metrics returns the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var b bytes.Buffer
	err := c.do(ctx, http.MethodGet, "/metrics", nil, &b)
	return b.String(), err
}

// Pause, Resume and Rescan act on one pair, or all when pair is "".
func (c *Client) Pause(ctx context.Context, pair string) (*ControlResponse, error) {
	return c.control(ctx, "/v1/pause", ControlRequest{Pair: pair})
}

// Resume resumes a pair; allowDeletes lets its next pass through the big-delete guard.
func (c *Client) Resume(ctx context.Context, pair string, allowDeletes bool) (*ControlResponse, error) {
	return c.control(ctx, "/v1/resume", ControlRequest{Pair: pair, AllowDeletes: allowDeletes})
}

// Rescan asks for a pass now.
func (c *Client) Rescan(ctx context.Context, pair string) (*ControlResponse, error) {
	return c.control(ctx, "/v1/rescan", ControlRequest{Pair: pair})
}

func (c *Client) control(ctx context.Context, path string, req ControlRequest) (*ControlResponse, error) {
	var r ControlResponse
	return &r, c.do(ctx, http.MethodPost, path, req, &r)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tandem"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return dialError(c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e apiError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("status socket: %s", resp.Status)
	}
	if b, ok := out.(*bytes.Buffer); ok {
		b.Write(data)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	return nil
}

// dialError tells "nothing answers" (not running) from "not allowed to ask": a socket of a daemon that runs as
// another user is in a 0700 folder, so connecting fails with permission denied, which is not "not running".
func dialError(socket string, err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		return fmt.Errorf("status socket %s: %w", socket, err)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("status socket %s: permission denied: the tandem running there belongs to another user; "+
			"ask it as that user (or give --config for your own): %w", socket, fs.ErrPermission)
	}
	return ErrNotRunning
}
