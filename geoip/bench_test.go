package geoip

import (
	"net/netip"
	"testing"
)

// benchClients are addresses spread over the test database's networks (and one it lacks).
var benchClients = []string{"145.100.1.1", "2001:610::1", "85.88.7.7", "81.240.3.3", "24.1.2.3",
	"2600:1f00::5", "126.1.1.1", "177.1.1.1", "41.0.9.9", "90.0.1.1", "8.8.8.8"}

func BenchmarkGeoLookup(b *testing.B) {
	g := openTestDB(b)
	ips := make([]netip.Addr, len(benchClients))
	for i, s := range benchClients {
		ips[i] = netip.MustParseAddr(s)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := g.Lookup(ips[i%len(ips)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
