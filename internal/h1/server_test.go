package h1_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// observation is what a client sees of a response to one raw request, in a form that compares
// across servers: the Date value (a clock reading) is left out.
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
	if _, ok := r.resp.Header["Date"]; !ok {
		t.Errorf("response from %s has no Date field", addr)
	}
	r.resp.Header.Del("Date")
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
	mux := pingOr(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[r.URL.Path].ServeHTTP(w, r)
	}))
	h1Addr := startH1(t, mux, nil)
	stdAddr := startStd(t, mux)

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
