package ipguard

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStrikesBlockLikeFailedHandshakes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.7")
	for range 4 {
		// The peer authenticates, then misbehaves: the success does not wipe its strikes.
		tk, err := g.Admit(addr)
		if err != nil {
			t.Fatal(err)
		}
		tk.Succeeded()
		g.Strike(addr, "forged record")
	}
	if _, blocked := g.Blocked(addr); blocked {
		t.Fatal("blocked after 4 strikes")
	}
	g.Strike(addr, "forged record")
	if _, blocked := g.Blocked(addr); !blocked {
		t.Fatal("not blocked after 5 strikes")
	}
	// Strikes spread over more than the window do not block.
	other := netip.MustParseAddr("192.0.2.8")
	for range 5 {
		g.Strike(other, "x")
		now = now.Add(3 * time.Minute)
	}
	if _, blocked := g.Blocked(other); blocked {
		t.Fatal("5 strikes over 12 minutes blocked")
	}
	never := netip.MustParseAddr("198.51.100.1")
	cfg.NeverBlock = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	g2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		g2.Strike(never, "x")
	}
	if _, blocked := g2.Blocked(never); blocked {
		t.Fatal("a never-block address was blocked by strikes")
	}
}

func TestCloseUnregistersMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Registerer = reg
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("two guards registered on one registry")
	}
	g.Close()
	g.Close()
	if _, err := New(cfg); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}
