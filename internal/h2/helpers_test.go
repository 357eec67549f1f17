package h2

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// testServer is an http.Server on 127.0.0.1 serving HTTPS with an h2.Server.
type testServer struct {
	addr   string
	hs     *http.Server
	h2     *Server
	pool   *x509.CertPool
	errc   chan error
	closed bool
}

// startServer serves h over TLS on loopback until the test ends.
func startServer(t testing.TB, h http.Handler, configure func(*Server, *http.Server)) *testServer {
	t.Helper()
	cert, pool := testcert.SelfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		addr: ln.Addr().String(),
		hs: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		},
		h2:   &Server{},
		pool: pool,
		errc: make(chan error, 1),
	}
	if configure != nil {
		configure(ts.h2, ts.hs)
	}
	ts.h2.Configure(ts.hs)
	go func() { ts.errc <- ts.hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { ts.close(t) })
	return ts
}

// shutdown shuts the server down gracefully, waiting at most d.
func (ts *testServer) shutdown(t testing.TB, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := ts.hs.Shutdown(ctx)
	ts.closed = true
	if serr := <-ts.errc; !errors.Is(serr, http.ErrServerClosed) {
		t.Errorf("Serve: %v", serr)
	}
	return err
}

func (ts *testServer) close(t testing.TB) {
	if ts.closed {
		return
	}
	if err := ts.shutdown(t, 5*time.Second); err != nil {
		t.Errorf("Shutdown: %v", err)
		ts.hs.Close()
	}
}

// client returns an HTTP/2-only client for the server.
func (ts *testServer) client() *http.Client {
	var p http.Protocols
	p.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: ts.pool},
		Protocols:          &p,
		DisableCompression: true,
	}}
}

func (ts *testServer) url(path string) string { return "https://" + ts.addr + path }

// dialH2 opens a TLS connection that negotiated h2, for tests that speak frames.
func (ts *testServer) dialH2(t testing.TB) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
