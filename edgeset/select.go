package edgeset

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
)

// Client is the visitor a decision is made for.
type Client struct {
	// IP is the client's address (see ClientIP); its family decides which edges can reach it.
	// The zero Addr means unknown, and then no edge is excluded for its family.
	IP netip.Addr
	// Geo is where the client is; nil when unknown (no database, or the address is not in it).
	Geo *geoip.Record
}

// SelectOptions tunes Select. The zero value gives the defaults stated per field.
type SelectOptions struct {
	// Weights scales each edge's share of the visitors it is near to, by node id. A missing entry
	// means 1. A weight of 0 (or a negative or non-finite one) takes the edge out of rotation
	// (ExcludeDisabled) without stopping it; Validate refuses negative and non-finite weights.
	Weights map[string]float64
	// NearFactor makes the near band: an edge whose distance to the client is at most NearFactor
	// times the nearest edge's distance counts as near as the nearest (mirrorbits uses 1.5).
	// Zero: DefaultNearFactor. Values below 1 are treated as 1.
	NearFactor float64
	// NearFloorKm is the least width of the near band: every edge within this many kilometres of
	// the client counts as near, so edges 1 km and 12 km away share visitors although one is
	// twelve times nearer. GeoIP places clients no better than this anyway. Zero:
	// DefaultNearFloorKm.
	NearFloorKm float64
	// MaxChoices caps how many of the nearest edges in the near band are drawn from. Zero: no
	// cap, every edge in the band takes visitors in proportion to its weight.
	MaxChoices int
	// MaxAgeBeats is how many of its own heartbeat intervals (heartbeat.Heartbeat.IntervalMS) old
	// an edge's last heartbeat may be, by the local arrival time. The tracker marks silent edges
	// Suspect on its own schedule; this bounds the lag when its check runs late. Fewer take a
	// silent edge out of the choice sooner, at the risk of dropping one whose heartbeat is merely
	// delayed. Zero: DefaultMaxAgeBeats.
	MaxAgeBeats float64
	// MaxAge is how old the last heartbeat of an edge that announces no interval (an edge older
	// than heartbeat.Heartbeat.IntervalMS) may be. Zero: DefaultMaxAge.
	MaxAge time.Duration
	// DefaultLocation stands in for clients with no GeoIP record at all (no database, or an
	// address not in it): such clients are ranked as if they were there. Nil: such clients go to
	// any eligible edge, by weight. A record without coordinates only contributes its country
	// and continent.
	DefaultLocation *geoip.Record
	// Rand draws among the near edges. Nil: the runtime's random source (math/rand/v2's
	// top-level functions). Select calls Uint64 at most once; a Rand shared between goroutines
	// must be safe for concurrent use (a *rand.Rand is not).
	Rand rand.Source
	// CertName is the name visitors will reach the chosen edge by, whose certificate an https
	// edge must hold valid (by its heartbeat's report of names, see heartbeat.Certs.ValidFor):
	// GeoDNS answers for a site's own name, so visitors ask the edge for that name. Empty: the
	// host of the edge's own URL, where the redirector sends them (a name under the CDN zone is
	// then covered by the zone's wildcard).
	CertName string
	// Fallback lets a choice that finds no edge serving the current deploy fall back to the
	// edges that still serve an earlier deploy of the site and are eligible otherwise
	// (Decision.Fallback). After a publish the table's new pointer reaches a redirector before
	// the edges' heartbeats say they switched, which takes up to one interval; without a
	// fallback every visitor of that moment gets 503, with it the previous version, and most
	// edges have switched by the time the visitor arrives. False: only edges serving the
	// current deploy, for callers asking where it is live.
	Fallback bool
}

// Decision is the outcome of Select.
type Decision struct {
	// Chosen is the edge to send the client to, pointing into Candidates; nil when no edge is
	// eligible.
	Chosen *Candidate
	// Candidates are the eligible edges, best first: by Match, then distance (known distances
	// first), then node id.
	Candidates []Candidate
	// Excluded are the other edges with their reason, in the order they were given.
	Excluded []Exclusion
	// Basis says what was known of the client's place.
	Basis Basis
	// NearKm is the outer edge of the near band in km, or 0 when distance took no part.
	NearKm float64
	// Fallback is set when no edge served the current deploy and Candidates are edges still
	// serving an earlier deploy of the site (SelectOptions.Fallback); they stay in Excluded
	// with the reason they were not chosen first.
	Fallback bool
}

// Candidate is an eligible edge and how it ranked.
type Candidate struct {
	// Edge points into the edges given to Select.
	Edge *heartbeat.Edge
	// URL is the origin visitors are sent to: the edge's public URL without a trailing slash.
	URL string
	// Match says how the edge's country and continent relate to the client's.
	Match Match
	// Distance is the great-circle distance between client and edge in km; valid only when
	// HasDistance (both locations known).
	Distance    float64
	HasDistance bool
	// Near says the edge was drawn from: it has the best Match among the candidates and, when
	// distances count, lies within the near band (and among the first MaxChoices).
	Near bool
	// Weight is the configured weight divided by (1 + the edge's reported CPU load).
	Weight float64
	// Score is the chance that this decision picks the edge: Weight over the sum of the near
	// edges' weights, 0 for edges that are not near.
	Score float64
}

// Exclusion is an edge that was not a candidate.
type Exclusion struct {
	// Edge points into the edges given to Select.
	Edge   *heartbeat.Edge
	Reason ExcludeReason
	// detail says what made a rule fail when the edge alone cannot tell (ExcludeSiteLagging,
	// ExcludeCertificate for a name other than its own).
	detail string
}

// Defaults of SelectOptions.
const (
	// DefaultNearFactor is mirrorbits' near band: edges up to half as far again as the nearest
	// are as good as the nearest, a margin GeoIP's accuracy does not resolve anyway.
	DefaultNearFactor = 1.5
	// DefaultNearFloorKm is the near band's least width: city-level GeoIP places clients no
	// better than this, so nearer differences are noise.
	DefaultNearFloorKm = 100
	// DefaultMaxAgeBeats is five missed heartbeats: a bound for a tracker that checks late, not
	// the usual way out of the choice (the tracker suspects an edge after three).
	DefaultMaxAgeBeats = 5
	// DefaultMaxAge is DefaultMaxAgeBeats intervals of heartbeat.DefaultInterval, for edges that
	// announce no interval.
	DefaultMaxAge = DefaultMaxAgeBeats * heartbeat.DefaultInterval
)

// Select chooses the edge for client among edges, given the network's current deploy id and the
// time. It is a pure function of its arguments (the only state it touches is opts.Rand) and keeps
// pointers into edges in its result.
//
// An edge is eligible when it passes every check of exclusionOf. Eligible edges are ranked by
// the client's place: same country first, then same continent, then elsewhere; within the best
// of these tiers, when the client's location is known, by great-circle distance, keeping the
// near band (the nearest distance × NearFactor, at least NearFloorKm, widened by the client's
// GeoIP accuracy radius). One of the near edges is drawn at random in proportion to its weight.
// Select never picks an ineligible edge, however few eligible ones remain; with opts.Fallback,
// when none serves the current deploy, it picks among those still serving an earlier one.
func Select(edges []heartbeat.Edge, client Client, current string, now time.Time, opts SelectOptions) Decision {
	rule := deployRule{current: current}
	if current != "" {
		// Any deploy but none: the default site's edges report the one deploy they serve.
		rule.earlier = func(e *heartbeat.Edge) bool { return e.Last.Deploy != "" }
	}
	return choose(edges, client, now, opts, rule)
}

// choose is Select with the rule for the deploy an edge must serve given as rule.
func choose(edges []heartbeat.Edge, client Client, now time.Time, opts SelectOptions, rule deployRule) Decision {
	d := Decision{Basis: BasisNone}
	here := client.Geo
	if here == nil && opts.DefaultLocation != nil {
		here, d.Basis = opts.DefaultLocation, BasisDefaultLocation
	}
	if here != nil && d.Basis == BasisNone {
		d.Basis = BasisCountry
		if here.HasLocation {
			d.Basis = BasisLocation
		}
	}
	fam := familyOf(client.IP)
	d.Candidates = make([]Candidate, 0, len(edges))
	d.Excluded = make([]Exclusion, 0, len(edges))
	for i := range edges {
		e := &edges[i]
		url, reason, detail := exclusionOf(e, fam, rule, now, opts)
		if reason != 0 {
			d.Excluded = append(d.Excluded, Exclusion{Edge: e, Reason: reason, detail: detail})
			continue
		}
		d.Candidates = append(d.Candidates, rate(e, url, here, opts))
	}
	if len(d.Candidates) == 0 && opts.Fallback && rule.earlier != nil {
		d.Candidates, d.Fallback = fallbackCandidates(d.Excluded, fam, rule, here, now, opts), true
	}
	if len(d.Candidates) == 0 {
		d.Fallback = false
		return d
	}
	slices.SortFunc(d.Candidates, compareCandidates)
	d.NearKm = markNear(d.Candidates, here, opts)
	d.Chosen = draw(d.Candidates, opts.Rand)
	return d
}

// rate places one eligible edge relative to the client.
func rate(e *heartbeat.Edge, url string, here *geoip.Record, opts SelectOptions) Candidate {
	c := Candidate{Edge: e, URL: url, Match: MatchElsewhere, Weight: weightOf(e, opts.Weights)}
	loc := e.Last.Location
	if here == nil || loc == nil {
		return c
	}
	switch {
	case here.Country != "" && strings.EqualFold(here.Country, loc.Country):
		c.Match = MatchCountry
	case here.Continent != "" && strings.EqualFold(here.Continent, loc.Continent):
		c.Match = MatchContinent
	}
	// heartbeat.Location cannot say "coordinates unknown"; an edge reporting exactly (0, 0), a
	// point in the Gulf of Guinea, is taken to have none rather than be measured from there.
	if here.HasLocation && (loc.Lat != 0 || loc.Lon != 0) {
		c.Distance, c.HasDistance = haversineKm(here.Lat, here.Lon, loc.Lat, loc.Lon), true
	}
	return c
}

// compareCandidates orders candidates best first. The node id breaks ties, so that a decision
// depends on the set of edges, not on the order the caller listed them in.
func compareCandidates(a, b Candidate) int {
	if c := cmp.Compare(a.Match, b.Match); c != 0 {
		return c
	}
	if a.HasDistance != b.HasDistance {
		if a.HasDistance {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
		return c
	}
	return strings.Compare(a.Edge.Node, b.Edge.Node)
}

// markNear sets Near on the candidates to draw from (cs is sorted) and their Scores, and returns
// the near band's outer distance (0 when distance took no part).
//
// The band follows mirrorbits (http/selection.go): edges up to 1.5 × the nearest's distance are
// as good as the nearest. The floor keeps a 1 km edge from starving a 12 km one over a ratio
// GeoIP cannot resolve, and the client's accuracy radius widens the band by what the database
// admits it does not know.
func markNear(cs []Candidate, here *geoip.Record, opts SelectOptions) float64 {
	best := cs[0].Match
	band := math.Inf(1)
	if cs[0].HasDistance {
		factor, floor := opts.NearFactor, opts.NearFloorKm
		if factor == 0 {
			factor = DefaultNearFactor
		}
		if floor == 0 {
			floor = DefaultNearFloorKm
		}
		nearest := cs[0].Distance
		band = max(nearest*max(factor, 1), floor, nearest+float64(here.AccuracyRadius))
	}
	var total float64
	n := 0
	for i := range cs {
		c := &cs[i]
		if c.Match != best || (cs[0].HasDistance && (!c.HasDistance || c.Distance > band)) {
			break // sorted: nothing further is near either
		}
		if opts.MaxChoices > 0 && n == opts.MaxChoices {
			break
		}
		c.Near = true
		total += c.Weight
		n++
	}
	for i := range cs[:n] {
		cs[i].Score = cs[i].Weight / total
	}
	if math.IsInf(band, 1) {
		return 0
	}
	return band
}

// Validate reports every option out of range, joined: a negative or non-finite weight, a near
// band that is negative or not finite, a negative MaxChoices, MaxAgeBeats or MaxAge, a default
// location off the Earth. Select itself tolerates them (see each field); Validate is for
// configurations taken from people.
func (o SelectOptions) Validate() error {
	var errs []error
	for node, w := range o.Weights {
		if !(w >= 0) || math.IsInf(w, 1) {
			errs = append(errs, fmt.Errorf("weight %v of %q is not a finite number ≥ 0", w, node))
		}
	}
	if !(o.NearFactor >= 0) || math.IsInf(o.NearFactor, 0) || !(o.NearFloorKm >= 0) || math.IsInf(o.NearFloorKm, 0) {
		errs = append(errs, fmt.Errorf("near band (factor %v, floor %v km) must be finite and ≥ 0", o.NearFactor, o.NearFloorKm))
	}
	if o.MaxChoices < 0 || o.MaxAge < 0 || !(o.MaxAgeBeats >= 0) || math.IsInf(o.MaxAgeBeats, 0) {
		errs = append(errs, errors.New("MaxChoices, MaxAgeBeats and MaxAge must be ≥ 0"))
	}
	if l := o.DefaultLocation; l != nil && l.HasLocation && (!(l.Lat >= -90 && l.Lat <= 90) || !(l.Lon >= -180 && l.Lon <= 180)) {
		errs = append(errs, fmt.Errorf("default location %v,%v is not on Earth", l.Lat, l.Lon))
	}
	return errors.Join(errs...)
}

// draw picks one near candidate with probability equal to its Score.
func draw(cs []Candidate, src rand.Source) *Candidate {
	var u float64
	if src != nil {
		u = float64(src.Uint64()>>11) / (1 << 53)
	} else {
		u = rand.Float64()
	}
	last := 0
	for i := range cs {
		if !cs[i].Near {
			break
		}
		last = i
		u -= cs[i].Score
		if u < 0 {
			return &cs[i]
		}
	}
	return &cs[last] // rounding left u a hair above the sum of the scores
}

// weightOf is the edge's configured weight divided by (1 + its CPU load). CPU is the fraction of
// all its cores in use over the last heartbeat interval (0..1), so a saturated edge gets half the
// share of an idle one of the same weight: a gentle push, since a redirect decides where a visitor
// goes for the whole visit and load figures are two seconds old.
func weightOf(e *heartbeat.Edge, weights map[string]float64) float64 {
	cpu := e.Last.Load.CPU
	if !(cpu >= 0) { // NaN or negative: heartbeat.Decode refuses both, but Edge values may come from elsewhere
		cpu = 0
	}
	return configuredWeight(e, weights) / (1 + min(cpu, maxCPU))
}

// maxCPU bounds the load figure so that no finite weight divides down to zero.
const maxCPU = 1000

// configuredWeight is the edge's weight in weights, 1 when it has none.
func configuredWeight(e *heartbeat.Edge, weights map[string]float64) float64 {
	if v, ok := weights[e.Node]; ok {
		return v
	}
	return 1
}

// earthRadiusKm is the mean radius of the Earth (IUGG), the usual sphere for haversine.
const earthRadiusKm = 6371.0088

// haversineKm returns the great-circle distance between two points given in degrees.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(a, 1)))
}

// fallbackCandidates returns the edges of excluded that were excluded only for the deploy they
// serve, serve an earlier deploy of the site (rule.earlier), and pass every other rule.
func fallbackCandidates(excluded []Exclusion, fam family, rule deployRule, here *geoip.Record, now time.Time, opts SelectOptions) []Candidate {
	var out []Candidate
	for _, x := range excluded {
		switch x.Reason {
		case ExcludeOldDeploy, ExcludeNotSynced, ExcludeSiteLagging:
		default:
			continue
		}
		if !rule.earlier(x.Edge) {
			continue
		}
		if url, reason, _ := exclusionOf(x.Edge, fam, deployRule{any: true}, now, opts); reason == 0 {
			out = append(out, rate(x.Edge, url, here, opts))
		}
	}
	return out
}
