package server

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dns/zone"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testZone = `$ORIGIN example.com.
$TTL 300
@       SOA ns1 hostmaster 7 7200 900 1209600 60
@       NS  ns1
@       NS  ns2.example.net.
@       MX  10 mail
ns1     A   192.0.2.53
mail    A   192.0.2.25
mail    AAAA 2001:db8::25
www 60  A   192.0.2.1
www 60  A   192.0.2.2
alias   CNAME www
loop1   CNAME loop2
loop2   CNAME loop1
out     CNAME www.example.org.
*.wild  TXT "wildcard"
*.wild  MX  10 mail
a.b.c   A   192.0.2.3
sub     NS  ns.sub
ns.sub  A   192.0.2.54
`

// storeWith returns a store holding the zones given as zone-file text.
func storeWith(t testing.TB, zones ...string) *Store {
	t.Helper()
	s := NewStore(nil, nil)
	for _, text := range zones {
		z, err := zone.Parse(strings.NewReader(text), "test", zone.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range z.Sets {
			body, err := z.Sets[i].Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(z.Sets[i].Key(), body); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

func newHandler(t testing.TB, s *Store, dyn Dynamic) *Handler {
	t.Helper()
	h, err := NewHandler(Config{Store: s, Dynamic: dyn})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var netipLoopback = netip.MustParseAddr("127.0.0.1")

func ask(h *Handler, name string, qtype uint16, tcp bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	return h.Respond(q, netip.MustParseAddr("127.0.0.1"), tcp)
}

// rrStrings returns records as text without TTLs, for comparisons.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, c.String())
	}
	return out
}
