package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve starts h on loopback and returns its address; it stops at the end of the test.
func serve(t testing.TB, h dns.Handler) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, h, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr()
}

func TestServeUDPAndTCP(t *testing.T) {
	big := testZone
	for i := range 40 {
		big += "big TXT \"" + strings.Repeat("y", 60) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "\"\n"
	}
	addr := serve(t, newHandler(t, storeWith(t, big), nil))
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		r, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if !r.Authoritative || len(r.Answer) != 2 {
			t.Errorf("%s: %v", network, r)
		}
	}
	// A large answer: truncated over UDP, whole over TCP.
	q := new(dns.Msg)
	q.SetQuestion("big.example.com.", dns.TypeTXT)
	q.SetEdns0(1232, false)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(q, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Errorf("UDP answer of %d records not truncated", len(r.Answer))
	}
	r, _, err = (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 40 {
		t.Errorf("TCP: truncated %v, %d records", r.Truncated, len(r.Answer))
	}
}

// fixedDynamic answers with one address per client family: what package geo does, reduced to a
// table, so the test can see what the handler passes in and sends out.
type fixedDynamic struct {
	mu      sync.Mutex
	clients []netip.Prefix
	ok      bool
}

func (d *fixedDynamic) Name() string { return "www.example.com." }

func (d *fixedDynamic) Answer(qtype uint16, client netip.Prefix) ([]dns.RR, int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clients = append(d.clients, client)
	if !d.ok {
		return nil, 0, false
	}
	if qtype == dns.TypeAAAA {
		return nil, 16, true
	}
	return []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: d.Name(), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 20}, A: net.IPv4(198, 51, 100, 7)}}, 16, true
}

func TestDynamicAndClientSubnet(t *testing.T) {
	dyn := &fixedDynamic{ok: true}
	h := newHandler(t, storeWith(t, testZone), dyn)
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(203, 0, 113, 0).To4()})
	m := h.Respond(q, netipLoopback, false)
	if len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), "198.51.100.7") {
		t.Fatalf("dynamic answer %v", m.Answer)
	}
	var echoed *dns.EDNS0_SUBNET
	for _, o := range m.IsEdns0().Option {
		echoed, _ = o.(*dns.EDNS0_SUBNET)
	}
	if echoed == nil || echoed.SourceNetmask != 24 || echoed.SourceScope != 16 {
		t.Errorf("ECS echo %v, want source /24 scope /16", echoed)
	}
	if got := dyn.clients[0]; got != netip.MustParsePrefix("203.0.113.0/24") {
		t.Errorf("client %v, want the ECS subnet", got)
	}
	// Without ECS, the resolver's address locates the client.
	ask(h, "www.example.com.", dns.TypeA, false)
	if got := dyn.clients[1]; got != netip.MustParsePrefix("127.0.0.1/32") {
		t.Errorf("client %v, want the resolver's address", got)
	}
	if m := ask(h, "www.example.com.", dns.TypeAAAA, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("no address of the family: %v, want NODATA", m)
	}
	// No edge live: the zone's own records stand in; without any, SERVFAIL.
	dyn.ok = false
	if m := ask(h, "www.example.com.", dns.TypeA, false); len(m.Answer) != 2 {
		t.Errorf("fallback: %v, want the zone's two A records", m.Answer)
	}
	if m := ask(h, "www.example.com.", dns.TypeAAAA, false); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("no edge and no record: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	// A malformed ECS option is a format error (RFC 7871 §7.1).
	q.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 40, Address: net.IPv4(203, 0, 113, 0).To4()}}
	if m := h.Respond(q, netipLoopback, false); m.Rcode != dns.RcodeFormatError {
		t.Errorf("ECS /40 for IPv4: %s, want FORMERR", dns.RcodeToString[m.Rcode])
	}
}

// BenchmarkServeUDP measures answers per second over loopback UDP, several clients at once.
func BenchmarkServeUDP(b *testing.B) {
	addr := serve(b, newHandler(b, storeWith(b, testZone), nil))
	b.RunParallel(func(pb *testing.PB) {
		conn, err := dns.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		for pb.Next() {
			if err := conn.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			if _, err := conn.ReadMsg(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
