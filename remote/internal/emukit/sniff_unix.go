//go:build unix

package emukit

import (
	"errors"
	"io"
	"net"
	"syscall"
)

type peeked struct {
	first byte
	conn  net.Conn
}

// peekFirstByte reads the first byte with MSG_PEEK, leaving it in the socket: the connection stays a plain
// *net.TCPConn, so the fault actions that reset it (SO_LINGER 0) still reach the socket.
func peekFirstByte(c net.Conn) (peeked, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return peekByReading(c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return peeked{}, err
	}
	var b [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return !errors.Is(rerr, syscall.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		return peeked{}, err
	}
	return peeked{first: b[0], conn: c}, nil
}
