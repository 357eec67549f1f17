package httpserve

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// TestServerTLSAndPlain serves over plain HTTP/1.1 and over TLS with HTTP/2, by package h2 and
// by net/http's server (StdHTTP2).
func TestServerTLSAndPlain(t *testing.T) {
	for _, std := range []bool{false, true} {
		t.Run(fmt.Sprintf("StdHTTP2=%v", std), func(t *testing.T) { serveTLSAndPlain(t, Config{StdHTTP2: std}) })
	}
}

func serveTLSAndPlain(t *testing.T, cfg Config) {
	files := map[string]*testFile{
		"/index.html": {body: htmlPage("home", 1024), typ: "text/html; charset=utf-8"},
		"/medium.bin": {body: randomBytes(1, 200_000), typ: "application/octet-stream"},
		"/big.bin":    {body: randomBytes(2, 300_000), typ: "application/octet-stream", chunkAt: []int{100_000, 170_000}},
	}
	d := newDeploy(t, files)
	s, err := newSiteServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSite(d.site)
	cert, pool := testcert.SelfSigned(t)

	for _, useTLS := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var tc *tls.Config
		scheme, proto := "http", "HTTP/1.1"
		if useTLS {
			tc = &tls.Config{Certificates: []tls.Certificate{cert}}
			scheme, proto = "https", "HTTP/2.0"
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx, ln, tc) }()

		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, DisableCompression: true}
		client := &http.Client{Transport: tr}
		for _, p := range []string{"/big.bin", "/medium.bin", "/"} {
			resp, err := client.Get(scheme + "://" + ln.Addr().String() + p)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			f := files[p]
			if p == "/" {
				f = files["/index.html"]
			}
			want := f.body
			if resp.Proto != proto || resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("%s %s: %s %d, %d bytes", scheme, p, resp.Proto, resp.StatusCode, len(body))
			}
		}
		tr.CloseIdleConnections()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	}
}

func TestServeListenerError(t *testing.T) {
	s, err := New(Config{Handler: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := s.Serve(context.Background(), ln, nil); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve on a closed listener: %v", err)
	}
}

func TestNewRejectsConfig(t *testing.T) {
	h := http.NotFoundHandler()
	for _, c := range []Config{{Handler: h, ReadHeaderTimeout: -1}, {Handler: h, IdleTimeout: -1}, {Handler: h, MaxHeaderBytes: -1},
		{Handler: h, ShutdownTimeout: -1}, {Handler: h, SendTimeout: -1}, {Handler: h, ConnCaps: &connlimit.Config{MaxConns: -1}},
		{Handler: h, Registerer: prometheus.NewRegistry()}, {}} {
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v): %v", c, err)
		}
	}
}
