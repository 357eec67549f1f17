//go:build !unix

package h1

import (
	"errors"
	"net"
	"syscall"
)

var errWouldBlock = errors.New("h1: would block")

// rawConnOf returns nil: elsewhere a connection holds a read buffer while it waits.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func readFD(int, []byte) (int, error) { return 0, errWouldBlock }
