package issuer

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testdns"

	testpebble "github.com/dt-cdn/dt/internal/testkit/pebble"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/challenge"
	dtdns "github.com/dt-cdn/dt/dns"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
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

	mu     sync.Mutex
	events []caEvent         // guarded by mu: new orders and finalizations, in order
	onPost func(path string) // called before each POST is handled; set before use
}

// caEvent is a new order or a finalization Pebble received, with the names it asked for.
type caEvent struct {
	final bool
	names string // sorted, comma-separated
}

// startPebble runs Pebble, issuing certificates valid for validity (zero: Pebble's default, 90
// days), validating HTTP-01 on httpPort through the DNS server at resolver, every order anew,
// and recording the orders and finalizations it receives.
func startPebble(t *testing.T, httpPort int, resolver string, validity time.Duration) *pebble {
	t.Helper()
	p := &pebble{}
	ca := testpebble.Start(t, testpebble.Options{HTTPPort: httpPort, Resolver: resolver, Validity: validity, NoAuthzReuse: true,
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					p.observe(r)
				}
				next.ServeHTTP(w, r)
			})
		}})
	p.directory, p.client, p.roots = ca.Directory, ca.Client, ca.Roots
	return p
}

// observe records the names of a new order or a finalization (from the JWS payload), and calls
// onPost.
func (p *pebble) observe(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mu.Lock()
	hook := p.onPost
	p.mu.Unlock()
	if hook != nil {
		hook(r.URL.Path)
	}
	var jws struct{ Payload string }
	_ = json.Unmarshal(body, &jws)
	payload, _ := base64.RawURLEncoding.DecodeString(jws.Payload)
	var names []string
	final := strings.Contains(r.URL.Path, "/finalize-order/")
	switch {
	case strings.HasSuffix(r.URL.Path, "/order-plz"):
		p.orders.Add(1)
		var o struct{ Identifiers []struct{ Value string } }
		_ = json.Unmarshal(payload, &o)
		for _, id := range o.Identifiers {
			names = append(names, id.Value)
		}
	case final:
		var f struct{ CSR string }
		_ = json.Unmarshal(payload, &f)
		der, _ := base64.RawURLEncoding.DecodeString(f.CSR)
		if csr, err := x509.ParseCertificateRequest(der); err == nil {
			names = csr.DNSNames
		}
	default:
		return
	}
	slices.Sort(names)
	p.mu.Lock()
	p.events = append(p.events, caEvent{final: final, names: strings.Join(names, ",")})
	p.mu.Unlock()
}

// sequence returns, per set of names, its orders ("o") and finalizations ("f") in order.
func (p *pebble) sequence() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for _, e := range p.events {
		if e.final {
			out[e.names] += "f"
		} else {
			out[e.names] += "o"
		}
	}
	return out
}

// startChallengeDNS serves, over TCP, the TXT values of the DNS-01 records n holds at
// "_acme-challenge.<domain>", and 127.0.0.1 for every A query.
func startChallengeDNS(t *testing.T, n *dt.Node) string {
	t.Helper()
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
	return testdns.ServeTCP(t, handler)
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

	noEdgeHTTP bool // issuers learn of HTTP-01 answers from heartbeats alone
}

func newNetwork(t *testing.T, validity time.Duration) *network {
	t.Helper()
	return newNetworkHTTP(t, validity, func(nw *network) (string, int) { return startChallengeHTTP(t, nw.hub) })
}

// newNetworkHTTP is newNetwork with the HTTP-01 answers served by httpServer, which returns
// its address and port.
func newNetworkHTTP(t *testing.T, validity time.Duration, httpServer func(*network) (string, int)) *network {
	t.Helper()
	return newNetworkWith(t, validity, httpServer, func(nw *network) string { return startChallengeDNS(t, nw.hub) })
}

// newNetworkWith is newNetwork with the HTTP-01 answers served by httpServer and DNS by
// dnsServer, which returns its TCP address.
func newNetworkWith(t *testing.T, validity time.Duration, httpServer func(*network) (string, int), dnsServer func(*network) string) *network {
	t.Helper()
	master, plain := testnet.Keys(t)
	nw := &network{keys: master}
	nw.hub = testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(nw.hub)
	nw.master = testnet.Node(t, testnet.Options{Keys: master, Master: true, Peers: []string{testnet.Addr(nw.hub)}})
	testnet.Drain(nw.master)
	nw.dnsAddr = dnsServer(nw)
	var port int
	nw.httpAddr, port = httpServer(nw)
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
	stop, _ = nw.startIssuerReady(t, logs)
	return stop
}

// startIssuerReady is startIssuer, with an admin listener, and returns what it serves on
// once it serves.
func (nw *network) startIssuerReady(t *testing.T, logs io.Writer) (stop func(), ready nodehost.Ready) {
	t.Helper()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.Master, cfg.DataDir, cfg.NoSync = nw.keys, true, t.TempDir(), true
	cfg.Peers = []string{testnet.Addr(nw.hub)}
	readies := make(chan nodehost.Ready, 1)
	is, err := New(Config{
		Host: nodehost.Config{Node: cfg, Logger: slogTo(logs), Admin: "127.0.0.1:0", Ready: func(r nodehost.Ready) error {
			readies <- r
			return nil
		}},
		Directory: nw.ca.directory, HTTPClient: nw.ca.client,
		Nameservers: []string{nw.dnsAddr}, EdgeHTTP: nw.edgeHTTP(),
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
	select {
	case ready = <-readies:
	case err := <-done:
		done <- err // for stop
		t.Fatalf("issuer Run: %v", err)
	}
	return stop, ready
}

func (nw *network) edgeHTTP() []string {
	if nw.noEdgeHTTP {
		return nil
	}
	return []string{nw.httpAddr}
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
	_, ready := nw.startIssuerReady(t, logs)

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
	// GET /issuer and the status record name both certificates, with their expiry.
	resp, err := http.Get("http://" + ready.Admin + "/issuer")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Certs) != 2 || st.Certs[0].Name != "*.cdn.dt.test" || st.Certs[0].NotAfterUnix != zone.NotAfter ||
		st.Certs[1].Name != "www.blog.test" || st.Certs[1].Site != "blog" || st.Holder != ready.ID.String() {
		t.Errorf("GET /issuer: %+v, %v", st, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := nw.hub.Get(t.Context(), StatusKey)
		var rec Status
		if json.Unmarshal(b, &rec) == nil && len(rec.Certs) == 2 && rec.Certs[1].NotAfterUnix == site.NotAfter {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status record %s: want both certificates", b)
		}
		time.Sleep(50 * time.Millisecond)
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

// logsOf collects an issuer's log, shown when the test fails.
func logsOf(t *testing.T, name string) io.Writer {
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	return logs
}

// TestRenewalTwoIssuers runs two issuers against a CA issuing 20-second certificates: the
// zone's certificate is renewed again and again, each before the previous expired, and every
// name's orders and finalizations alternate (no second order while one is in flight or
// before the certificate is due).
func TestRenewalTwoIssuers(t *testing.T) {
	nw := newNetwork(t, 20*time.Second)
	nw.put(t, "network/settings", `{"v":1,"cdn_zone":"cdn.dt.test"}`)
	nw.put(t, "sites/blog", `{"v":1,"name":"blog","hosts":["www.blog.test"]}`)
	nw.startIssuer(t, logsOf(t, "issuer 1"))
	nw.startIssuer(t, logsOf(t, "issuer 2"))

	key := netcert.Key("*.cdn.dt.test")
	var seen []netcert.Record
	deadline := time.Now().Add(2 * time.Minute)
	for len(seen) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d certificates seen, want 3 (two renewals)", len(seen))
		}
		if b, err := nw.hub.Get(t.Context(), key); err == nil {
			if r, err := netcert.ParseAt(key, b); err == nil && (len(seen) == 0 || !bytes.Equal(r.Chain[0], seen[len(seen)-1].Chain[0])) {
				seen = append(seen, r)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].NotBefore > seen[i-1].NotAfter {
			t.Errorf("certificate %d starts at %d, after certificate %d expired at %d", i, seen[i].NotBefore, i-1, seen[i-1].NotAfter)
		}
		if seen[i-1].RenewAfter == 0 || seen[i-1].RenewAfter > seen[i-1].NotAfter {
			t.Errorf("certificate %d: renew after %d, expires %d", i-1, seen[i-1].RenewAfter, seen[i-1].NotAfter)
		}
	}
	for names, seq := range nw.ca.sequence() {
		if strings.Contains(seq, "oo") || strings.Contains(seq, "ff") {
			t.Errorf("%s: orders (o) and finalizations (f) %s; want them alternating", names, seq)
		}
	}
}

// TestSuccessorCompletesOrder stops the issuer holding the lease while its order waits for
// validation; the other issuer takes over once the lease expires, and the certificate is
// written.
func TestSuccessorCompletesOrder(t *testing.T) {
	nw := newNetwork(t, 0)
	stops := map[string]func(){}
	var mu sync.Mutex
	stopped := make(chan string, 1)
	nw.ca.mu.Lock()
	nw.ca.onPost = func(path string) {
		if !strings.Contains(path, "/chalZ/") {
			return
		}
		b, err := nw.hub.Get(context.Background(), LeaseKey)
		if err != nil {
			return
		}
		l, err := ParseLease(b)
		mu.Lock()
		stop := stops[l.Holder]
		delete(stops, l.Holder)
		mu.Unlock()
		if err == nil && stop != nil && len(stopped) == 0 {
			stopped <- l.Holder
			go stop() // the issuer's context ends while Pebble handles its request
		}
	}
	nw.ca.mu.Unlock()
	for i := range 2 {
		stop, ready := nw.startIssuerReady(t, logsOf(t, fmt.Sprintf("issuer %d", i+1)))
		mu.Lock()
		stops[ready.ID.String()] = stop
		mu.Unlock()
	}
	nw.put(t, "network/settings", `{"v":1,"cdn_zone":"cdn.dt.test"}`)
	rec := nw.certificate(t, netcert.Key("*.cdn.dt.test"), 2*time.Minute)
	nw.verify(t, rec, "cdn.dt.test", "x.cdn.dt.test")
	var first string
	select {
	case first = <-stopped:
	default:
		t.Fatal("no issuer was stopped mid-order")
	}
	b, err := nw.hub.Get(t.Context(), LeaseKey)
	if l, perr := ParseLease(b); err != nil || perr != nil || l.Holder == first {
		t.Errorf("lease %s (%v, %v): want it held by the successor, not %s", b, err, perr, first)
	}
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestNewSiteCertificate measures the time from a new site record to its certificate record
// in the table, with a running issuer that already holds the zone's certificate. It logs the
// figure; it asserts only that the certificate arrives.
func TestNewSiteCertificate(t *testing.T) {
	nw := newNetwork(t, 0)
	nw.put(t, "network/settings", `{"v":1,"cdn_zone":"cdn.dt.test"}`)
	nw.startIssuer(t, logsOf(t, "issuer"))
	nw.certificate(t, netcert.Key("*.cdn.dt.test"), time.Minute)

	start := time.Now()
	nw.put(t, "sites/shop", `{"v":1,"name":"shop","hosts":["shop.example.test","www.shop.example.test"]}`)
	rec := nw.certificate(t, netcert.Key("shop.example.test"), time.Minute)
	t.Logf("site record to certificate record: %v (scan every 100ms, HTTP-01 for 2 names)", time.Since(start).Round(time.Millisecond))
	nw.verify(t, rec, "shop.example.test", "www.shop.example.test")
}

// startSlowEdge runs a node that acts as an edge for HTTP-01: a challenge.Set fed from its
// events, each challenge record applied only delay after it arrived, its answers served on a
// loopback port, and heartbeats every 100ms reporting the records it holds.
func startSlowEdge(t *testing.T, nw *network, delay time.Duration) (string, int) {
	t.Helper()
	_, plain := testnet.Keys(t)
	plain.Network, plain.Masters = nw.keys.Network, nw.keys.Masters
	n := testnet.Node(t, testnet.Options{Keys: plain, Peers: []string{testnet.Addr(nw.hub)}})
	set, err := challenge.NewSet(challenge.SetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	events := n.Events()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range events {
			if strings.HasPrefix(ev.Key, challenge.KeyPrefix) {
				time.Sleep(delay)
			}
			set.HandleEvent(ev)
		}
	})
	addr, port := serveHTTP(t, set.Handler(http.NotFoundHandler()))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		n.Close() // ends the events
		wg.Wait()
	})
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			h := heartbeat.Heartbeat{Seq: seq, Time: time.Now().UnixMilli(), PublicURL: "http://" + addr, IntervalMS: 100}
			h.ACME, h.ACMEDigest = set.Held()
			if b, err := heartbeat.Encode(h); err == nil {
				_ = n.SendMessage(ctx, json.RawMessage(b))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return addr, port
}

// serveHTTP serves h on a loopback port until the test ends.
func serveHTTP(t *testing.T, h http.Handler) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// TestHTTP01WaitsForEdgeHeartbeats: the only edge applies challenge records a second and a half
// late; the issuer, checking no edge directly, tells the CA to validate only once the edge's
// heartbeat reports the records, so the first order succeeds.
func TestHTTP01WaitsForEdgeHeartbeats(t *testing.T) {
	nw := newNetworkHTTP(t, 0, func(nw *network) (string, int) { return startSlowEdge(t, nw, 1500*time.Millisecond) })
	nw.noEdgeHTTP = true
	nw.put(t, "sites/shop", `{"v":1,"name":"shop","hosts":["shop.example.test"]}`)
	nw.startIssuer(t, logsOf(t, "issuer"))
	rec := nw.certificate(t, netcert.Key("shop.example.test"), time.Minute)
	nw.verify(t, rec, "shop.example.test")
	if seq := nw.ca.sequence()["shop.example.test"]; seq != "of" {
		t.Errorf("orders (o) and finalizations (f): %q, want the first order to succeed", seq)
	}
}

// startDTDNS runs a dt DNS node (package dns) linked to the hub, and returns its address.
func startDTDNS(t *testing.T, nw *network) string {
	t.Helper()
	_, plain := testnet.Keys(t)
	plain.Network, plain.Masters = nw.keys.Network, nw.keys.Masters
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.NoSync, cfg.Peers = plain, t.TempDir(), true, []string{testnet.Addr(nw.hub)}
	d, err := dtdns.New(dtdns.Config{Host: nodehost.Config{Node: cfg}, Addr: "127.0.0.1:0",
		CDNNameServers: []string{"ns1.dt.test"}, Resolvers: []string{"127.0.0.1:1"}})
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
	for {
		if st, ok := d.Status(); ok {
			return st.Addr
		}
		select {
		case err := <-done:
			t.Fatalf("dns node: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestIssueZoneThroughDTDNS: the CDN zone's wildcard and apex by DNS-01, Pebble's VA asking a
// dt DNS node, which answers the "_acme-challenge" TXT from the table; the issuer checks that
// node before telling the CA to validate.
func TestIssueZoneThroughDTDNS(t *testing.T) {
	nw := newNetworkWith(t, 0, func(nw *network) (string, int) { return startChallengeHTTP(t, nw.hub) }, func(nw *network) string { return startDTDNS(t, nw) })
	nw.put(t, "network/settings", `{"v":1,"cdn_zone":"cdn.dt.test"}`)
	nw.startIssuer(t, logsOf(t, "issuer"))
	zone := nw.certificate(t, netcert.Key("*.cdn.dt.test"), time.Minute)
	nw.verify(t, zone, "cdn.dt.test", "shop.cdn.dt.test")
	if seq := nw.ca.sequence()["*.cdn.dt.test,cdn.dt.test"]; seq != "of" {
		t.Errorf("orders (o) and finalizations (f): %q, want the first order to succeed", seq)
	}
}
