package dt

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestObservedAddrs links nodes over IPv4 and IPv6 loopback: each learns the address its peers
// see it at, from their handshakes, in both directions of a link.
func TestObservedAddrs(t *testing.T) {
	keys := testKeys(t)
	hub4 := startNode(t, "hub4", keys, "", listenOn("127.0.0.1:0"))
	hub6 := startNode(t, "hub6", keys, "", listenOn("[::1]:0"))
	leaf := startNode(t, "leaf", keys, "", peers(hub4.addr(), hub6.addr()))

	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	waitFor(t, 10*time.Second, func() error {
		got := leaf.ObservedAddrs()
		if len(got) != 2 || !slices.Contains(got, v4) || !slices.Contains(got, v6) {
			return fmt.Errorf("leaf observed at %v, want %v and %v", got, v4, v6)
		}
		return nil
	})
	// The dialer reports the address it dialed: the hub's own listening address.
	waitFor(t, 10*time.Second, func() error {
		for hub, want := range map[*testNode]netip.Addr{hub4: v4, hub6: v6} {
			if got := hub.ObservedAddrs(); !slices.Equal(got, []netip.Addr{want}) {
				return fmt.Errorf("%s observed at %v, want [%v]", hub.name, got, want)
			}
		}
		return nil
	})
	// Gone with the link.
	hub6.stop()
	waitFor(t, 10*time.Second, func() error {
		if got := leaf.ObservedAddrs(); !slices.Equal(got, []netip.Addr{v4}) {
			return fmt.Errorf("leaf observed at %v after the IPv6 hub stopped, want [%v]", got, v4)
		}
		return nil
	})
}

func TestHelloObservedRoundTrip(t *testing.T) {
	for _, ap := range []netip.AddrPort{
		{},
		netip.MustParseAddrPort("203.0.113.7:4000"),
		netip.MustParseAddrPort("[2001:db8::1]:443"),
	} {
		h := hello{incarnation: 7, head: 9, clock: 11, master: true, observed: ap}
		got, err := parseHello(h.marshal())
		if err != nil || got != h {
			t.Errorf("parseHello(marshal(%+v)) = %+v, %v", h, got, err)
		}
	}
	// A zone, a missing address and a short field are refused.
	base := hello{incarnation: 1}.marshal()
	zoned, _ := netip.MustParseAddrPort("[fe80::1%eth0]:1").MarshalBinary()
	noAddr, _ := netip.AddrPortFrom(netip.Addr{}, 80).MarshalBinary()
	for name, b := range map[string][]byte{
		"zone":    appendLenBytes(slices.Clone(base), zoned),
		"no addr": appendLenBytes(slices.Clone(base), noAddr),
		"short":   append(slices.Clone(base), 6, 1, 2),
	} {
		if _, err := parseHello(b); err == nil {
			t.Errorf("%s: parseHello accepted %x", name, b)
		}
	}
}
