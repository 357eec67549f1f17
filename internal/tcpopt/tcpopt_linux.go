package tcpopt

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// SetCork sets or clears TCP_CORK, and reports whether it did. While it is set, the kernel
// sends only full segments: a response's header and the file data sent after it leave
// together, and the ends of sendfile(2) calls do not go out as short segments. Clearing it
// sends what is left.
func SetCork(c syscall.Conn, on bool) bool {
	v := 0
	if on {
		v = 1
	}
	return setInt(c, unix.TCP_CORK, v)
}

// SetNotSentLowat sets TCP_NOTSENT_LOWAT, and reports whether it did: the socket takes more data
// only once less than n bytes of what it holds are unsent.
func SetNotSentLowat(c syscall.Conn, n int) bool {
	return setInt(c, unix.TCP_NOTSENT_LOWAT, n)
}

func setInt(c syscall.Conn, opt, v int) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, opt, v) }); err != nil {
		return false
	}
	return serr == nil
}
