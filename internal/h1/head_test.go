package h1

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

type headCtxKey struct{}

// FuzzParseHead checks parseHead against net/http on any bytes: it declines, or it gives the
// request http.ReadRequest followed by readRequest's checks gives (every field, unexported
// ones included, the context being the connection's), having read as many bytes, and never
// takes a head that those refuse. It never changes its input.
func FuzzParseHead(f *testing.F) {
	for _, seed := range headSeeds() {
		f.Add([]byte(seed))
	}
	ctx := context.WithValue(context.Background(), headCtxKey{}, "conn")
	f.Fuzz(func(t *testing.T, in []byte) {
		checkParseHead(t, ctx, in)
	})
}

// FuzzParseHeadParts makes the same comparison on heads put together from a request line's
// parts and three fields, so that the fuzzer spends its time near the common shape rather than
// on bytes that both refuse at once.
func FuzzParseHeadParts(f *testing.F) {
	f.Add("GET", "/a/b?x=1&y=%20z", "HTTP/1.1", "example.com:8080", "accept-encoding", " gzip ", "X-Multi", "1")
	f.Add("HEAD", "/it's(1)!*~", "HTTP/1.0", "", "Connection", "keep-alive", "X-Multi", "2")
	f.Add("POST", "/q?", "HTTP/1.1", "[::1]:80", "Content-Length", "0", "Pragma", "no-cache")
	f.Add("GET", "//x/%2F", "HTTP/1.1", "a b", "HOST", "other", "Bad Name", "\x7f")
	f.Add("OPTIONS", "*", "HTTP/1.1", "example.com", "Expect", "100-continue", "X-Fold", "a\r\n b")
	ctx := context.WithValue(context.Background(), headCtxKey{}, "conn")
	f.Fuzz(func(t *testing.T, method, target, proto, host, name1, value1, name2, value2 string) {
		head := method + " " + target + " " + proto + "\r\nHost: " + host + "\r\n" +
			name1 + ":" + value1 + "\r\n" + name2 + ":" + value2 + "\r\nX-Multi: 3\r\n\r\n"
		checkParseHead(t, ctx, []byte(head))
	})
}

// checkParseHead runs parseHead on in and compares it with net/http; it reports whether
// parseHead took the head.
func checkParseHead(t *testing.T, ctx context.Context, in []byte) bool {
	t.Helper()
	buf := bytes.Clone(in)
	got, n, ok := parseHead(baseRequest(ctx), buf)
	if !bytes.Equal(buf, in) {
		t.Fatalf("parseHead changed its input %q to %q", in, buf)
	}
	if !ok {
		return false
	}
	want, read, err := referenceRequest(ctx, in)
	if err != nil {
		t.Fatalf("parseHead took a head that net/http and the checks refuse (%v): %q", err, in)
	}
	if n != read {
		t.Fatalf("parseHead read %d bytes, net/http %d: %q", n, read, in)
	}
	if got.Context() != ctx {
		t.Fatalf("request's context is not the connection's: %q", in)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseHead gave\n%#v\nURL %#v\nnet/http gives\n%#v\nURL %#v\ninput %q", got, got.URL, want, want.URL, in)
	}
	for k, vv := range got.Header {
		if len(vv) == 1 && cap(vv) != 1 {
			t.Fatalf("field %s's value has capacity %d: an append would overwrite the next: %q", k, cap(vv), in)
		}
	}
	return true
}

// referenceRequest reads a request from in as readRequestSlow does, and returns how many bytes
// of in it read.
func referenceRequest(ctx context.Context, in []byte) (*http.Request, int, error) {
	br := bufio.NewReaderSize(bytes.NewReader(in), len(in)+16)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, 0, err
	}
	if err := checkRequest(req); err != nil {
		return nil, 0, err
	}
	return req.WithContext(ctx), len(in) - br.Buffered(), nil
}

// TestParseHead checks that the requests browsers and tools send take the fast path, that
// those it leaves to net/http do not, and that either way the request is net/http's.
func TestParseHead(t *testing.T) {
	ctx := context.WithValue(context.Background(), headCtxKey{}, "conn")
	fast := []string{
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /page.html HTTP/1.1\r\nHost: bench.test\r\nAccept-Encoding: gzip\r\nUser-Agent: bench\r\n\r\n",
		browserRequest,
		"GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com:8080\r\nX-Multi: 1\r\nX-Multi: 2\r\nx-lower: v\r\n\r\n",
		"GET /q? HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /q?a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /a%2Fb/c HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /a#frag HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /it's(1) HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET //double HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n",
		"HEAD /old HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Keep-Alive, close\r\n\r\n",
		"POST /form HTTP/1.1\r\nhost: example.com\r\nACCEPT: */*\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nX-Obs-Text: caf\xc3\xa9\r\n\r\n" + "GET /next HTTP/1.1\r\n",
	}
	slow := []string{
		"",
		"GET / HTTP/1.1\r\nHost: example.com\r\n",
		"GET / HTTP/1.1\nHost: example.com\n\n",
		"GET / HTTP/1.1\r\nHost: example.com\nX: y\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: example.com\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nX-Fold: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nX-Ctl: a\x01b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nX-Del: a\x7fb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nTrailer: X\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: example.com\r\ncontent-length: 0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	}
	for _, in := range fast {
		if !checkParseHead(t, ctx, []byte(in)) {
			t.Errorf("left to net/http: %q", in)
		}
	}
	for _, in := range slow {
		if checkParseHead(t, ctx, []byte(in)) {
			t.Errorf("taken by the fast path: %q", in)
		}
	}
}

// browserRequest is a request as a browser sends it.
const browserRequest = "GET /assets/app.js?v=3 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
	"sec-ch-ua-platform: \"Linux\"\r\n" +
	"Accept: */*\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"If-None-Match: \"0123456789abcdef\"\r\n\r\n"

// headSeeds are heads of the common shape and of every shape around it: the connection-level
// fuzz seeds, the requests that must be refused, and variants of the common ones.
func headSeeds() []string {
	seeds := lcFuzzSeeds()
	seeds = append(seeds, browserRequest,
		"GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com:8080\r\nX-Multi: 1\r\nX-Multi: 2\r\nx-lower: v\r\n\r\n",
		"GET /q? HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /it's(1)!*~ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"HEAD /old HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nHOST: example.org\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n",
		"GET / http/1.1\r\nHost: example.com\r\n\r\n",
		"GET  HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET / HTTP/1.1\r\n Host: example.com\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nX-Ctl: a\x01b\r\nX-Obs: \xff\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: lc.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	)
	return append(seeds, strings.ReplaceAll(browserRequest, "\r\n", "\n"))
}

// BenchmarkReadHead compares the fast path with http.ReadRequest followed by the checks and
// the context, as the connection would otherwise read the same head: the benchmark's request
// and a browser's.
func BenchmarkReadHead(b *testing.B) {
	ctx := context.WithValue(context.Background(), headCtxKey{}, "conn")
	for _, head := range []struct{ name, raw string }{
		{"small", "GET /page.html HTTP/1.1\r\nHost: bench.test\r\nAccept-Encoding: gzip\r\nUser-Agent: bench\r\n\r\n"},
		{"browser", browserRequest},
	} {
		raw := []byte(head.raw)
		b.Run(head.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := parseHead(baseRequest(ctx), raw); !ok {
					b.Fatal("declined")
				}
			}
		})
		b.Run(head.name+"/net-http", func(b *testing.B) {
			b.ReportAllocs()
			br := bufio.NewReaderSize(nil, readBufferSize)
			rd := bytes.NewReader(raw)
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				req, err := http.ReadRequest(br)
				if err == nil {
					err = checkRequest(req)
				}
				if err != nil {
					b.Fatal(err)
				}
				req.WithContext(ctx)
			}
		})
	}
}
