package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// ErrRunning: another daemon already serves the socket of this state dir.
var ErrRunning = errors.New("tandem is already running")

// listenUnix listens on the status socket. The socket is created inside a directory of mode 0700 that we own
// (so there is no window in which another user can connect before a chmod), made 0600 as well, and every
// connection's peer is checked (SO_PEERCRED where the OS has it). A socket file left by a killed daemon is
// replaced only after a connection attempt proves nobody serves it.
// Refused peers are logged on lg.
func listenUnix(path string, lg *zap.Logger) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("status socket: %s is not a directory", dir)
	}
	if err := checkOwner(fi); err != nil {
		return nil, fmt.Errorf("status socket: %s: %w", dir, err)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("status socket: %w", err)
		}
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: its status socket %s answers (stop it first: tandem service stop, or end the other `tandem run`)", ErrRunning, path)
		}
		// Nobody answers: a stale socket from a daemon that was killed.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("status socket: remove stale %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	return &peerListener{Listener: ln, lg: lg}, nil
}

// peerListener drops connections from other users, with a warning: another local user probing the socket that
// can pause sync and allow mass deletes is worth knowing about.
type peerListener struct {
	net.Listener
	lg *zap.Logger
}

func (p *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := p.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := checkPeer(c); err != nil {
			p.lg.Warn("status socket: refused a connection from another user", zap.Error(err))
			c.Close()
			continue
		}
		return c, nil
	}
}
