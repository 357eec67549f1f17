package synth

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dns/geo"
	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const testZone = "cdn.example.com"

// edge is a live edge serving deploy d1 of the default site, reporting zone z.
func edge(node, name, v4, z string) heartbeat.Edge {
	h := heartbeat.Heartbeat{Seq: 1, Time: now.UnixMilli(), Name: name, PublicURL: "http://" + node + ".example.net",
		IPv4: netip.MustParseAddr(v4), Deploy: "d1", Synced: true, CDNZone: z}
	return heartbeat.Edge{Node: node, Last: h, LastSeen: now.Add(-time.Second), State: heartbeat.Alive}
}

// synthWith returns a Synth answering zone over a view of edges and the implicit default site
// (deploy d1).
func synthWith(t testing.TB, edges []heartbeat.Edge, nameServers ...string) *Synth {
	t.Helper()
	view := &edgeset.View{Edges: edges, Reports: map[string]edgeset.SiteReport{},
		Sites: edgeset.NewSites([]edgeset.Site{{Name: site.DefaultSite, Hosts: []string{}, Implicit: true, Current: "d1"}})}
	a, err := geo.New(geo.Config{Name: "invalid.", Edges: func() ([]heartbeat.Edge, string) { return edges, "d1" }, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{View: func() *edgeset.View { return view }, Geo: a, Select: a.Options(), NameServers: nameServers,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := netconf.Settings{V: netconf.Version, CDNZone: testZone}.Marshal()
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: netconf.Key, Object: b})
	return s
}

func addrsOf(r server.Synthesized) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestAnswerServesOnlyEdgesOfTheZone: an edge whose heartbeat does not report the zone (an
// earlier release) is in no answer, though its label still names it (NODATA, not NXDOMAIN).
func TestAnswerServesOnlyEdgesOfTheZone(t *testing.T) {
	s := synthWith(t, []heartbeat.Edge{edge("aaaa", "ams", "192.0.2.1", testZone), edge("bbbb", "old", "192.0.2.2", "")}, "ns1.example.com")
	for _, c := range []struct {
		name  string
		rcode int
		addrs []string
	}{
		{"default.cdn.example.com.", dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"ams.cdn.example.com.", dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"default--ams.cdn.example.com.", dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"old.cdn.example.com.", dns.RcodeSuccess, nil},
		{"default--old.cdn.example.com.", dns.RcodeSuccess, nil},
		{"new.cdn.example.com.", dns.RcodeNameError, nil},
	} {
		r := s.Answer(c.name, dns.TypeA, netip.Prefix{}, server.Published{})
		if r.Rcode != c.rcode || !slices.Equal(addrsOf(r), c.addrs) || (len(c.addrs) == 0) != (len(r.Authority) == 1) {
			t.Errorf("%s: %+v, want %s %v", c.name, r, dns.RcodeToString[c.rcode], c.addrs)
		}
	}
	soa := s.Answer("cdn.example.com.", dns.TypeSOA, netip.Prefix{}, server.Published{})
	if len(soa.Answer) != 1 || soa.Answer[0].(*dns.SOA).Ns != "ns1.example.com." || soa.Answer[0].(*dns.SOA).Minttl != NegativeTTL {
		t.Errorf("SOA: %+v", soa)
	}
}

// TestPublishedZoneStandsForTheApex: a published zone's SOA and NS answer for the apex.
func TestPublishedZoneStandsForTheApex(t *testing.T) {
	s := synthWith(t, nil)
	pubSOA := &dns.SOA{Hdr: dns.RR_Header{Name: "cdn.example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns9.example.org.", Minttl: 10}
	pubNS := []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "cdn.example.com.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns9.example.org."}}
	pub := server.Published{SOA: pubSOA, NS: pubNS}
	if r := s.Answer("cdn.example.com.", dns.TypeNS, netip.Prefix{}, pub); len(r.Answer) != 1 || r.Answer[0] != pubNS[0] {
		t.Errorf("NS: %+v", r)
	}
	if r := s.Answer("nosuch.cdn.example.com.", dns.TypeA, netip.Prefix{}, pub); r.Rcode != dns.RcodeNameError || r.Authority[0].(*dns.SOA).Ns != "ns9.example.org." || r.Authority[0].Header().Ttl != 10 {
		t.Errorf("NXDOMAIN: %+v", r)
	}
	if r := s.Answer("cdn.example.com.", dns.TypeNS, netip.Prefix{}, server.Published{}); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("NS without name servers: %+v", r)
	}
}

// TestSettingsFollowed: the zone follows the settings record; a refused record is none.
func TestSettingsFollowed(t *testing.T) {
	s := synthWith(t, nil)
	if s.Apex() != "cdn.example.com." {
		t.Fatalf("Apex = %q", s.Apex())
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: netconf.Key, Object: []byte(`{"v":1,"cdn_zone":"com"}`)})
	if s.Apex() != "" {
		t.Errorf("a refused record left the zone %q", s.Apex())
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: netconf.Key, Object: []byte(`{"v":1,"cdn_zone":"cdn.example.org"}`)})
	if s.Apex() != "cdn.example.org." {
		t.Errorf("Apex = %q, want the new zone", s.Apex())
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: netconf.Key})
	if s.Apex() != "" {
		t.Errorf("a removed record left the zone %q", s.Apex())
	}
}

// FuzzAnswer asks the Synth any name under the zone: it never panics, answers NOERROR or
// NXDOMAIN, owns every record by the name asked, and gives a negative answer its SOA.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{"ams.cdn.example.com.", "default--ams.cdn.example.com.", "0123456789ab--default.cdn.example.com.",
		"e-aaaa.cdn.example.com.", "a.b.cdn.example.com.", "cdn.example.com.", "_acme-challenge.cdn.example.com."} {
		f.Add(s, uint16(dns.TypeA))
	}
	s := synthWith(f, []heartbeat.Edge{edge("aaaa", "ams", "192.0.2.1", testZone), edge("bbbb", "ams", "192.0.2.2", testZone)})
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		name = zone.CanonicalName(name)
		if name == "" || !dns.IsSubDomain(s.Apex(), name) {
			return
		}
		r := s.Answer(name, qtype, netip.Prefix{}, server.Published{})
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: rcode %d", name, r.Rcode)
		}
		for _, rr := range r.Answer {
			if rr.Header().Name != name && !(name == s.Apex() && rr.Header().Name == s.Apex()) {
				t.Fatalf("%s: answer owned by %s", name, rr.Header().Name)
			}
		}
		if len(r.Answer) == 0 && len(r.Authority) != 1 {
			t.Fatalf("%s: negative answer without the SOA: %+v", name, r)
		}
	})
}

// TestReplacedSettingsKeepTheZone: dt reports a replaced record as a removal and then an
// addition; while the table still holds the record, the removal leaves the zone as it was.
func TestReplacedSettingsKeepTheZone(t *testing.T) {
	s := synthWith(t, nil)
	s.cfg.Held = func(key string) bool { return key == netconf.Key }
	s.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: netconf.Key})
	if s.Apex() != "cdn.example.com." {
		t.Errorf("a replaced record's removal cleared the zone: %q", s.Apex())
	}
}
