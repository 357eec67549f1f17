package redirector

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dt-cdn/dt/heartbeat"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// geoNet is one network of a test GeoIP database.
type geoNet struct {
	cidr               string
	country, continent string
	registered         string // registered_country only (no country)
	lat, lon           float64
	radius             uint16
	noLocation         bool // a country-level record
}

// testNets places networks in several countries, each for IPv4 and IPv6.
func testNets() []geoNet {
	nl := geoNet{country: "NL", continent: "EU", lat: 52.37, lon: 4.89, radius: 20}
	de := geoNet{country: "DE", continent: "EU", lat: 51.9607, lon: 7.6261, radius: 50} // Münster
	be := geoNet{country: "BE", continent: "EU", lat: 50.6326, lon: 5.5797, radius: 10} // Liège
	us := geoNet{country: "US", continent: "NA", lat: 34.0522, lon: -118.2437, radius: 100}
	jp := geoNet{country: "JP", continent: "AS", lat: 34.6937, lon: 135.5023, radius: 50} // Osaka
	br := geoNet{country: "BR", continent: "SA", lat: -23.55, lon: -46.63, radius: 50}
	za := geoNet{country: "ZA", continent: "AF", lat: -26.2041, lon: 28.0473, radius: 50}
	fr := geoNet{country: "FR", continent: "EU", noLocation: true}
	at := geoNet{registered: "AT", continent: "EU", noLocation: true}
	var nets []geoNet
	add := func(g geoNet, cidrs ...string) {
		for _, c := range cidrs {
			g.cidr = c
			nets = append(nets, g)
		}
	}
	add(nl, "145.100.0.0/16", "2001:610::/32")
	add(de, "85.88.0.0/16", "2a01:4f8::/32")
	add(be, "81.240.0.0/16", "2a02:2c40::/32")
	add(us, "24.0.0.0/12", "2600:1f00::/24")
	add(jp, "126.0.0.0/8", "2400:4050::/32")
	add(br, "177.0.0.0/12", "2804:14c::/32")
	add(za, "41.0.0.0/16", "2c0f:f000::/32")
	add(fr, "90.0.0.0/16", "2a01:cb00::/32")
	add(at, "5.5.0.0/16")
	return nets
}

// layout selects the record layout of a test database.
type layout int

const (
	layoutMaxMind layout = iota // GeoLite2-City
	layoutDBIP                  // DB-IP City Lite: float32 coordinates, no accuracy radius
)

// buildGeoDB writes a database of nets in the given layout with mmdbwriter.
func buildGeoDB(t testing.TB, nets []geoNet, l layout) []byte {
	t.Helper()
	dbType := "GeoLite2-City"
	if l == layoutDBIP {
		dbType = "DBIP-City-Lite"
	}
	return writeTree(t, mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": "dt redirector test database"},
		RecordSize:   28,
		Languages:    []string{"en"},
	}, nets, l)
}

// buildGeoDBv4 writes an IPv4-only database of the IPv4 networks of testNets.
func buildGeoDBv4(t testing.TB) []byte {
	t.Helper()
	var v4 []geoNet
	for _, g := range testNets() {
		if netip.MustParsePrefix(g.cidr).Addr().Is4() {
			v4 = append(v4, g)
		}
	}
	return writeTree(t, mmdbwriter.Options{
		DatabaseType: "GeoLite2-City",
		Description:  map[string]string{"en": "dt redirector test database, IPv4"},
		IPVersion:    4,
		RecordSize:   24,
	}, v4, layoutMaxMind)
}

func writeTree(t testing.TB, opts mmdbwriter.Options, nets []geoNet, l layout) []byte {
	t.Helper()
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range nets {
		_, network, err := net.ParseCIDR(g.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, record(g, l)); err != nil {
			t.Fatalf("insert %s: %v", g.cidr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func record(g geoNet, l layout) mmdbtype.Map {
	names := func(s string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(s)} }
	m := mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String(g.continent), "geoname_id": mmdbtype.Uint32(1), "names": names(g.continent)},
	}
	if g.country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(g.country), "names": names(g.country)}
	}
	if g.registered != "" {
		m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(g.registered)}
	}
	if g.noLocation {
		return m
	}
	switch l {
	case layoutMaxMind:
		m["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(g.lat),
			"longitude":       mmdbtype.Float64(g.lon),
			"accuracy_radius": mmdbtype.Uint16(g.radius),
			"time_zone":       mmdbtype.String("UTC"),
		}
		m["city"] = mmdbtype.Map{"names": names("somewhere")}
	case layoutDBIP:
		m["location"] = mmdbtype.Map{"latitude": mmdbtype.Float32(g.lat), "longitude": mmdbtype.Float32(g.lon)}
		m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names("region")}}
		if c, ok := m["country"].(mmdbtype.Map); ok {
			c["is_in_european_union"] = mmdbtype.Bool(g.continent == "EU")
		}
	}
	return m
}

// openTestGeoDB writes a database of testNets to a temporary file and opens it.
func openTestGeoDB(t testing.TB) *GeoDB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(path, buildGeoDB(t, testNets(), layoutMaxMind), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGeoDB(path, GeoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// Places of the test edges.
var (
	amsterdam = &heartbeat.Location{Lat: 52.3676, Lon: 4.9041, Country: "NL", Continent: "EU"}
	frankfurt = &heartbeat.Location{Lat: 50.1109, Lon: 8.6821, Country: "DE", Continent: "EU"}
	newYork   = &heartbeat.Location{Lat: 40.7128, Lon: -74.0060, Country: "US", Continent: "NA"}
	tokyo     = &heartbeat.Location{Lat: 35.6762, Lon: 139.6503, Country: "JP", Continent: "AS"}
	saoPaulo  = &heartbeat.Location{Lat: -23.5505, Lon: -46.6333, Country: "BR", Continent: "SA"}
	london    = &heartbeat.Location{Lat: 51.5072, Lon: -0.1276, Country: "GB", Continent: "EU"}
	sydney    = &heartbeat.Location{Lat: -33.8688, Lon: 151.2093, Country: "AU", Continent: "OC"}
)

const (
	testCurrent = "deploy-2"
	testOld     = "deploy-1"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// liveEdge is an edge that passes every check: alive, fresh, synced to testCurrent, a valid
// certificate, IPv4 and IPv6.
func liveEdge(node string, loc *heartbeat.Location) heartbeat.Edge {
	return heartbeat.Edge{
		Node: node,
		Last: heartbeat.Heartbeat{
			Seq:        1,
			PublicURL:  "https://" + node + ".example.net",
			IPv4:       netip.MustParseAddr("198.51.100.1"),
			IPv6:       netip.MustParseAddr("2001:db8::1"),
			Location:   loc,
			Deploy:     testCurrent,
			Synced:     true,
			CertExpiry: testNow.Add(30 * 24 * time.Hour).UnixMilli(),
		},
		LastSeen: testNow.Add(-time.Second),
		State:    heartbeat.Alive,
		Since:    testNow.Add(-time.Hour),
	}
}

// with returns e changed by f.
func with(e heartbeat.Edge, f func(*heartbeat.Edge)) heartbeat.Edge {
	f(&e)
	return e
}

// testEdges is the fleet of the selection tests: five eligible edges (ams, fra IPv4-only, nyc,
// tyo, gru on plain http without addresses) and one of each kind of ineligible edge.
func testEdges() []heartbeat.Edge {
	return []heartbeat.Edge{
		liveEdge("ams", amsterdam),
		with(liveEdge("fra", frankfurt), func(e *heartbeat.Edge) { e.Last.IPv6 = netip.Addr{} }),
		liveEdge("nyc", newYork),
		liveEdge("tyo", tokyo),
		with(liveEdge("gru", saoPaulo), func(e *heartbeat.Edge) {
			e.Last.PublicURL = "http://gru.example.net/"
			e.Last.CertExpiry = 0
			e.Last.IPv4, e.Last.IPv6 = netip.Addr{}, netip.Addr{}
		}),
		with(liveEdge("ams-drain", amsterdam), func(e *heartbeat.Edge) { e.Last.Draining = true }),
		with(liveEdge("fra-old", frankfurt), func(e *heartbeat.Edge) { e.Last.Deploy = testOld }),
		with(liveEdge("nyc-cert", newYork), func(e *heartbeat.Edge) { e.Last.CertExpiry = testNow.Add(-time.Minute).UnixMilli() }),
		with(liveEdge("nyc-nocert", newYork), func(e *heartbeat.Edge) { e.Last.CertExpiry = 0 }),
		with(liveEdge("tyo-dead", tokyo), func(e *heartbeat.Edge) { e.State, e.Reason = heartbeat.Dead, "probe failed" }),
		with(liveEdge("tyo-suspect", tokyo), func(e *heartbeat.Edge) { e.State = heartbeat.Suspect }),
		with(liveEdge("lhr-sync", london), func(e *heartbeat.Edge) { e.Last.Synced = false }),
		with(liveEdge("nyc-stale", newYork), func(e *heartbeat.Edge) { e.LastSeen = testNow.Add(-time.Minute) }),
		with(liveEdge("nourl", amsterdam), func(e *heartbeat.Edge) { e.Last.PublicURL = "" }),
		with(liveEdge("ftp", amsterdam), func(e *heartbeat.Edge) { e.Last.PublicURL = "ftp://ftp.example.net" }),
		liveEdge("syd-off", sydney),
	}
}

// testWeights disables syd-off.
func testWeights() map[string]float64 { return map[string]float64{"syd-off": 0} }

// testExcluded is every ineligible edge of testEdges with its reason, for any client.
func testExcluded() map[string]ExcludeReason {
	return map[string]ExcludeReason{
		"ams-drain":   ExcludeDraining,
		"fra-old":     ExcludeOldDeploy,
		"nyc-cert":    ExcludeCertificate,
		"nyc-nocert":  ExcludeCertificate,
		"tyo-dead":    ExcludeNotAlive,
		"tyo-suspect": ExcludeNotAlive,
		"lhr-sync":    ExcludeNotSynced,
		"nyc-stale":   ExcludeStale,
		"nourl":       ExcludeNoPublicURL,
		"ftp":         ExcludeNoPublicURL,
		"syd-off":     ExcludeDisabled,
	}
}
