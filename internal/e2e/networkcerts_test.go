package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testdns"

	"github.com/miekg/dns"

	dtdns "github.com/dt-cdn/dt/dns"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/internal/testkit/needs"
	"github.com/dt-cdn/dt/internal/testkit/pebble"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/nodehost"
)

// TestNetworkCertificates runs the whole of network-wide certificates on loopback: Pebble
// resolving through a dt dns node that serves the CDN zone, three edges on 127.0.0.2–4 on the
// same HTTP and HTTPS ports, and an issuer holding the master key. The zone's wildcard and apex
// are issued by DNS-01; a site's custom names, outside every zone dt serves, by HTTP-01, each
// validation resolved by GeoDNS (the custom names are CNAMEs of <site>.<zone>, whose first
// address is a weighted draw among equally near edges), so that several edges answer Pebble.
// Then a client trusting only Pebble's root reaches every edge under the site's own name,
// <site>.<zone>, <site>--<edge>.<zone> and the preview name <deploy>--<site>.<zone>.
func TestNetworkCertificates(t *testing.T) {
	const (
		beat = 200 * time.Millisecond
		zone = "cdn.dt.test"
	)
	start := time.Now()
	addrs := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a+":0")
		if err != nil {
			needs.Skipf(t, "cannot listen on %s: %v", a, err)
		}
		ln.Close()
	}
	n := newTestNetwork(t, beat)
	httpPort, httpsPort := freePortOn(t, addrs), freePortOn(t, addrs)
	var edges []*runningEdge
	names := []string{"e2", "e3", "e4"}
	for i, a := range addrs {
		edges = append(edges, startEdgeNode(t, n.plain, n.peer, beat, amsterdam, func(c *edge.Config) {
			c.Name, c.IPv4 = names[i], netip.MustParseAddr(a)
			c.HTTP, c.HTTPS = net.JoinHostPort(a, fmt.Sprint(httpPort)), net.JoinHostPort(a, fmt.Sprint(httpsPort))
			c.PublicURL = fmt.Sprintf("https://%s.%s:%d", names[i], zone, httpsPort)
		}))
	}
	dnsAddr := startZoneDNS(t, n)
	// Eight custom names, each validated by Pebble from three perspectives: 24 HTTP-01
	// requests, each sent to one of three edges by a draw; all to the same edge once in 3^23.
	var hosts []string
	for _, l := range []string{"www", "a", "b", "c", "d", "e", "f", "g"} {
		hosts = append(hosts, l+".shop.test")
	}
	slices.Sort(hosts) // the certificate's record is named by its first name
	front := startCNAMEResolver(t, dnsAddr, hosts, "shop."+zone+".")
	ca := pebble.Start(t, pebble.Options{HTTPPort: httpPort, Resolver: front.addr})

	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	site := fmt.Sprintf(`{"v":1,"name":"shop","hosts":["%s"]}`, strings.Join(hosts, `","`))
	if err := master.PutMany(ctx, []string{"network/settings", "sites/shop"},
		[][]byte{[]byte(`{"v":1,"cdn_zone":"` + zone + `"}`), []byte(site)}); err != nil {
		t.Fatal(err)
	}
	res := n.publishSiteFiles("shop", map[string]string{"index.html": "<h1>shop</h1>"}, len(edges))
	runIssuer(t, n, ca.Directory, ca.Client, dnsAddr)

	waitCertificate(t, master, netcert.Key("*."+zone))
	waitCertificate(t, master, netcert.Key(hosts[0]))
	if answered := front.firstAnswers(); len(answered) < 2 {
		t.Errorf("HTTP-01 validations were sent to %v, want at least two edges", answered)
	} else {
		t.Logf("HTTP-01 validations sent to edges: %v", answered)
	}

	var served []string
	for i, e := range edges {
		for _, name := range []string{hosts[0], hosts[len(hosts)-1], "shop." + zone, "shop--" + names[i] + "." + zone,
			res.Deploy.String()[:12] + "--shop." + zone} {
			waitHTTPS(t, ca.Roots, e.https, name)
			served = append(served, name+"@"+addrs[i])
		}
	}
	t.Logf("served %d names over HTTPS; the whole test took %v", len(served), time.Since(start).Round(time.Millisecond))
}

// freePortOn returns a port free on every one of addrs, at the time it is asked.
func freePortOn(t *testing.T, addrs []string) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", addrs[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		free := true
		var held []net.Listener
		for _, a := range addrs[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(a, fmt.Sprint(port)))
			if err != nil {
				free = false
				break
			}
			held = append(held, l)
		}
		ln.Close()
		for _, l := range held {
			l.Close()
		}
		if free {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", addrs)
	return 0
}

// startZoneDNS runs a dt dns node linked to the hub, serving the CDN zone, and returns the
// address it answers on.
func startZoneDNS(t *testing.T, n *testNetwork) string {
	t.Helper()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.NoSync, cfg.Peers = n.plain, t.TempDir(), true, []string{n.peer}
	d, err := dtdns.New(dtdns.Config{Host: nodehost.Config{Node: cfg}, Addr: "127.0.0.1:0", HeartbeatInterval: n.beat,
		CDNNameServers: []string{"ns1.dt.test"}, Resolvers: []string{"127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dns node: %v", err)
		}
	})
	var addr string
	wait.For(t, 10*time.Second, func() error {
		st, ok := d.Status()
		if !ok {
			return fmt.Errorf("dns node not serving yet")
		}
		addr = st.Addr
		return nil
	})
	return addr
}

// waitCertificate waits until the table holds a certificate record at key.
func waitCertificate(t *testing.T, node *dt.Node, key string) {
	t.Helper()
	wait.For(t, time.Minute, func() error {
		b, err := node.Get(context.Background(), key)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if _, err := netcert.ParseAt(key, b); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
}

// waitHTTPS waits until the edge at addr answers https://name/ with the site, over a
// connection that trusts only roots.
func waitHTTPS(t *testing.T, roots *x509.CertPool, addr, name string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	wait.For(t, 30*time.Second, func() error {
		resp, err := client.Get("https://" + name + "/")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "<h1>shop</h1>" {
			return fmt.Errorf("%s at %s: %s: %q", name, addr, resp.Status, body)
		}
		return nil
	})
}

// cnameResolver stands for the recursive resolver a CA uses, where the site's owner has
// pointed custom names at <site>.<zone> by CNAME: it answers a custom name with the CNAME and
// the dt dns node's answer for the target, and forwards every other question to the dt dns
// node. It records the first address of each A answer for a custom name, the one Pebble's VA
// dials.
type cnameResolver struct {
	addr string

	mu    sync.Mutex
	first map[string]int // address → validations sent there
}

func startCNAMEResolver(t *testing.T, upstream string, custom []string, target string) *cnameResolver {
	t.Helper()
	r := &cnameResolver{first: map[string]int{}}
	client := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if len(q.Question) != 1 || !slices.Contains(custom, strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")) {
			if reply, _, err := client.Exchange(q, upstream); err == nil {
				_ = w.WriteMsg(reply)
			}
			return
		}
		asked := q.Question[0]
		up := new(dns.Msg)
		up.SetQuestion(target, asked.Qtype)
		reply, _, err := client.Exchange(up, upstream)
		if err != nil {
			return
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: asked.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: target})
		m.Answer = append(m.Answer, reply.Answer...)
		if len(reply.Answer) > 0 && asked.Qtype == dns.TypeA {
			if a, ok := reply.Answer[0].(*dns.A); ok {
				r.mu.Lock()
				r.first[a.A.String()]++
				r.mu.Unlock()
			}
		}
		_ = w.WriteMsg(m)
	})
	r.addr = testdns.ServeTCP(t, handler)
	return r
}

// firstAnswers returns the addresses custom names' A answers began with, and how often.
func (r *cnameResolver) firstAnswers() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.first)
}
