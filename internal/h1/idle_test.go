package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// TestIdleConnectionHoldsNoBuffer serves responses that use every buffer a connection has (a
// header section, a body whose length the handler does not give, which goes through the stage,
// and a large header that grows the output buffer) over a keep-alive connection on loopback,
// and checks that between requests the connection holds none of them: on a TCP socket it waits
// for the next request by the poller, with no read buffer either. A connection that is not a
// socket (here a wrapper hiding the socket) holds a read buffer only inside its blocked read.
func TestIdleConnectionHoldsNoBuffer(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stage":
			io.WriteString(w, "no length given") // staged, then sent with a Content-Length
		case "/large":
			w.Header().Set("X-Large", strings.Repeat("x", 2*maxOutBuffer))
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		default:
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		}
	})
	for _, tc := range []struct {
		name    string
		wrap    func(net.Conn) net.Conn
		rawWait bool
	}{
		{"socket", func(c net.Conn) net.Conn { return c }, true},
		{"wrapped", func(c net.Conn) net.Conn { return struct{ net.Conn }{c} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Handler: h, IdleTimeout: time.Minute}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan struct{})
			go func() {
				defer close(served)
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				s.ServeConn(ctx, tc.wrap(nc))
			}()
			defer func() { cancel(); <-served }()

			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			client.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(client)
			for _, path := range []string{"/", "/stage", "/large", "/"} {
				fmt.Fprintf(client, "GET %s HTTP/1.1\r\nHost: idle.test\r\n\r\n", path)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s", path, resp.Status)
				}
				c := waitIdle(t, s)
				// The idle flag is stored after the buffers are given back and before the wait:
				// its load orders these reads after the connection's writes.
				if c.outp != nil || c.out != nil {
					t.Errorf("after GET %s: idle connection holds an output buffer of %d bytes", path, cap(c.out))
				}
				if c.stagep != nil || c.stage != nil {
					t.Errorf("after GET %s: idle connection holds a stage of %d bytes", path, cap(c.stage))
				}
				if c.br != nil {
					t.Errorf("after GET %s: idle connection holds a read buffer", path)
				}
				if got := c.raw != nil; got != tc.rawWait {
					t.Errorf("waits by the poller: %v, want %v", got, tc.rawWait)
				}
				// The connection swaps the idle flag as soon as its wait ends: storing the value
				// it has orders the connection's next writes to these fields after these reads.
				c.idle.Store(true)
			}
		})
	}
}

// waitIdle waits for s's only connection to wait for a request, and returns it.
func waitIdle(t *testing.T, s *Server) *conn {
	t.Helper()
	var idle *conn
	wait.For(t, 5*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.conns) != 1 {
			return fmt.Errorf("%d connections, want 1", len(s.conns))
		}
		for c := range s.conns {
			if !c.idle.Load() {
				return errors.New("the connection does not wait for a request")
			}
			idle = c
		}
		return nil
	})
	return idle
}
