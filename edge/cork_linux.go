package edge

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setCork sets TCP_CORK on the socket and reports whether it did. Failing is harmless: the
// response is then sent as net/http writes it.
func setCork(c *net.TCPConn, on bool) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v) }); err != nil {
		return false
	}
	return serr == nil
}

// setNotSentLowat sets TCP_NOTSENT_LOWAT: the socket takes more data only once less than n
// bytes of what it holds are still unsent. Failing is harmless (the kernel's default applies).
func setNotSentLowat(c *net.TCPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n) })
}
