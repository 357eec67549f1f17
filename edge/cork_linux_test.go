package edge

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCork corks a real loopback socket for a large HTTP/1.1 body only, and uncorks it after.
func TestCork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	corked := func() int {
		t.Helper()
		rc, err := server.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK) })
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}

	// Every connection the server hands out gets its unsent bytes bounded.
	rc, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var lowat int
	var gerr error
	rc.Control(func(fd uintptr) { lowat, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
	if gerr != nil || lowat == notSentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT %d (%v) before the server saw the connection", lowat, gerr)
	}
	withTCPConn(context.Background(), tls.Server(server, &tls.Config{}))
	rc.Control(func(fd uintptr) { lowat, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
	if gerr != nil || lowat != notSentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT %d (%v), want %d", lowat, gerr, notSentLowat)
	}

	// Under TLS the socket is found through the TLS connection.
	for name, c := range map[string]net.Conn{"tcp": server, "tls": tls.Server(server, &tls.Config{})} {
		ctx := withTCPConn(context.Background(), c)
		req := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		uncork := corkFor(req, corkMin)
		if corked() != 1 {
			t.Fatalf("%s: not corked for a %d-byte body", name, corkMin)
		}
		uncork()
		if corked() != 0 {
			t.Fatalf("%s: still corked after uncork", name)
		}
	}

	ctx := withTCPConn(context.Background(), server)
	small := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	corkFor(small, corkMin-1)
	h2 := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	h2.ProtoMajor, h2.ProtoMinor, h2.Proto = 2, 0, "HTTP/2.0"
	corkFor(h2, 1<<20)
	if corked() != 0 {
		t.Fatal("corked for a small body or an HTTP/2 stream")
	}
	// A request without a connection (a handler test) is served uncorked.
	corkFor(httptest.NewRequest("GET", "/", nil), 1<<20)()
}
