// Package geo answers DNS for the site's public name with the addresses of the nearest live
// edges: GeoDNS, so that visitors reach an edge without the redirector's extra hop.
//
// It makes no choice of its own. The edges are an edgeset.Set's (the redirector follows the same
// heartbeats with one), and the choice is edgeset.Select, so an address is in an answer exactly
// when the redirector would send that client to that edge: alive, heartbeat fresh, serving the
// current deploy, not draining, with a valid certificate for the name answered (Config.Name, by
// the edge's heartbeat; see edgeset.SelectOptions.CertName), and in the near band of the client's
// place. The client's place comes from the EDNS Client Subnet the resolver passed on, else from
// the resolver's own address; with neither known, or no GeoIP database, every eligible edge is in
// the answer.
//
// # Caveats
//
// Resolvers cache an answer for its TTL, so a crashed edge stays in cached answers up to the TTL
// after it leaves fresh ones; answers therefore carry a short TTL and, when there are several
// eligible edges, at least two addresses, so that a client whose first address fails has another.
// An edge leaves fresh answers once its heartbeat is older than SelectOptions.MaxAgeBeats of its
// own heartbeat interval (MaxAge for edges that announce none), which default here to 2.5
// intervals rather than the redirector's three, since the TTL already adds to the delay.
//
// # Sites
//
// A network may serve many sites (package site). An Answerer answers for one name, Config.Name,
// and chooses for the site "default" alone: Config.Edges is edgeset.Set.Snapshot, whose deploy
// is that site's, and the choice is Select's rule by the edges' Deploy and Synced, which edges of
// every release report. Other sites get no GeoDNS name yet: their visitors go through the
// redirector, which chooses by the request's Host among the edges serving that site (see
// edgeset.SelectSite). AnswerSite makes the same choice for any site of an edgeset.View, for
// the names of sites under the CDN zone, which package dns/synth answers.
package geo

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
)

// Config configures an Answerer. Zero values mean the defaults given per field.
type Config struct {
	// Name is the site's public name (any case, trailing dot optional). Required.
	Name string
	// Edges returns the tracked edges and the current deploy id of the site "default", as
	// edgeset.Set.Snapshot does (see the package's Sites). Required.
	Edges func() ([]heartbeat.Edge, string)
	// Geo locates clients. Nil: no database; every answer holds all eligible edges (or the
	// Select.DefaultLocation's nearest).
	Geo geoip.Locator
	// Select tunes the choice exactly as for the redirector. MaxAgeBeats zero: DefaultMaxAgeBeats;
	// MaxAge zero: DefaultMaxAge (see the package Caveats); CertName empty: Name.
	Select edgeset.SelectOptions
	// TTL is the answers' TTL. Zero: 20 s.
	TTL time.Duration
	// MaxAnswers bounds the addresses in one answer. Zero: 4.
	MaxAnswers int
	// MinAnswers is how many addresses an answer holds at least, when that many edges are
	// eligible: the next nearest fill in behind the near band, as somewhere to go should the
	// first fail before the TTL runs out. Zero: 2.
	MinAnswers int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Defaults of Config.Select's staleness bounds: an edge leaves answers after two and a half
// of its heartbeat intervals of silence, half an interval sooner than it leaves the redirector's
// choice, because resolvers keep an answer for its TTL on top.
const (
	DefaultMaxAgeBeats = 2.5
	DefaultMaxAge      = time.Duration(DefaultMaxAgeBeats * float64(heartbeat.DefaultInterval))
)

// Answerer chooses the addresses for the site's name. It is safe for concurrent use.
type Answerer struct {
	cfg  Config
	name string
	ttl  uint32
}

var _ server.Dynamic = (*Answerer)(nil)

// New checks cfg and returns an Answerer.
func New(cfg Config) (*Answerer, error) {
	name := zone.CanonicalName(cfg.Name)
	var errs []error
	if cfg.Name == "" || name == "" {
		errs = append(errs, errors.New("geo: Config.Name must be a domain name"))
	}
	if cfg.Edges == nil {
		errs = append(errs, errors.New("geo: Config.Edges is required"))
	}
	if cfg.TTL < 0 || cfg.MaxAnswers < 0 || cfg.MinAnswers < 0 {
		errs = append(errs, errors.New("geo: negative TTL or answer count"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Select.CertName == "" {
		// Visitors reach the edges under Name, so an https edge must hold a certificate for it.
		cfg.Select.CertName = name
	}
	if cfg.Select.MaxAgeBeats == 0 {
		cfg.Select.MaxAgeBeats = DefaultMaxAgeBeats
	}
	if cfg.Select.MaxAge == 0 {
		cfg.Select.MaxAge = DefaultMaxAge
	}
	if cfg.TTL == 0 {
		cfg.TTL = 20 * time.Second
	}
	if cfg.MaxAnswers == 0 {
		cfg.MaxAnswers = 4
	}
	if cfg.MinAnswers == 0 {
		cfg.MinAnswers = 2
	}
	cfg.MinAnswers = min(cfg.MinAnswers, cfg.MaxAnswers)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Answerer{cfg: cfg, name: name, ttl: uint32(cfg.TTL / time.Second)}, nil
}

// Name returns the name answered for, canonical.
func (a *Answerer) Name() string { return a.name }

// Answer returns A (or AAAA) records of the edges for a client in the given prefix (invalid when
// unknown), and the prefix length the answer holds for. ok is false when no edge is eligible at
// all; records are empty when edges are eligible but none has an address of the type asked.
func (a *Answerer) Answer(qtype uint16, client netip.Prefix) (rrs []dns.RR, scope int, ok bool) {
	edges, current := a.cfg.Edges()
	now := a.cfg.Now()
	return a.answer(a.name, qtype, client, edges, func(edges []heartbeat.Edge, place *geoip.Record) edgeset.Decision {
		return edgeset.Select(edges, edgeset.Client{Geo: place}, current, now, a.cfg.Select)
	})
}

// AnswerSite is Answer for the site s of the view v, chosen by edgeset.SelectSite, with the
// records owned by owner (canonical): the name of a site under the CDN zone (package
// dns/synth), whose certificate an https edge must hold (a wildcard of its parent counting).
// Config.Name, Config.Edges and Config.Select.CertName play no part in it.
func (a *Answerer) AnswerSite(owner string, qtype uint16, client netip.Prefix, v *edgeset.View, s edgeset.Site) (rrs []dns.RR, scope int, ok bool) {
	now := a.cfg.Now()
	opts := a.cfg.Select
	opts.CertName = owner // visitors ask the edges for the owner's name
	return a.answer(owner, qtype, client, v.Edges, func(edges []heartbeat.Edge, place *geoip.Record) edgeset.Decision {
		view := *v
		view.Edges = edges
		return edgeset.SelectSite(&view, s, edgeset.Client{Geo: place}, now, opts)
	})
}

// answer chooses among edges with choose, for a client in the given prefix, the records owned
// by owner (see Answer).
func (a *Answerer) answer(owner string, qtype uint16, client netip.Prefix, edges []heartbeat.Edge,
	choose func([]heartbeat.Edge, *geoip.Record) edgeset.Decision) (rrs []dns.RR, scope int, ok bool) {
	if qtype != dns.TypeA && qtype != dns.TypeAAAA {
		return nil, 0, false
	}
	place, scope := a.locate(client)
	reachable := slices.DeleteFunc(slices.Clone(edges), func(e heartbeat.Edge) bool { return !address(e, qtype).IsValid() })
	// The client's address family does not matter here: the query type says which family of
	// edge address is wanted, and the edges without one are gone already.
	d := choose(reachable, place)
	if d.Chosen == nil {
		if len(reachable) < len(edges) && choose(edges, place).Chosen != nil {
			return nil, scope, true
		}
		return nil, 0, false
	}
	for _, c := range a.pick(d) {
		rrs = append(rrs, Record(owner, qtype, a.ttl, address(*c.Edge, qtype)))
	}
	return rrs, scope, true
}

// locate looks the client up, and returns its place (nil when unknown) and the ECS scope of an
// answer made for it: the database network's length when the database placed it (the answer
// holds for the whole network), the client prefix's length when it did not, 0 when no client was
// given or no database is loaded (the answer is the same for everyone).
func (a *Answerer) locate(client netip.Prefix) (*geoip.Record, int) {
	if !client.IsValid() || a.cfg.Geo == nil {
		return nil, 0
	}
	rec, err := a.cfg.Geo.Lookup(client.Addr())
	if err != nil || rec == nil {
		return nil, client.Bits()
	}
	if rec.Network.IsValid() && rec.Network.Addr().BitLen() == client.Addr().BitLen() {
		return rec, rec.Network.Bits()
	}
	return rec, client.Bits()
}

// pick orders the answer: the edge Select drew first (weighted by configuration and load), then
// the rest of the near band by rank, then the nearest others up to MinAnswers; at most
// MaxAnswers in all.
func (a *Answerer) pick(d edgeset.Decision) []*edgeset.Candidate {
	out := []*edgeset.Candidate{d.Chosen}
	for i := range d.Candidates {
		c := &d.Candidates[i]
		if c == d.Chosen {
			continue
		}
		if len(out) == a.cfg.MaxAnswers || (!c.Near && len(out) >= a.cfg.MinAnswers) {
			break
		}
		out = append(out, c)
	}
	return out
}

// Record returns an A (or AAAA, by qtype) record of ip owned by name with the given TTL.
func Record(name string, qtype uint16, ttl uint32, ip netip.Addr) dns.RR {
	h := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
	if qtype == dns.TypeA {
		return &dns.A{Hdr: h, A: net.IP(ip.AsSlice())}
	}
	return &dns.AAAA{Hdr: h, AAAA: net.IP(ip.AsSlice())}
}

// Address is the edge's public address of the family qtype (A or AAAA) asks for, from its
// heartbeat; invalid when it reports none.
func Address(e heartbeat.Edge, qtype uint16) netip.Addr { return address(e, qtype) }

// address is the edge's public address of the family qtype asks for, from its heartbeat.
func address(e heartbeat.Edge, qtype uint16) netip.Addr {
	if qtype == dns.TypeA {
		return e.Last.IPv4
	}
	return e.Last.IPv6
}

// TTL returns the TTL of the answers, in seconds.
func (a *Answerer) TTL() uint32 { return a.ttl }

// Options returns Config.Select with the defaults filled in: the options the Answerer chooses
// with.
func (a *Answerer) Options() edgeset.SelectOptions { return a.cfg.Select }
