package sendconn

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// fileOf writes b to a file and returns it open.
func fileOf(t *testing.T, b []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readN reads n bytes from the client in the background.
func readN(c net.Conn, n int) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		k, _ := io.ReadFull(c, b)
		got <- b[:k]
	}()
	return got
}

// The head, then the file's span from an offset, arrive whole and in order, in steps of
// sendStep each armed; the file's position is left alone, and the cork that a body of several
// steps is sent under is cleared.
func TestSendFile(t *testing.T) {
	body := make([]byte, 3*sendStep+1234)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	f := fileOf(t, body)
	client, server := tcpPair(t)
	defer client.Close()
	rc, err := server.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n")
	const off = 1000
	n := int64(len(body) - off - 10)
	got := readN(client, len(head)+int(n))
	arms := 0
	arm := func() error { arms++; return server.TCPConn.SetWriteDeadline(time.Now().Add(time.Minute)) }
	sent, err := SendFile(rc, head, int(f.Fd()), off, n, arm)
	if err != nil || sent != n {
		t.Fatalf("sent %d, %v; want %d", sent, err, n)
	}
	want := append(append([]byte(nil), head...), body[off:off+n]...)
	if !bytes.Equal(<-got, want) {
		t.Fatal("the client got other bytes")
	}
	if arms != 4 {
		t.Errorf("armed %d times for %d bytes, want 4 steps of %d", arms, n, sendStep)
	}
	var cork int
	rc.Control(func(fd uintptr) { cork, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK) })
	if cork != 0 {
		t.Errorf("TCP_CORK = %d after a body of several steps, want it cleared", cork)
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
		t.Errorf("the file's position moved to %d", pos)
	}
}

// A body of nothing sends the head alone; a file shorter than asked gives what it has and
// ErrShortFile.
func TestSendFileEdges(t *testing.T) {
	body := []byte("0123456789")
	f := fileOf(t, body)
	client, server := tcpPair(t)
	defer client.Close()
	rc, err := server.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	arm := func() error { return nil }
	got := readN(client, 4+6)
	if sent, err := SendFile(rc, []byte("head"), int(f.Fd()), 0, 0, arm); sent != 0 || err != nil {
		t.Fatalf("empty body: sent %d, %v", sent, err)
	}
	sent, err := SendFile(rc, nil, int(f.Fd()), 4, 100, arm)
	if sent != 6 || !errors.Is(err, ErrShortFile) {
		t.Fatalf("short file: sent %d, %v; want 6 and ErrShortFile", sent, err)
	}
	if b := <-got; string(b) != "head456789" {
		t.Fatalf("the client got %q", b)
	}
}

// A client that reads nothing ends the send at the deadline armed for the step, with the
// deadline's error.
func TestSendFileDeadline(t *testing.T) {
	f := fileOf(t, nil)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f.Name(), 64<<20); err != nil { // sparse: no 64 MiB written
		t.Fatal(err)
	}
	f, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	client, server := tcpPair(t)
	defer client.Close()
	rc, err := server.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	arm := func() error { return server.TCPConn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)) }
	sent, err := SendFile(rc, []byte("head"), int(f.Fd()), 0, 64<<20, arm)
	if !errors.Is(err, os.ErrDeadlineExceeded) || sent >= 64<<20 {
		t.Fatalf("sent %d, %v; want a deadline error", sent, err)
	}
}
