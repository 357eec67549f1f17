package h1

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// lcWait bounds every wait of these tests: it is only reached when the server misbehaves, so
// it is generous, and a test that reaches it fails rather than hangs.
const lcWait = 5 * time.Second

// lcServer is a Server serving on a loopback listener.
type lcServer struct {
	addr string
	done chan struct{} // closed when Serve has returned
	err  error         // what Serve returned, once done is closed
}

// lcServe serves s on a fresh loopback listener until the test ends.
func lcServe(t *testing.T, s *Server) *lcServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lcServeListener(t, s, l)
}

func lcServeListener(t *testing.T, s *Server, l net.Listener) *lcServer {
	t.Helper()
	ls := &lcServer{addr: l.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(ls.done)
		ls.err = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		select {
		case <-ls.done:
		case <-time.After(lcWait):
			t.Errorf("Serve did not return within %v of Close", lcWait)
		}
	})
	return ls
}

// served waits for Serve to return and returns its error.
func (ls *lcServer) served(t *testing.T) error {
	t.Helper()
	select {
	case <-ls.done:
		return ls.err
	case <-time.After(lcWait):
		t.Fatalf("Serve did not return within %v", lcWait)
		return nil
	}
}

// lcDial connects to addr; the connection has a deadline of lcWait, so that a server that does
// not answer fails the test, and is closed when the test ends.
func lcDial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, lcWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(lcWait))
	return nc.(*net.TCPConn)
}

// lcClient is a client connection that reads responses.
type lcClient struct {
	*net.TCPConn
	br *bufio.Reader
}

func lcConnect(t *testing.T, addr string) *lcClient {
	t.Helper()
	nc := lcDial(t, addr)
	return &lcClient{TCPConn: nc, br: bufio.NewReader(nc)}
}

// roundTrip sends raw, a request, and reads the response to it with its whole body.
func (c *lcClient) roundTrip(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(lcWait))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing request %q: %v", raw, err)
	}
	return c.readResponse(t, "GET")
}

func (c *lcClient) readResponse(t *testing.T, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return resp, string(body)
}

// get asks for path on a keep-alive connection and checks the answer is lcHello's.
func (c *lcClient) get(t *testing.T, path string) {
	t.Helper()
	resp, body := c.roundTrip(t, lcGet(path))
	if resp.StatusCode != http.StatusOK || body != "hello "+path {
		t.Fatalf("GET %s: got %d %q, want 200 %q", path, resp.StatusCode, body, "hello "+path)
	}
	if resp.Close {
		t.Fatalf("GET %s: response ends the connection, want keep-alive", path)
	}
}

func lcGet(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: lc.test\r\n\r\n"
}

// lcHello answers "hello" and the request's path.
var lcHello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "hello "+r.URL.Path)
})

// lcExpectClosed checks that the server ends c: a read sees EOF or a reset, with no further
// response bytes, before c's deadline of lcWait.
func lcExpectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	lcExpectEnded(t, c, br, false)
}

// lcExpectEnded is lcExpectClosed, but when badRequest is set the server may first answer
// 400 Bad Request, with Connection: close, as net/http's server does to a line cut short by
// a timeout (bufio.Reader.ReadLine returns a partial line without the error, which
// http.ReadRequest then finds malformed).
func lcExpectEnded(t *testing.T, c net.Conn, br *bufio.Reader, badRequest bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(lcWait))
	if br == nil {
		br = bufio.NewReader(c)
	}
	if _, err := br.Peek(1); err == nil && badRequest {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("reading what the server sent before it closed: %v", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !resp.Close {
			t.Errorf("server answered %q (Close %v) before it closed, want nothing or 400 with Connection: close", resp.Status, resp.Close)
		}
	}
	n, err := io.Copy(io.Discard, br)
	switch {
	case n > 0:
		t.Errorf("got %d unexpected bytes from the server before the connection ended", n)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("connection still open after %v, want it closed by the server", lcWait)
	case err != nil && !lcIsReset(err):
		t.Errorf("reading from a connection the server should close: %v, want EOF or a reset", err)
	}
}

func lcIsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// lcGoroutines returns a function that checks that the goroutines started since are gone: it
// polls for up to lcWait, as connection goroutines end just after their connections.
func lcGoroutines(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		wait.For(t, lcWait, func() error {
			if n := runtime.NumGoroutine(); n > before {
				buf := make([]byte, 1<<20)
				return fmt.Errorf("%d goroutines, %d before the server started:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			}
			return nil
		})
	}
}

// lcShutdown calls Shutdown with a context that expires after lcWait, and wants nil.
func lcShutdown(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lcWait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v, want nil once every connection has ended", err)
	}
}

// lcLog records the server's log records.
type lcLog struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *lcLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lcLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lcLog) WithGroup(string) slog.Handler            { return l }
func (l *lcLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// count returns how many records of level have a message starting with prefix.
func (l *lcLog) count(level slog.Level, prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

func (l *lcLog) checkNoErrors(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.Level >= slog.LevelError {
			t.Errorf("server logged an error: %s", r.Message)
		}
	}
}

// lcDribble writes s to c a byte every interval, until s ends, a write fails or stop is
// closed. It returns a channel closed when it is done.
func lcDribble(c net.Conn, s string, interval time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range len(s) {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(c, s[i:i+1]); err != nil {
				return
			}
		}
	}()
	return done
}

func TestReadHeaderTimeoutEndsStalledRequest(t *testing.T) {
	// IdleTimeout is off: only ReadHeaderTimeout can end these connections.
	tests := []struct {
		name string
		// badRequest: the timeout cuts a line, which the server may answer 400.
		badRequest bool
		// send sends the start of a request that never completes.
		send func(t *testing.T, c *lcClient, stop <-chan struct{}) <-chan struct{}
	}{{
		name:       "half a request line",
		badRequest: true,
		send: func(t *testing.T, c *lcClient, _ <-chan struct{}) <-chan struct{} {
			io.WriteString(c, "GET /hal")
			return nil
		},
	}, {
		name: "nothing after the accept",
		send: func(*testing.T, *lcClient, <-chan struct{}) <-chan struct{} { return nil },
	}, {
		// The bound is from the accept, not from the last byte.
		name:       "first request's header dribbled",
		badRequest: true,
		send: func(t *testing.T, c *lcClient, stop <-chan struct{}) <-chan struct{} {
			io.WriteString(c, "GET / HTTP/1.1\r\n")
			return lcDribble(c, "X-Slow: "+strings.Repeat("a", 200), 50*time.Millisecond, stop)
		},
	}, {
		name:       "half a request line after a keep-alive request",
		badRequest: true,
		send: func(t *testing.T, c *lcClient, _ <-chan struct{}) <-chan struct{} {
			c.get(t, "/first")
			io.WriteString(c, "GET /sec")
			return nil
		},
	}, {
		name:       "second request dribbled",
		badRequest: true,
		send: func(t *testing.T, c *lcClient, stop <-chan struct{}) <-chan struct{} {
			c.get(t, "/first")
			return lcDribble(c, "GET / HTTP/1.1\r\nX-Slow: "+strings.Repeat("a", 200), 50*time.Millisecond, stop)
		},
	}, {
		name:       "second request's header dribbled",
		badRequest: true,
		send: func(t *testing.T, c *lcClient, stop <-chan struct{}) <-chan struct{} {
			c.get(t, "/first")
			io.WriteString(c, "GET / HTTP/1.1\r\n")
			return lcDribble(c, "X-Slow: "+strings.Repeat("a", 200), 50*time.Millisecond, stop)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{Handler: lcHello, ReadHeaderTimeout: 200 * time.Millisecond}
			ls := lcServe(t, s)
			c := lcConnect(t, ls.addr)
			stop := make(chan struct{})
			done := tt.send(t, c, stop)
			lcExpectEnded(t, c, c.br, tt.badRequest)
			close(stop)
			if done != nil {
				<-done
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	t.Run("idle keep-alive connection is closed", func(t *testing.T) {
		ls := lcServe(t, &Server{Handler: lcHello, IdleTimeout: idle})
		c := lcConnect(t, ls.addr)
		c.get(t, "/a")
		lcExpectClosed(t, c, c.br)
	})
	t.Run("busy keep-alive connection stays open", func(t *testing.T) {
		ls := lcServe(t, &Server{Handler: lcHello, IdleTimeout: idle, ReadHeaderTimeout: idle})
		c := lcConnect(t, ls.addr)
		// Over a second, more than three timeouts' worth, on the one connection.
		n := 0
		for end := time.Now().Add(time.Second); time.Now().Before(end); n++ {
			c.get(t, "/"+strconv.Itoa(n))
			time.Sleep(50 * time.Millisecond)
		}
		if n < 4 {
			t.Fatalf("only %d requests in a second", n)
		}
		lcExpectClosed(t, c, c.br)
	})
	t.Run("request that outlasts the header timeout", func(t *testing.T) {
		// The read deadline left from the request's header section has passed when the
		// connection next waits: the wait sets its own, and the connection stays open.
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(2 * idle)
			}
			lcHello(w, r)
		})
		ls := lcServe(t, &Server{Handler: slow, IdleTimeout: 4 * idle, ReadHeaderTimeout: idle})
		c := lcConnect(t, ls.addr)
		c.get(t, "/slow")
		time.Sleep(idle / 4) // the connection waits for the next request
		c.get(t, "/after")
		lcExpectClosed(t, c, c.br)
	})
}

// A handler that reads a body sent slowly but steadily gets all of it: IdleTimeout bounds the
// wait for each part, not the whole body.
func TestIdleTimeoutSlowRequestBody(t *testing.T) {
	const parts = 20 // a part every 50 ms: a second in all, over three IdleTimeouts
	chunked := strings.Repeat("1\r\nx\r\n", parts) + "0\r\n\r\n"
	tests := []struct {
		name, head, body string
	}{
		{"content-length", "Content-Length: " + strconv.Itoa(parts) + "\r\n", strings.Repeat("x", parts)},
		{"chunked", "Transfer-Encoding: chunked\r\n", chunked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{
				IdleTimeout: 300 * time.Millisecond,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodPost {
						lcHello(w, r)
						return
					}
					b, err := io.ReadAll(r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					w.Write(b)
				}),
			}
			ls := lcServe(t, s)
			c := lcConnect(t, ls.addr)
			io.WriteString(c, "POST /up HTTP/1.1\r\nHost: lc.test\r\n"+tt.head+"\r\n")
			step := len(tt.body) / parts
			for i := 0; i < len(tt.body); i += step {
				time.Sleep(50 * time.Millisecond)
				if _, err := io.WriteString(c, tt.body[i:min(i+step, len(tt.body))]); err != nil {
					t.Fatalf("sending the body: %v", err)
				}
			}
			resp, body := c.readResponse(t, "POST")
			if resp.StatusCode != http.StatusOK || body != strings.Repeat("x", parts) {
				t.Fatalf("got %d %q, want 200 and the %d bytes sent", resp.StatusCode, body, parts)
			}
			c.get(t, "/after")
		})
	}
}

// A body that stops coming fails the handler's read after IdleTimeout, and the connection ends.
func TestIdleTimeoutStalledRequestBody(t *testing.T) {
	readErr := make(chan error, 1)
	s := &Server{
		IdleTimeout: 300 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			readErr <- err
		}),
	}
	ls := lcServe(t, s)
	c := lcConnect(t, ls.addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 10\r\n\r\nhalf")
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("handler's body read: %v, want a timeout", err)
		}
	case <-time.After(lcWait):
		t.Fatalf("handler still reading a stalled body after %v", lcWait)
	}
	// The body cannot be finished: the connection ends after whatever response.
	c.SetReadDeadline(time.Now().Add(lcWait))
	if resp, err := http.ReadResponse(c.br, nil); err == nil {
		io.Copy(io.Discard, resp.Body)
		if !resp.Close {
			t.Errorf("response after a stalled body keeps the connection, want Connection: close")
		}
	}
	lcExpectClosed(t, c, c.br)
}

// lcBodySize is the size of the large response bodies: far more than the sockets hold.
const lcBodySize = 64 << 20

// lcBody is lcBodySize bytes in which every MiB is different, so that a lost or repeated
// MiB shows.
var lcBody = sync.OnceValue(func() []byte {
	block := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{1}).Read(block)
	b := make([]byte, 0, lcBodySize)
	for i := range lcBodySize >> 20 {
		binary.BigEndian.PutUint64(block, uint64(i))
		b = append(b, block...)
	}
	return b
})

// lcBodyFile writes the first size bytes of lcBody to a file in the test's directory and
// returns its name.
func lcBodyFile(t *testing.T, size int) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(name, lcBody()[:size], 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// lcLargeBodies are the ways a handler sends the first size bytes of lcBody: from memory in
// one Write, with its length and without (chunked), and from a file by io.Copy, which goes by
// the connection's ReadFrom (sendfile).
func lcLargeBodies(t *testing.T, size int) []struct {
	name string
	send func(w http.ResponseWriter) error
} {
	file := lcBodyFile(t, size)
	body := lcBody()[:size]
	return []struct {
		name string
		send func(w http.ResponseWriter) error
	}{{
		name: "memory",
		send: func(w http.ResponseWriter) error {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			_, err := w.Write(body)
			return err
		},
	}, {
		name: "memory chunked",
		send: func(w http.ResponseWriter) error {
			_, err := w.Write(body)
			return err
		},
	}, {
		name: "file",
		send: func(w http.ResponseWriter) error {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			w.Header().Set("Content-Length", strconv.Itoa(size))
			_, err = io.Copy(w, f)
			return err
		},
	}}
}

// A client that reads nothing is cut off after SendTimeout, and OnSendTimeout told once.
func TestSendTimeoutEndsStalledClient(t *testing.T) {
	for _, tt := range lcLargeBodies(t, lcBodySize) {
		t.Run(tt.name, func(t *testing.T) {
			sendErr := make(chan error, 1)
			var timeouts atomic.Int32
			s := &Server{
				SendTimeout:   300 * time.Millisecond,
				OnSendTimeout: func() { timeouts.Add(1) },
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					sendErr <- tt.send(w)
				}),
			}
			ls := lcServe(t, s)
			c := lcDial(t, ls.addr)
			if err := c.SetReadBuffer(4 << 10); err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, lcGet("/big"))
			// Read nothing until the handler is done.
			select {
			case err := <-sendErr:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("handler's send to a client that reads nothing: %v, want a timeout", err)
				}
			case <-time.After(lcWait):
				t.Fatalf("handler still sending to a client that reads nothing after %v", lcWait)
			}
			// Shutdown returns nil only once the connection has ended: it is not idle.
			lcShutdown(t, s)
			if n := timeouts.Load(); n != 1 {
				t.Errorf("OnSendTimeout called %d times, want 1", n)
			}
		})
	}
}

// A client that reads slowly but steadily is not a stalled one: SendTimeout bounds the time
// without progress, not the whole response.
func TestSendTimeoutSlowReaderGetsWholeBody(t *testing.T) {
	for _, tt := range lcLargeBodies(t, lcBodySize) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each takes a second or more of reading, by design
			sendErr := make(chan error, 1)
			s := &Server{
				SendTimeout: 300 * time.Millisecond,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					sendErr <- tt.send(w)
				}),
			}
			ls := lcServe(t, s)
			c := lcDial(t, ls.addr)
			if err := c.SetReadBuffer(64 << 10); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(4 * lcWait))
			io.WriteString(c, lcGet("/big"))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := lcBody()
			buf := make([]byte, 1<<20)
			for i := 0; i < lcBodySize; i += len(buf) {
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("reading MiB %d of the body: %v", i>>20, err)
				}
				if !bytes.Equal(buf, want[i:i+len(buf)]) {
					t.Fatalf("MiB %d of the body differs from what was sent", i>>20)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n, err := io.Copy(io.Discard, resp.Body); n != 0 || err != nil {
				t.Fatalf("after the %d bytes sent, the body goes on with %d bytes and ends with %v", lcBodySize, n, err)
			}
			if err := <-sendErr; err != nil {
				t.Errorf("handler's send to a slow reader: %v", err)
			}
		})
	}
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	checkGoroutines := lcGoroutines(t)
	s := &Server{Handler: lcHello}
	ls := lcServe(t, s)
	var clients []*lcClient
	for i := range 3 {
		c := lcConnect(t, ls.addr)
		c.get(t, "/"+strconv.Itoa(i))
		clients = append(clients, c)
	}
	// No IdleTimeout: only Shutdown ends these connections.
	lcShutdown(t, s)
	for _, c := range clients {
		lcExpectClosed(t, c, c.br)
		c.Close()
	}
	if err := ls.served(t); err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	if c, err := net.DialTimeout("tcp", ls.addr, lcWait); err == nil {
		c.Close()
		t.Errorf("a connection to a server that shut down was accepted")
	}

	// Serve after Shutdown does not serve, and closes its listener.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); err != http.ErrServerClosed {
		t.Errorf("Serve after Shutdown returned %v, want http.ErrServerClosed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on the listener given to Serve after Shutdown: %v, want net.ErrClosed", err)
	}
	checkGoroutines()
}

// TestShutdownClosesFreshConnection: a connection that has sent nothing yet is as idle as one
// between requests; with no ReadHeaderTimeout, only Shutdown can end it.
func TestShutdownClosesFreshConnection(t *testing.T) {
	checkGoroutines := lcGoroutines(t)
	accepted := make(chan struct{}, 1)
	s := &Server{Handler: lcHello, ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
		accepted <- struct{}{}
		return ctx
	}}
	ls := lcServe(t, s)
	c := lcConnect(t, ls.addr)
	select {
	case <-accepted:
	case <-time.After(lcWait):
		t.Fatal("connection not accepted")
	}
	lcShutdown(t, s)
	lcExpectClosed(t, c, c.br)
	c.Close()
	if err := ls.served(t); err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	checkGoroutines()
}

func TestShutdownFinishesRequestInFlight(t *testing.T) {
	checkGoroutines := lcGoroutines(t)
	entered, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})}
	ls := lcServe(t, s)
	c := lcConnect(t, ls.addr)
	io.WriteString(c, lcGet("/slow"))
	<-entered

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lcWait)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()
	// Shutdown closes the listener once it has begun.
	wait.For(t, lcWait, func() error {
		nc, err := net.Dial("tcp", ls.addr)
		if err != nil {
			return nil
		}
		nc.Close()
		return errors.New("the listener still accepts after Shutdown was called")
	})
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a handler was running, want it to wait", err)
	default:
	}
	close(release)

	resp, body := c.readResponse(t, "GET")
	if resp.StatusCode != http.StatusOK || body != "finished" {
		t.Errorf("got %d %q, want the handler's 200 %q", resp.StatusCode, body, "finished")
	}
	if !resp.Close {
		t.Errorf("response given during Shutdown has no Connection: close")
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown: %v, want nil", err)
		}
	case <-time.After(lcWait):
		t.Fatalf("Shutdown did not return within %v of the last response", lcWait)
	}
	lcExpectClosed(t, c, c.br)
	c.Close()
	if err := ls.served(t); err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	checkGoroutines()
}

func TestShutdownTimesOutThenCloseEndsConnection(t *testing.T) {
	checkGoroutines := lcGoroutines(t)
	entered, release := make(chan struct{}), make(chan struct{})
	writeErr := make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		_, err := w.Write([]byte("x"))
		writeErr <- err
	})}
	ls := lcServe(t, s)
	c := lcConnect(t, ls.addr)
	io.WriteString(c, lcGet("/stuck"))
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a handler still running: %v, want context.DeadlineExceeded", err)
	}
	s.Close()
	lcExpectClosed(t, c, c.br)
	close(release)
	if err := <-writeErr; err == nil {
		t.Errorf("handler's write after Close succeeded, want an error")
	}
	c.Close()
	if err := ls.served(t); err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	checkGoroutines()
}

func TestCloseEndsActiveConnections(t *testing.T) {
	checkGoroutines := lcGoroutines(t)
	entered, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stuck" {
			close(entered)
			<-release
		}
		lcHello(w, r)
	})}
	ls := lcServe(t, s)
	idle := lcConnect(t, ls.addr)
	idle.get(t, "/idle")
	busy := lcConnect(t, ls.addr)
	io.WriteString(busy, lcGet("/stuck"))
	<-entered
	half := lcConnect(t, ls.addr)
	io.WriteString(half, "GET /hal")

	s.Close()
	for _, c := range []*lcClient{idle, busy, half} {
		lcExpectClosed(t, c, c.br)
		c.Close()
	}
	if err := ls.served(t); err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	close(release)
	checkGoroutines()
}

func TestServeConnEndsWhenContextDone(t *testing.T) {
	tests := []struct {
		name      string
		request   string
		inHandler bool // the request leaves the connection in a handler, not idle
	}{
		{"idle", "/idle", false},
		{"in a handler waiting on the request's context", "/wait", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines := lcGoroutines(t)
			entered := make(chan struct{}, 1)
			s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/wait" {
					entered <- struct{}{}
					<-r.Context().Done()
				}
				lcHello(w, r)
			})}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c := lcConnect(t, l.Addr().String())
			nc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.ServeConn(ctx, nc)
			}()
			if tt.inHandler {
				io.WriteString(c, lcGet(tt.request))
				<-entered
			} else {
				c.get(t, tt.request)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(lcWait):
				t.Fatalf("ServeConn did not return within %v of its context's end", lcWait)
			}
			// The handler may have answered before the connection closed; nothing else comes.
			c.SetReadDeadline(time.Now().Add(lcWait))
			if _, err := io.Copy(io.Discard, c.br); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("connection still open after ServeConn returned")
			}
			c.Close()
			checkGoroutines()
		})
	}
}

// A client that goes away in the middle of a large response fails the handler's write, and
// the server goes on serving other connections.
func TestClientClosesMidResponse(t *testing.T) {
	const size = 16 << 20
	tests := lcLargeBodies(t, size)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sendErr := make(chan error, 1)
			log := &lcLog{}
			s := &Server{
				Logger: slog.New(log),
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/big" {
						lcHello(w, r)
						return
					}
					sendErr <- tt.send(w)
				}),
			}
			ls := lcServe(t, s)
			c := lcDial(t, ls.addr)
			io.WriteString(c, lcGet("/big"))
			if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
				t.Fatalf("reading the start of the response: %v", err)
			}
			c.Close()
			select {
			case err := <-sendErr:
				if err == nil {
					t.Errorf("handler's send to a client that closed succeeded, want an error")
				}
			case <-time.After(lcWait):
				t.Fatalf("handler still sending to a closed client after %v", lcWait)
			}
			other := lcConnect(t, ls.addr)
			other.get(t, "/other")
			other.Close()
			lcShutdown(t, s)
			log.checkNoErrors(t)
		})
	}
}

// A client that resets its connection in the middle of a request ends that connection only.
func TestClientResetsMidRequest(t *testing.T) {
	tests := []struct {
		name    string
		partial string
		handled bool // the partial request reaches the handler
	}{
		{"request line", "GET /hal", false},
		{"header section", "GET / HTTP/1.1\r\nHost: lc.test\r\nX-Half: ", false},
		{"content-length body", "POST / HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 100\r\n\r\nhalf", true},
		{"chunked body", "POST / HTTP/1.1\r\nHost: lc.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhalf\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			entered := make(chan struct{}, 1)
			log := &lcLog{}
			s := &Server{
				Logger: slog.New(log),
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodPost {
						lcHello(w, r)
						return
					}
					entered <- struct{}{}
					_, err := io.ReadAll(r.Body)
					readErr <- err
				}),
			}
			ls := lcServe(t, s)
			c := lcDial(t, ls.addr)
			io.WriteString(c, tt.partial)
			if tt.handled {
				<-entered
			}
			c.SetLinger(0)
			c.Close()
			if tt.handled {
				select {
				case err := <-readErr:
					if err == nil {
						t.Errorf("handler read the whole body of a request the client reset")
					}
				case <-time.After(lcWait):
					t.Fatalf("handler still reading the body of a reset request after %v", lcWait)
				}
			}
			other := lcConnect(t, ls.addr)
			other.get(t, "/other")
			other.Close()
			// No timeouts are set: Shutdown returns only if the reset ended the connection.
			lcShutdown(t, s)
			select {
			case <-entered:
				t.Errorf("a request cut in its header section reached the handler")
			default:
			}
			log.checkNoErrors(t)
		})
	}
}

func TestManyConcurrentConnections(t *testing.T) {
	const conns, requests = 200, 5
	s := &Server{
		IdleTimeout: lcWait,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %s", r.URL.Path, b)
		}),
	}
	ls := lcServe(t, s)
	start := make(chan struct{})
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			nc, err := net.DialTimeout("tcp", ls.addr, lcWait)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(4 * lcWait))
			br := bufio.NewReader(nc)
			<-start
			for j := range requests {
				path := fmt.Sprintf("/%d/%d", i, j)
				payload := strings.Repeat(strconv.Itoa(j), i)
				fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: lc.test\r\nContent-Length: %d\r\n\r\n%s", path, len(payload), payload)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("connection %d, request %d: %v", i, j, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					errs <- fmt.Errorf("connection %d, request %d: reading the body: %v", i, j, err)
					return
				}
				if want := path + " " + payload; resp.StatusCode != http.StatusOK || string(body) != want {
					errs <- fmt.Errorf("connection %d, request %d: got %d %q, want 200 %q", i, j, resp.StatusCode, body, want)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// lcFlakyListener fails its first failures Accepts with err, then accepts as l does.
type lcFlakyListener struct {
	net.Listener
	err      error
	failures atomic.Int32
	closed   atomic.Bool
}

func (l *lcFlakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

func (l *lcFlakyListener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

func TestServeAcceptErrors(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	t.Run("temporary", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fl := &lcFlakyListener{Listener: l, err: emfile}
		fl.failures.Store(3)
		log := &lcLog{}
		s := &Server{Handler: lcHello, Logger: slog.New(log)}
		ls := lcServeListener(t, s, fl)
		c := lcConnect(t, ls.addr)
		c.get(t, "/after-emfile")
		if got := log.count(slog.LevelWarn, "Accept failed"); got != 3 {
			t.Errorf("%d accept failures logged, want 3", got)
		}
		select {
		case <-ls.done:
			t.Fatalf("Serve returned %v after a temporary accept error", ls.err)
		default:
		}
	})
	t.Run("permanent", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		broken := errors.New("listener broken")
		fl := &lcFlakyListener{Listener: l, err: broken}
		fl.failures.Store(1 << 30)
		ls := lcServeListener(t, &Server{Handler: lcHello}, fl)
		if err := ls.served(t); !errors.Is(err, broken) {
			t.Errorf("Serve returned %v, want the accept error %q wrapped", err, broken)
		}
		if !fl.closed.Load() {
			t.Errorf("Serve returned without closing its listener")
		}
	})
}

// A request target that does not parse is a client error the server answers, as net/http's
// does, not a failed connection to drop in silence (url.Error is a net.Error).
func TestUnparsableRequestTargetAnswered(t *testing.T) {
	for _, target := range []string{"/n\x00ul", "http://[::1/", "http://lc.test/%zz"} {
		t.Run(strconv.Quote(target), func(t *testing.T) {
			ls := lcServe(t, &Server{Handler: lcHello})
			c := lcConnect(t, ls.addr)
			resp, _ := c.roundTrip(t, "GET "+target+" HTTP/1.1\r\nHost: lc.test\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Errorf("got %q (Close %v), want 400 with Connection: close", resp.Status, resp.Close)
			}
			lcExpectClosed(t, c, c.br)
		})
	}
}

// lcShutdownRaceConn is a server's connection on which Shutdown strikes at the worst moment:
// once armed, its next Read returns the client's bytes after the server has started closing and
// a past read deadline has been set, as Shutdown does to a connection it finds idle.
type lcShutdownRaceConn struct {
	net.Conn
	srv   *Server
	armed atomic.Bool
}

func (c *lcShutdownRaceConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.armed.CompareAndSwap(true, false) {
		c.srv.closing.Store(true)
		c.Conn.SetReadDeadline(time.Now().Add(-time.Second))
	}
	return n, err
}

// TestShutdownRaceKeepsRequest: a request whose first bytes arrive as Shutdown begins is still
// served whole; the past deadline Shutdown set does not cut off the reading of its body.
func TestShutdownRaceKeepsRequest(t *testing.T) {
	started := make(chan struct{}, 1)
	s := &Server{IdleTimeout: lcWait, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			io.WriteString(w, "ok")
			return
		}
		started <- struct{}{}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(body)
	})}
	client, server := lcTCPPair(t)
	rc := &lcShutdownRaceConn{Conn: server, srv: s}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeConn(context.Background(), rc)
	}()
	c := &lcClient{TCPConn: client, br: bufio.NewReader(client)}
	// A first request, so that the second is read by a connection waiting between requests.
	if resp, body := c.roundTrip(t, lcGet("/first")); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	rc.armed.Store(true)
	io.WriteString(client, "POST /second HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 5\r\n\r\n")
	select {
	case <-started:
	case <-time.After(lcWait):
		t.Fatal("handler not called for the second request")
	}
	io.WriteString(client, "hello") // read by the handler, after Shutdown's deadline
	resp, body := c.readResponse(t, http.MethodPost)
	if resp.StatusCode != http.StatusOK || body != "hello" {
		t.Errorf("second request: %d %q, want 200 \"hello\"", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("a response while the server closes does not end the connection")
	}
	select {
	case <-done:
	case <-time.After(lcWait):
		t.Fatal("ServeConn did not return")
	}
}

// lcTCPPair returns both ends of a loopback TCP connection.
func lcTCPPair(t *testing.T) (client *net.TCPConn, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client = lcDial(t, l.Addr().String())
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
