package sendconn

import (
	"context"
	"crypto/tls"
	"testing"

	"golang.org/x/sys/unix"
)

// Every connection the server hands out gets its unsent bytes bounded, under TLS too.
func TestNotSentLowat(t *testing.T) {
	client, server := tcpPair(t)
	defer client.Close()
	lowat := func() int {
		t.Helper()
		rc, err := server.TCPConn.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	if lowat() == NotSentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT already %d before the server saw the connection", NotSentLowat)
	}
	ctx := ConnContext(context.Background(), tls.Server(server, &tls.Config{}))
	if got := lowat(); got != NotSentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT %d, want %d", got, NotSentLowat)
	}
	if cc, _ := ctx.Value(connKey{}).(*Conn); cc != server {
		t.Fatal("the connection under TLS is not in the context")
	}
}
