package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testdns"

	"github.com/dt-cdn/dt/internal/testkit/pebble"

	"github.com/miekg/dns"
)

// These tests run a real ACME server, Pebble, in-process on 127.0.0.1, and a DNS server that
// resolves the edge's name to 127.0.0.1, so that Pebble's VA performs real http-01 and
// tls-alpn-01 validations against the edge's listeners. Nothing leaves the loopback interface.
//
// Pebble's VA starts a task loop that never ends (va.New); TestMain ignores it when checking
// for leftover goroutines.

// testDomain is under .test, reserved for testing (RFC 2606 §2), so no real resolver would
// ever answer for it; only the test's DNS server does.
const testDomain = "edge1.dt.test"

// pebbleServer is a running Pebble: the directory URL, a client trusting its HTTPS
// certificate, and the root its issued chains end in.
type pebbleServer struct {
	directory string
	client    *http.Client
	roots     *x509.CertPool
}

// startPebble runs Pebble; its VA validates http-01 on httpPort and tls-alpn-01 on tlsPort,
// resolving names through the DNS server at resolver (TCP).
func startPebble(t *testing.T, httpPort, tlsPort int, resolver string) *pebbleServer {
	t.Helper()
	p := pebble.Start(t, pebble.Options{HTTPPort: httpPort, TLSPort: tlsPort, Resolver: resolver})
	return &pebbleServer{directory: p.Directory, client: p.Client, roots: p.Roots}
}

// startDNS serves A records pointing name at 127.0.0.1 over TCP (Pebble's VA asks over TCP)
// and NXDOMAIN for every other name. It returns the server's address.
func startDNS(t *testing.T, name string) string {
	t.Helper()
	fqdn := dns.Fqdn(name)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if !strings.EqualFold(question.Name, fqdn) {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	return testdns.ServeTCP(t, handler)
}

// serve runs srv on ln (over TLS when tlsOn) until the test ends. Handshake errors, which
// the tests provoke on purpose, are not logged.
func serve(t *testing.T, srv *http.Server, ln net.Listener, tlsOn bool) {
	t.Helper()
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan error, 1)
	go func() {
		if tlsOn {
			done <- srv.ServeTLS(ln, "", "")
		} else {
			done <- srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// hello is the edge's content in these tests.
var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "hello over "+r.Proto)
})

// checkServed connects to addr as a browser would to name, trusting only roots, and checks
// that the chain verifies, that HTTP/2 is negotiated and that Expiry matches the leaf.
func checkServed(t *testing.T, m *Manager, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("TLS to %s as %s: %v", addr, name, err)
	}
	defer conn.Close()
	state := conn.ConnectionState()
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) < 3 {
		t.Fatalf("verified chains %v: want leaf, intermediate and root", state.VerifiedChains)
	}
	leaf := state.PeerCertificates[0]
	if err := leaf.VerifyHostname(name); err != nil {
		t.Fatal(err)
	}
	if state.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN: got %q, want h2", state.NegotiatedProtocol)
	}
	got, err := m.Expiry(name)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(leaf.NotAfter) {
		t.Errorf("Expiry = %v, served certificate's NotAfter = %v", got, leaf.NotAfter)
	}
	return leaf
}

// TestPebbleHTTP01 obtains a certificate through http-01: Pebble's VA fetches the key
// authorization from the port-80 handler. Its tls-alpn-01 port is pointed at the same plain
// HTTP listener, so that challenge, which autocert always tries first, fails its handshake and
// autocert falls back to http-01 on a new order, as it would behind a TLS-terminating load
// balancer.
func TestPebbleHTTP01(t *testing.T) {
	ln80, port80 := listen(t)
	ln443, _ := listen(t)
	resolver := startDNS(t, testDomain)
	p := startPebble(t, port80, port80, resolver)
	dir := t.TempDir()
	m, err := New(Config{Domains: []string{testDomain}, CacheDir: dir, ACMEDirectory: p.directory,
		Email: "ops@dt.test", HTTPClient: p.client, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}

	var validations atomic.Int32
	port80Handler := m.HTTPHandler(nil)
	serve(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, acmeChallengePrefix) && strings.Contains(r.UserAgent(), "Pebble") {
			validations.Add(1)
		}
		port80Handler.ServeHTTP(w, r)
	})}, ln80, false)
	serve(t, &http.Server{Handler: hello, TLSConfig: m.TLSConfig()}, ln443, true)

	if exp, err := m.Expiry(testDomain); err != nil || !exp.IsZero() {
		t.Fatalf("Expiry before issuance = %v, %v; want zero time, nil", exp, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := m.Warm(ctx); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if validations.Load() == 0 {
		t.Fatal("Pebble never fetched an http-01 key authorization from the port-80 handler")
	}
	leaf := checkServed(t, m, ln443.Addr().String(), testDomain, p.roots)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != testDomain {
		t.Errorf("DNS names %v, want [%s]", leaf.DNSNames, testDomain)
	}

	// The port-80 handler now redirects visitors of the domain to HTTPS.
	resp := get(t, "http://"+ln80.Addr().String()+"/docs/a.html?v=2", testDomain)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://"+testDomain+"/docs/a.html?v=2" {
		t.Errorf("port 80: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// HTTP/2 end to end through net/http, trusting only Pebble's root.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, ln443.Addr().String())
		},
	}}
	defer client.CloseIdleConnections()
	resp2, err := client.Get("https://" + testDomain + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if string(body) != "hello over HTTP/2.0" {
		t.Errorf("body %q, want it served over HTTP/2", body)
	}

	// A restart reuses the cached certificate and account without asking any ACME server:
	// the directory below does not exist.
	m2, err := New(Config{Domains: []string{testDomain}, CacheDir: dir,
		ACMEDirectory: "https://127.0.0.1:1/dir", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Warm(ctx); err != nil {
		t.Fatalf("Warm after restart: %v", err)
	}
	ln443b, _ := listen(t)
	serve(t, &http.Server{Handler: hello, TLSConfig: m2.TLSConfig()}, ln443b, true)
	leaf2 := checkServed(t, m2, ln443b.Addr().String(), testDomain, p.roots)
	if !bytes.Equal(leaf2.Raw, leaf.Raw) {
		t.Error("restart served a different certificate from the cached one")
	}
}

// TestPebbleTLSALPN01 obtains a certificate on demand during the first handshake, validated
// by tls-alpn-01 on the HTTPS listener itself (no port-80 handler exists).
func TestPebbleTLSALPN01(t *testing.T) {
	ln443, port443 := listen(t)
	_, closedPort := listen(t) // never served: http-01 must not be what succeeds
	resolver := startDNS(t, testDomain)
	p := startPebble(t, closedPort, port443, resolver)
	m, err := New(Config{Domains: []string{testDomain}, CacheDir: t.TempDir(),
		ACMEDirectory: p.directory, HTTPClient: p.client, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &http.Server{Handler: hello, TLSConfig: m.TLSConfig()}, ln443, true)
	checkServed(t, m, ln443.Addr().String(), testDomain, p.roots)

	// Other names are refused in the handshake and never reach the CA.
	_, err = tls.Dial("tcp", ln443.Addr().String(), &tls.Config{ServerName: "other.dt.test", RootCAs: p.roots})
	if err == nil {
		t.Fatal("handshake for a name outside Domains succeeded")
	}
}

func get(t *testing.T, url, host string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
