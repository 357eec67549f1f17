package geo

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func edge(node, v4, v6 string, loc heartbeat.Location) heartbeat.Edge {
	h := heartbeat.Heartbeat{Seq: 1, Time: now.UnixMilli(), PublicURL: "http://" + node + ".example.com", Location: &loc, Deploy: "d1", Synced: true}
	if v4 != "" {
		h.IPv4 = netip.MustParseAddr(v4)
	}
	if v6 != "" {
		h.IPv6 = netip.MustParseAddr(v6)
	}
	return heartbeat.Edge{Node: node, Last: h, LastSeen: now.Add(-time.Second), State: heartbeat.Alive}
}

var (
	ams = heartbeat.Location{Lat: 52.37, Lon: 4.9, Country: "NL", Continent: "EU"}
	fra = heartbeat.Location{Lat: 50.11, Lon: 8.68, Country: "DE", Continent: "EU"}
	nyc = heartbeat.Location{Lat: 40.71, Lon: -74.0, Country: "US", Continent: "NA"}
	tyo = heartbeat.Location{Lat: 35.68, Lon: 139.69, Country: "JP", Continent: "AS"}
)

// places is a GeoIP lookup from a table of networks, standing in for a .mmdb file (the
// geoip package's tests cover reading those).
type places map[netip.Prefix]geoip.Record

func (p places) Lookup(ip netip.Addr) (*geoip.Record, error) {
	for network, rec := range p {
		if network.Contains(ip) {
			rec.Network = network
			return &rec, nil
		}
	}
	return nil, nil
}

var world = places{
	netip.MustParsePrefix("203.0.113.0/24"):  {Country: "NL", Continent: "EU", Lat: 52.1, Lon: 5.1, HasLocation: true},
	netip.MustParsePrefix("198.51.100.0/24"): {Country: "US", Continent: "NA", Lat: 40.0, Lon: -75.0, HasLocation: true},
	netip.MustParsePrefix("2001:db8:1::/48"): {Country: "JP", Continent: "AS", Lat: 35.0, Lon: 139.0, HasLocation: true},
}

func answerer(t *testing.T, edges func() []heartbeat.Edge, cfg Config) *Answerer {
	t.Helper()
	cfg.Name = "WWW.Example.com"
	cfg.Edges = func() ([]heartbeat.Edge, string) { return edges(), "d1" }
	cfg.Now = func() time.Time { return now }
	cfg.Select.Rand = zeroSource{}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// zeroSource makes Select's weighted draw pick the first near edge.
type zeroSource struct{}

func (zeroSource) Uint64() uint64 { return 0 }

func addrs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	return out
}

func TestNearestEdges(t *testing.T) {
	all := []heartbeat.Edge{
		edge("ams", "192.0.2.1", "2001:db8::1", ams),
		edge("fra", "192.0.2.2", "", fra),
		edge("nyc", "192.0.2.3", "2001:db8::3", nyc),
		edge("tyo", "192.0.2.4", "2001:db8::4", tyo),
	}
	a := answerer(t, func() []heartbeat.Edge { return all }, Config{Geo: world, TTL: 15 * time.Second})
	if a.Name() != "www.example.com." {
		t.Errorf("name %q", a.Name())
	}
	cases := []struct {
		name   string
		qtype  uint16
		client string
		want   []string
		scope  int
	}{
		// In the Netherlands: Amsterdam, then Frankfurt behind it (MinAnswers 2).
		{"europe", dns.TypeA, "203.0.113.0/24", []string{"192.0.2.1", "192.0.2.2"}, 24},
		{"america", dns.TypeA, "198.51.100.7/32", []string{"192.0.2.3", "192.0.2.1"}, 24},
		{"japan over IPv6", dns.TypeAAAA, "2001:db8:1:2::/56", []string{"2001:db8::4", "2001:db8::1"}, 48},
		// Frankfurt has no IPv6: it is never in an AAAA answer.
		{"europe AAAA", dns.TypeAAAA, "203.0.113.9/32", []string{"2001:db8::1", "2001:db8::3"}, 24},
		// Unknown client: every edge, up to MaxAnswers.
		{"unknown", dns.TypeA, "", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, 0},
		{"not in the database", dns.TypeA, "192.0.2.200/32", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, 32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var client netip.Prefix
			if c.client != "" {
				client = netip.MustParsePrefix(c.client)
			}
			rrs, scope, ok := a.Answer(c.qtype, client)
			if !ok {
				t.Fatal("no answer")
			}
			got := addrs(rrs)
			if c.name == "unknown" || c.name == "not in the database" {
				slices.Sort(got)
			}
			if !slices.Equal(got, c.want) || scope != c.scope {
				t.Errorf("got %v scope %d, want %v scope %d", got, scope, c.want, c.scope)
			}
			for _, rr := range rrs {
				if rr.Header().Ttl != 15 || rr.Header().Name != "www.example.com." || rr.Header().Rrtype != c.qtype {
					t.Errorf("record %v", rr)
				}
			}
		})
	}
}

func TestOnlyEligibleEdges(t *testing.T) {
	dead := edge("dead", "192.0.2.10", "", ams)
	dead.State = heartbeat.Dead
	stale := edge("stale", "192.0.2.11", "", ams)
	stale.LastSeen = now.Add(-6 * time.Second) // past the 5 s default
	draining := edge("draining", "192.0.2.12", "", ams)
	draining.Last.Draining = true
	old := edge("old", "192.0.2.13", "", ams)
	old.Last.Deploy = "d0"
	good := edge("good", "192.0.2.14", "", tyo)
	edges := []heartbeat.Edge{dead, stale, draining, old, good}
	a := answerer(t, func() []heartbeat.Edge { return edges }, Config{Geo: world})
	rrs, _, ok := a.Answer(dns.TypeA, netip.MustParsePrefix("203.0.113.1/32"))
	if got := addrs(rrs); !ok || !slices.Equal(got, []string{"192.0.2.14"}) {
		t.Errorf("answer %v (ok %v), want only the eligible Tokyo edge although the others are nearer", got, ok)
	}
	// Eligible edges, none with IPv6: the name has no AAAA (NODATA), which is an answer.
	if rrs, _, ok := a.Answer(dns.TypeAAAA, netip.Prefix{}); !ok || len(rrs) != 0 {
		t.Errorf("AAAA: %v ok %v, want no records and ok", rrs, ok)
	}
	// No edge eligible at all: no answer, so the server falls back.
	edges = edges[:4]
	if rrs, _, ok := a.Answer(dns.TypeA, netip.Prefix{}); ok || len(rrs) != 0 {
		t.Errorf("no eligible edge: %v ok %v", rrs, ok)
	}
	if _, _, ok := a.Answer(dns.TypeMX, netip.Prefix{}); ok {
		t.Error("answered MX")
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("empty config accepted")
	}
	if _, err := New(Config{Name: "bad..name", Edges: func() ([]heartbeat.Edge, string) { return nil, "" }}); err == nil {
		t.Error("bad name accepted")
	}
}

// BenchmarkAnswer measures one GeoDNS choice among 20 edges for a located client: the work added
// to a DNS answer for the site's name.
func BenchmarkAnswer(b *testing.B) {
	var all []heartbeat.Edge
	for i := range 20 {
		loc := heartbeat.Location{Lat: float64(i*8 - 80), Lon: float64(i*17 - 170), Country: "X" + string(rune('A'+i)), Continent: "EU"}
		all = append(all, edge("e"+string(rune('a'+i)), netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String(), "", loc))
	}
	a, err := New(Config{Name: "www.example.com", Geo: world, Now: func() time.Time { return now },
		Edges: func() ([]heartbeat.Edge, string) { return all, "d1" }})
	if err != nil {
		b.Fatal(err)
	}
	client := netip.MustParsePrefix("203.0.113.0/24")
	for b.Loop() {
		if rrs, _, ok := a.Answer(dns.TypeA, client); !ok || len(rrs) == 0 {
			b.Fatal("no answer")
		}
	}
}

// TestOnlyEdgesWithCertificateForName: an https edge whose heartbeat reports no valid
// certificate for the answered name is left out of the answer, however near; one holding it
// (exactly or by a wildcard) is in.
func TestOnlyEdgesWithCertificateForName(t *testing.T) {
	https := func(e heartbeat.Edge, names ...string) heartbeat.Edge {
		e.Last.PublicURL = "https://" + e.Node + ".example.com"
		e.Last.CertExpiry = now.Add(time.Hour).UnixMilli()
		var cs []heartbeat.CertState
		for _, n := range names {
			cs = append(cs, heartbeat.CertState{Name: n, NotAfter: now.Add(time.Hour)})
		}
		e.Last.SetCerts(cs)
		return e
	}
	near := https(edge("near", "192.0.2.20", "", ams), "near.example.com")
	exact := https(edge("exact", "192.0.2.21", "", tyo), "exact.example.com", "www.example.com")
	wildcard := https(edge("wild", "192.0.2.22", "", nyc), "wild.example.com", "*.example.com")
	edges := []heartbeat.Edge{near, exact, wildcard}
	a := answerer(t, func() []heartbeat.Edge { return edges }, Config{Geo: world, MinAnswers: 3})
	rrs, _, ok := a.Answer(dns.TypeA, netip.MustParsePrefix("203.0.113.1/32"))
	got := addrs(rrs)
	slices.Sort(got)
	if !ok || !slices.Equal(got, []string{"192.0.2.21", "192.0.2.22"}) {
		t.Errorf("answer %v (ok %v), want the two edges with a certificate for www.example.com", got, ok)
	}
}
