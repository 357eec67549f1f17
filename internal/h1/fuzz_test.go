package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzServeConn sends whatever bytes the fuzzer makes up on a connection, then closes the
// client's sending side. The server must not panic, must end the connection soon after, and
// must send only well-formed HTTP/1.x responses, no more of them than there are requests in
// the input, and nothing after a response that closes the connection.
//
// A loopback TCP connection rather than net.Pipe: the client has to half-close to tell the
// server that the input has ended while it still reads the responses, and net.Pipe cannot.
func FuzzServeConn(f *testing.F) {
	for _, seed := range lcFuzzSeeds() {
		f.Add([]byte(seed))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		lcServeFuzzInput(t, l, in)
	})
}

// lcFuzzMaxHeaderBytes is small so that short inputs reach the header section limit.
const lcFuzzMaxHeaderBytes = 2 << 10

func lcServeFuzzInput(t *testing.T, l net.Listener, in []byte) {
	client, err := net.DialTimeout("tcp", l.Addr().String(), lcWait)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Handler: lcFuzzHandler(t),
		// Only a backstop: the client's half-close ends every request well before.
		ReadHeaderTimeout: 4 * lcWait,
		IdleTimeout:       4 * lcWait,
		SendTimeout:       4 * lcWait,
		MaxHeaderBytes:    lcFuzzMaxHeaderBytes,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.ServeConn(context.Background(), server)
	}()

	client.SetDeadline(time.Now().Add(lcWait))
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		// The server may end the connection before it has read everything: errors are fine.
		if _, err := client.Write(in); err == nil {
			client.(*net.TCPConn).CloseWrite()
		}
	}()
	out, err := io.ReadAll(client)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not end the connection within %v of the end of the input; it sent %q", lcWait, out)
	}
	// A server that closes with input unread resets the connection, which can cut what the
	// client receives short.
	reset := err != nil
	client.Close()
	select {
	case <-served:
	case <-time.After(lcWait):
		t.Fatalf("ServeConn did not return within %v of the client closing", lcWait)
	}
	<-sent
	lcCheckResponses(t, in, out, reset)
}

// lcFuzzHandler reads the request body, unless the path says not to (the server then reads
// or refuses what is left), and answers in one of several ways that the path chooses: a
// length the handler gives or not, a flush, a chunked body, no body.
func lcFuzzHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int64
		if !strings.Contains(r.URL.Path, "noread") {
			var err error
			n, err = io.Copy(io.Discard, r.Body)
			if err == nil && r.ContentLength >= 0 && n != r.ContentLength {
				t.Errorf("request body read as complete with %d bytes, Content-Length %d", n, r.ContentLength)
			}
		}
		// The client needs the method to know whether a body follows the header section.
		w.Header().Set("X-Lc-Method", r.Method)
		echo := fmt.Sprintf("%.64s %.64q %d", r.Method, r.URL.Path, n)
		switch p := r.URL.Path; {
		case strings.Contains(p, "flush"):
			io.WriteString(w, echo)
			w.(http.Flusher).Flush()
			io.WriteString(w, " flushed")
		case strings.Contains(p, "big"):
			// More than the server holds back to decide the length: chunked.
			w.Write(bytes.Repeat([]byte(echo+"\n"), stageSize/len(echo)+2))
		case strings.Contains(p, "length"):
			w.Header().Set("Content-Length", strconv.Itoa(len(echo)))
			io.WriteString(w, echo)
		case strings.Contains(p, "204"):
			w.WriteHeader(http.StatusNoContent)
		case strings.Contains(p, "304"):
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, echo)
		}
	})
}

// lcCheckResponses checks out, all the server sent for the input in, as a sequence of HTTP/1.x
// responses. With reset, out may end anywhere.
func lcCheckResponses(t *testing.T, in, out []byte, reset bool) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(out), 64<<10)
	final, interim := 0, 0
	for i := 0; ; i++ {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: lcResponseMethod(br)})
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		if err != nil {
			if reset {
				return
			}
			t.Fatalf("response %d: %v\ninput: %q\noutput: %q", i, err, in, out)
		}
		if resp.ProtoMajor != 1 || resp.StatusCode < 100 || resp.StatusCode > 999 {
			t.Fatalf("response %d has status line %s %s\ninput: %q\noutput: %q", i, resp.Proto, resp.Status, in, out)
		}
		if resp.StatusCode < 200 {
			interim++
			continue
		}
		final++
		if _, err := br.Peek(1); resp.Close && err != io.EOF {
			t.Fatalf("response %d closes the connection, but more follows\ninput: %q\noutput: %q", i, in, out)
		}
	}
	if reset {
		return
	}
	if limit := lcCountRequests(in); final > limit {
		t.Errorf("%d responses to an input of at most %d requests\ninput: %q\noutput: %q", final, limit, in, out)
	}
	if interim > final {
		t.Errorf("%d interim responses for %d final ones\ninput: %q\noutput: %q", interim, final, in, out)
	}
	if len(in) > 0 && final == 0 {
		t.Errorf("no response to a non-empty input\ninput: %q\noutput: %q", in, out)
	}
}

// lcResponseMethod returns the method of the request that the next response in br answers, as
// far as the client can tell: HEAD when the handler says so, which means no body follows.
func lcResponseMethod(br *bufio.Reader) string {
	b, _ := br.Peek(br.Size())
	if end := bytes.Index(b, []byte("\r\n\r\n")); end >= 0 && bytes.Contains(b[:end+2], []byte("\r\nX-Lc-Method: HEAD\r\n")) {
		return http.MethodHead
	}
	return http.MethodGet
}

// lcCountRequests returns how many responses the input can call for: its requests as net/http's
// parser reads them (with the CRLF a client may send after a POST body skipped, as the server
// does), and one for what ends it if that is not a request.
func lcCountRequests(in []byte) int {
	br := bufio.NewReader(bytes.NewReader(in))
	n := 0
	for method := ""; ; n++ {
		if method == http.MethodPost {
			for {
				b, err := br.Peek(1)
				if err != nil || (b[0] != '\r' && b[0] != '\n') {
					break
				}
				br.Discard(1)
			}
		}
		if _, err := br.Peek(1); err == io.EOF {
			return n
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return n + 1
		}
		method = req.Method
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return n + 1
		}
	}
}

// lcFuzzSeeds are requests valid and not, alone and pipelined.
func lcFuzzSeeds() []string {
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: lc.test\r\n\r\n" }
	return []string{
		"",
		get("/"),
		get("/a") + get("/flush") + "HEAD /big HTTP/1.1\r\nHost: lc.test\r\n\r\n" + get("/big") + get("/length"),
		get("/204") + get("/304") + "HEAD /length HTTP/1.1\r\nHost: lc.test\r\n\r\n" + get("/"),
		"POST /up HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 5\r\n\r\nhello\r\n" + get("/after-crlf"),
		"POST /up HTTP/1.1\r\nHost: lc.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n" + get("/"),
		"POST /up HTTP/1.1\r\nHost: lc.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
		"POST /big HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 10\r\n\r\nshort",
		"PUT /up HTTP/1.1\r\nHost: lc.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc" + get("/"),
		"PUT /up HTTP/1.1\r\nHost: lc.test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"PUT /up HTTP/1.1\r\nHost: lc.test\r\nExpect: teapot\r\nContent-Length: 3\r\n\r\nabc",
		"PUT /noread HTTP/1.1\r\nHost: lc.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc" + get("/"),
		"POST /noread HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 5\r\n\r\nhello" + get("/after-drain"),
		"POST /noread/big HTTP/1.1\r\nHost: lc.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get("/"),
		"GET / HTTP/1.1\r\nHost: lc.test\r\nX-Big: " + strings.Repeat("h", 2*lcFuzzMaxHeaderBytes) + "\r\n\r\n",
		"GET /" + strings.Repeat("p", 3*lcFuzzMaxHeaderBytes) + " HTTP/1.1\r\nHost: lc.test\r\n\r\n",
		"GET http://lc.test/abs?q=1 HTTP/1.1\r\nHost: lc.test\r\n\r\n",
		"GET http://other.test/abs HTTP/1.1\r\nHost: lc.test\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n" + get("/after-close"),
		"GET /length HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
		"CONNECT lc.test:443 HTTP/1.1\r\nHost: lc.test:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: lc.test\r\n\r\n" + get("/"),
		"GET /lf HTTP/1.1\nHost: lc.test\n\nGET /flush HTTP/1.1\nHost: lc.test\n\n",
		"GET /fold HTTP/1.1\r\nHost: lc.test\r\nX-Folded: a\r\n b\r\n\r\n",
		"GET /nul HTTP/1.1\r\nHost: lc.test\r\nX-Nul: a\x00b\r\n\r\n",
		"GET /n\x00ul HTTP/1.1\r\nHost: lc.test\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: lc.test\r\nConnection: close\r\n\r\n" + get("/never"),
		"POST / HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: lc.test\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: lc.test\r\nContent-Length: -1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: lc.test\r\nBad Name: x\r\n\r\n",
		"\r\n\r\n" + get("/"),
		"GET / HTTP/1.1\r\nHost: lc.",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	}
}
