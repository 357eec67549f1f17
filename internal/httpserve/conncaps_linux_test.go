package httpserve

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dt-cdn/dt/internal/sendconn"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// serverSocket finds, among the process's descriptors, the server's end of the connection
// whose client end is client (the socket whose peer is client's local address), once the server
// accepted it.
func serverSocket(t *testing.T, client net.Conn) int {
	t.Helper()
	fd := -1
	wait.For(t, 5*time.Second, func() error {
		if fd = findServerSocket(client.LocalAddr().(*net.TCPAddr)); fd < 0 {
			return fmt.Errorf("no server socket for %s", client.LocalAddr())
		}
		return nil
	})
	return fd
}

func findServerSocket(want *net.TCPAddr) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getpeername(fd)
		if err != nil {
			continue
		}
		if in4, ok := sa.(*unix.SockaddrInet4); ok && in4.Port == want.Port && net.IP(in4.Addr[:]).Equal(want.IP) {
			if la, err := unix.Getsockname(fd); err == nil {
				if l4, ok := la.(*unix.SockaddrInet4); ok && l4.Port != want.Port {
					return fd
				}
			}
		}
	}
	return -1
}

func sockopt(fd, opt int) int {
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, opt)
	if err != nil {
		return -1
	}
	return v
}

// Through the connection caps' listener, a large file still goes out by sendfile under
// TCP_CORK, on a socket whose unsent bytes are bounded, by package h1 and by net/http alike: the
// caps' wrapper hides none of *net.TCPConn's fast paths.
func TestCorkThroughCaps(t *testing.T) {
	for _, mode := range []string{"h1", "std"} {
		t.Run(mode, func(t *testing.T) {
			at := startAttackTarget(t, mode)
			c := at.request(t, "127.0.0.5", "/big.bin", 64<<10)
			fd := serverSocket(t, c)
			wait.For(t, 5*time.Second, func() error {
				if v := sockopt(fd, unix.TCP_CORK); v != 1 {
					return fmt.Errorf("TCP_CORK %d while the file is sent, want 1", v)
				}
				return nil
			})
			if v := sockopt(fd, unix.TCP_NOTSENT_LOWAT); v != sendconn.NotSentLowat {
				t.Errorf("TCP_NOTSENT_LOWAT %d, want %d", v, sendconn.NotSentLowat)
			}
			if st := at.srv.ConnStats(); st.Open != 1 {
				t.Errorf("%d connections counted, want 1", st.Open)
			}
			c.Close()
		})
	}
}
