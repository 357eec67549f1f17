//go:build unix

package h1

import (
	"net"
	"syscall"
)

// errWouldBlock is what a read without waiting returns when the socket holds nothing.
var errWouldBlock error = syscall.EAGAIN

// rawConnOf returns nc's raw connection when it is a socket the runtime's poller waits on, for
// awaitRequest; nil otherwise.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		// A wrapper's own Read may do more than read the socket (TLS does): only what
		// embeds a TCP connection, whose Read is the socket's, is read around.
		if _, ok := nc.(interface{ NetConn() net.Conn }); !ok {
			return nil
		}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readFD reads from a non-blocking descriptor once, retrying if a signal interrupts it.
func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}
