package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testdns"

	"github.com/dt-cdn/dt/internal/testkit/pebble"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/issuer"
	"github.com/dt-cdn/dt/nodehost"
)

// TestIssuerToEdge: a site gets a name; the issuer obtains its certificate from Pebble by
// HTTP-01, which the edge answers on its HTTP port from the table's challenge record once its
// heartbeat says it holds it; the edge then serves the site under that name to an HTTPS client
// trusting only Pebble's root. Nothing is configured on the edge for the name.
func TestIssuerToEdge(t *testing.T) {
	const beat = 200 * time.Millisecond
	n := newTestNetwork(t, beat)
	httpPort := freePort(t)
	ams := startEdgeNode(t, n.plain, n.peer, beat, amsterdam, func(c *edge.Config) {
		c.HTTP, c.HTTPS, c.PublicURL = fmt.Sprintf("127.0.0.1:%d", httpPort), "127.0.0.1:0", "https://ams.cdn.example.test"
	})
	resolver := startLoopbackDNS(t)
	directory, caClient, roots := startPebbleCA(t, httpPort, resolver)

	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	runIssuer(t, n, directory, caClient)

	start := time.Now()
	if err := master.Put(context.Background(), "sites/shop", []byte(`{"v":1,"name":"shop","hosts":["www.shop.test"]}`)); err != nil {
		t.Fatal(err)
	}
	n.publishSiteFiles("shop", map[string]string{"index.html": "<h1>shop</h1>"}, 1)

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, ams.https)
		},
	}}
	defer client.CloseIdleConnections()
	wait.For(t, time.Minute, func() error {
		resp, err := client.Get("https://www.shop.test/")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "<h1>shop</h1>" {
			return fmt.Errorf("%s: %q", resp.Status, body)
		}
		return nil
	})
	t.Logf("site record to the first valid HTTPS answer on the edge: %v", time.Since(start).Round(time.Millisecond))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runIssuer runs an issuer with the master key on the network until the test ends; nameservers,
// when given, are where it checks DNS-01 answers.
func runIssuer(t *testing.T, n *testNetwork, directory string, caClient *http.Client, nameservers ...string) {
	t.Helper()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.Master, cfg.DataDir, cfg.NoSync, cfg.Peers = n.keys, true, t.TempDir(), true, []string{n.peer}
	is, err := issuer.New(issuer.Config{Host: nodehost.Config{Node: cfg}, Directory: directory, HTTPClient: caClient,
		Nameservers: nameservers, Scan: 100 * time.Millisecond, PropagationTimeout: 30 * time.Second,
		Lease: issuer.LeaseConfig{Duration: 3 * time.Second, Renew: 500 * time.Millisecond, Settle: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- is.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("issuer: %v", err)
		}
	})
}

// startPebbleCA runs Pebble in-process; its VA validates HTTP-01 on httpPort, resolving names
// through resolver.
func startPebbleCA(t *testing.T, httpPort int, resolver string) (string, *http.Client, *x509.CertPool) {
	t.Helper()
	ca := pebble.Start(t, pebble.Options{HTTPPort: httpPort, Resolver: resolver})
	return ca.Directory, ca.Client, ca.Roots
}

// startLoopbackDNS answers every A query with 127.0.0.1, over TCP (Pebble's VA asks over TCP).
func startLoopbackDNS(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})
	return testdns.ServeTCP(t, handler)
}
