package h1

import (
	"bufio"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFileBodyCorked: a file body is sent with TCP_CORK set, so that the header and the ends of
// the sendfile calls leave in full segments, and the cork is cleared once the body is sent, so
// that its last bytes leave too.
func TestFileBodyCorked(t *testing.T) {
	const size = 32 << 20
	body := lcBody()[:size]
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sending := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		close(sending)
		io.Copy(w, f)
	})}
	client, server := lcTCPPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeConn(context.Background(), server)
	}()
	cork := func() int {
		t.Helper()
		rc, err := server.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK) }); err != nil || gerr != nil {
			t.Fatalf("getsockopt TCP_CORK: %v %v", err, gerr)
		}
		return v
	}

	io.WriteString(client, lcGet("/file"))
	<-sending
	// The client reads nothing yet, and the body is far more than the sockets hold, so the
	// server is still sending: the socket stays corked
	// until it is done. Poll, as the cork is set just after the handler starts copying.
	for deadline := time.Now().Add(lcWait); cork() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("TCP_CORK not set while the file is sent")
		}
	}
	c := &lcClient{TCPConn: client, br: bufio.NewReader(client)}
	client.SetDeadline(time.Now().Add(lcWait))
	resp, got := c.readResponse(t, http.MethodGet)
	if resp.StatusCode != http.StatusOK || sha256.Sum256([]byte(got)) != sha256.Sum256(body) {
		t.Fatalf("got %d and %d bytes, want 200 and the file's %d bytes", resp.StatusCode, len(got), size)
	}
	// The last bytes arrived, so the cork is off; a small response after it is not held back.
	if v := cork(); v != 0 {
		t.Errorf("TCP_CORK = %d after the body, want 0", v)
	}
	client.Close()
	<-done
}
