//go:build !unix

package emukit

import "net"

type peeked struct {
	first byte
	conn  net.Conn
}

func peekFirstByte(c net.Conn) (peeked, error) { return peekByReading(c) }
