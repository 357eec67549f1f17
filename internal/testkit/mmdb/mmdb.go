// Package mmdb builds small MaxMind-format GeoIP databases for tests, with mmdbwriter: a
// fixed set of networks in several countries, for IPv4 and IPv6, in GeoLite2-City's and DB-IP
// lite's record layouts. The databases are made in the test, so no test needs a file from outside.
package mmdb

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Net is one network of a test GeoIP database.
type Net struct {
	CIDR               string
	Country, Continent string
	Registered         string // registered_country only (no country)
	Lat, Lon           float64
	Radius             uint16
	NoLocation         bool // a country-level record
}

// Nets places networks in several countries, each for IPv4 and IPv6.
func Nets() []Net {
	nl := Net{Country: "NL", Continent: "EU", Lat: 52.37, Lon: 4.89, Radius: 20}
	de := Net{Country: "DE", Continent: "EU", Lat: 51.9607, Lon: 7.6261, Radius: 50} // Münster
	be := Net{Country: "BE", Continent: "EU", Lat: 50.6326, Lon: 5.5797, Radius: 10} // Liège
	us := Net{Country: "US", Continent: "NA", Lat: 34.0522, Lon: -118.2437, Radius: 100}
	jp := Net{Country: "JP", Continent: "AS", Lat: 34.6937, Lon: 135.5023, Radius: 50} // Osaka
	br := Net{Country: "BR", Continent: "SA", Lat: -23.55, Lon: -46.63, Radius: 50}
	za := Net{Country: "ZA", Continent: "AF", Lat: -26.2041, Lon: 28.0473, Radius: 50}
	fr := Net{Country: "FR", Continent: "EU", NoLocation: true}
	at := Net{Registered: "AT", Continent: "EU", NoLocation: true}
	var nets []Net
	add := func(g Net, cidrs ...string) {
		for _, c := range cidrs {
			g.CIDR = c
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

// Layout selects the record layout of a test database.
type Layout int

// The layouts Build writes.
const (
	LayoutMaxMind Layout = iota // GeoLite2-City
	LayoutDBIP                  // DB-IP City Lite: float32 coordinates, no accuracy radius
)

// Build writes a database of nets in the given layout with mmdbwriter.
func Build(t testing.TB, nets []Net, l Layout) []byte {
	t.Helper()
	dbType := "GeoLite2-City"
	if l == LayoutDBIP {
		dbType = "DBIP-City-Lite"
	}
	return writeTree(t, mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": "dt test database"},
		RecordSize:   28,
		Languages:    []string{"en"},
	}, nets, l)
}

// BuildV4 writes an IPv4-only database of the IPv4 networks of Nets.
func BuildV4(t testing.TB) []byte {
	t.Helper()
	var v4 []Net
	for _, g := range Nets() {
		if netip.MustParsePrefix(g.CIDR).Addr().Is4() {
			v4 = append(v4, g)
		}
	}
	return writeTree(t, mmdbwriter.Options{
		DatabaseType: "GeoLite2-City",
		Description:  map[string]string{"en": "dt test database, IPv4"},
		IPVersion:    4,
		RecordSize:   24,
	}, v4, LayoutMaxMind)
}

func writeTree(t testing.TB, opts mmdbwriter.Options, nets []Net, l Layout) []byte {
	t.Helper()
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range nets {
		_, network, err := net.ParseCIDR(g.CIDR)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, record(g, l)); err != nil {
			t.Fatalf("insert %s: %v", g.CIDR, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// record is the database record of g in layout l.
func record(g Net, l Layout) mmdbtype.Map {
	names := func(s string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(s)} }
	m := mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String(g.Continent), "geoname_id": mmdbtype.Uint32(1), "names": names(g.Continent)},
	}
	if g.Country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(g.Country), "names": names(g.Country)}
	}
	if g.Registered != "" {
		m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(g.Registered)}
	}
	if g.NoLocation {
		return m
	}
	switch l {
	case LayoutMaxMind:
		m["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(g.Lat),
			"longitude":       mmdbtype.Float64(g.Lon),
			"accuracy_radius": mmdbtype.Uint16(g.Radius),
			"time_zone":       mmdbtype.String("UTC"),
		}
		m["city"] = mmdbtype.Map{"names": names("somewhere")}
	case LayoutDBIP:
		m["location"] = mmdbtype.Map{"latitude": mmdbtype.Float32(g.Lat), "longitude": mmdbtype.Float32(g.Lon)}
		m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names("region")}}
		if c, ok := m["country"].(mmdbtype.Map); ok {
			c["is_in_european_union"] = mmdbtype.Bool(g.Continent == "EU")
		}
	}
	return m
}

// File writes a database of Nets in GeoLite2-City's layout to a file in a temporary directory of
// t and returns its path.
func File(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(path, Build(t, Nets(), LayoutMaxMind), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// LoopbackFile writes a database that places the loopback networks (127.0.0.0/8 and ::1) in
// the given country, for tests whose visitors all come from loopback, and returns its path.
func LoopbackFile(t testing.TB, country, continent string) string {
	t.Helper()
	g := Net{Country: country, Continent: continent, Lat: 52.37, Lon: 4.89, Radius: 20}
	var nets []Net
	for _, c := range []string{"127.0.0.0/8", "::1/128"} {
		g.CIDR = c
		nets = append(nets, g)
	}
	b := writeTree(t, mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 28, Languages: []string{"en"},
		Description: map[string]string{"en": "dt test database, loopback"}, IncludeReservedNetworks: true}, nets, LayoutMaxMind)
	path := filepath.Join(t.TempDir(), "loopback.mmdb")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// LoopbackNetsFile writes a database of nets inside the loopback networks (127.0.0.0/8, ::1),
// for tests whose visitors come from loopback addresses of several countries (a client's dialer
// binds 127.0.1.1 or 127.0.2.1, say), and returns its path.
func LoopbackNetsFile(t testing.TB, nets []Net) string {
	t.Helper()
	b := writeTree(t, mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 28, Languages: []string{"en"},
		Description: map[string]string{"en": "dt test database, loopback nets"}, IncludeReservedNetworks: true}, nets, LayoutMaxMind)
	path := filepath.Join(t.TempDir(), "loopback-nets.mmdb")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
