package sendconn

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A corked connection holds small writes and sends them, in order, with the next large write,
// with a file sent by ReadFrom, or at uncork; uncorked, it writes straight through.
func TestCorkConn(t *testing.T) {
	client, server := tcpPair(t)
	defer client.Close()
	var want []byte
	write := func(p []byte) {
		t.Helper()
		if n, err := server.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		want = append(want, p...)
	}
	held := func() int {
		server.mu.Lock()
		defer server.mu.Unlock()
		return len(server.held)
	}

	write([]byte("straight through "))
	if held() != 0 {
		t.Fatal("an uncorked connection held a write")
	}
	server.cork()
	write(bytes.Repeat([]byte("h"), 3000))
	write(bytes.Repeat([]byte("i"), 3000))
	if held() != 6000 {
		t.Fatalf("held %d bytes, want the two writes' 6000", held())
	}
	write(bytes.Repeat([]byte("L"), 20000)) // larger than holdMax: one writev with what is held
	if held() != 0 {
		t.Fatalf("still holding %d bytes after a large write", held())
	}
	write([]byte("before the file "))
	file := filepath.Join(t.TempDir(), "blob")
	content := bytes.Repeat([]byte("file "), 50000)
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := server.ReadFrom(f); n != int64(len(content)) || err != nil {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	want = append(want, content...)
	write([]byte("the end"))
	server.uncork()
	if held() != 0 {
		t.Fatal("uncork left bytes held")
	}
	server.mu.Lock()
	heldp := server.heldp
	server.mu.Unlock()
	if heldp != nil {
		t.Fatal("uncorked, the connection still holds a buffer")
	}
	server.CloseWrite()

	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("client read %d bytes, not the %d written in order", len(got), len(want))
	}
}

// Cork corks for a large HTTP/1.x body only, and its uncork sends the end of the body still
// in net/http's buffer too.
func TestCorkFor(t *testing.T) {
	client, server := tcpPair(t)
	defer client.Close()
	ctx := ConnContext(context.Background(), server)
	corked := func() bool {
		server.mu.Lock()
		defer server.mu.Unlock()
		return server.corked
	}
	rec := httptest.NewRecorder()
	small := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	Cork(rec, small, corkMin-1)
	h2 := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	h2.ProtoMajor, h2.ProtoMinor, h2.Proto = 2, 0, "HTTP/2.0"
	Cork(rec, h2, 1<<20)
	if corked() {
		t.Fatal("corked for a small body or an HTTP/2 stream")
	}
	uncork := Cork(rec, httptest.NewRequestWithContext(ctx, "GET", "/", nil), corkMin)
	if !corked() {
		t.Fatalf("not corked for a %d-byte body", corkMin)
	}
	uncork()
	if corked() || !rec.Flushed {
		t.Fatalf("after uncork: corked %v, net/http's buffer flushed %v", corked(), rec.Flushed)
	}
	// A request without a connection (a handler test) is served uncorked.
	Cork(rec, httptest.NewRequest("GET", "/", nil), 1<<20)()
}

// Responses of every size around the cork's thresholds arrive whole over HTTP/1.1, one after
// the other on one connection.
func TestCorkedResponsesWhole(t *testing.T) {
	sizes := []int{corkMin - 1, corkMin, corkMin + 1, holdMax - 100, holdMax + 100, 25000, 300000}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		for _, s := range sizes {
			if r.URL.Path == "/"+strconv.Itoa(s) {
				n = s
			}
		}
		body := bytes.Repeat([]byte{byte('a' + n%26)}, n)
		w.Header().Set("Content-Length", strconv.Itoa(n))
		uncork := Cork(w, r, int64(n))
		w.Write(body[:n/3])
		w.Write(body[n/3:])
		uncork()
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = Listener{Listener: srv.Listener, Timeout: time.Minute}
	srv.Config.ConnContext = ConnContext
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	for round := range 2 {
		for _, n := range sizes {
			resp, err := client.Get(srv.URL + "/" + strconv.Itoa(n))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte('a' + n%26)}, n)) {
				t.Fatalf("round %d, %d bytes: got %d bytes, %v", round, n, len(got), err)
			}
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection, the server's as the listener of
// Listener hands it out.
func tcpPair(t *testing.T) (net.Conn, *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Listener{Listener: ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return client, c.(*Conn)
}
