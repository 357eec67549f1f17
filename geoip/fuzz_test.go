package geoip

import (
	"net/netip"
	"testing"

	"github.com/dt-cdn/dt/internal/testkit/mmdb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzOpenBytes feeds damaged databases to the loader: a file that loads must answer lookups
// without failing the process, and one that does not must be refused with an error, never a panic,
// so that Reload can keep the database it has.
func FuzzOpenBytes(f *testing.F) {
	small := mmdb.Build(f, mmdb.Nets()[:4], mmdb.LayoutMaxMind)
	f.Add(small)
	f.Add(small[:len(small)/2])
	f.Add(mmdb.Build(f, mmdb.Nets()[:2], mmdb.LayoutDBIP))
	f.Add(mmdb.BuildV4(f))
	ips := []netip.Addr{netip.MustParseAddr("145.100.1.1"), netip.MustParseAddr("2001:610::1"), netip.MustParseAddr("8.8.8.8")}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := openBytes(data)
		if err != nil {
			return
		}
		for _, ip := range ips {
			rec, err := g.lookup(ip)
			if rec != nil && err != nil {
				t.Fatalf("%v: record and error", ip)
			}
		}
	})
}
