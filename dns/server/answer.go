package server

import (
	"net/netip"
	"slices"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/zone"
)

// Dynamic answers A and AAAA queries for one name whose addresses depend on the client and on
// time (GeoDNS: package geo). Its methods are called from many goroutines at once.
type Dynamic interface {
	// Name is the name it answers for, canonical (zone.CanonicalName).
	Name() string
	// Answer returns the records for qtype (A or AAAA) for a client in the given prefix (invalid
	// when unknown), and the prefix length the answer holds for (the EDNS Client Subnet scope,
	// RFC 7871 §7.2.1). ok is false when it has no answer of any type (no edge is live): the
	// zone's own records for the name then stand in, or the answer is SERVFAIL. ok with no
	// records means the name has no address of this type (NODATA).
	Answer(qtype uint16, client netip.Prefix) (rrs []dns.RR, scope int, ok bool)
}

// maxChase bounds how many CNAMEs one answer follows (BIND uses 16; a chain longer than a few
// links is a mistake).
const maxChase = 8

// result is the outcome of a lookup, before it becomes a message.
type result struct {
	rcode         int
	authoritative bool
	answer        []dns.RR
	authority     []dns.RR
	extra         []dns.RR
	scope         int  // ECS scope prefix length; 0 unless a Dynamic answered
	dynamic       bool // a Dynamic answered
}

// query is one question as the lookup sees it.
type query struct {
	name   string // canonical
	qtype  uint16
	client netip.Prefix
	tcp    bool
}

// lookup answers q from the store, following RFC 1034 §4.3.2 for an authoritative server: a
// referral at a delegation, CNAMEs followed within the served zones, wildcards (RFC 4592), NODATA
// and NXDOMAIN with the zone's SOA for negative caching (RFC 2308 §3), empty non-terminals as
// NODATA (RFC 8020).
func (s *Store) lookup(q query, dyn Dynamic) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z := s.findZone(q.name)
	if z == nil {
		return result{rcode: dns.RcodeRefused}
	}
	res := result{rcode: dns.RcodeSuccess, authoritative: true}
	name := q.name
	for chase := 0; ; chase++ {
		if cut := z.cutAt(name); cut != nil {
			if chase == 0 {
				res.authoritative = false
				res.authority = cut
				res.extra = s.glue(z, cut)
			}
			return res
		}
		n, wild := z.match(name)
		if dyn != nil && name == dyn.Name() && (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA) {
			rrs, scope, ok := dyn.Answer(q.qtype, q.client)
			switch {
			case ok:
				res.dynamic, res.scope = true, scope
				if len(rrs) == 0 {
					res.authority = z.negative()
				}
				res.answer = append(res.answer, rrs...)
				return res
			case n == nil || len(n.sets[q.qtype]) == 0:
				return result{rcode: dns.RcodeServerFailure}
			}
			// No edge is live: the zone's own records for the name stand in.
		}
		if n == nil {
			if dyn != nil && name == dyn.Name() {
				res.authority = z.negative() // the name exists, dynamically
				return res
			}
			res.rcode = dns.RcodeNameError
			res.authority = z.negative()
			return res
		}
		if q.qtype == dns.TypeANY {
			res.answer = append(res.answer, anyAnswer(n, name, q.tcp)...)
			return res
		}
		if rrs := n.sets[q.qtype]; len(rrs) > 0 {
			res.answer = append(res.answer, synthesize(rrs, name, wild)...)
			res.extra = s.additional(res.answer)
			return res
		}
		cname := n.sets[dns.TypeCNAME]
		if len(cname) == 0 || q.qtype == dns.TypeCNAME {
			res.authority = z.negative()
			return res
		}
		res.answer = append(res.answer, synthesize(cname, name, wild)...)
		target := zone.CanonicalName(cname[0].(*dns.CNAME).Target)
		next := s.findZone(target)
		if next == nil || chase+1 == maxChase || seen(res.answer, target) {
			return res // the resolver follows the rest
		}
		z, name = next, target
	}
}

// seen reports whether a CNAME chain already passed through name: a loop.
func seen(answer []dns.RR, name string) bool {
	return slices.ContainsFunc(answer, func(rr dns.RR) bool { return zone.CanonicalName(rr.Header().Name) == name })
}

// match finds what answers for name in the zone: the name itself, or failing that the wildcard at
// its closest encloser (RFC 4592 §3.3.1: only when name does not exist, empty non-terminals
// included). n is nil when neither exists. An empty non-terminal matches with no sets.
func (z *zoneData) match(name string) (n *nameNode, wild bool) {
	if n := z.names[name]; n != nil {
		return n, false
	}
	for enc := parent(name); enc != "" && dns.IsSubDomain(z.apex, enc); enc = parent(enc) {
		if _, ok := z.names[enc]; !ok {
			continue
		}
		source := "*." + enc
		if n := z.names[source]; n != nil && len(n.sets) > 0 {
			return n, true
		}
		return nil, false
	}
	return nil, false
}

// cutAt returns the NS records of the delegation at or above name (below the apex), or nil.
func (z *zoneData) cutAt(name string) []dns.RR {
	labels := dns.Split(name)
	for i := len(labels) - dns.CountLabel(z.apex) - 1; i >= 0; i-- {
		if n := z.names[name[labels[i]:]]; n != nil {
			if ns := n.sets[dns.TypeNS]; len(ns) > 0 {
				return ns
			}
		}
	}
	return nil
}

// negative is the authority section of NXDOMAIN and NODATA: the SOA with the negative-caching TTL,
// the lesser of its own TTL and its MINIMUM field (RFC 2308 §3).
func (z *zoneData) negative() []dns.RR {
	soa := dns.Copy(z.soa()).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return []dns.RR{soa}
}

// synthesize returns rrs as the answer for name: as they are, or, for a wildcard match, copies
// owned by name (RFC 4592 §3.3.1).
func synthesize(rrs []dns.RR, name string, wild bool) []dns.RR {
	if !wild {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = name
		out[i] = c
	}
	return out
}

// anyAnswer answers qtype ANY. Over UDP it gives the one synthesized HINFO of RFC 8482 §4.2
// instead of every set, which would make the server an amplifier; over TCP, every set.
func anyAnswer(n *nameNode, name string, tcp bool) []dns.RR {
	if !tcp {
		return []dns.RR{&dns.HINFO{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600}, Cpu: "RFC8482"}}
	}
	types := make([]uint16, 0, len(n.sets))
	for t := range n.sets {
		types = append(types, t)
	}
	slices.Sort(types)
	var out []dns.RR
	for _, t := range types {
		out = append(out, n.sets[t]...)
	}
	return out
}

// glue returns the addresses of the name servers of a delegation that lie in the zone.
func (s *Store) glue(z *zoneData, ns []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range ns {
		out = append(out, z.addresses(zone.CanonicalName(rr.(*dns.NS).Ns))...)
	}
	return out
}

// additional returns the addresses, held in a served zone, of the names an answer's NS, MX and
// SRV records point to (RFC 1035 §3.3, RFC 2782), so the resolver need not ask again.
func (s *Store) additional(answer []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range answer {
		var target string
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.MX:
			target = v.Mx
		case *dns.SRV:
			target = v.Target
		default:
			continue
		}
		target = zone.CanonicalName(target)
		if z := s.findZone(target); z != nil && z.cutAt(target) == nil {
			out = append(out, z.addresses(target)...)
		}
	}
	return out
}

// addresses returns the A and AAAA records of name in the zone.
func (z *zoneData) addresses(name string) []dns.RR {
	n := z.names[name]
	if n == nil {
		return nil
	}
	return append(slices.Clip(n.sets[dns.TypeA]), n.sets[dns.TypeAAAA]...)
}
