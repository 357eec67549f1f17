package edge

import (
	"net/netip"
	"testing"

	"github.com/dt-cdn/dt/heartbeat"
)

func TestPublicAddrs(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		observed []netip.Addr
		v4, v6   netip.Addr
	}{
		{"none", nil, netip.Addr{}, netip.Addr{}},
		{"loopback and private only", []netip.Addr{a("127.0.0.1"), a("::1"), a("10.1.2.3"), a("192.168.1.5"), a("172.16.0.9"), a("fd00::5"), a("fe80::1"), a("100.64.3.4")}, netip.Addr{}, netip.Addr{}},
		{"first public of each family", []netip.Addr{a("10.0.0.1"), a("198.51.100.20"), a("2001:db8::7"), a("203.0.113.9"), a("2001:db8::8")}, a("198.51.100.20"), a("2001:db8::7")},
		{"mapped IPv4 is IPv4", []netip.Addr{a("::ffff:198.51.100.1")}, a("198.51.100.1"), netip.Addr{}},
		{"unspecified and multicast", []netip.Addr{a("0.0.0.0"), a("224.0.0.1"), a("ff02::1")}, netip.Addr{}, netip.Addr{}},
	}
	for _, tt := range tests {
		v4, v6 := publicAddrs(tt.observed)
		if v4 != tt.v4 || v6 != tt.v6 {
			t.Errorf("%s: publicAddrs(%v) = %v, %v; want %v, %v", tt.name, tt.observed, v4, v6, tt.v4, tt.v6)
		}
	}
}

// TestLocateOncePerAddress: the GeoIP lookup runs when the reported address changes, not on
// every heartbeat.
func TestLocateOncePerAddress(t *testing.T) {
	calls := map[netip.Addr]int{}
	e := &service{cfg: serviceConfig{Locate: func(ip netip.Addr) *heartbeat.Location {
		calls[ip]++
		return &heartbeat.Location{Lat: float64(ip.As4()[3]), Lon: 1}
	}}}
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for range 3 {
		if loc := e.locate(a, netip.Addr{}); loc == nil || loc.Lat != 1 {
			t.Fatalf("locate(%v) = %+v", a, loc)
		}
	}
	if loc := e.locate(b, netip.MustParseAddr("2001:db8::1")); loc == nil || loc.Lat != 2 {
		t.Fatalf("locate(%v) = %+v", b, loc)
	}
	if loc := e.locate(netip.Addr{}, netip.Addr{}); loc != nil {
		t.Fatalf("locate with no address = %+v", loc)
	}
	if calls[a] != 1 || calls[b] != 1 {
		t.Errorf("Locate calls: %v, want one per address", calls)
	}
}
