package h1_test

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/h1"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// observation is what a client sees of a response to one raw request, in a form that compares
// across servers: the Date the server adds (a clock reading) is left out.
type observation struct {
	Interim          []string // each interim response's status and fields
	Status           string
	Proto            string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool // the response says the connection ends
	Body             string
	BodyErr          string // how reading the body failed, if it did
	Open             bool   // the connection served another request after it
}

// handlerDate is a Date a handler sets, to be sent as it is.
const handlerDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// observe sends raw on a new connection to addr and records the answer.
func observe(t *testing.T, addr, raw string) observation {
	t.Helper()
	c := dial(t, addr)
	c.send(raw)
	interim, r := c.readFinal(methodOf(raw))
	var o observation
	for _, resp := range interim {
		o.Interim = append(o.Interim, fmt.Sprintf("%s %v", resp.Status, resp.Header))
	}
	switch r.resp.Header.Get("Date") {
	case "":
		t.Errorf("response from %s has no Date field", addr)
	case handlerDate:
	default:
		r.resp.Header.Del("Date")
	}
	o.Status = r.resp.Status
	o.Proto = r.resp.Proto
	o.Header = r.resp.Header
	o.ContentLength = r.resp.ContentLength
	o.TransferEncoding = r.resp.TransferEncoding
	o.Close = r.resp.Close
	o.Body = string(r.body)
	if r.bodyErr != nil {
		o.BodyErr = r.bodyErr.Error()
	}
	o.Open = c.probeOpen()
	return o
}

// diffObservations lists the fields in which got differs from want.
func diffObservations(got, want observation) []string {
	var diffs []string
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if reflect.DeepEqual(g, w) {
			continue
		}
		name := gv.Type().Field(i).Name
		if name == "Body" {
			g, w = truncate([]byte(got.Body)), truncate([]byte(want.Body))
		}
		diffs = append(diffs, fmt.Sprintf("%s: h1 %#v, net/http %#v", name, g, w))
	}
	return diffs
}

// TestMatchesNetHTTP sends the same raw requests to an h1.Server and to net/http's server with
// the same handlers and checks that clients see the same responses: status, fields (but Date),
// framing, body, and whether the connection stays open.
func TestMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	large := randomBytes(1, 64<<10)
	between := randomBytes(2, 3<<10)
	fileBody := append([]byte("<!DOCTYPE html><html><body>"), randomBytes(3, 100<<10)...)
	filePath := writeTempFile(t, fileBody)
	var gzipped bytes.Buffer
	zw := gzip.NewWriter(&gzipped)
	zw.Write([]byte("<html>compressed</html>"))
	zw.Close()

	fixed := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "11")
		io.WriteString(w, "hello world")
	}
	unknownSmall := func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}
	unknownLarge := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for b := large; len(b) > 0; b = b[8<<10:] {
			w.Write(b[:8<<10])
		}
	}
	empty := func(w http.ResponseWriter, r *http.Request) {}
	serveFile := func(withLength bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(filePath)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			if withLength {
				w.Header().Set("Content-Length", strconv.Itoa(len(fileBody)))
			}
			io.Copy(w, f)
		}
	}

	const (
		get11  = "GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n"
		head11 = "HEAD %s HTTP/1.1\r\nHost: example.com\r\n\r\n"
		get10  = "GET %s HTTP/1.0\r\n\r\n"
		get10k = "GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	)
	tests := []struct {
		name    string
		request string // a format with the path for %s
		handler http.HandlerFunc
		// deliberate, if set, turns net/http's observation into the one h1 documents instead.
		deliberate func(o *observation)
	}{
		{name: "fixed length", request: get11, handler: fixed},
		{name: "unknown length small body", request: get11, handler: unknownSmall},
		{name: "unknown length large body", request: get11, handler: unknownLarge},
		{
			name: "unknown length between the buffers", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(between[:1<<10])
				w.Write(between[1<<10:])
			},
			// net/http decides the framing after 2 KiB, h1 after 4 KiB (response.go,
			// stageSize): a body in between gets a Content-Length instead of chunks.
			deliberate: func(o *observation) {
				o.TransferEncoding = nil
				o.ContentLength = int64(len(between))
				o.Header.Set("Content-Length", strconv.Itoa(len(between)))
			},
		},
		{name: "empty body", request: get11, handler: empty},
		{name: "HEAD fixed length", request: head11, handler: fixed},
		{name: "HEAD unknown length small body", request: head11, handler: unknownSmall},
		{name: "HEAD unknown length large body", request: head11, handler: unknownLarge},
		{name: "HEAD empty body", request: head11, handler: empty},
		{
			name: "HEAD declared length not written", request: head11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "1000")
			},
		},
		{
			name: "204 with length and type", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "5")
				w.WriteHeader(http.StatusNoContent)
				io.WriteString(w, "hello")
			},
		},
		{
			name: "304 with length and type", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", "1234")
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
			},
		},
		{
			name: "status without body", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
			},
		},
		{
			name: "sniffed type", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
			},
		},
		{
			name: "sniffed type with declared length", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "4")
				io.WriteString(w, "%PDF")
			},
		},
		{
			name: "content encoding without type", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(gzipped.Bytes())
			},
		},
		{
			name: "flush mid-body", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first ")
				w.(http.Flusher).Flush()
				io.WriteString(w, "second")
			},
		},
		{
			name: "flush before any write", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.(http.Flusher).Flush()
				io.WriteString(w, "late")
			},
		},
		{
			name: "HTTP/1.0 flush mid-body", request: get10k,
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first ")
				w.(http.Flusher).Flush()
				io.WriteString(w, "second")
			},
		},
		{
			name: "HEAD flush mid-body", request: head11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first ")
				w.(http.Flusher).Flush()
				io.WriteString(w, "second")
			},
		},
		{
			name: "status code without text", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(299)
				io.WriteString(w, "odd")
			},
		},
		{
			name: "handler sets Transfer-Encoding", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Transfer-Encoding", "chunked")
				io.WriteString(w, "framed by the server")
			},
			// h1 frames every response itself and drops a handler's Transfer-Encoding
			// (response.go, skipFields): the body is framed, and its type sniffed, as if the
			// handler had not set it. net/http chunks the body and sniffs nothing.
			deliberate: func(o *observation) {
				o.TransferEncoding = nil
				o.ContentLength = int64(len("framed by the server"))
				o.Header.Set("Content-Length", strconv.Itoa(len("framed by the server")))
				o.Header.Set("Content-Type", "text/plain; charset=utf-8")
			},
		},
		{
			name: "handler sets Date", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", handlerDate)
				io.WriteString(w, "dated")
			},
		},
		{
			name: "handler sets Connection close", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "bye")
			},
		},
		{
			name: "early hints then 200", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Link", "</style.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, "<html></html>")
			},
		},
		{
			name: "early hints with length already set", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				// RFC 9110 §8.6: no Content-Length in a 1xx response.
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", "13")
				w.Header().Add("Link", "</app.js>; rel=preload; as=script")
				w.WriteHeader(http.StatusEarlyHints)
				io.WriteString(w, "<html></html>")
			},
		},
		{
			name: "early hints to HTTP/1.0", request: get10,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Link", "</style.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				io.WriteString(w, "body")
			},
			// RFC 9110 §15.2: no 1xx to an HTTP/1.0 client (response.go, writeInformational).
			deliberate: func(o *observation) { o.Interim = nil },
		},
		{
			name: "field value with CR and LF", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Split", "a\r\nX-Injected: yes")
				w.Header().Set("X-Newline", "b\nSet-Cookie: stolen=1")
				io.WriteString(w, "ok")
			},
		},
		{
			name: "invalid field name", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Bad Name"] = []string{"x"}
				w.Header()["X-Colon:"] = []string{"y"}
				w.Header()["X-Newline\r\nInjected"] = []string{"z"}
				w.Header().Set("X-Good", "1")
				io.WriteString(w, "ok")
			},
		},
		{
			name: "invalid length from handler", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "abc")
				io.WriteString(w, "hello")
			},
			// Both drop the invalid value, but net/http checks it after taking its copy of
			// the header, which then keeps the response from getting the computed length;
			// h1 frames the body as if the handler had set no length.
			deliberate: func(o *observation) {
				o.TransferEncoding = nil
				o.ContentLength = 5
				o.Header.Set("Content-Length", "5")
			},
		},
		{
			name: "body shorter than declared", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "short")
			},
		},
		{
			name: "body longer than declared", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello")
				io.WriteString(w, " world")
			},
			// net/http counts the refused write as written and so closes the connection; h1
			// sent exactly the declared body, so the connection stays in step and is kept.
			deliberate: func(o *observation) { o.Open = true },
		},
		{
			name: "one write longer than declared", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello world")
			},
		},
		{
			name: "WriteHeader twice", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, "created")
			},
		},
		{
			name: "header changed after WriteHeader", request: get11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Before", "1")
				w.WriteHeader(http.StatusOK)
				w.Header().Set("X-Before", "2")
				w.Header().Set("X-After", "1")
				io.WriteString(w, "<p>late</p>")
			},
		},
		{
			name: "HTTP/1.0 handler sets Connection close", request: get10k,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "bye")
			},
			// h1 puts its own Connection field in place of the handler's, and to HTTP/1.0
			// that is none when the connection ends (as net/http's own when it closes
			// unasked); net/http keeps the handler's "close" here.
			deliberate: func(o *observation) { o.Header.Del("Connection") },
		},
		{name: "HTTP/1.0 fixed length", request: get10, handler: fixed},
		{name: "HTTP/1.0 unknown length small body", request: get10, handler: unknownSmall},
		{name: "HTTP/1.0 unknown length large body", request: get10, handler: unknownLarge},
		{name: "HTTP/1.0 keep-alive fixed length", request: get10k, handler: fixed},
		{name: "HTTP/1.0 keep-alive unknown length small body", request: get10k, handler: unknownSmall},
		{name: "HTTP/1.0 keep-alive unknown length large body", request: get10k, handler: unknownLarge},
		{name: "HTTP/1.0 keep-alive empty body", request: get10k, handler: empty},
		{name: "HTTP/1.0 keep-alive HEAD", request: "HEAD %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", handler: unknownLarge},
		{name: "request with Connection close", request: "GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", handler: fixed},
		{name: "request with Connection close among tokens", request: "GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: TE, Close\r\n\r\n", handler: fixed},
		{
			name:    "handler clears the request's Connection field",
			request: "GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
			handler: func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Connection")
				fixed(w, r)
			},
		},
		{
			name:    "HTTP/1.0 handler clears the request's Connection field",
			request: get10k,
			handler: func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Connection")
				fixed(w, r)
			},
		},
		{
			name: "HEAD sniffed type with declared length", request: head11,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "4")
				io.WriteString(w, "%PDF")
			},
		},
		{name: "file with declared length and no type", request: get11, handler: serveFile(true)},
		{name: "file of unknown length", request: get11, handler: serveFile(false)},
		{
			name:    "small request body left unread",
			request: "POST %s HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\n0123456789",
			handler: fixed,
		},
		{
			name:    "small request body closed unread",
			request: "POST %s HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\n0123456789",
			handler: func(w http.ResponseWriter, r *http.Request) {
				r.Body.Close()
				fixed(w, r)
			},
		},
		{
			name:    "chunked request body left unread",
			request: "POST %s HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			handler: unknownSmall,
		},
	}

	handlers := make(map[string]http.Handler)
	for _, tt := range tests {
		handlers["/"+strings.ReplaceAll(tt.name, " ", "-")] = tt.handler
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[r.URL.Path].ServeHTTP(w, r)
	})
	h1Addr := startH1(t, mux, nil)
	stdAddr := startStd(t, mux, nil)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := fmt.Sprintf(tt.request, "/"+strings.ReplaceAll(tt.name, " ", "-"))
			got := observe(t, h1Addr, raw)
			want := observe(t, stdAddr, raw)
			if tt.deliberate != nil {
				tt.deliberate(&want)
			}
			for _, d := range diffObservations(got, want) {
				t.Error(d)
			}
		})
	}
}

// echo answers with the request's method, target and body, with a declared length.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer := r.Method + " " + r.RequestURI + " " + string(body)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	io.WriteString(w, answer)
}

// echoRequest is a raw request to the echo handler, the body echo answers it with, and the
// Content-Length of the answer.
type echoRequest struct {
	raw, method, want string
	length            int
}

// echoRequests makes n requests of assorted kinds, each to a path of its own.
func echoRequests(n int) []echoRequest {
	reqs := make([]echoRequest, n)
	for i := range reqs {
		path := fmt.Sprintf("/r/%d", i)
		body := strings.Repeat(strconv.Itoa(i%10), i%50)
		switch i % 4 {
		case 0:
			reqs[i] = echoRequest{raw: get(path), method: "GET", want: "GET " + path + " "}
		case 1:
			// HEAD gets the length of the body echo writes, and no body.
			reqs[i] = echoRequest{
				raw:    "HEAD " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n",
				method: "HEAD", want: "", length: len("HEAD " + path + " "),
			}
		case 2:
			reqs[i] = echoRequest{
				raw:    fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body),
				method: "POST", want: "POST " + path + " " + body,
			}
		case 3:
			reqs[i] = echoRequest{
				raw:    fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", path, len(body)+1, body+"!"),
				method: "PUT", want: "PUT " + path + " " + body + "!",
			}
		}
	}
	for i := range reqs {
		if reqs[i].method != "HEAD" {
			reqs[i].length = len(reqs[i].want)
		}
	}
	return reqs
}

// checkEcho checks r as the answer to req.
func checkEcho(t *testing.T, i int, req echoRequest, r reply) {
	t.Helper()
	if r.resp.StatusCode != http.StatusOK || r.bodyErr != nil || string(r.body) != req.want {
		t.Fatalf("response %d: got %s %q (%v), want 200 %q", i, r.resp.Status, r.body, r.bodyErr, req.want)
	}
	if r.resp.Close {
		t.Fatalf("response %d says the connection closes, want it kept", i)
	}
	if r.resp.ContentLength != int64(req.length) {
		t.Fatalf("response %d: Content-Length %d, want %d", i, r.resp.ContentLength, req.length)
	}
}

func TestKeepAliveManyRequests(t *testing.T) {
	t.Parallel()
	c := dial(t, startH1(t, http.HandlerFunc(echo), nil))
	for i, req := range echoRequests(200) {
		c.send(req.raw)
		checkEcho(t, i, req, c.readReply(req.method))
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	t.Parallel()
	c := dial(t, startH1(t, http.HandlerFunc(echo), nil))
	reqs := echoRequests(100)
	var burst strings.Builder
	for _, req := range reqs {
		burst.WriteString(req.raw)
	}
	for round := range 3 {
		c.send(burst.String())
		for i, req := range reqs {
			checkEcho(t, i, req, c.readReply(req.method))
		}
		if n := c.br.Buffered(); n > 0 {
			t.Fatalf("round %d: %d bytes after the last response, want none", round, n)
		}
	}
}

// TestPipelinedRequestsAfterClose checks that a request asking to close ends the connection
// after its response, with the requests pipelined behind it left unanswered.
func TestPipelinedRequestsAfterClose(t *testing.T) {
	t.Parallel()
	c := dial(t, startH1(t, http.HandlerFunc(echo), nil))
	c.send(get("/1") + "GET /2 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n" + get("/3"))
	if r := c.readOK("GET"); string(r.body) != "GET /1 " || r.resp.Close {
		t.Fatalf("first response: %q, close %v; want \"GET /1 \" on a kept connection", r.body, r.resp.Close)
	}
	if r := c.readOK("GET"); string(r.body) != "GET /2 " || !r.resp.Close {
		t.Fatalf("second response: %q, close %v; want \"GET /2 \" with Connection: close", r.body, r.resp.Close)
	}
	c.expectClosed()
}

// TestPipelinedBurstOfSmallResponses checks a burst of pipelined requests for small bodies of
// unknown length (each framed by the server) is answered whole.
func TestPipelinedBurstOfSmallResponses(t *testing.T) {
	t.Parallel()
	c := dial(t, startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "small answer to "+r.URL.Path)
	}), nil))
	const n = 500
	var burst strings.Builder
	for i := range n {
		burst.WriteString(get(fmt.Sprintf("/%d", i)))
	}
	c.send(burst.String())
	for i := range n {
		r := c.readOK("GET")
		if want := fmt.Sprintf("small answer to /%d", i); string(r.body) != want || r.resp.ContentLength != int64(len(want)) {
			t.Fatalf("response %d: %q with Content-Length %d, want %q with its length", i, r.body, r.resp.ContentLength, want)
		}
	}
}

// hashBody answers with the SHA-256 of the request body it reads, its length, and the
// request's ContentLength.
func hashBody(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%x %d %d", h.Sum(nil), n, r.ContentLength)
}

// chunked encodes body in chunks of size bytes.
func chunked(body []byte, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func TestRequestBodyRead(t *testing.T) {
	t.Parallel()
	addr := startH1(t, http.HandlerFunc(hashBody), nil)
	big := randomBytes(10, 1<<20)
	tests := []struct {
		name       string
		headers    string // framing fields
		wire       string // the body as sent
		body       []byte // the body as the handler should read it
		wantLength int64  // ContentLength the handler should see
	}{
		{"no body", "", "", nil, 0},
		{"empty with length", "Content-Length: 0\r\n", "", nil, 0},
		{"small with length", "Content-Length: 11\r\n", "hello world", []byte("hello world"), 11},
		{"1 MiB with length", "Content-Length: 1048576\r\n", string(big), big, 1 << 20},
		{"1 MiB chunked", "Transfer-Encoding: chunked\r\n", chunked(big, 100_000), big, -1},
		{"one-byte chunks", "Transfer-Encoding: chunked\r\n", chunked([]byte("chunky"), 1), []byte("chunky"), -1},
		{
			"chunked with extension and trailer", "Transfer-Encoding: chunked\r\n",
			"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n", []byte("hello"), -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, addr)
			c.send("POST /upload HTTP/1.1\r\nHost: example.com\r\n" + tt.headers + "\r\n" + tt.wire)
			r := c.readOK("POST")
			want := fmt.Sprintf("%s %d %d", sha256Hex(tt.body), len(tt.body), tt.wantLength)
			if string(r.body) != want {
				t.Errorf("handler read %q, want %q", r.body, want)
			}
			if !c.probeOpen() {
				t.Error("connection closed after a request body read whole, want it kept")
			}
		})
	}
}

// TestMalformedChunkedBody checks that a body that breaks its chunked framing fails the
// handler's read and ends the connection: nothing after it can be told from the body.
func TestMalformedChunkedBody(t *testing.T) {
	t.Parallel()
	addr := startH1(t, http.HandlerFunc(hashBody), nil)
	for name, wire := range map[string]string{
		"bad chunk size":      "zz\r\nhello\r\n0\r\n\r\n",
		"chunk longer":        "3\r\nhello\r\n0\r\n\r\n",
		"chunk size overflow": "fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, addr)
			c.send("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" + wire + get("/next"))
			_, r := c.readFinal("POST")
			if r.resp.StatusCode != http.StatusBadRequest {
				t.Errorf("got %s %q, want the handler's 400 for a failed read", r.resp.Status, r.body)
			}
			if !r.resp.Close {
				t.Error("response lacks Connection: close")
			}
			c.expectClosed()
		})
	}
}

func TestUnreadRequestBody(t *testing.T) {
	t.Parallel()
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("read10") {
			io.ReadFull(r.Body, make([]byte, 10))
		}
		io.WriteString(w, "ignored your body")
	}), nil)
	small := randomBytes(11, 4<<10)
	// Past what the server reads on the handler's behalf (256 KiB) to keep the connection.
	large := randomBytes(12, 1<<20)
	tests := []struct {
		name    string
		target  string
		headers string
		wire    string
		kept    bool
	}{
		{"small with length", "/", "Content-Length: 4096\r\n", string(small), true},
		{"small chunked", "/", "Transfer-Encoding: chunked\r\n", chunked(small, 1000), true},
		{"small partly read", "/?read10", "Content-Length: 4096\r\n", string(small), true},
		{"large with length", "/", "Content-Length: 1048576\r\n", string(large), false},
		{"large chunked", "/", "Transfer-Encoding: chunked\r\n", chunked(large, 64<<10), false},
		{"large partly read", "/?read10", "Content-Length: 1048576\r\n", string(large), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, addr)
			// The client sends all before it reads, as many do: the server must not wait on it.
			sent := make(chan error, 1)
			go func() {
				_, err := io.WriteString(c.nc, "POST "+tt.target+" HTTP/1.1\r\nHost: example.com\r\n"+tt.headers+"\r\n"+tt.wire)
				sent <- err
			}()
			r := c.readOK("POST")
			if string(r.body) != "ignored your body" {
				t.Fatalf("body %q, want the handler's answer", r.body)
			}
			if tt.kept {
				if err := <-sent; err != nil {
					t.Fatalf("sending the request: %v", err)
				}
				if r.resp.Close {
					t.Error("response says Connection: close, want the connection kept")
				}
				if !c.probeOpen() {
					t.Error("connection closed, want it kept after a small unread body")
				}
				return
			}
			if !r.resp.Close {
				t.Error("response lacks Connection: close, want it for a large unread body")
			}
			c.expectClosed()
			<-sent // ends either way once the server has closed
		})
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			hashBody(w, r)
			return
		}
		io.WriteString(w, "not reading")
	}), nil)
	const expectHead = "POST %s HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n"
	wantHash := fmt.Sprintf("%s 11 11", sha256Hex([]byte("hello world")))

	t.Run("handler reads", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr)
		c.send(fmt.Sprintf(expectHead, "/read"))
		// The client holds the body back until it is told to go on.
		if r := c.readReply("POST"); r.resp.StatusCode != http.StatusContinue {
			t.Fatalf("got %s first, want 100 Continue", r.resp.Status)
		}
		c.send("hello world")
		if r := c.readOK("POST"); string(r.body) != wantHash {
			t.Errorf("handler read %q, want %q", r.body, wantHash)
		}
		if !c.probeOpen() {
			t.Error("connection closed after the body was read, want it kept")
		}
	})
	t.Run("handler reads a body sent at once", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr)
		c.send(fmt.Sprintf(expectHead, "/read") + "hello world")
		interim, r := c.readFinal("POST")
		if len(interim) != 1 || interim[0].StatusCode != http.StatusContinue {
			t.Errorf("interim responses %v, want one 100 Continue before the final one", interim)
		}
		if r.resp.StatusCode != http.StatusOK || string(r.body) != wantHash {
			t.Errorf("got %s %q, want 200 %q", r.resp.Status, r.body, wantHash)
		}
		if !c.probeOpen() {
			t.Error("connection closed after the body was read, want it kept")
		}
	})
	t.Run("handler does not read", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr)
		c.send(fmt.Sprintf(expectHead, "/ignore"))
		// A 100 here would ask for a body nobody reads; the final response comes instead.
		r := c.readReply("POST")
		if r.resp.StatusCode != http.StatusOK || string(r.body) != "not reading" {
			t.Fatalf("got %s %q, want 200 \"not reading\" with no 100 Continue before it", r.resp.Status, r.body)
		}
		// The client may or may not send the body now: the connection cannot be kept.
		if !r.resp.Close {
			t.Error("response lacks Connection: close")
		}
		c.expectClosed()
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr)
		c.send("POST /read HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\nhello world")
		interim, r := c.readFinal("POST")
		if len(interim) != 0 {
			t.Errorf("interim responses %v to an HTTP/1.0 client, want none", interim)
		}
		if r.resp.StatusCode != http.StatusOK || string(r.body) != wantHash {
			t.Errorf("got %s %q, want 200 %q", r.resp.Status, r.body, wantHash)
		}
	})
	t.Run("other expectation", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr)
		c.send("POST /read HTTP/1.1\r\nHost: example.com\r\nExpect: something-else\r\nContent-Length: 11\r\n\r\nhello world")
		r := c.readReply("POST")
		if r.resp.StatusCode != http.StatusExpectationFailed || !r.resp.Close {
			t.Fatalf("got %s (close %v), want 417 with Connection: close", r.resp.Status, r.resp.Close)
		}
		c.expectClosed()
	})
}

func TestBodyReadAfterClose(t *testing.T) {
	t.Parallel()
	c := dial(t, startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body.Close()
		_, err := r.Body.Read(make([]byte, 10))
		fmt.Fprint(w, errors.Is(err, http.ErrBodyReadAfterClose))
	}), nil))
	c.send("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello")
	if r := c.readOK("POST"); string(r.body) != "true" {
		t.Errorf("Read after Close: errors.Is(err, http.ErrBodyReadAfterClose) = %s, want true", r.body)
	}
	// As net/http's, the server reads a small body the handler closed, to keep the connection.
	if !c.probeOpen() {
		t.Error("connection closed after a small body closed unread, want it kept")
	}
}

// TestBadRequests checks the answers to requests the server refuses: each with Connection:
// close, then the end of the connection. net/http's server gets the same requests, so that the
// expected codes are its own.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	const maxHeader = 1 << 10
	addr := startH1(t, http.HandlerFunc(echo), func(s *h1.Server) { s.MaxHeaderBytes = maxHeader })
	stdAddr := startStd(t, http.HandlerFunc(echo), func(s *http.Server) { s.MaxHeaderBytes = maxHeader })
	// Both servers read this much past MaxHeaderBytes before they call a header too large.
	tooLarge := strings.Repeat("x", maxHeader+8<<10)
	tests := []struct {
		name string
		raw  string
		want int
		// stdWant, if not 0, is net/http's answer where h1 deliberately differs.
		stdWant int
	}{
		{name: "missing Host", raw: "GET / HTTP/1.1\r\n\r\n", want: 400},
		{name: "two Host fields", raw: "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", want: 400},
		{name: "Host with a space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", want: 400},
		{name: "Host with a slash", raw: "GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n", want: 400},
		{
			name: "empty Host", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", want: 400,
			// h1 refuses an empty Host, which leaves it nothing to place the request by
			// (conn.go, readRequest); net/http takes it.
			stdWant: 200,
		},
		{name: "space in field name", raw: "GET / HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n", want: 400},
		{name: "field line without colon", raw: "GET / HTTP/1.1\r\nHost: example.com\r\nNoColon\r\n\r\n", want: 400},
		{name: "control byte in field value", raw: "GET / HTTP/1.1\r\nHost: example.com\r\nX-Ctl: a\x01b\r\n\r\n", want: 400},
		{name: "header section too large", raw: "GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + tooLarge + "\r\n\r\n", want: 431},
		{name: "request line too large", raw: "GET /" + tooLarge + " HTTP/1.1\r\nHost: example.com\r\n\r\n", want: 431},
		{name: "lowercase version", raw: "GET / http/1.1\r\nHost: example.com\r\n\r\n", want: 400},
		{name: "HTTP/2.0 request line", raw: "GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", want: 505},
		{name: "HTTP/0.9 request line", raw: "GET / HTTP/0.9\r\nHost: example.com\r\n\r\n", want: 505},
		{name: "HTTP/2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: 505, stdWant: 200},
		{name: "unknown transfer coding", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n", want: 501},
		{name: "chunked twice", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 501},
		{name: "chunked not last", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", want: 501},
		{name: "unknown coding with Content-Length", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello", want: 501},
		{name: "conflicting Content-Length fields", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", want: 400},
		{name: "Content-Length list", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5, 6\r\n\r\nhello!", want: 400},
		{name: "Content-Length not a number", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: five\r\n\r\nhello", want: 400},
		{name: "negative Content-Length", raw: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -1\r\n\r\n", want: 400},
		{name: "garbage", raw: "GARBAGE\r\n\r\n", want: 400},
		{name: "TLS handshake", raw: "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", want: 400},
		{name: "empty request target", raw: "GET  HTTP/1.1\r\nHost: example.com\r\n\r\n", want: 400},
		{name: "bad escape in request target", raw: "GET /%zz HTTP/1.1\r\nHost: example.com\r\n\r\n", want: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, addr)
			c.send(tt.raw)
			r := c.readReply(methodOf(tt.raw))
			if r.resp.StatusCode != tt.want {
				t.Errorf("got %s, want %d", r.resp.Status, tt.want)
			}
			if !r.resp.Close {
				t.Error("response lacks Connection: close")
			}
			c.expectClosed()

			want := cmp.Or(tt.stdWant, tt.want)
			std := dial(t, stdAddr)
			std.send(tt.raw)
			if r := std.readReply(methodOf(tt.raw)); r.resp.StatusCode != want {
				t.Errorf("net/http answered %s, want %d", r.resp.Status, want)
			}
		})
	}

	t.Run("header section within the limit", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr)
		c.send("GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + strings.Repeat("x", maxHeader-100) + "\r\n\r\n")
		c.readOK("GET")
	})
	t.Run("answers before it", func(t *testing.T) {
		t.Parallel()
		// The responses to the requests pipelined before a bad one go out before its 400.
		c := dial(t, addr)
		c.send(get("/1") + get("/2") + "GARBAGE\r\n\r\n")
		for _, want := range []string{"GET /1 ", "GET /2 "} {
			if r := c.readOK("GET"); string(r.body) != want {
				t.Fatalf("got %q, want %q", r.body, want)
			}
		}
		if r := c.readReply("GET"); r.resp.StatusCode != http.StatusBadRequest || !r.resp.Close {
			t.Fatalf("got %s (close %v), want 400 with Connection: close", r.resp.Status, r.resp.Close)
		}
		c.expectClosed()
	})
}

func TestCRLFAfterPOSTBody(t *testing.T) {
	t.Parallel()
	c := dial(t, startH1(t, http.HandlerFunc(echo), nil))
	// RFC 9112 §2.2: some clients end a POST body with a CRLF it does not count.
	c.send("POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello\r\n" + get("/b"))
	if r := c.readOK("POST"); string(r.body) != "POST /a hello" {
		t.Fatalf("got %q, want \"POST /a hello\"", r.body)
	}
	if r := c.readOK("GET"); string(r.body) != "GET /b " {
		t.Fatalf("got %q after the CRLF, want \"GET /b \"", r.body)
	}
}

// TestTransferEncodingOverridesContentLength sends a request framed both ways, as in request
// smuggling: the chunked framing is the one that counts (RFC 9112 §6.3), so the bytes after the
// chunked body are read as the next request and not as part of a body.
func TestTransferEncodingOverridesContentLength(t *testing.T) {
	t.Parallel()
	const smuggle = "POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n" + "GET /b HTTP/1.1\r\nHost: example.com\r\n\r\n"
	for name, addr := range map[string]string{
		"h1":       startH1(t, http.HandlerFunc(echo), nil),
		"net/http": startStd(t, http.HandlerFunc(echo), nil),
	} {
		c := dial(t, addr)
		c.send(smuggle)
		if r := c.readOK("POST"); string(r.body) != "POST /a hello" {
			t.Errorf("%s: handler read %q, want the chunked body \"POST /a hello\"", name, r.body)
		}
		if r := c.readOK("GET"); string(r.body) != "GET /b " {
			t.Errorf("%s: next request read as %q, want \"GET /b \"", name, r.body)
		}
	}
}

// startLogged serves h with an h1.Server whose Logger writes text records to the returned
// buffer, at every level.
func startLogged(t *testing.T, h http.Handler) (string, *syncbuf.Buffer) {
	t.Helper()
	logs := new(syncbuf.Buffer)
	addr := startH1(t, h, func(s *h1.Server) {
		s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return addr, logs
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	addr, logs := startLogged(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom in handler")
		case "/panic-mid-body":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			panic("boom mid-body")
		}
		echo(w, r)
	}))

	t.Run("before writing", func(t *testing.T) {
		c := dial(t, addr)
		// The response before the panicking request still arrives, and nothing after it.
		c.send(get("/ok") + get("/panic") + get("/after"))
		if r := c.readOK("GET"); string(r.body) != "GET /ok " {
			t.Fatalf("got %q, want \"GET /ok \"", r.body)
		}
		c.expectClosed()
		if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "boom in handler") {
			t.Errorf("log %q, want an ERROR record with the panic value", got)
		}
	})
	t.Run("mid-body", func(t *testing.T) {
		c := dial(t, addr)
		c.send(get("/panic-mid-body"))
		// What was written may go out, but the client must see the body cut short.
		resp, err := http.ReadResponse(c.br, nil)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("got a whole response %s %q from a handler that panicked, want it cut short", resp.Status, body)
			}
		}
		c.expectClosed()
		if got := logs.String(); !strings.Contains(got, "boom mid-body") {
			t.Errorf("log %q, want the panic value", got)
		}
	})
}

func TestHandlerAbort(t *testing.T) {
	t.Parallel()
	addr, logs := startLogged(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			io.WriteString(w, "some")
			panic(http.ErrAbortHandler)
		}
		echo(w, r)
	}))
	c := dial(t, addr)
	c.send(get("/ok") + get("/abort"))
	c.readOK("GET")
	// The staged "some" must not become a response of its own: the connection just ends.
	c.expectClosed()
	if got := logs.String(); strings.Contains(got, "level=ERROR") {
		t.Errorf("log %q, want no ERROR record for http.ErrAbortHandler", got)
	}
}

// TestWriteErrors checks the errors a handler's writes return, on both servers.
func TestWriteErrors(t *testing.T) {
	t.Parallel()
	write := func(s string) func(http.ResponseWriter) error {
		return func(w http.ResponseWriter) error { _, err := io.WriteString(w, s); return err }
	}
	readFrom := func(s string) func(http.ResponseWriter) error {
		return func(w http.ResponseWriter) error {
			// io.Copy goes by the ResponseWriter's ReadFrom.
			_, err := io.Copy(w, strings.NewReader(s))
			return err
		}
	}
	tests := []struct {
		name   string
		method string
		status int    // written before the writes, unless 0
		length string // declared Content-Length, unless empty
		writes []func(http.ResponseWriter) error
		want   []error
	}{
		{"within declared length", "GET", 0, "10", []func(http.ResponseWriter) error{write("hello"), write("world")}, []error{nil, nil}},
		{"one write past declared length", "GET", 0, "5", []func(http.ResponseWriter) error{write("hello world")}, []error{http.ErrContentLength}},
		{"second write past declared length", "GET", 0, "5", []func(http.ResponseWriter) error{write("hello"), write("!")}, []error{nil, http.ErrContentLength}},
		{"ReadFrom past declared length", "GET", 0, "5", []func(http.ResponseWriter) error{readFrom("hello world")}, []error{http.ErrContentLength}},
		{"write on 204", "GET", 204, "", []func(http.ResponseWriter) error{write("x")}, []error{http.ErrBodyNotAllowed}},
		{"write on 304", "GET", 304, "", []func(http.ResponseWriter) error{write("x")}, []error{http.ErrBodyNotAllowed}},
		{"ReadFrom on 304", "GET", 304, "", []func(http.ResponseWriter) error{readFrom("x")}, []error{http.ErrBodyNotAllowed}},
		{"write on HEAD", "HEAD", 0, "", []func(http.ResponseWriter) error{write("hello")}, []error{nil}},
		{"write on HEAD past declared length", "HEAD", 0, "2", []func(http.ResponseWriter) error{write("hello")}, []error{http.ErrContentLength}},
	}
	results := make(chan []error, 1)
	handler := func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("case"))
		tt := tests[i]
		if tt.length != "" {
			w.Header().Set("Content-Length", tt.length)
		}
		if tt.status != 0 {
			w.WriteHeader(tt.status)
		}
		var errs []error
		for _, f := range tt.writes {
			errs = append(errs, f(w))
		}
		results <- errs
	}
	servers := []struct{ name, addr string }{
		{"h1", startH1(t, http.HandlerFunc(handler), nil)},
		{"net/http", startStd(t, http.HandlerFunc(handler), nil)},
	}
	// One request at a time: results carries the errors of the last one.
	for i, tt := range tests {
		for _, srv := range servers {
			c := dial(t, srv.addr)
			c.send(fmt.Sprintf("%s /?case=%d HTTP/1.1\r\nHost: example.com\r\n\r\n", tt.method, i))
			var got []error
			select {
			case got = <-results:
			case <-time.After(ioTimeout):
				t.Fatalf("%s, %s: handler did not finish", tt.name, srv.name)
			}
			c.readFinal(tt.method)
			for j, err := range got {
				if !errors.Is(err, tt.want[j]) {
					t.Errorf("%s, %s: write %d returned %v, want %v", tt.name, srv.name, j, err, tt.want[j])
				}
			}
		}
	}
}

// TestLargeBodies sends 20 MiB bodies from memory and from a file, the latter by the
// connection's ReadFrom (sendfile), and checks each arrives whole on a connection that then
// serves the next request.
func TestLargeBodies(t *testing.T) {
	t.Parallel()
	const size = 20 << 20
	content := randomBytes(20, size)
	path := writeTempFile(t, content)
	// A range of the file, as the edge serves one: an odd offset and length.
	const offset, n = 1<<20 + 7, size - 1<<20 - 7 - 13
	open := func(w http.ResponseWriter) *os.File {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return nil
		}
		return f
	}
	tests := []struct {
		name    string
		want    []byte
		chunked bool
		handler http.HandlerFunc
	}{
		{
			name: "memory with declared length", want: content,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", strconv.Itoa(size))
				w.Write(content)
			},
		},
		{
			name: "memory of unknown length", want: content, chunked: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				for b := content; len(b) > 0; b = b[1<<20:] {
					w.Write(b[:1<<20])
				}
			},
		},
		{
			name: "file by io.Copy", want: content,
			handler: func(w http.ResponseWriter, r *http.Request) {
				if f := open(w); f != nil {
					defer f.Close()
					w.Header().Set("Content-Type", "application/octet-stream")
					w.Header().Set("Content-Length", strconv.Itoa(size))
					io.Copy(w, f)
				}
			},
		},
		{
			name: "file by io.Copy without type", want: content,
			handler: func(w http.ResponseWriter, r *http.Request) {
				if f := open(w); f != nil {
					defer f.Close()
					w.Header().Set("Content-Length", strconv.Itoa(size))
					io.Copy(w, f)
				}
			},
		},
		{
			name: "file range by io.CopyBuffer", want: content[offset : offset+n],
			handler: func(w http.ResponseWriter, r *http.Request) {
				if f := open(w); f != nil {
					defer f.Close()
					if _, err := f.Seek(offset, io.SeekStart); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					w.Header().Set("Content-Type", "application/octet-stream")
					w.Header().Set("Content-Length", strconv.Itoa(n))
					w.WriteHeader(http.StatusPartialContent)
					io.CopyBuffer(w, io.LimitReader(f, n), make([]byte, 32<<10))
				}
			},
		},
		{
			name: "file of unknown length by io.Copy", want: content, chunked: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				if f := open(w); f != nil {
					defer f.Close()
					w.Header().Set("Content-Type", "application/octet-stream")
					io.Copy(w, f)
				}
			},
		},
	}
	handlers := make(map[string]http.HandlerFunc)
	for i, tt := range tests {
		handlers["/"+strconv.Itoa(i)] = tt.handler
	}
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[r.URL.Path](w, r)
	}), nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, addr)
			c.send(get("/" + strconv.Itoa(i)))
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode/100 != 2 || resp.Close {
				t.Fatalf("got %s (close %v), want success on a kept connection", resp.Status, resp.Close)
			}
			if isChunked := len(resp.TransferEncoding) > 0; isChunked != tt.chunked {
				t.Errorf("Transfer-Encoding %v, want chunked %v", resp.TransferEncoding, tt.chunked)
			}
			if !tt.chunked && resp.ContentLength != int64(len(tt.want)) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(tt.want))
			}
			h := sha256.New()
			got, err := io.Copy(h, resp.Body)
			if err != nil {
				t.Fatalf("reading the body: %v after %d bytes", err, got)
			}
			if sum, want := hex.EncodeToString(h.Sum(nil)), sha256Hex(tt.want); got != int64(len(tt.want)) || sum != want {
				t.Fatalf("got %d bytes with SHA-256 %s, want %d with %s", got, sum, len(tt.want), want)
			}
			if !c.probeOpen() {
				t.Error("connection closed after a whole body, want it kept")
			}
		})
	}
}

// requestView is what a handler sees of a request, in a form that compares across servers.
type requestView struct {
	Method, RequestURI, Host, Proto string
	ProtoMajor, ProtoMinor          int
	URL                             string
	Path, RawPath, RawQuery         string
	Header                          http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
	Body                            string
}

func viewRequest(r *http.Request) requestView {
	body, _ := io.ReadAll(r.Body)
	return requestView{
		Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto,
		ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		URL: r.URL.String(), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		Header: r.Header, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		Close: r.Close, Body: string(body),
	}
}

type connKey struct{}

// seenRequest is a request's view with what a handler learns of its connection.
type seenRequest struct {
	view       requestView
	remoteAddr string
	localAddr  net.Addr // the context's http.LocalAddrContextKey
	connValue  any      // the context's value from ConnContext
}

// TestRequestFields checks what handlers see of requests: the same as net/http's handlers,
// and the connection's addresses and ConnContext value.
func TestRequestFields(t *testing.T) {
	t.Parallel()
	seen := make(chan seenRequest, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		seen <- seenRequest{viewRequest(r), r.RemoteAddr, local, r.Context().Value(connKey{})}
	})
	// ConnContext gets a context that already carries the local address.
	connContextSawLocal := make(chan bool, 1)
	addr := startH1(t, handler, func(s *h1.Server) {
		s.DisableGeneralOptionsHandler = true
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			local, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
			select {
			case connContextSawLocal <- local != nil && local.String() == c.LocalAddr().String():
			default:
			}
			return context.WithValue(ctx, connKey{}, "conn from "+c.RemoteAddr().String())
		}
	})
	// "OPTIONS *" goes to the handler on both.
	stdAddr := startStd(t, handler, func(s *http.Server) { s.DisableGeneralOptionsHandler = true })

	tests := []struct{ name, raw string }{
		{"origin form", "GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: test\r\nX-Multi: 1\r\nX-Multi: 2\r\nx-lower: v\r\n\r\n"},
		{"absolute form", "GET http://origin.example:81/p?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"},
		{"escaped slash", "GET /a%2Fb/c HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"body with length", "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"},
		{"chunked body", "PUT /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"Connection close", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0 without Host", "GET /old HTTP/1.0\r\nPragma: no-cache\r\n\r\n"},
		{"HTTP/1.0 keep-alive", "HEAD /old HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n"},
	}
	for _, tt := range tests {
		var views [2]requestView
		for i, a := range []string{addr, stdAddr} {
			c := dial(t, a)
			c.send(tt.raw)
			var s seenRequest
			select {
			case s = <-seen:
			case <-time.After(ioTimeout):
				t.Fatalf("%s: handler not called", tt.name)
			}
			c.readFinal(methodOf(tt.raw))
			views[i] = s.view
			if a != addr {
				continue
			}
			if s.remoteAddr != c.nc.LocalAddr().String() {
				t.Errorf("%s: RemoteAddr %q, want the client's address %q", tt.name, s.remoteAddr, c.nc.LocalAddr())
			}
			if s.localAddr == nil || s.localAddr.String() != addr {
				t.Errorf("%s: context's LocalAddrContextKey %v, want the server's address %s", tt.name, s.localAddr, addr)
			}
			if want := "conn from " + c.nc.LocalAddr().String(); s.connValue != want {
				t.Errorf("%s: context's ConnContext value %v, want %q", tt.name, s.connValue, want)
			}
		}
		if !reflect.DeepEqual(views[0], views[1]) {
			t.Errorf("%s: handler saw\n%+v\nwant what net/http's sees\n%+v", tt.name, views[0], views[1])
		}
		if _, ok := views[0].Header["Host"]; ok {
			t.Errorf("%s: Host left in the header, want it in Request.Host only", tt.name)
		}
	}
	if !<-connContextSawLocal {
		t.Error("ConnContext's context lacks the connection's local address")
	}
}

// TestShutdownEndsKeepAlive checks that a response finished while the server shuts down does
// not offer to keep the connection, to an HTTP/1.1 client or to an HTTP/1.0 one that asked for
// keep-alive, and that the connection then ends.
func TestShutdownEndsKeepAlive(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"HTTP/1.1":            get("/"),
		"HTTP/1.0 keep-alive": "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			entered, release := make(chan struct{}), make(chan struct{})
			srv := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				<-release
				w.Header().Set("Content-Length", "4")
				io.WriteString(w, "done")
			})}
			ln := listenLoopback(t)
			addr := ln.Addr().String()
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			c := dial(t, addr)
			c.send(raw)
			select {
			case <-entered:
			case <-time.After(ioTimeout):
				t.Fatal("handler not called")
			}
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			shutdown := make(chan error, 1)
			go func() { shutdown <- srv.Shutdown(ctx) }()
			// Shutdown marks the server closing before it closes the listener: once a dial is
			// refused, the handler answers on a closing server.
			for {
				nc, err := net.DialTimeout("tcp", addr, ioTimeout)
				if err != nil {
					break
				}
				nc.Close()
				if ctx.Err() != nil {
					t.Fatal("listener still accepting after Shutdown began")
				}
			}
			close(release)

			r := c.readOK("GET")
			if got := r.resp.Header.Get("Connection"); !r.resp.Close || strings.EqualFold(got, "keep-alive") {
				t.Errorf("response has Connection %q (close %v), want it to end the connection", got, r.resp.Close)
			}
			c.expectClosed()
			if err := <-shutdown; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// TestGoClient serves Go's own client: requests of all kinds, one after another, go over one
// connection, the request bodies with "Expect: 100-continue" included.
func TestGoClient(t *testing.T) {
	t.Parallel()
	var conns sync.Map
	addr := startH1(t, http.HandlerFunc(hashBody), func(s *h1.Server) {
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			conns.Store(c.RemoteAddr().String(), true)
			return ctx
		}
	})
	client := &http.Client{
		Timeout: ioTimeout,
		Transport: &http.Transport{
			MaxConnsPerHost:       1,
			ExpectContinueTimeout: ioTimeout, // the body waits for the server's 100 Continue
		},
	}
	t.Cleanup(client.CloseIdleConnections)
	for i := range 20 {
		body := randomBytes(uint64(100+i), i*7000)
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		expect := i%2 == 1
		if expect {
			req.Header.Set("Expect", "100-continue")
		}
		got100 := false
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got100Continue: func() { got100 = true },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%s %d %d", sha256Hex(body), len(body), len(body)); err != nil || string(got) != want {
			t.Fatalf("request %d: got %q (%v), want %q", i, got, err, want)
		}
		if got100 != expect {
			t.Errorf("request %d: 100 Continue received %v, want %v", i, got100, expect)
		}
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("client used %d connections, want 1 kept for all requests", n)
	}
}

// TestGeneralOptions: "OPTIONS *" asks about the server, not a resource; it is answered as
// net/http's server answers it, without the handler, and the connection carries on.
func TestGeneralOptions(t *testing.T) {
	t.Parallel()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	for _, server := range []struct{ name, addr string }{
		{"h1", startH1(t, handler, nil)},
		{"net/http", startStd(t, handler, nil)},
	} {
		for _, raw := range []string{
			"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
			"OPTIONS * HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello",
		} {
			c := dial(t, server.addr)
			c.send(raw)
			r := c.readOK("OPTIONS")
			if len(r.body) != 0 || r.resp.ContentLength != 0 {
				t.Errorf("%s: %q: body %q, Content-Length %d, want an empty body of length 0", server.name, raw, r.body, r.resp.ContentLength)
			}
			if !c.probeOpen() {
				t.Errorf("%s: %q: connection closed, want it kept", server.name, raw)
			}
		}
	}
}
