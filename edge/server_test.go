package edge

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

	"github.com/dt-cdn/dt/internal/testcert"
)

// TestServerTLSAndPlain serves over plain HTTP/1.1 and over TLS with HTTP/2, by package h2 and
// by net/http's server (StdHTTP2).
func TestServerTLSAndPlain(t *testing.T) {
	for _, std := range []bool{false, true} {
		t.Run(fmt.Sprintf("StdHTTP2=%v", std), func(t *testing.T) { serveTLSAndPlain(t, Config{StdHTTP2: std}) })
	}
}

func serveTLSAndPlain(t *testing.T, cfg Config) {
	files := mainFiles()
	d := newDeploy(t, files, mainRules, SiteOptions{})
	s, err := New(cfg)
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
	s, err := New(Config{})
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
	for _, c := range []Config{{ReadHeaderTimeout: -1}, {IdleTimeout: -1}, {MaxHeaderBytes: -1}, {ShutdownTimeout: -1}} {
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v): %v", c, err)
		}
	}
}
