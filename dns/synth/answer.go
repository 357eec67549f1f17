package synth

import (
	"net/netip"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/cdnzone"
	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
)

// target is what a name under the zone names: a site, an edge, or a site on an edge. onEdge is
// set for the last two; edge is then nil when the edge does not serve the zone.
type target struct {
	site   *edgeset.Site
	edge   *heartbeat.Edge
	onEdge bool
}

// Answer answers a query for name (canonical, at or under Apex); see the package documentation.
func (s *Synth) Answer(name string, qtype uint16, client netip.Prefix, pub server.Published) server.Synthesized {
	apex := s.Apex()
	soa := s.soa(apex, pub)
	if name == apex {
		return s.apexAnswer(apex, qtype, soa, pub)
	}
	prep := s.prepare(s.cfg.View(), s.Zone())
	v := prep.serves
	t, ok := s.resolve(name[:len(name)-1], v, prep.labels)
	if !ok {
		return server.Synthesized{Rcode: dns.RcodeNameError, Authority: negative(soa)}
	}
	if !isAddress(qtype) {
		return nodata(soa, 0)
	}
	var (
		rrs   []dns.RR
		scope int
	)
	switch {
	case !t.onEdge:
		rrs, scope, _ = s.cfg.Geo.AnswerSite(name, qtype, client, v, *t.site)
	case t.edge == nil: // an edge that does not serve the zone
	case t.site == nil:
		if edgeset.Live(t.edge, s.cfg.Now(), s.cfg.Select) {
			rrs = s.addressOf(*t.edge, name, qtype)
		}
	case s.serves(v, *t.site, t.edge.Node, name):
		rrs = s.addressOf(*t.edge, name, qtype)
	}
	if len(rrs) == 0 {
		return nodata(soa, scope)
	}
	return server.Synthesized{Rcode: dns.RcodeSuccess, Answer: rrs, Scope: scope}
}

// resolve finds what host (lower case, no trailing dot) names in v, and false for a name of no
// site or edge the network has.
func (s *Synth) resolve(host string, v *edgeset.View, labels *cdnzone.Labels) (target, bool) {
	n, err := cdnzone.Parse(host, s.Zone())
	if err != nil {
		return target{}, false
	}
	switch n.Kind {
	case cdnzone.KindLabel:
		if site, ok := v.Sites.Lookup(n.Label); ok {
			return target{site: &site}, true
		}
		e, known := edgeOf(v, labels, n.Label)
		return target{edge: e, onEdge: true}, known
	case cdnzone.KindPreview:
		site, ok := v.Sites.Lookup(n.Site)
		return target{site: &site}, ok
	}
	site, ok := v.Sites.Lookup(n.Site)
	e, known := edgeOf(v, labels, n.Edge)
	return target{site: &site, edge: e, onEdge: true}, ok && known
}

// edgeOf returns the edge of v whose label is label, nil when v lacks it (it does not serve the
// zone), and whether the label names an edge at all.
func edgeOf(v *edgeset.View, labels *cdnzone.Labels, label string) (*heartbeat.Edge, bool) {
	node, ok := labels.Node(label)
	if !ok {
		return nil, false
	}
	for i := range v.Edges {
		if v.Edges[i].Node == node {
			return &v.Edges[i], true
		}
	}
	return nil, true
}

// serves reports whether the edge node is eligible for the site in v, as the redirector and
// GeoDNS judge it, an https edge holding a valid certificate for name.
func (s *Synth) serves(v *edgeset.View, site edgeset.Site, node, name string) bool {
	opts := s.cfg.Select
	opts.CertName = name
	d := edgeset.SelectSite(v, site, edgeset.Client{}, s.cfg.Now(), opts)
	for _, c := range d.Candidates {
		if c.Edge.Node == node {
			return true
		}
	}
	return false
}

// apexAnswer answers the zone's apex: its SOA and NS, NODATA for the rest.
func (s *Synth) apexAnswer(apex string, qtype uint16, soa *dns.SOA, pub server.Published) server.Synthesized {
	switch qtype {
	case dns.TypeSOA:
		return server.Synthesized{Rcode: dns.RcodeSuccess, Answer: []dns.RR{soa}}
	case dns.TypeNS:
		if ns := s.ns(apex, pub); len(ns) > 0 {
			return server.Synthesized{Rcode: dns.RcodeSuccess, Answer: ns}
		}
	}
	return nodata(soa, 0)
}

// soa is the published zone's SOA, or one made from NameServers.
func (s *Synth) soa(apex string, pub server.Published) *dns.SOA {
	if pub.SOA != nil {
		return pub.SOA
	}
	primary := apex
	if len(s.cfg.NameServers) > 0 {
		primary = canonical(s.cfg.NameServers[0])
	}
	return &dns.SOA{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ZoneTTL},
		Ns: primary, Mbox: "hostmaster." + apex, Serial: 1, Refresh: 3600, Retry: 600, Expire: 1209600, Minttl: NegativeTTL}
}

// ns is the published zone's NS, or those made from NameServers.
func (s *Synth) ns(apex string, pub server.Published) []dns.RR {
	if pub.SOA != nil {
		return pub.NS
	}
	var out []dns.RR
	for _, n := range s.cfg.NameServers {
		out = append(out, &dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ZoneTTL}, Ns: canonical(n)})
	}
	return out
}

// negative is the authority section of a negative answer: the SOA with the negative-caching
// TTL, the lesser of its TTL and MINIMUM (RFC 2308 §3).
func negative(soa *dns.SOA) []dns.RR {
	c := dns.Copy(soa).(*dns.SOA)
	c.Hdr.Ttl = min(c.Hdr.Ttl, c.Minttl)
	return []dns.RR{c}
}

func nodata(soa *dns.SOA, scope int) server.Synthesized {
	return server.Synthesized{Rcode: dns.RcodeSuccess, Authority: negative(soa), Scope: scope}
}
