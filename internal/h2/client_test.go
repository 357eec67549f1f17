package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// The tests in this file go through Go's own HTTP/2 client, as a browser would come.

// waitTimeout bounds every wait of these tests for something the server should do at once.
const waitTimeout = 5 * time.Second

// newClient is ts.client() with a bound on each request, its idle connections closed when the
// test ends.
func newClient(t testing.TB, ts *testServer) *http.Client {
	c := ts.client()
	c.Timeout = 20 * time.Second
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// fetch sends req and reads the whole response body. resp is nil when err comes from Do.
func fetch(c *http.Client, req *http.Request) (resp *http.Response, body []byte, err error) {
	resp, err = c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp, body, err
}

func newRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// getOK fetches path with GET and fails the test unless it answers 200 with want.
func getOK(t testing.TB, c *http.Client, url, want string) {
	t.Helper()
	resp, body, err := fetch(c, newRequest(t, http.MethodGet, url, nil))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s: %d %q, want 200 %q", url, resp.StatusCode, body, want)
	}
}

// recv waits for a value from ch for at most d.
func recv[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("no %s within %v", what, d)
		var zero T
		return zero
	}
}

// randomBytes returns n bytes that depend on seed only.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// connStates follows the connections an http.Server accepts and closes. Set it up before the
// server serves.
type connStates struct {
	mu     sync.Mutex
	opened int
	closed chan net.Conn
}

func watchConns(hs *http.Server) *connStates {
	cs := &connStates{closed: make(chan net.Conn, 64)}
	hs.ConnState = func(nc net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cs.mu.Lock()
			cs.opened++
			cs.mu.Unlock()
		case http.StateClosed:
			select {
			case cs.closed <- nc:
			default:
			}
		}
	}
	return cs
}

func (cs *connStates) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.opened
}

// TestClientResponses checks what Go's client receives for the ways a handler can answer.
func TestClientResponses(t *testing.T) {
	const absent = "<absent>"
	long := randomBytes(1, 100<<10)
	writeInPieces := func(w io.Writer, b []byte, piece int) error {
		for len(b) > 0 {
			n := min(piece, len(b))
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	hello := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "11")
		_, err := io.WriteString(w, "hello world")
		return err
	}
	// lateChange changes the header after WriteHeader: the changes must not be sent.
	lateChange := func(length string, body []byte) func(http.ResponseWriter, *http.Request) error {
		return func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Before", "1")
			if length != "" {
				w.Header().Set("Content-Length", length)
			}
			w.WriteHeader(http.StatusOK)
			w.Header().Set("X-Before", "2")
			w.Header().Set("X-After", "1")
			w.Header().Set("Content-Type", "application/x-late")
			return writeInPieces(w, body, 1000)
		}
	}
	tests := []struct {
		name    string
		method  string
		handler func(http.ResponseWriter, *http.Request) error // its error is checked against handlerErr
		// want
		handlerErr    error
		status        int
		header        map[string]string // absent: the field must not be there
		body          []byte
		contentLength int64 // resp.ContentLength
		readErr       bool  // reading the body must fail
	}{
		{
			name: "declared length", method: "GET", handler: hello,
			status:        200,
			header:        map[string]string{"Content-Type": "text/plain", "Content-Length": "11"},
			body:          []byte("hello world"),
			contentLength: 11,
		},
		{
			name: "HEAD with declared length", method: "HEAD", handler: hello,
			status:        200,
			header:        map[string]string{"Content-Type": "text/plain", "Content-Length": "11"},
			body:          []byte{},
			contentLength: 11,
		},
		{
			name: "short body, length computed", method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return writeInPieces(w, long[:4<<10], 1<<10)
			},
			status:        200,
			header:        map[string]string{"Content-Length": "4096"},
			body:          long[:4<<10],
			contentLength: 4 << 10,
		},
		{
			name: "long body, no length", method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return writeInPieces(w, long, 10<<10)
			},
			status:        200,
			header:        map[string]string{"Content-Length": absent},
			body:          long,
			contentLength: -1,
		},
		{
			name: "204", method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				w.WriteHeader(http.StatusNoContent)
				_, err := io.WriteString(w, "body")
				return err
			},
			handlerErr:    http.ErrBodyNotAllowed,
			status:        204,
			header:        map[string]string{"Content-Length": absent},
			body:          []byte{},
			contentLength: 0,
		},
		{
			name: "304", method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Etag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
				_, err := io.WriteString(w, "body")
				return err
			},
			handlerErr:    http.ErrBodyNotAllowed,
			status:        304,
			header:        map[string]string{"Etag": `"v1"`, "Content-Length": absent},
			body:          []byte{},
			contentLength: 0,
		},
		{
			name: "header changed after WriteHeader, declared length", method: "GET",
			handler:       lateChange("2", []byte("ok")),
			status:        200,
			header:        map[string]string{"X-Before": "1", "X-After": absent, "Content-Type": absent, "Content-Length": "2"},
			body:          []byte("ok"),
			contentLength: 2,
		},
		{
			name: "header changed after WriteHeader, short body", method: "GET",
			handler:       lateChange("", []byte("ok")),
			status:        200,
			header:        map[string]string{"X-Before": "1", "X-After": absent, "Content-Type": absent, "Content-Length": "2"},
			body:          []byte("ok"),
			contentLength: 2,
		},
		{
			name: "header changed after WriteHeader, long body", method: "GET",
			handler:       lateChange("", long[:20<<10]),
			status:        200,
			header:        map[string]string{"X-Before": "1", "X-After": absent, "Content-Type": absent, "Content-Length": absent},
			body:          long[:20<<10],
			contentLength: -1,
		},
		{
			name: "body shorter than declared", method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Length", "1000")
				_, err := w.Write(long[:10])
				return err
			},
			status:        200,
			header:        map[string]string{"Content-Length": "1000"},
			contentLength: 1000,
			readErr:       true,
		},
		{
			name: "write past declared length", method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Length", "5")
				_, err := io.WriteString(w, "hello world")
				return err
			},
			handlerErr:    errTooLong,
			status:        200,
			header:        map[string]string{"Content-Length": "5"},
			contentLength: 5,
			readErr:       true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			herr := make(chan error, 1)
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				herr <- tt.handler(w, r)
			}), nil)
			resp, body, err := fetch(newClient(t, ts), newRequest(t, tt.method, ts.url("/"), nil))
			if resp == nil {
				t.Fatalf("%s: %v", tt.method, err)
			}
			if tt.readErr {
				if err == nil {
					t.Errorf("body read as complete (%d bytes), want an error", len(body))
				}
				if int64(len(body)) >= tt.contentLength {
					t.Errorf("read %d bytes, want fewer than %d", len(body), tt.contentLength)
				}
			} else {
				if err != nil {
					t.Errorf("reading the body: %v", err)
				}
				if !bytes.Equal(body, tt.body) {
					t.Errorf("body is %d bytes (%.20q), want %d (%.20q)", len(body), body, len(tt.body), tt.body)
				}
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.Proto != "HTTP/2.0" {
				t.Errorf("proto %q", resp.Proto)
			}
			for k, want := range tt.header {
				vv, ok := resp.Header[k]
				switch {
				case want == absent && ok:
					t.Errorf("header %s: %q, want none", k, vv)
				case want != absent && (len(vv) != 1 || vv[0] != want):
					t.Errorf("header %s: %q, want %q", k, vv, want)
				}
			}
			if resp.Header.Get("Date") == "" {
				t.Error("no Date")
			}
			if resp.ContentLength != tt.contentLength {
				t.Errorf("ContentLength %d, want %d", resp.ContentLength, tt.contentLength)
			}
			if err := recv(t, herr, waitTimeout, "handler return"); !errors.Is(err, tt.handlerErr) {
				t.Errorf("handler's Write: %v, want %v", err, tt.handlerErr)
			}
		})
	}
}

// TestLargeBody sends a 10 MiB body in 32 KiB writes, with and without Content-Length.
func TestLargeBody(t *testing.T) {
	data := randomBytes(2, 10<<20)
	want := sha256.Sum256(data)
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("declared=%v", declared), func(t *testing.T) {
			herr := make(chan error, 1)
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if declared {
					w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				}
				for off := 0; off < len(data); off += 32 << 10 {
					if _, err := w.Write(data[off : off+32<<10]); err != nil {
						herr <- err
						return
					}
				}
				herr <- nil
			}), nil)
			resp, err := newClient(t, ts).Get(ts.url("/large"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("got %d bytes, sha256 %x; want %d, %x", n, h.Sum(nil), len(data), want)
			}
			wantLen := int64(-1)
			if declared {
				wantLen = int64(len(data))
			}
			if resp.ContentLength != wantLen {
				t.Errorf("ContentLength %d, want %d", resp.ContentLength, wantLen)
			}
			if err := recv(t, herr, waitTimeout, "handler return"); err != nil {
				t.Errorf("handler: %v", err)
			}
		})
	}
}

// TestConcurrentStreams runs 50 requests at once on one connection, with bodies from 1 KiB to
// 1 MiB: each must arrive intact.
func TestConcurrentStreams(t *testing.T) {
	const requests = 50
	size := func(i int) int { return 1<<10<<(i%11) + i%3 }
	var states *connStates
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err1 := strconv.Atoi(r.FormValue("i"))
		n, err2 := strconv.Atoi(r.FormValue("n"))
		if err1 != nil || err2 != nil {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		b := randomBytes(uint64(i), n)
		for len(b) > 0 {
			k := min(len(b), 16<<10)
			if _, err := w.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
	}), func(_ *Server, hs *http.Server) { states = watchConns(hs) })
	c := newClient(t, ts)
	// A first request sets up the connection the others share.
	resp, body, err := fetch(c, newRequest(t, "GET", ts.url("/?i=1000&n=10"), nil))
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, randomBytes(1000, 10)) {
		t.Fatalf("first request: %v", err)
	}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]int)
	)
	for i := range requests {
		n := size(i)
		req := newRequest(t, "GET", ts.url(fmt.Sprintf("/?i=%d&n=%d", i, n)), nil)
		wg.Go(func() {
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
				mu.Lock()
				conns[info.Conn]++
				mu.Unlock()
				if !info.Reused {
					t.Errorf("request %d: connection not reused", i)
				}
			}}
			req := req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			resp, body, err := fetch(c, req)
			if err != nil {
				t.Errorf("request %d (%d bytes): %v", i, n, err)
				return
			}
			if resp.StatusCode != 200 || !bytes.Equal(body, randomBytes(uint64(i), n)) {
				t.Errorf("request %d: status %d, %d bytes, want 200 and %d intact bytes", i, resp.StatusCode, len(body), n)
			}
		})
	}
	wg.Wait()
	if len(conns) != 1 {
		t.Errorf("requests went over %d client connections, want 1", len(conns))
	}
	if n := states.count(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}
}

// TestRequestBody echoes request bodies, with and without Content-Length, larger than the
// stream window or not, with trailers or not.
func TestRequestBody(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		declared bool
		trailer  bool
	}{
		{"10 bytes, declared", 10, true, false},
		{"10 bytes, undeclared", 10, false, false},
		{"1 MiB, declared", 1 << 20, true, false},
		{"1 MiB, undeclared", 1 << 20, false, false},
		{"10 bytes, trailers", 10, false, true},
		{"1 MiB, declared, trailers", 1 << 20, true, true},
	}
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		declared := make([]string, 0, len(r.Trailer))
		for k := range r.Trailer {
			declared = append(declared, k)
		}
		w.Header().Set("X-Trailer-Keys", strings.Join(declared, ","))
		w.Header().Set("X-Trailer", r.Trailer.Get("X-Checksum"))
		w.Write(body)
	}), nil)
	c := newClient(t, ts)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(uint64(100+i), tt.size)
			var rd io.Reader = bytes.NewReader(data)
			if !tt.declared {
				rd = struct{ io.Reader }{rd} // a length the client cannot know
			}
			req := newRequest(t, "POST", ts.url("/echo"), rd)
			sum := fmt.Sprintf("%x", sha256.Sum256(data))
			if tt.trailer {
				req.Trailer = http.Header{"X-Checksum": {sum}}
			}
			resp, body, err := fetch(c, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || !bytes.Equal(body, data) {
				t.Fatalf("status %d, %d bytes back (%.40q), want 200 and the %d bytes sent", resp.StatusCode, len(body), body, len(data))
			}
			wantLen := "-1"
			if tt.declared {
				wantLen = strconv.Itoa(tt.size)
			}
			if got := resp.Header.Get("X-Content-Length"); got != wantLen {
				t.Errorf("handler's r.ContentLength %s, want %s", got, wantLen)
			}
			wantKeys, wantTrailer := "", ""
			if tt.trailer {
				wantKeys, wantTrailer = "X-Checksum", sum
			}
			if got := resp.Header.Get("X-Trailer-Keys"); got != wantKeys {
				t.Errorf("declared trailers %q, want %q", got, wantKeys)
			}
			if got := resp.Header.Get("X-Trailer"); got != wantTrailer {
				t.Errorf("trailer after EOF %q, want %q", got, wantTrailer)
			}
		})
	}
}

// TestBodyReadAfterReset has the client reset a stream after sending the whole request body
// but before the handler reads it: the handler may get the body or an error, never a shorter
// body that ends as if complete.
func TestBodyReadAfterReset(t *testing.T) {
	type outcome struct {
		body []byte
		err  error
	}
	out := make(chan outcome, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A write after more than InlineLimit bytes: the handler leaves the reading goroutine,
		// which goes on to read the body and the reset.
		w.Write(make([]byte, DefaultInlineLimit+1))
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(waitTimeout):
			out <- outcome{err: errors.New("the request's context is not done")}
			return
		}
		b, err := io.ReadAll(r.Body)
		out <- outcome{b, err}
	}), nil)
	body := []byte("hello, world")
	wrote := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
	req := newRequest(t, "POST", ts.url("/upload"), bytes.NewReader(body))
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := newClient(t, ts).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recv(t, wrote, waitTimeout, "end of the request body")
	cancel() // RST_STREAM, after the body on the connection
	o := recv(t, out, 2*waitTimeout, "handler's read")
	if o.err == nil && !bytes.Equal(o.body, body) {
		t.Errorf("handler read %q and a clean EOF, want %q or an error", o.body, body)
	}
	t.Logf("handler read %q, %v", o.body, o.err)
}

// TestHandlerPanic checks that a panicking handler resets its stream only, and that only
// panics other than http.ErrAbortHandler are logged.
func TestHandlerPanic(t *testing.T) {
	tests := []struct {
		name   string
		value  any
		begun  int // body bytes written and flushed before the panic
		logged bool
	}{
		{"panic", "boom", 0, true},
		{"panic mid-body", "boom", 10, true},
		{"panic off the reader", "boom", 200 << 10, true},
		{"ErrAbortHandler", http.ErrAbortHandler, 0, false},
		{"ErrAbortHandler mid-body", http.ErrAbortHandler, 10, false},
		{"ErrAbortHandler off the reader", http.ErrAbortHandler, 200 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/panic" {
					io.WriteString(w, "ok")
					return
				}
				if tt.begun > 0 {
					if tt.begun < 100 {
						w.Header().Set("Content-Length", "100")
					}
					w.Write(make([]byte, tt.begun))
					w.(http.Flusher).Flush()
				}
				panic(tt.value)
			}), func(s *Server, _ *http.Server) {
				s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			c := newClient(t, ts)
			resp, body, err := fetch(c, newRequest(t, "GET", ts.url("/panic"), nil))
			if err == nil {
				t.Errorf("GET /panic: complete %d response with %d bytes, want an error", resp.StatusCode, len(body))
			}
			if tt.begun > 0 && resp == nil {
				t.Errorf("GET /panic: no response (%v), want its header and an error on the body", err)
			}
			// The connection, or a new one, goes on serving.
			getOK(t, c, ts.url("/next"), "ok")
			getOK(t, newClient(t, ts), ts.url("/next"), "ok")

			out := logs.String()
			if tt.logged {
				if !strings.Contains(out, "handler panicked") || !strings.Contains(out, "boom") {
					t.Errorf("log does not report the panic:\n%s", out)
				}
			} else if out != "" {
				t.Errorf("logged:\n%s", out)
			}
		})
	}
}

// TestUnreadRequestBody answers without reading a request body larger than the windows: the
// client gets the response, and the connection serves on.
func TestUnreadRequestBody(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.WriteHeader(http.StatusAccepted)
		}
		io.WriteString(w, "ok")
	}), nil)
	c := newClient(t, ts)
	for range 3 {
		// A body of unknown length that never ends: only the server's answer ends the request.
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			chunk := make([]byte, 64<<10)
			for {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
		}()
		resp, body, err := fetch(c, newRequest(t, "POST", ts.url("/upload"), pr))
		pr.CloseWithError(errors.New("request over"))
		recv(t, done, waitTimeout, "end of the request body's writer")
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		if resp.StatusCode != http.StatusAccepted || string(body) != "ok" {
			t.Fatalf("POST: %d %q, want 202 \"ok\"", resp.StatusCode, body)
		}
		getOK(t, c, ts.url("/"), "ok")
	}
}

// TestClientCancel abandons requests while their handler streams, by cancelling the request
// and by closing the response body: the handler's context must be done and its writes must
// fail, and the connection serves on.
func TestClientCancel(t *testing.T) {
	type outcome struct {
		werr    error
		ctxDone bool
	}
	out := make(chan outcome, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		rc := http.NewResponseController(w)
		var werr error
		for werr == nil {
			if _, werr = w.Write(chunk); werr == nil {
				werr = rc.Flush()
			}
		}
		o := outcome{werr: werr}
		select {
		case <-r.Context().Done():
			o.ctxDone = true
		case <-time.After(waitTimeout):
		}
		out <- o
	}), nil)
	c := newClient(t, ts)
	for _, how := range []string{"cancel", "close body"} {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := c.Do(newRequest(t, "GET", ts.url("/stream"), nil).WithContext(ctx))
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
			t.Fatalf("%s: reading the start of the body: %v", how, err)
		}
		if how == "cancel" {
			cancel()
			if n, err := io.Copy(io.Discard, resp.Body); err == nil {
				t.Errorf("%s: body ended cleanly after %d more bytes, want an error", how, n)
			}
		}
		resp.Body.Close()
		o := recv(t, out, 2*waitTimeout, how+": handler return")
		if !o.ctxDone {
			t.Errorf("%s: handler's context not done", how)
		}
		if o.werr == nil {
			t.Errorf("%s: handler's writes kept succeeding", how)
		}
	}
}

// TestEarlyHints sends a 103 with a Link field before the final response.
func TestEarlyHints(t *testing.T) {
	const link = "</style.css>; rel=preload; as=style"
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", link)
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<p>hi")
	}), nil)
	var (
		mu     sync.Mutex
		codes  []int
		hinted []string
	)
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		codes = append(codes, code)
		hinted = append(hinted, h["Link"]...)
		return nil
	}}
	req := newRequest(t, "GET", ts.url("/"), nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, body, err := fetch(newClient(t, ts), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "<p>hi" || resp.Header.Get("Content-Type") != "text/html" {
		t.Errorf("final response %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(codes) != 1 || codes[0] != http.StatusEarlyHints || len(hinted) != 1 || hinted[0] != link {
		t.Errorf("1xx responses %v with Link %q, want one 103 with %q", codes, hinted, link)
	}
}

// TestRequestFields checks the http.Request a handler gets.
func TestRequestFields(t *testing.T) {
	type seen struct {
		proto               string
		major, minor        int
		tls, h2             bool
		remote, host        string
		method, uri, path   string
		query, ua           string
		srv                 any
		localAddr           string
		contentLength       int64
		bodyIsNoBody, close bool
	}
	got := make(chan seen, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{
			proto: r.Proto, major: r.ProtoMajor, minor: r.ProtoMinor,
			tls: r.TLS != nil, remote: r.RemoteAddr, host: r.Host,
			method: r.Method, uri: r.RequestURI, path: r.URL.Path, query: r.URL.RawQuery,
			ua: r.UserAgent(), srv: r.Context().Value(http.ServerContextKey),
			contentLength: r.ContentLength, bodyIsNoBody: r.Body == http.NoBody, close: r.Close,
		}
		if r.TLS != nil {
			s.h2 = r.TLS.NegotiatedProtocol == "h2"
		}
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			s.localAddr = a.String()
		}
		got <- s
	}), nil)
	local := make(chan string, 1)
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { local <- info.Conn.LocalAddr().String() }}
	req := newRequest(t, "GET", ts.url("/a/b?x=1&y=2"), nil)
	req.Header.Set("User-Agent", "h2-test")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, _, err := fetch(newClient(t, ts), req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v", err)
	}
	s := recv(t, got, waitTimeout, "request")
	want := seen{
		proto: "HTTP/2.0", major: 2, minor: 0, tls: true, h2: true,
		remote: recv(t, local, waitTimeout, "connection"), host: ts.addr,
		method: "GET", uri: "/a/b?x=1&y=2", path: "/a/b", query: "x=1&y=2",
		ua: "h2-test", srv: ts.hs, localAddr: ts.addr,
		contentLength: 0, bodyIsNoBody: true,
	}
	if s != want {
		t.Errorf("request seen as\n%+v\nwant\n%+v", s, want)
	}
}

// TestGracefulShutdown shuts the server down while a request is in flight: the request
// completes, Shutdown returns once it has, and no new connection is accepted meanwhile.
func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done")
	}), nil)
	began := make(chan struct{})
	ts.hs.RegisterOnShutdown(func() { close(began) })

	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	res := make(chan result, 1)
	c := newClient(t, ts)
	req := newRequest(t, "GET", ts.url("/slow"), nil)
	go func() {
		resp, body, err := fetch(c, req)
		res <- result{resp, body, err}
	}()
	recv(t, entered, waitTimeout, "request")

	shut := make(chan error, 1)
	go func() { shut <- ts.shutdown(t, 4*waitTimeout) }()
	recv(t, began, waitTimeout, "shutdown")
	// The listener is closed before the shutdown hooks run.
	if nc, err := net.DialTimeout("tcp", ts.addr, waitTimeout); err == nil {
		nc.Close()
		t.Error("a new connection was accepted after Shutdown began")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	r := recv(t, res, waitTimeout, "response")
	if r.err != nil || r.resp.StatusCode != 200 || string(r.body) != "done" {
		t.Errorf("in-flight request: %v", r.err)
		if r.resp != nil {
			t.Errorf("in-flight request: %d %q", r.resp.StatusCode, r.body)
		}
	}
	if err := recv(t, shut, 4*waitTimeout, "Shutdown return"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// closeNotifyConn tells when the client closes its connection.
type closeNotifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotifyConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestIdleTimeout checks that the server closes an idle connection, and that the client then
// comes back on a new one.
func TestIdleTimeout(t *testing.T) {
	var states *connStates
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), func(s *Server, hs *http.Server) {
		s.IdleTimeout = 200 * time.Millisecond
		states = watchConns(hs)
	})
	c := newClient(t, ts)
	dials := make(chan *closeNotifyConn, 4)
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc := &closeNotifyConn{Conn: nc, closed: make(chan struct{})}
		dials <- cc
		return cc, nil
	}

	getOK(t, c, ts.url("/"), "ok")
	first := recv(t, dials, waitTimeout, "dial")
	recv(t, states.closed, waitTimeout, "server-side close of the idle connection")
	// The client drops the connection from its pool before it closes it.
	recv(t, first.closed, waitTimeout, "client-side close of the idle connection")

	getOK(t, c, ts.url("/"), "ok")
	if len(dials) != 1 {
		t.Errorf("%d new client connections for the second request, want 1", len(dials))
	}
	if n := states.count(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
}
