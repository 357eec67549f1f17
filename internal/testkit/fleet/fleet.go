// Package fleet holds the fleet of edges that the tests of the choice of edges share: one
// eligible edge in each of several cities and one edge of each kind of ineligibility, with the
// reasons package edgeset gives for them, and a GeoIP database placing clients near them.
package fleet

import (
	"net/netip"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/mmdb"
)

// GeoDB opens a database of mmdb.Nets, closed when t ends.
func GeoDB(t testing.TB) *geoip.DB {
	t.Helper()
	g, err := geoip.Open(mmdb.File(t), geoip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// Places of the test edges.
var (
	Amsterdam = &heartbeat.Location{Lat: 52.3676, Lon: 4.9041, Country: "NL", Continent: "EU"}
	Frankfurt = &heartbeat.Location{Lat: 50.1109, Lon: 8.6821, Country: "DE", Continent: "EU"}
	NewYork   = &heartbeat.Location{Lat: 40.7128, Lon: -74.0060, Country: "US", Continent: "NA"}
	Tokyo     = &heartbeat.Location{Lat: 35.6762, Lon: 139.6503, Country: "JP", Continent: "AS"}
	SaoPaulo  = &heartbeat.Location{Lat: -23.5505, Lon: -46.6333, Country: "BR", Continent: "SA"}
	London    = &heartbeat.Location{Lat: 51.5072, Lon: -0.1276, Country: "GB", Continent: "EU"}
	Sydney    = &heartbeat.Location{Lat: -33.8688, Lon: 151.2093, Country: "AU", Continent: "OC"}
)

// Deploys of the fleet: Current is the network's, Old an earlier one.
const (
	Current = "deploy-2"
	Old     = "deploy-1"
)

// Now is the time the fleet is judged at.
var Now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Live is an edge that passes every check: alive, fresh, synced to Current, a valid
// certificate, IPv4 and IPv6.
func Live(node string, loc *heartbeat.Location) heartbeat.Edge {
	return heartbeat.Edge{
		Node: node,
		Last: heartbeat.Heartbeat{
			Seq:        1,
			PublicURL:  "https://" + node + ".example.net",
			IPv4:       netip.MustParseAddr("198.51.100.1"),
			IPv6:       netip.MustParseAddr("2001:db8::1"),
			Location:   loc,
			Deploy:     Current,
			Synced:     true,
			CertExpiry: Now.Add(30 * 24 * time.Hour).UnixMilli(),
		},
		LastSeen: Now.Add(-time.Second),
		State:    heartbeat.Alive,
		Since:    Now.Add(-time.Hour),
	}
}

// With returns e changed by f.
func With(e heartbeat.Edge, f func(*heartbeat.Edge)) heartbeat.Edge {
	f(&e)
	return e
}

// Edges is the fleet of the selection tests: five eligible edges (ams, fra IPv4-only, nyc,
// tyo, gru on plain http without addresses) and one of each kind of ineligible edge.
func Edges() []heartbeat.Edge {
	return []heartbeat.Edge{
		Live("ams", Amsterdam),
		With(Live("fra", Frankfurt), func(e *heartbeat.Edge) { e.Last.IPv6 = netip.Addr{} }),
		Live("nyc", NewYork),
		Live("tyo", Tokyo),
		With(Live("gru", SaoPaulo), func(e *heartbeat.Edge) {
			e.Last.PublicURL = "http://gru.example.net/"
			e.Last.CertExpiry = 0
			e.Last.IPv4, e.Last.IPv6 = netip.Addr{}, netip.Addr{}
		}),
		With(Live("ams-drain", Amsterdam), func(e *heartbeat.Edge) { e.Last.Draining = true }),
		With(Live("fra-old", Frankfurt), func(e *heartbeat.Edge) { e.Last.Deploy = Old }),
		With(Live("nyc-cert", NewYork), func(e *heartbeat.Edge) { e.Last.CertExpiry = Now.Add(-time.Minute).UnixMilli() }),
		With(Live("nyc-nocert", NewYork), func(e *heartbeat.Edge) { e.Last.CertExpiry = 0 }),
		With(Live("tyo-dead", Tokyo), func(e *heartbeat.Edge) { e.State, e.Reason = heartbeat.Dead, "probe failed" }),
		With(Live("tyo-suspect", Tokyo), func(e *heartbeat.Edge) { e.State = heartbeat.Suspect }),
		With(Live("lhr-sync", London), func(e *heartbeat.Edge) { e.Last.Synced = false }),
		With(Live("nyc-stale", NewYork), func(e *heartbeat.Edge) { e.LastSeen = Now.Add(-time.Minute) }),
		With(Live("nourl", Amsterdam), func(e *heartbeat.Edge) { e.Last.PublicURL = "" }),
		With(Live("ftp", Amsterdam), func(e *heartbeat.Edge) { e.Last.PublicURL = "ftp://ftp.example.net" }),
		Live("syd-off", Sydney),
	}
}

// Weights disables syd-off.
func Weights() map[string]float64 { return map[string]float64{"syd-off": 0} }

// Excluded is every ineligible edge of Edges with its reason, for any client.
func Excluded() map[string]edgeset.ExcludeReason {
	return map[string]edgeset.ExcludeReason{
		"ams-drain":   edgeset.ExcludeDraining,
		"fra-old":     edgeset.ExcludeOldDeploy,
		"nyc-cert":    edgeset.ExcludeCertificate,
		"nyc-nocert":  edgeset.ExcludeCertificate,
		"tyo-dead":    edgeset.ExcludeNotAlive,
		"tyo-suspect": edgeset.ExcludeNotAlive,
		"lhr-sync":    edgeset.ExcludeNotSynced,
		"nyc-stale":   edgeset.ExcludeStale,
		"nourl":       edgeset.ExcludeNoPublicURL,
		"ftp":         edgeset.ExcludeNoPublicURL,
		"syd-off":     edgeset.ExcludeDisabled,
	}
}
