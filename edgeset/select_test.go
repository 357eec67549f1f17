package edgeset_test

import (
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// nearSet returns the node ids of the near candidates, sorted.
func nearSet(d edgeset.Decision) []string {
	var out []string
	for _, c := range d.Candidates {
		if c.Near {
			out = append(out, c.Edge.Node)
		}
	}
	slices.Sort(out)
	return out
}

func exclusions(d edgeset.Decision) map[string]edgeset.ExcludeReason {
	out := map[string]edgeset.ExcludeReason{}
	for _, x := range d.Excluded {
		out[x.Edge.Node] = x.Reason
	}
	return out
}

// TestSelectTable runs clients from several countries, both IP families and none, through a
// real GeoIP database built for the test, against a fleet with one edge of each kind of
// ineligibility.
func TestSelectTable(t *testing.T) {
	geo := fleet.GeoDB(t)
	tests := []struct {
		name  string
		ip    string
		basis edgeset.Basis
		near  []string      // the edges drawn from; one means a certain choice
		match edgeset.Match // of the chosen edge
	}{
		{"NL IPv4 goes to Amsterdam", "145.100.1.1", edgeset.BasisLocation, []string{"ams"}, edgeset.MatchCountry},
		{"NL IPv6 goes to Amsterdam", "2001:610::1", edgeset.BasisLocation, []string{"ams"}, edgeset.MatchCountry},
		{"NL IPv4-mapped IPv6 counts as IPv4", "::ffff:145.100.1.1", edgeset.BasisLocation, []string{"ams"}, edgeset.MatchCountry},
		// Münster is nearer Amsterdam than Frankfurt: the country comes first.
		{"DE IPv4 stays in Germany", "85.88.7.7", edgeset.BasisLocation, []string{"fra"}, edgeset.MatchCountry},
		// Frankfurt is IPv4-only: an IPv6 client goes to the same continent.
		{"DE IPv6 skips the IPv4-only edge", "2a01:4f8::7", edgeset.BasisLocation, []string{"ams"}, edgeset.MatchContinent},
		// Liège: Amsterdam 199 km, Frankfurt 228 km, within 1.5 × of each other.
		{"BE IPv4 between two near edges", "81.240.3.3", edgeset.BasisLocation, []string{"ams", "fra"}, edgeset.MatchContinent},
		{"BE IPv6 has one near edge", "2a02:2c40::3", edgeset.BasisLocation, []string{"ams"}, edgeset.MatchContinent},
		{"US IPv4 goes to New York", "24.1.2.3", edgeset.BasisLocation, []string{"nyc"}, edgeset.MatchCountry},
		{"US IPv6 goes to New York", "2600:1f00::5", edgeset.BasisLocation, []string{"nyc"}, edgeset.MatchCountry},
		{"JP IPv4 goes to Tokyo", "126.1.1.1", edgeset.BasisLocation, []string{"tyo"}, edgeset.MatchCountry},
		{"JP IPv6 goes to Tokyo", "2400:4050::1", edgeset.BasisLocation, []string{"tyo"}, edgeset.MatchCountry},
		{"BR goes to the plain-http edge", "177.1.1.1", edgeset.BasisLocation, []string{"gru"}, edgeset.MatchCountry},
		// Johannesburg: São Paulo 7,429 km; Frankfurt 8,698 and Amsterdam 9,022 are within the band.
		{"ZA IPv4 draws among the band", "41.0.9.9", edgeset.BasisLocation, []string{"ams", "fra", "gru"}, edgeset.MatchElsewhere},
		{"ZA IPv6 draws among the band", "2c0f:f000::9", edgeset.BasisLocation, []string{"ams", "gru"}, edgeset.MatchElsewhere},
		{"FR country-only record draws within Europe", "90.0.1.1", edgeset.BasisCountry, []string{"ams", "fra"}, edgeset.MatchContinent},
		{"AT registered country draws within Europe", "5.5.5.5", edgeset.BasisCountry, []string{"ams", "fra"}, edgeset.MatchContinent},
		{"unknown IPv4 draws among all", "8.8.8.8", edgeset.BasisNone, []string{"ams", "fra", "gru", "nyc", "tyo"}, edgeset.MatchElsewhere},
		{"unknown IPv6 draws among all IPv6", "2001:4860::8888", edgeset.BasisNone, []string{"ams", "gru", "nyc", "tyo"}, edgeset.MatchElsewhere},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip).Unmap()
			rec, err := geo.Lookup(ip)
			if err != nil {
				t.Fatal(err)
			}
			edges := fleet.Edges()
			d := edgeset.Select(edges, edgeset.Client{IP: ip, Geo: rec}, fleet.Current, fleet.Now,
				edgeset.SelectOptions{Weights: fleet.Weights(), Rand: rand.NewPCG(1, 2)})
			if d.Basis != tt.basis {
				t.Errorf("basis %v, want %v", d.Basis, tt.basis)
			}
			if got := nearSet(d); !slices.Equal(got, tt.near) {
				t.Errorf("near edges %v, want %v", got, tt.near)
			}
			if d.Chosen == nil {
				t.Fatal("no edge chosen")
			}
			if !slices.Contains(tt.near, d.Chosen.Edge.Node) || !d.Chosen.Near {
				t.Errorf("chose %s, not one of %v", d.Chosen.Edge.Node, tt.near)
			}
			if d.Chosen.Match != tt.match {
				t.Errorf("chosen match %v, want %v", d.Chosen.Match, tt.match)
			}
			want := fleet.Excluded()
			if ip.Is6() {
				want["fra"] = edgeset.ExcludeWrongFamily
			}
			if got := exclusions(d); !maps.Equal(got, want) {
				t.Errorf("exclusions\n got %v\nwant %v", got, want)
			}
			if len(d.Candidates)+len(d.Excluded) != len(edges) {
				t.Errorf("%d candidates + %d excluded of %d edges", len(d.Candidates), len(d.Excluded), len(edges))
			}
			checkScores(t, d)
		})
	}
}

// checkScores checks the invariants of a decision's candidates: sorted best first, scores of
// near edges summing to 1 in proportion to their weights, none for the others.
func checkScores(t *testing.T, d edgeset.Decision) {
	t.Helper()
	if !slices.IsSortedFunc(d.Candidates, edgeset.CompareCandidates) {
		t.Error("candidates not sorted")
	}
	var sum, wsum float64
	for _, c := range d.Candidates {
		if c.Near {
			wsum += c.Weight
		}
	}
	for _, c := range d.Candidates {
		switch {
		case !c.Near && c.Score != 0:
			t.Errorf("%s not near but scored %v", c.Edge.Node, c.Score)
		case c.Near && math.Abs(c.Score-c.Weight/wsum) > 1e-12:
			t.Errorf("%s scored %v, want %v", c.Edge.Node, c.Score, c.Weight/wsum)
		}
		sum += c.Score
	}
	if len(d.Candidates) > 0 && math.Abs(sum-1) > 1e-9 {
		t.Errorf("scores sum to %v", sum)
	}
}

// drawCounts runs Select n times with one seeded source and counts the picks.
func drawCounts(edges []heartbeat.Edge, client edgeset.Client, opts edgeset.SelectOptions, n int) map[string]int {
	opts.Rand = rand.NewPCG(7, 11)
	counts := map[string]int{}
	for range n {
		d := edgeset.Select(edges, client, fleet.Current, fleet.Now, opts)
		if d.Chosen != nil {
			counts[d.Chosen.Edge.Node]++
		}
	}
	return counts
}

// liege is a client between Amsterdam (199 km) and Frankfurt (228 km).
var liege = edgeset.Client{
	IP:  netip.MustParseAddr("81.240.3.3"),
	Geo: &geoip.Record{Country: "BE", Continent: "EU", Lat: 50.6326, Lon: 5.5797, HasLocation: true},
}

// TestSelectDrawsByWeight checks that two near edges share visitors in proportion to their
// weights. The source is seeded, so the counts are the same on every run; the tolerance is
// seven standard deviations, so a correct draw passes for any seed.
func TestSelectDrawsByWeight(t *testing.T) {
	edges := []heartbeat.Edge{fleet.Live("ams", fleet.Amsterdam), fleet.Live("fra", fleet.Frankfurt)}
	const n = 30000
	counts := drawCounts(edges, liege, edgeset.SelectOptions{Weights: map[string]float64{"fra": 2}}, n)
	if got := float64(counts["fra"]) / n; math.Abs(got-2.0/3) > 0.02 {
		t.Errorf("fra got %.3f of %d draws (%v), want 2/3", got, n, counts)
	}
}

// TestSelectLoadShiftsPicks checks that reported CPU load divides an edge's weight.
func TestSelectLoadShiftsPicks(t *testing.T) {
	idle := []heartbeat.Edge{fleet.Live("ams", fleet.Amsterdam), fleet.Live("fra", fleet.Frankfurt)}
	busy := []heartbeat.Edge{fleet.Live("ams", fleet.Amsterdam), fleet.With(fleet.Live("fra", fleet.Frankfurt), func(e *heartbeat.Edge) { e.Last.Load.CPU = 1 })}
	const n = 30000
	before := float64(drawCounts(idle, liege, edgeset.SelectOptions{}, n)["fra"]) / n
	after := float64(drawCounts(busy, liege, edgeset.SelectOptions{}, n)["fra"]) / n
	if math.Abs(before-0.5) > 0.02 || math.Abs(after-1.0/3) > 0.02 {
		t.Errorf("fra share idle %.3f (want 1/2), at full CPU %.3f (want 1/3)", before, after)
	}
	d := edgeset.Select(busy, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	for _, c := range d.Candidates {
		if want := map[string]float64{"ams": 1, "fra": 0.5}[c.Edge.Node]; c.Weight != want {
			t.Errorf("%s weight %v, want %v", c.Edge.Node, c.Weight, want)
		}
	}
}

// TestSelectNoGeo checks that clients without GeoIP data are spread by weight alone over every
// eligible edge, whatever their distance from (0, 0), or placed at the default location.
func TestSelectNoGeo(t *testing.T) {
	// gulf is the edge nearest to (0, 0): a selection that read "no location" as (0, 0) would
	// send every unknown client there.
	gulf := &heartbeat.Location{Lat: 1, Lon: 1, Country: "GQ", Continent: "AF"}
	edges := []heartbeat.Edge{fleet.Live("ams", fleet.Amsterdam), fleet.Live("gulf", gulf), fleet.Live("tyo", fleet.Tokyo)}
	client := edgeset.Client{IP: netip.MustParseAddr("192.0.2.1")}
	const n = 30000
	counts := drawCounts(edges, client, edgeset.SelectOptions{}, n)
	for _, node := range []string{"ams", "gulf", "tyo"} {
		if got := float64(counts[node]) / n; math.Abs(got-1.0/3) > 0.02 {
			t.Errorf("%s got %.3f of the draws (%v), want 1/3", node, got, counts)
		}
	}
	d := edgeset.Select(edges, client, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	if d.Basis != edgeset.BasisNone || d.NearKm != 0 {
		t.Errorf("basis %v, near band %v km; want no geo, no band", d.Basis, d.NearKm)
	}
	for _, c := range d.Candidates {
		if c.HasDistance || c.Match != edgeset.MatchElsewhere {
			t.Errorf("%s: distance %v (%v), match %v for a client with no place", c.Edge.Node, c.Distance, c.HasDistance, c.Match)
		}
	}

	def := &geoip.Record{Country: "JP", Continent: "AS", Lat: 35, Lon: 139, HasLocation: true}
	d = edgeset.Select(edges, client, fleet.Current, fleet.Now, edgeset.SelectOptions{DefaultLocation: def})
	if d.Basis != edgeset.BasisDefaultLocation || d.Chosen == nil || d.Chosen.Edge.Node != "tyo" {
		t.Errorf("with a default location in Japan: basis %v, chose %v", d.Basis, d.Chosen)
	}
	// An edge at (0, 0) has a country but no coordinates: it ranks by country, after located
	// edges of the same country, and is not near when those are.
	nowhere := &heartbeat.Location{Country: "BE", Continent: "EU"}
	located := &heartbeat.Location{Lat: 50.8, Lon: 4.4, Country: "BE", Continent: "EU"}
	d = edgeset.Select([]heartbeat.Edge{fleet.Live("bru0", nowhere), fleet.Live("bru", located)}, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	if c := d.Candidates[1]; c.Edge.Node != "bru0" || c.HasDistance || c.Match != edgeset.MatchCountry || c.Near {
		t.Errorf("edge at (0, 0): %+v", c)
	}
	// A client with a record of its own is not moved to the default location.
	d = edgeset.Select(edges, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{DefaultLocation: def})
	if d.Basis != edgeset.BasisLocation || d.Chosen.Edge.Node != "ams" {
		t.Errorf("located client with a default: basis %v, chose %s", d.Basis, d.Chosen.Edge.Node)
	}
}

// TestSelectIPv6NeverToIPv4Only draws many times for IPv6 clients in the IPv4-only edge's own
// city: never there, and no answer at all when only IPv4-only edges are eligible.
func TestSelectIPv6NeverToIPv4Only(t *testing.T) {
	v4only := func(e *heartbeat.Edge) { e.Last.IPv6 = netip.Addr{} }
	edges := []heartbeat.Edge{fleet.With(fleet.Live("fra", fleet.Frankfurt), v4only), fleet.Live("tyo", fleet.Tokyo)}
	client := edgeset.Client{IP: netip.MustParseAddr("2a01:4f8::1"),
		Geo: &geoip.Record{Country: "DE", Continent: "EU", Lat: 50.1, Lon: 8.7, HasLocation: true}}
	if counts := drawCounts(edges, client, edgeset.SelectOptions{}, 1000); counts["fra"] != 0 || counts["tyo"] != 1000 {
		t.Errorf("IPv6 client picks: %v", counts)
	}
	// With the IPv6 edge gone there is nobody left: no fallback to the IPv4-only edge.
	d := edgeset.Select(edges[:1], client, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	if d.Chosen != nil || len(d.Candidates) != 0 || d.Excluded[0].Reason != edgeset.ExcludeWrongFamily {
		t.Errorf("only an IPv4-only edge: chose %v, %d candidates, excluded %v", d.Chosen, len(d.Candidates), d.Excluded)
	}
	// And the reverse: an IPv4 client never goes to an IPv6-only edge.
	v6only := fleet.With(fleet.Live("fra6", fleet.Frankfurt), func(e *heartbeat.Edge) { e.Last.IPv4 = netip.Addr{} })
	d = edgeset.Select([]heartbeat.Edge{v6only}, edgeset.Client{IP: netip.MustParseAddr("85.88.1.1")}, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	if d.Chosen != nil || d.Excluded[0].Reason != edgeset.ExcludeWrongFamily {
		t.Errorf("IPv4 client, IPv6-only edge: chose %v, excluded %v", d.Chosen, d.Excluded)
	}
}

// TestSelectNeverFallsBack checks that a fleet with no eligible edge yields no choice.
func TestSelectNeverFallsBack(t *testing.T) {
	var edges []heartbeat.Edge
	for _, e := range fleet.Edges() {
		if _, ok := fleet.Excluded()[e.Node]; ok {
			edges = append(edges, e)
		}
	}
	d := edgeset.Select(edges, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{Weights: fleet.Weights()})
	if d.Chosen != nil || len(d.Candidates) != 0 || len(d.Excluded) != len(edges) {
		t.Errorf("chose %v from %d ineligible edges (%d candidates)", d.Chosen, len(edges), len(d.Candidates))
	}
	if d = edgeset.Select(nil, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{}); d.Chosen != nil {
		t.Error("chose an edge from none")
	}
	// No current deploy: nothing is on it.
	d = edgeset.Select([]heartbeat.Edge{fleet.Live("ams", fleet.Amsterdam)}, liege, "", fleet.Now, edgeset.SelectOptions{})
	if d.Chosen != nil || d.Excluded[0].Reason != edgeset.ExcludeOldDeploy {
		t.Errorf("no current deploy: chose %v, excluded %v", d.Chosen, d.Excluded)
	}
}

// TestSelectNearBand checks the band's factor, floor and accuracy widening.
func TestSelectNearBand(t *testing.T) {
	// Points due north of the client, about 111.2 km per degree of latitude.
	at := func(node string, km float64) heartbeat.Edge {
		return fleet.Live(node, &heartbeat.Location{Lat: km / 111.19, Lon: 0, Country: "XX", Continent: "EU"})
	}
	client := edgeset.Client{IP: netip.MustParseAddr("192.0.2.1"), Geo: &geoip.Record{Country: "YY", Continent: "EU", HasLocation: true}}
	edges := []heartbeat.Edge{at("d1", 1), at("d12", 12), at("d60", 60), at("d300", 300), at("d430", 430), at("d500", 500)}
	tests := []struct {
		name     string
		opts     edgeset.SelectOptions
		accuracy uint16
		near     []string
	}{
		{"floor 100 km joins 1 and 60 km", edgeset.SelectOptions{}, 0, []string{"d1", "d12", "d60"}},
		{"a tiny floor leaves the factor", edgeset.SelectOptions{NearFloorKm: 1e-9}, 0, []string{"d1"}},
		{"a wide floor", edgeset.SelectOptions{NearFloorKm: 450}, 0, []string{"d1", "d12", "d300", "d430", "d60"}},
		{"accuracy radius widens the band", edgeset.SelectOptions{}, 300, []string{"d1", "d12", "d300", "d60"}},
		{"MaxChoices keeps the nearest", edgeset.SelectOptions{MaxChoices: 2}, 0, []string{"d1", "d12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client
			g := *client.Geo
			g.AccuracyRadius = tt.accuracy
			c.Geo = &g
			d := edgeset.Select(edges, c, fleet.Current, fleet.Now, tt.opts)
			if got := nearSet(d); !slices.Equal(got, tt.near) {
				t.Errorf("near %v, want %v (band %v km)", got, tt.near, d.NearKm)
			}
			checkScores(t, d)
		})
	}
	// Factor: nearest at 300 km, band 450 km: 430 in, 500 out.
	d := edgeset.Select(edges[3:], client, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	if got := nearSet(d); !slices.Equal(got, []string{"d300", "d430"}) || math.Abs(d.NearKm-450) > 1 {
		t.Errorf("near %v with band %v km, want d300 d430 within 450 km", got, d.NearKm)
	}
}

// TestSelectOrderIndependent checks that the caller's order of edges does not change the outcome.
func TestSelectOrderIndependent(t *testing.T) {
	edges := fleet.Edges()
	want := edgeset.Select(edges, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{Weights: fleet.Weights(), Rand: rand.NewPCG(3, 4)})
	reversed := slices.Clone(edges)
	slices.Reverse(reversed)
	got := edgeset.Select(reversed, liege, fleet.Current, fleet.Now, edgeset.SelectOptions{Weights: fleet.Weights(), Rand: rand.NewPCG(3, 4)})
	if got.Chosen.Edge.Node != want.Chosen.Edge.Node {
		t.Errorf("reversed input chose %s, want %s", got.Chosen.Edge.Node, want.Chosen.Edge.Node)
	}
	for i := range got.Candidates {
		if got.Candidates[i].Edge.Node != want.Candidates[i].Edge.Node {
			t.Fatalf("candidate order differs at %d", i)
		}
	}
}

// TestExclusionRules covers rules the fleet table does not: staleness bounds, certificate
// margins, URL shapes and how an edge's IP families are told.
func TestExclusionRules(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*heartbeat.Edge)
		client string
		opts   edgeset.SelectOptions
		want   edgeset.ExcludeReason
	}{
		{"fresh", func(*heartbeat.Edge) {}, "192.0.2.1", edgeset.SelectOptions{}, 0},
		{"heartbeat at the max age", func(e *heartbeat.Edge) { e.LastSeen = fleet.Now.Add(-10 * time.Second) }, "192.0.2.1", edgeset.SelectOptions{}, 0},
		{"heartbeat past the max age", func(e *heartbeat.Edge) { e.LastSeen = fleet.Now.Add(-11 * time.Second) }, "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeStale},
		{"custom max age", func(e *heartbeat.Edge) { e.LastSeen = fleet.Now.Add(-3 * time.Second) }, "192.0.2.1", edgeset.SelectOptions{MaxAge: 2 * time.Second}, edgeset.ExcludeStale},
		{"certificate expiring now", func(e *heartbeat.Edge) { e.Last.CertExpiry = fleet.Now.UnixMilli() }, "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeCertificate},
		{"dead and old: dead first", func(e *heartbeat.Edge) { e.State, e.Last.Deploy = heartbeat.Dead, fleet.Old }, "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeNotAlive},
		{"URL with a query", func(e *heartbeat.Edge) { e.Last.PublicURL = "https://a.example?x" }, "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeNoPublicURL},
		{"URL with a space", func(e *heartbeat.Edge) { e.Last.PublicURL = "https://a.example/ x" }, "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeNoPublicURL},
		{"URL without host", func(e *heartbeat.Edge) { e.Last.PublicURL = "https:///x" }, "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeNoPublicURL},
		{"upper-case scheme", func(e *heartbeat.Edge) { e.Last.PublicURL = "HTTPS://a.example" }, "192.0.2.1", edgeset.SelectOptions{}, 0},
		{"no addresses: both families (v4)", noAddrs, "192.0.2.1", edgeset.SelectOptions{}, 0},
		{"no addresses: both families (v6)", noAddrs, "2001:db8::5", edgeset.SelectOptions{}, 0},
		{"IPv6 literal host, IPv4 client", literal("http://[2001:db8::9]:8080"), "192.0.2.1", edgeset.SelectOptions{}, edgeset.ExcludeWrongFamily},
		{"IPv6 literal host, IPv6 client", literal("http://[2001:db8::9]:8080"), "2001:db8::5", edgeset.SelectOptions{}, 0},
		{"IPv4 literal host, IPv6 client", literal("http://192.0.2.9"), "2001:db8::5", edgeset.SelectOptions{}, edgeset.ExcludeWrongFamily},
		{"unknown client address: any family", func(e *heartbeat.Edge) { e.Last.IPv4 = netip.Addr{} }, "", edgeset.SelectOptions{}, 0},
		{"weight 0", func(*heartbeat.Edge) {}, "192.0.2.1", edgeset.SelectOptions{Weights: map[string]float64{"e": 0}}, edgeset.ExcludeDisabled},
		{"weight NaN", func(*heartbeat.Edge) {}, "192.0.2.1", edgeset.SelectOptions{Weights: map[string]float64{"e": math.NaN()}}, edgeset.ExcludeDisabled},
		{"weight +Inf", func(*heartbeat.Edge) {}, "192.0.2.1", edgeset.SelectOptions{Weights: map[string]float64{"e": math.Inf(1)}}, edgeset.ExcludeDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fleet.With(fleet.Live("e", fleet.Amsterdam), tt.edit)
			var ip netip.Addr
			if tt.client != "" {
				ip = netip.MustParseAddr(tt.client)
			}
			d := edgeset.Select([]heartbeat.Edge{e}, edgeset.Client{IP: ip}, fleet.Current, fleet.Now, tt.opts)
			var got edgeset.ExcludeReason
			if len(d.Excluded) > 0 {
				got = d.Excluded[0].Reason
			}
			if got != tt.want {
				t.Fatalf("reason %v, want %v", got, tt.want)
			}
			if tt.want == 0 && (d.Chosen == nil || d.Chosen.URL == "" || d.Chosen.URL[len(d.Chosen.URL)-1] == '/') {
				t.Errorf("eligible edge not chosen with a clean origin: %+v", d.Chosen)
			}
		})
	}
}

func noAddrs(e *heartbeat.Edge) { e.Last.IPv4, e.Last.IPv6 = netip.Addr{}, netip.Addr{} }

func literal(url string) func(*heartbeat.Edge) {
	return func(e *heartbeat.Edge) { noAddrs(e); e.Last.PublicURL, e.Last.CertExpiry = url, 0 }
}

func TestReasonStrings(t *testing.T) {
	seen := map[string]bool{}
	for r := edgeset.ExcludeNotAlive; r <= edgeset.ExcludeDisabled; r++ {
		s := r.String()
		if s == "unknown" || seen[s] {
			t.Errorf("reason %d has string %q", r, s)
		}
		seen[s] = true
	}
	for _, s := range []string{edgeset.MatchCountry.String(), edgeset.MatchElsewhere.String(), edgeset.BasisLocation.String(), edgeset.BasisNone.String()} {
		if s == "unknown" {
			t.Error("unnamed enum value")
		}
	}
}

// TestSelectStalenessByAnnouncedInterval checks that an edge's heartbeat age is measured in the
// interval it announces, and in MaxAge for an edge that announces none.
func TestSelectStalenessByAnnouncedInterval(t *testing.T) {
	opts := edgeset.SelectOptions{MaxAge: 6 * time.Second, MaxAgeBeats: 3} // a receiver set for 2 s
	ago := func(name string, interval, age time.Duration) heartbeat.Edge {
		return fleet.With(fleet.Live(name, fleet.Amsterdam), func(e *heartbeat.Edge) {
			e.Last.IntervalMS, e.LastSeen = interval.Milliseconds(), fleet.Now.Add(-age)
		})
	}
	edges := []heartbeat.Edge{
		ago("slow-8s", 10*time.Second, 8*time.Second),     // under one of its 10 s intervals
		ago("slow-31s", 10*time.Second, 31*time.Second),   // over three of them
		ago("old-5s", 0, 5*time.Second),                   // no interval: MaxAge
		ago("old-8s", 0, 8*time.Second),                   // no interval, over MaxAge
		ago("fast-1s", 200*time.Millisecond, time.Second), // over three of its 200 ms
	}
	got := exclusions(edgeset.Select(edges, edgeset.Client{}, fleet.Current, fleet.Now, opts))
	want := map[string]edgeset.ExcludeReason{"slow-31s": edgeset.ExcludeStale, "old-8s": edgeset.ExcludeStale, "fast-1s": edgeset.ExcludeStale}
	if !maps.Equal(got, want) {
		t.Fatalf("excluded %v, want %v", got, want)
	}
}
