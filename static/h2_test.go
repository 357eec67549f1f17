package static

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dt-cdn/dt/internal/httpserve"
	"github.com/dt-cdn/dt/internal/testkit/h2test"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// sender sends one request with exactly the given request target and header lines and reads
// the response.
type sender func(t testing.TB, method, target string, lines ...string) rawResponse

// overHTTP1 sends requests to srv over HTTP/1.1 (see do).
func overHTTP1(srv *testServer) sender {
	return func(t testing.TB, method, target string, lines ...string) rawResponse {
		t.Helper()
		return do(t, srv, method, target, lines...)
	}
}

// overHTTP2 serves h as an edge does over TLS (see serveTLS) and sends requests to it as raw
// HTTP/2 frames, one connection each: the :path is the target exactly as given, which no
// HTTP/2 client library would leave alone.
func overHTTP2(t *testing.T, h *Handler) sender {
	t.Helper()
	addr, pool := serveTLS(t, h)
	return func(t testing.TB, method, target string, lines ...string) rawResponse {
		t.Helper()
		return doH2(t, addr, pool, method, target, lines...)
	}
}

// serveTLS serves h with httpserve.Server.Serve over TLS on loopback until the test ends:
// HTTP/2 by package h2, as an edge serves it.
func serveTLS(t *testing.T, h *Handler) (addr string, pool *x509.CertPool) {
	t.Helper()
	s, err := httpserve.New(httpserve.Config{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	return serveLoopbackTLS(t, s)
}

// serveLoopbackTLS runs s.Serve over TLS on 127.0.0.1 with a self-signed certificate until the
// test ends, and returns its address and a pool that trusts it.
func serveLoopbackTLS(t *testing.T, s *httpserve.Server) (addr string, pool *x509.CertPool) {
	t.Helper()
	cert, pool := testcert.SelfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return 10 s after its context ended")
		}
	})
	return ln.Addr().String(), pool
}

// doH2 sends one request as HEADERS on stream 1 of a new connection and reads its response.
func doH2(t testing.TB, addr string, pool *x509.CertPool, method, target string, lines ...string) rawResponse {
	t.Helper()
	conn := h2test.Dial(t, addr, pool, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	defer conn.Close() // not held to the test's end: a conformance run sends many requests
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fr := conn.Framer
	fr.WriteWindowUpdate(0, 1<<30)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "edge.test"}, {Name: ":path", Value: target},
	}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		fields = append(fields, hpack.HeaderField{Name: strings.ToLower(k), Value: strings.TrimSpace(v)})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h2test.Block(fields...), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	r := rawResponse{header: http.Header{}}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s %s over HTTP/2: %v", method, target, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			status, _ := strconv.Atoi(f.PseudoValue("status"))
			if status < 200 {
				continue
			}
			r.status = status
			for _, hf := range f.RegularFields() {
				k := http.CanonicalHeaderKey(hf.Name)
				r.header[k] = append(r.header[k], hf.Value)
			}
			if f.StreamEnded() {
				return r
			}
		case *http2.DataFrame:
			r.body = append(r.body, f.Data()...)
			if f.StreamEnded() {
				return r
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("%s %s over HTTP/2: stream reset with %v", method, target, f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("%s %s over HTTP/2: GOAWAY %v", method, target, f.ErrCode)
		}
	}
}
