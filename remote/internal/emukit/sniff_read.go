package emukit

import (
	"io"
	"net"
)

// peekByReading consumes the first byte and hands it back through a wrapper. Portable, but a reset fault on such
// a connection degrades to a clean close, because the wrapper hides the TCP socket.
func peekByReading(c net.Conn) (peeked, error) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return peeked{}, err
	}
	return peeked{first: b[0], conn: &prefixConn{Conn: c, prefix: b[:]}}, nil
}

type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
