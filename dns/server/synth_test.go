package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestQueryCaseKept: over UDP, the answer to a mixed-case query (0x20) names its records as the
// query did, and the stored records keep their own case for the next query.
func TestQueryCaseKept(t *testing.T) {
	addr := serve(t, newHandler(t, storeWith(t, testZone), nil))
	for _, name := range []string{"WwW.ExAmPlE.cOm.", "www.example.com."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(q, addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 2 || r.Question[0].Name != name {
			t.Fatalf("%s: %v", name, r)
		}
		for _, rr := range r.Answer {
			if rr.Header().Name != name {
				t.Errorf("%s: record owned by %s", name, rr.Header().Name)
			}
		}
	}
}

// TestChallengesAnswered: a live challenge answers TXT for _acme-challenge names in served
// zones only; without one, the zone answers.
func TestChallengesAnswered(t *testing.T) {
	h, err := NewHandler(Config{Store: storeWith(t, testZone), Challenges: func(domain string) []string {
		if domain == "www.example.com" {
			return []string{"value"}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("_acme-challenge.WWW.example.com.", dns.TypeTXT)
	r := h.Respond(q, netip.MustParseAddr("127.0.0.1"), false)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "value" || r.Answer[0].Header().Name != "_acme-challenge.WWW.example.com." ||
		r.Answer[0].Header().Ttl != ChallengeTTL || !r.Authoritative {
		t.Errorf("challenge: %v", r)
	}
	if r := ask(h, "_acme-challenge.mail.example.com.", dns.TypeTXT, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("no challenge: %v", r)
	}
	if r := ask(h, "_acme-challenge.www.example.org.", dns.TypeTXT, false); r.Rcode != dns.RcodeRefused {
		t.Errorf("a zone not served: %v", r)
	}
}
