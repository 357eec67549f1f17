package h1_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/h1"
)

// ioTimeout bounds every client-side wait on a test connection, so that a server that neither
// answers nor closes fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// listenLoopback listens on a free loopback port.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startH1 serves h with an h1.Server on loopback until the test ends and returns its address.
// /ping is answered for probeOpen. configure, if not nil, sets the server's fields before it
// serves.
func startH1(t testing.TB, h http.Handler, configure func(*h1.Server)) string {
	t.Helper()
	srv := &h1.Server{Handler: pingOr(h)}
	if configure != nil {
		configure(srv)
	}
	ln := listenLoopback(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return ln.Addr().String()
}

// startStd serves h with net/http's server on loopback until the test ends and returns its
// address: the reference h1 is compared with. /ping is answered for probeOpen. configure, if
// not nil, sets the server's fields before it serves.
func startStd(t testing.TB, h http.Handler, configure func(*http.Server)) string {
	t.Helper()
	ln := listenLoopback(t)
	// Its complaints about handlers (superfluous WriteHeader and the like) are expected here.
	hs := &http.Server{Handler: pingOr(h), ErrorLog: log.New(io.Discard, "", 0)}
	if configure != nil {
		configure(hs)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// clientConn is a raw client connection that writes request bytes and reads responses.
type clientConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// dial connects to addr with a deadline of ioTimeout on everything the connection does.
func dial(t testing.TB, addr string) *clientConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { nc.Close() })
	return &clientConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// send writes raw to the connection as it is.
func (c *clientConn) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatalf("writing request: %v", err)
	}
}

// reply is one response as the client reads it: the header, and the body with the error that
// ended reading it (nil when the body arrived whole).
type reply struct {
	resp    *http.Response
	body    []byte
	bodyErr error
}

// readReply reads the next response (an interim one too) to a request with method, and its
// body.
func (c *clientConn) readReply(method string) reply {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response to %s: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return reply{resp: resp, body: body, bodyErr: err}
}

// readFinal reads interim responses, if any, and the final one after them.
func (c *clientConn) readFinal(method string) (interim []*http.Response, final reply) {
	c.t.Helper()
	for {
		r := c.readReply(method)
		if r.resp.StatusCode >= 200 || r.resp.StatusCode == http.StatusSwitchingProtocols {
			return interim, r
		}
		interim = append(interim, r.resp)
	}
}

// readOK reads a final response to a request with method and fails the test unless it is a
// whole 200 response.
func (c *clientConn) readOK(method string) reply {
	c.t.Helper()
	_, r := c.readFinal(method)
	if r.resp.StatusCode != http.StatusOK || r.bodyErr != nil {
		c.t.Fatalf("%s: got %s (body %q, error %v), want a whole 200 response", method, r.resp.Status, truncate(r.body), r.bodyErr)
	}
	return r
}

// expectClosed fails the test unless the server ends the connection with nothing more to
// read. A reset counts as an end: the server may close with request bytes unread.
func (c *clientConn) expectClosed() {
	c.t.Helper()
	b, err := io.ReadAll(c.br)
	switch {
	case len(b) > 0:
		c.t.Errorf("got %q after the last response, want the connection closed", truncate(b))
	case errors.Is(err, syscall.ECONNRESET):
	case err != nil:
		c.t.Errorf("connection not closed by the server: %v", err)
	}
}

// probeOpen reports whether the connection still serves requests: it sends one more request
// and tells a response from the connection's end. Neither within ioTimeout fails the test.
func (c *clientConn) probeOpen() bool {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, "GET /ping HTTP/1.1\r\nHost: example.com\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("server neither answered nor closed the connection: %v", err)
		}
		return false
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "pong" {
		c.t.Fatalf("probe on a kept connection: got %s %q (%v), want 200 \"pong\"", resp.Status, body, err)
	}
	return true
}

// truncate shortens b for a failure message.
func truncate(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

// randomBytes returns n bytes that depend on seed only.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeTempFile writes b to a new file in the test's temporary directory and returns its path.
func writeTempFile(t testing.TB, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pingOr answers /ping with "pong" (for probeOpen) and passes any other request to h.
func pingOr(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping" {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "4")
			io.WriteString(w, "pong")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// get is a minimal HTTP/1.1 GET of path.
func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
}

// methodOf is the method of a raw request.
func methodOf(raw string) string {
	m, _, _ := strings.Cut(raw, " ")
	return m
}
