package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/nodehost"
)

// These tests run a real ACME server, Pebble, in-process on loopback; its VA resolves every
// name through a DNS server that answers "_acme-challenge" TXT from a dt node's challenge
// records and every A query with 127.0.0.1, and fetches HTTP-01 tokens from an HTTP server
// answering from the same node's records. The issuer writes the records on its own node; they
// reach the answering node through the table, as they reach every DNS node and edge.

// pebble is a running Pebble: its directory, a client trusting its HTTPS, the root its chains
// end in, and the count of new orders it received.
type pebble struct {
	directory string
	client    *http.Client
	roots     *x509.CertPool
	orders    atomic.Int32
}

// startPebble assembles Pebble as its cmd/pebble does, issuing certificates valid for validity
// (zero: Pebble's default, 90 days), validating HTTP-01 on httpPort through the DNS server at
// resolver.
func startPebble(t *testing.T, httpPort int, resolver string, validity time.Duration) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0") // every order validates: the test checks the challenges
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs.String())
		}
	})
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1,
		map[string]ca.Profile{"default": {Description: "default", ValidityPeriod: uint64(validity / time.Second)}})
	validator := va.New(logger, httpPort, httpPort, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	p := &pebble{}
	handler := front.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/order-plz") {
			p.orders.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.directory, p.client = srv.URL+wfe.DirectoryPath, srv.Client()
	p.roots = x509.NewCertPool()
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	return p
}

// startChallengeDNS serves, over TCP, the TXT values of the DNS-01 records n holds at
// "_acme-challenge.<domain>", and 127.0.0.1 for every A query.
func startChallengeDNS(t *testing.T, n *dt.Node) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		for _, question := range q.Question {
			name := strings.TrimSuffix(strings.ToLower(question.Name), ".")
			hdr := dns.RR_Header{Name: question.Name, Class: dns.ClassINET, Rrtype: question.Qtype, Ttl: 0}
			switch question.Qtype {
			case dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
			case dns.TypeTXT:
				domain, ok := strings.CutPrefix(name, "_acme-challenge.")
				if !ok {
					continue
				}
				b, err := n.Get(context.Background(), challenge.DNS01Key(domain))
				if err != nil {
					continue
				}
				r, err := challenge.ParseDNS01At(challenge.DNS01Key(domain), b)
				if err != nil || !r.Live(time.Now()) {
					continue
				}
				for _, v := range r.TXT {
					m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
				}
			}
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: handler, NotifyStartedFunc: func() { close(started) }}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// startChallengeHTTP answers HTTP-01 from the records n holds, for the record's domain only,
// and returns its address and port.
func startChallengeHTTP(t *testing.T, n *dt.Node) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		b, err := n.Get(r.Context(), challenge.HTTP01Key(token))
		if !ok || err != nil {
			http.NotFound(w, r)
			return
		}
		rec, err := challenge.ParseHTTP01At(challenge.HTTP01Key(token), b)
		host, _, _ := strings.Cut(r.Host, ":")
		if err != nil || !rec.Live(time.Now()) || !strings.EqualFold(host, rec.Domain) {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, rec.KeyAuthorization)
	}), ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// network is a dt network for issuer tests: a master that writes the settings and sites, a
// hub the issuers and the challenge servers use, and the servers.
type network struct {
	keys     dt.Keys
	master   *dt.Node
	hub      *dt.Node
	ca       *pebble
	dnsAddr  string
	httpAddr string
	sealer   *netcert.Sealer
}

func newNetwork(t *testing.T, validity time.Duration) *network {
	t.Helper()
	master, plain := testnet.Keys(t)
	nw := &network{keys: master}
	nw.hub = testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(nw.hub)
	nw.master = testnet.Node(t, testnet.Options{Keys: master, Master: true, Peers: []string{testnet.Addr(nw.hub)}})
	testnet.Drain(nw.master)
	nw.dnsAddr = startChallengeDNS(t, nw.hub)
	var port int
	nw.httpAddr, port = startChallengeHTTP(t, nw.hub)
	nw.ca = startPebble(t, port, nw.dnsAddr, validity)
	s, err := netcert.NewSealer(master.Network)
	if err != nil {
		t.Fatal(err)
	}
	nw.sealer = s
	return nw
}

// put writes a record as the master.
func (nw *network) put(t *testing.T, key, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := nw.master.Put(ctx, key, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

// startIssuer runs an issuer on the network with the master key (which works as an issuer
// key) until the returned stop is called or the test ends.
func (nw *network) startIssuer(t *testing.T, logs io.Writer) (stop func()) {
	t.Helper()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.Master, cfg.DataDir, cfg.NoSync = nw.keys, true, t.TempDir(), true
	cfg.Peers = []string{testnet.Addr(nw.hub)}
	is, err := New(Config{
		Host:       nodehost.Config{Node: cfg, Logger: slogTo(logs)},
		Directory:  nw.ca.directory, HTTPClient: nw.ca.client,
		Nameservers: []string{nw.dnsAddr}, EdgeHTTP: []string{nw.httpAddr},
		PropagationTimeout: 20 * time.Second, Scan: 100 * time.Millisecond,
		RetryBase: 500 * time.Millisecond, RetryMax: 2 * time.Second,
		Lease: LeaseConfig{Duration: 3 * time.Second, Renew: 500 * time.Millisecond, Settle: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	done := make(chan error, 1)
	go func() { done <- is.Run(ctx) }()
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("issuer Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// certificate waits until the hub holds a certificate record under key that opens, and
// returns it.
func (nw *network) certificate(t *testing.T, key string, timeout time.Duration) netcert.Record {
	t.Helper()
	var rec netcert.Record
	deadline := time.Now().Add(timeout)
	for {
		b, err := nw.hub.Get(t.Context(), key)
		if err == nil {
			if rec, err = netcert.ParseAt(key, b); err == nil {
				_, err = rec.Open(nw.sealer)
			}
			if err == nil {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate under %s: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verify checks that rec's chain verifies to the CA's root for every name.
func (nw *network) verify(t *testing.T, rec netcert.Record, names ...string) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(rec.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range rec.Chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: nw.ca.roots, Intermediates: inter}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	return leaf
}

func TestIssueZoneAndSite(t *testing.T) {
	nw := newNetwork(t, 0)
	nw.put(t, "network/settings", `{"v":1,"cdn_zone":"cdn.dt.test"}`)
	nw.put(t, "sites/blog", `{"v":1,"name":"blog","hosts":["blog.cdn.dt.test","www.blog.test"]}`)
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("issuer log:\n%s", logs.String())
		}
	})
	nw.startIssuer(t, logs)

	zone := nw.certificate(t, netcert.Key("*.cdn.dt.test"), time.Minute)
	nw.verify(t, zone, "cdn.dt.test", "blog.cdn.dt.test", "blog--ams.cdn.dt.test")
	site := nw.certificate(t, netcert.Key("www.blog.test"), time.Minute)
	if len(site.Names) != 1 {
		t.Errorf("site certificate names %v: want www.blog.test alone (blog.cdn.dt.test is the zone's)", site.Names)
	}
	nw.verify(t, site, "www.blog.test")

	// The challenge records are gone once the certificates are written, and the account and
	// status are in the table.
	waitNoChallenges(t, nw.hub)
	for _, key := range []string{AccountKey, StatusKey, LeaseKey} {
		if !nw.hub.Has(key) {
			t.Errorf("no %s in the table", key)
		}
	}
}

func waitNoChallenges(t *testing.T, n *dt.Node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		for k := range n.ObjectKeys() {
			if strings.HasPrefix(k, challenge.KeyPrefix) {
				left = append(left, k)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("challenge records left: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var _ = fmt.Sprintf

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
