package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestAnswers(t *testing.T) {
	h := newHandler(t, storeWith(t, testZone), nil)
	cases := []struct {
		name     string
		qname    string
		qtype    uint16
		rcode    int
		aa       bool
		answer   []string // substrings, one per answer record, in order
		nsType   uint16   // type of the authority section's records, 0 for none
		extraLen int
	}{
		{"exact", "www.example.com.", dns.TypeA, dns.RcodeSuccess, true, []string{"192.0.2.1", "192.0.2.2"}, 0, 0},
		{"case-insensitive", "WwW.ExAmPlE.CoM.", dns.TypeA, dns.RcodeSuccess, true, []string{"192.0.2.1", "192.0.2.2"}, 0, 0},
		{"nodata", "www.example.com.", dns.TypeMX, dns.RcodeSuccess, true, nil, dns.TypeSOA, 0},
		{"nxdomain", "nope.example.com.", dns.TypeA, dns.RcodeNameError, true, nil, dns.TypeSOA, 0},
		{"empty non-terminal", "b.c.example.com.", dns.TypeA, dns.RcodeSuccess, true, nil, dns.TypeSOA, 0},
		{"below an existing name", "x.a.b.c.example.com.", dns.TypeA, dns.RcodeNameError, true, nil, dns.TypeSOA, 0},
		{"cname followed", "alias.example.com.", dns.TypeA, dns.RcodeSuccess, true, []string{"CNAME", "192.0.2.1", "192.0.2.2"}, 0, 0},
		{"cname asked", "alias.example.com.", dns.TypeCNAME, dns.RcodeSuccess, true, []string{"CNAME"}, 0, 0},
		{"cname out of zone", "out.example.com.", dns.TypeA, dns.RcodeSuccess, true, []string{"www.example.org."}, 0, 0},
		{"cname loop", "loop1.example.com.", dns.TypeA, dns.RcodeSuccess, true, []string{"loop2", "loop1"}, 0, 0},
		{"wildcard", "anything.wild.example.com.", dns.TypeTXT, dns.RcodeSuccess, true, []string{"anything.wild.example.com.\t0\tIN\tTXT\t\"wildcard\""}, 0, 0},
		{"wildcard nodata", "anything.wild.example.com.", dns.TypeA, dns.RcodeSuccess, true, nil, dns.TypeSOA, 0},
		{"wildcard with additional", "x.wild.example.com.", dns.TypeMX, dns.RcodeSuccess, true, []string{"10 mail.example.com."}, 0, 2},
		{"mx additional", "example.com.", dns.TypeMX, dns.RcodeSuccess, true, []string{"10 mail.example.com."}, 0, 2},
		{"referral", "host.sub.example.com.", dns.TypeA, dns.RcodeSuccess, false, nil, dns.TypeNS, 1},
		{"referral at the cut", "sub.example.com.", dns.TypeNS, dns.RcodeSuccess, false, nil, dns.TypeNS, 1},
		{"other zone", "example.org.", dns.TypeA, dns.RcodeRefused, false, nil, 0, 0},
		{"transfer", "example.com.", dns.TypeAXFR, dns.RcodeRefused, false, nil, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ask(h, c.qname, c.qtype, false)
			if m.Rcode != c.rcode || m.Authoritative != c.aa {
				t.Fatalf("rcode %s aa %v, want %s aa %v\n%s", dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[c.rcode], c.aa, m)
			}
			got := rrStrings(m.Answer)
			if len(got) != len(c.answer) {
				t.Fatalf("answer %q, want records containing %q", got, c.answer)
			}
			for i, want := range c.answer {
				if !strings.Contains(got[i], want) {
					t.Errorf("answer %d = %q, want it to contain %q", i, got[i], want)
				}
			}
			if c.nsType == 0 && len(m.Ns) != 0 || c.nsType != 0 && (len(m.Ns) == 0 || m.Ns[0].Header().Rrtype != c.nsType) {
				t.Errorf("authority %v, want type %s", m.Ns, dns.TypeToString[c.nsType])
			}
			if len(m.Extra) != c.extraLen {
				t.Errorf("additional %v, want %d records", m.Extra, c.extraLen)
			}
			if c.nsType == dns.TypeSOA && m.Ns[0].Header().Ttl != 60 {
				t.Errorf("negative TTL %d, want the SOA minimum 60", m.Ns[0].Header().Ttl)
			}
		})
	}
}

func TestANYOverUDPIsMinimal(t *testing.T) {
	h := newHandler(t, storeWith(t, testZone), nil)
	udp := ask(h, "mail.example.com.", dns.TypeANY, false)
	if len(udp.Answer) != 1 || udp.Answer[0].Header().Rrtype != dns.TypeHINFO {
		t.Errorf("ANY over UDP: %v, want one HINFO (RFC 8482)", udp.Answer)
	}
	tcp := ask(h, "mail.example.com.", dns.TypeANY, true)
	if len(tcp.Answer) != 2 {
		t.Errorf("ANY over TCP: %v, want the A and AAAA", tcp.Answer)
	}
}

func TestStoreFollowsRemovals(t *testing.T) {
	s := storeWith(t, testZone)
	h := newHandler(t, s, nil)
	s.Remove("dns/example.com./a.b.c.example.com./A")
	if m := ask(h, "c.example.com.", dns.TypeA, false); m.Rcode != dns.RcodeNameError {
		t.Errorf("the empty non-terminal outlived the only name below it: %s", dns.RcodeToString[m.Rcode])
	}
	if zones, _ := s.Counts(); zones != 1 {
		t.Errorf("zones %d", zones)
	}
	s.Remove("dns/example.com./example.com./SOA")
	if m := ask(h, "www.example.com.", dns.TypeA, false); m.Rcode != dns.RcodeRefused {
		t.Errorf("a zone without its SOA is still served: %s", dns.RcodeToString[m.Rcode])
	}
	// A body that does not decode removes what the key held.
	if err := s.Put("dns/example.com./www.example.com./A", []byte(`{"v":1}`)); err == nil {
		t.Error("a bad body was accepted")
	}
	s2 := storeWith(t, testZone)
	_ = s2.Put("dns/example.com./www.example.com./A", []byte(`garbage`))
	if m := ask(newHandler(t, s2, nil), "www.example.com.", dns.TypeA, false); len(m.Answer) != 0 {
		t.Errorf("a stale set is served after a bad update: %v", m.Answer)
	}
}

func TestTruncationAndEDNS(t *testing.T) {
	big := testZone
	for i := range 60 {
		big += "big TXT \"" + strings.Repeat("x", 40) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "\"\n"
	}
	h := newHandler(t, storeWith(t, big), nil)
	plain := ask(h, "big.example.com.", dns.TypeTXT, false)
	if !plain.Truncated || plain.Len() > dns.MinMsgSize {
		t.Errorf("UDP without EDNS: truncated %v, %d bytes", plain.Truncated, plain.Len())
	}
	q := new(dns.Msg)
	q.SetQuestion("big.example.com.", dns.TypeTXT)
	q.SetEdns0(4096, false)
	edns := h.Respond(q, netipLoopback, false)
	if !edns.Truncated || edns.Len() > DefaultMaxUDPSize || edns.IsEdns0() == nil {
		t.Errorf("UDP with EDNS 4096: truncated %v, %d bytes, OPT %v", edns.Truncated, edns.Len(), edns.IsEdns0())
	}
	if full := ask(h, "big.example.com.", dns.TypeTXT, true); full.Truncated || len(full.Answer) != 60 {
		t.Errorf("TCP: truncated %v, %d records", full.Truncated, len(full.Answer))
	}
	q.IsEdns0().SetVersion(1)
	if m := h.Respond(q, netipLoopback, false); m.Rcode != dns.RcodeBadVers {
		t.Errorf("EDNS version 1: %s, want BADVERS", dns.RcodeToString[m.Rcode])
	}
	n := new(dns.Msg)
	n.SetNotify("example.com.")
	if m := h.Respond(n, netipLoopback, false); m.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s", dns.RcodeToString[m.Rcode])
	}
	if got := rrStrings(ask(h, "www.example.com.", dns.TypeA, false).Answer); !slices.IsSorted(got) {
		t.Errorf("answers not in stored order: %v", got)
	}
}
