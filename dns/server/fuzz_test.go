package server

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond feeds the handler any query a client could send (whatever miekg/dns unpacks, with
// EDNS options such as Client Subnet) over UDP and TCP: it never panics, answers every query it
// answers with the query's id, and every answer packs within the size the transport allows.
func FuzzRespond(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.com.", dns.TypeA}, {"x.wild.example.com.", dns.TypeMX}, {"loop1.example.com.", dns.TypeA}, {"example.com.", dns.TypeANY}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}})
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	h := newHandler(f, storeWith(f, testZone), nil)
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		var q dns.Msg
		if q.Unpack(b) != nil {
			return
		}
		r := h.Respond(&q, netip.MustParseAddr("203.0.113.9"), tcp)
		if r == nil {
			return // dropped
		}
		if r.Id != q.Id {
			t.Fatalf("answer id %d for query id %d", r.Id, q.Id)
		}
		out, err := r.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, r)
		}
		limit := dns.MaxMsgSize
		if !tcp {
			limit = 1232
			if opt := q.IsEdns0(); opt == nil {
				limit = dns.MinMsgSize
			}
		}
		if len(out) > limit {
			t.Fatalf("answer of %d bytes over %d (tcp %v)", len(out), limit, tcp)
		}
	})
}
