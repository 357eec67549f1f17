package server

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/zone"
)

// Synthesizer answers one zone whose names are made rather than stored: the CDN zone, whose
// names come from the edges' heartbeats and the sites (package dns/synth). Its methods are
// called from many goroutines at once.
type Synthesizer interface {
	// Apex returns the zone it answers, canonical (zone.CanonicalName); "" while it answers none.
	Apex() string
	// Answer answers a query for name (canonical, at or under Apex) for a client in the given
	// prefix (invalid when unknown). published is the Store's zone of the same apex, when one
	// is published: its SOA and NS then stand for the zone.
	Answer(name string, qtype uint16, client netip.Prefix, published Published) Synthesized
}

// Synthesized is a Synthesizer's answer. Rcode is NOERROR or NXDOMAIN; Authority holds the SOA
// of a negative answer; Scope is the EDNS Client Subnet scope of a client-dependent answer.
type Synthesized struct {
	Rcode     int
	Answer    []dns.RR
	Authority []dns.RR
	Scope     int
}

// Published is what a Store holds of a zone a Synthesizer answers: its SOA and NS, empty when
// no zone of that apex is published.
type Published struct {
	SOA *dns.SOA
	NS  []dns.RR
}

// ChallengeTTL is the TTL of the TXT answers of ACME DNS-01 challenges: short, since a value
// lives only as long as one order, and a renewal's new value must not meet a cached old one.
const ChallengeTTL = 5

// challengeLabel starts the names of ACME DNS-01 challenges (RFC 8555 §8.4).
const challengeLabel = "_acme-challenge."

// published returns the zone of apex as a Synthesizer sees it, and whether the zone holds name
// itself (a name the operator published is answered from the records).
func (s *Store) published(apex, name string) (Published, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z := s.zones[apex]
	if z == nil || z.soa() == nil {
		return Published{}, false
	}
	p := Published{SOA: z.soa(), NS: z.names[apex].sets[dns.TypeNS]}
	n := z.names[name]
	return p, name != apex && n != nil && len(n.sets) > 0
}

// served reports whether name lies in a zone the store serves.
func (s *Store) served(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.findZone(name) != nil
}

// challengeAnswer answers a TXT query for an ACME DNS-01 name from h's Challenges, for a name in
// a zone served here; ok is false when there is no live value (the zone then answers).
func (h *Handler) challengeAnswer(name string, qtype uint16, synthApex string) (result, bool) {
	if h.cfg.Challenges == nil || qtype != dns.TypeTXT || !strings.HasPrefix(name, challengeLabel) {
		return result{}, false
	}
	if !(synthApex != "" && dns.IsSubDomain(synthApex, name)) && !h.cfg.Store.served(name) {
		return result{}, false
	}
	values := h.cfg.Challenges(strings.TrimSuffix(strings.TrimPrefix(name, challengeLabel), "."))
	if len(values) == 0 {
		return result{}, false
	}
	res := result{rcode: dns.RcodeSuccess, authoritative: true}
	for _, v := range values {
		res.answer = append(res.answer, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ChallengeTTL}, Txt: []string{v}})
	}
	return res, true
}

// answer finds the result for a question of a valid class and type: an ACME challenge, the
// Synthesizer's zone, or the Store.
func (h *Handler) answer(q dns.Question, client netip.Prefix, tcp bool) result {
	name := zone.CanonicalName(q.Name)
	if name == "" {
		return result{rcode: dns.RcodeFormatError}
	}
	apex := ""
	if h.cfg.Synth != nil {
		apex = h.cfg.Synth.Apex()
	}
	if res, ok := h.challengeAnswer(name, q.Qtype, apex); ok {
		return res
	}
	if apex != "" && dns.IsSubDomain(apex, name) {
		if pub, holds := h.cfg.Store.published(apex, name); !holds {
			s := h.cfg.Synth.Answer(name, q.Qtype, client, pub)
			return result{rcode: s.Rcode, authoritative: true, answer: s.Answer, authority: s.Authority, scope: s.Scope, dynamic: s.Scope > 0}
		}
	}
	return h.cfg.Store.lookup(query{name: name, qtype: q.Qtype, client: client, tcp: tcp}, h.cfg.Dynamic)
}

// preserveCase returns the answer with the owner name of every record owned by the query's name
// spelt as the query spelt it: resolvers that randomise the case of their queries (0x20, used by
// the CAs' validation resolvers) may compare it. Records and the slice are copied, never changed
// in place (the Store's are shared), and only when a name differs.
func preserveCase(rrs []dns.RR, qname string) []dns.RR {
	var out []dns.RR
	for i, rr := range rrs {
		if n := rr.Header().Name; n != qname && strings.EqualFold(n, qname) {
			if out == nil {
				out = slices.Clone(rrs)
			}
			c := dns.Copy(rr)
			c.Header().Name = qname
			out[i] = c
		}
	}
	if out == nil {
		return rrs
	}
	return out
}
