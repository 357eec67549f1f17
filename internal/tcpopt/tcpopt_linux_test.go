package tcpopt

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOptionsReadBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	get := func(opt int) int {
		t.Helper()
		rc, err := tc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, opt) }); err != nil || gerr != nil {
			t.Fatalf("getsockopt %d: %v %v", opt, err, gerr)
		}
		return v
	}
	for _, on := range []bool{true, false} {
		if !SetCork(tc, on) {
			t.Fatalf("SetCork(%v) failed", on)
		}
		if got, want := get(unix.TCP_CORK), map[bool]int{true: 1, false: 0}[on]; got != want {
			t.Errorf("TCP_CORK = %d after SetCork(%v), want %d", got, on, want)
		}
	}
	if !SetNotSentLowat(tc, 128<<10) {
		t.Fatal("SetNotSentLowat failed")
	}
	if got := get(unix.TCP_NOTSENT_LOWAT); got != 128<<10 {
		t.Errorf("TCP_NOTSENT_LOWAT = %d, want %d", got, 128<<10)
	}
	c.Close()
	if SetCork(tc, true) {
		t.Error("SetCork on a closed connection reported success")
	}
}
