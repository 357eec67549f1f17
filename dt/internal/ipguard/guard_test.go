package ipguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

func TestFailuresWithinWindowBlock(t *testing.T) {
	m := time.Minute
	tests := []struct {
		name string
		at   []time.Duration // when each failure happens
		want bool
	}{
		{"five at once", []time.Duration{0, 0, 0, 0, 0}, true},
		{"five within ten minutes", []time.Duration{0, m, 2 * m, 3 * m, 10*m - time.Second}, true},
		{"four", []time.Duration{0, 0, 0, 0}, false},
		{"five over exactly ten minutes", []time.Duration{0, m, 2 * m, 3 * m, 10 * m}, false},
		{"five over twelve minutes", []time.Duration{0, 3 * m, 6 * m, 9 * m, 12 * m}, false},
		{"nine, three minutes apart", []time.Duration{0, 3 * m, 6 * m, 9 * m, 12 * m, 15 * m, 18 * m, 21 * m, 24 * m}, false},
		{"the window slides: the last five are close", []time.Duration{0, 11 * m, 12 * m, 13 * m, 14 * m, 15 * m}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			for _, at := range tt.at {
				h.clock.Advance(epoch.Add(at).Sub(h.clock.Now()))
				h.fail(t, "192.0.2.7")
			}
			if got := h.blocked("192.0.2.7"); got != tt.want {
				t.Fatalf("blocked = %v, want %v", got, tt.want)
			}
			_, err := h.Admit(netip.MustParseAddr("192.0.2.7"))
			if tt.want {
				mustErr(t, err, ErrBlocked)
				bs := h.Blocks()
				want := Block{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Since: h.clock.Now(), Until: h.clock.Now().Add(time.Hour), Reason: BlockReasonFailures, Count: 1}
				if len(bs) != 1 || bs[0] != want {
					t.Fatalf("Blocks() = %+v, want [%+v]", bs, want)
				}
				if got := h.metric(t, "blocks_total", "reason", BlockReasonFailures); got != 1 {
					t.Errorf("blocks_total{auth_failures} = %v, want 1", got)
				}
				if got := h.metric(t, "refused_total", "reason", "blocked"); got != 1 {
					t.Errorf("refused_total{blocked} = %v, want 1", got)
				}
			} else if err != nil {
				t.Fatalf("Admit after %d failures: %v", len(tt.at), err)
			}
			if got := h.metric(t, "failures_total", "reason", FailBadKey); got != float64(len(tt.at)) {
				t.Errorf("failures_total{bad_key} = %v, want %d", got, len(tt.at))
			}
			if h.blocked("192.0.2.8") {
				t.Error("a neighbouring IPv4 address is blocked too")
			}
		})
	}
}

// blockByFailures fails FailureThreshold handshakes from addr and returns the block that follows.
func (h *harness) blockByFailures(t *testing.T, addr string) Block {
	t.Helper()
	for range h.cfg.FailureThreshold {
		h.fail(t, addr)
	}
	until, ok := h.Blocked(netip.MustParseAddr(addr))
	if !ok {
		t.Fatalf("%s is not blocked after %d failures", addr, h.cfg.FailureThreshold)
	}
	for _, b := range h.Blocks() {
		if b.Prefix == KeyOf(netip.MustParseAddr(addr)) {
			if !b.Until.Equal(until) {
				t.Fatalf("Blocks() says until %v, Blocked %v", b.Until, until)
			}
			return b
		}
	}
	t.Fatalf("Blocks() lacks %s", addr)
	return Block{}
}

func TestBlocksEscalate(t *testing.T) {
	h := newHarness(t, Config{})
	const addr = "2001:db8::1"
	want := []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	for i, d := range want {
		b := h.blockByFailures(t, addr)
		if got := b.Until.Sub(h.clock.Now()); got != d || b.Count != i+1 {
			t.Fatalf("block %d lasts %v with count %d, want %v and %d", i+1, got, b.Count, d, i+1)
		}
		h.clock.Advance(d - time.Second)
		if !h.blocked(addr) {
			t.Fatalf("block %d ended a second early", i+1)
		}
		h.clock.Advance(time.Second)
		if h.blocked(addr) {
			t.Fatalf("block %d outlived %v", i+1, d)
		}
		if _, err := h.Admit(netip.MustParseAddr(addr)); err != nil {
			t.Fatalf("Admit after block %d ended: %v", i+1, err)
		} // the ticket is left in flight deliberately: it must not stop the next block
	}

	// Within BlockMemory of the last block's end the count is still remembered...
	h.clock.Advance(7*24*time.Hour - time.Second)
	if b := h.blockByFailures(t, addr); b.Count != 6 {
		t.Fatalf("count after 7 days less a second = %d, want 6", b.Count)
	}
	// ...and past it, forgotten: the next block is a first block again.
	h.clock.Advance(24*time.Hour + 7*24*time.Hour)
	if b := h.blockByFailures(t, addr); b.Count != 1 || b.Until.Sub(h.clock.Now()) != time.Hour {
		t.Fatalf("block after the memory expired = %+v, want a first block of 1h", b)
	}
}

func TestSuccessResetsFailures(t *testing.T) {
	h := newHarness(t, Config{})
	for range 4 {
		h.fail(t, "198.51.100.1")
	}
	h.admit(t, "198.51.100.1").Succeeded()
	for range 4 {
		h.fail(t, "198.51.100.1")
	}
	if h.blocked("198.51.100.1") {
		t.Fatal("blocked after 4 failures, a success and 4 failures")
	}
	h.fail(t, "198.51.100.1")
	if !h.blocked("198.51.100.1") {
		t.Fatal("not blocked after 5 failures since the success")
	}
}

func TestAbandonedIsNotAFailure(t *testing.T) {
	h := newHarness(t, Config{})
	for range 10 {
		h.admit(t, "198.51.100.2").Abandoned()
	}
	if h.blocked("198.51.100.2") {
		t.Fatal("10 abandoned connections blocked the address")
	}
	if got := h.metric(t, "handshakes_abandoned_total"); got != 10 {
		t.Fatalf("handshakes_abandoned_total = %v, want 10", got)
	}
}

func TestRateLimitAndBurst(t *testing.T) {
	h := newHarness(t, Config{})
	admitN := func(n int) (admitted int) {
		for range n {
			tk, err := h.Admit(netip.MustParseAddr("203.0.113.9"))
			if err != nil {
				mustErr(t, err, ErrRateLimited)
				continue
			}
			admitted++
			tk.Succeeded()
		}
		return admitted
	}
	if got := admitN(30); got != 20 {
		t.Fatalf("at one instant %d of 30 admitted, want the burst of 20", got)
	}
	h.clock.Advance(500 * time.Millisecond)
	if got := admitN(5); got != 1 {
		t.Fatalf("after 0.5 s %d admitted, want 1 (2/s)", got)
	}
	h.clock.Advance(3 * time.Second)
	if got := admitN(10); got != 6 {
		t.Fatalf("after 3 s %d admitted, want 6", got)
	}
	h.clock.Advance(time.Hour)
	if got := admitN(30); got != 20 {
		t.Fatalf("after an hour %d admitted, want the burst of 20, no more", got)
	}
	if got := admitN(1); got != 0 {
		t.Fatal("admitted beyond the burst")
	}
	if h.blocked("203.0.113.9") {
		t.Fatal("rate limiting blocked the address")
	}
	if _, err := h.Admit(netip.MustParseAddr("203.0.113.10")); err != nil {
		t.Fatalf("another address was limited too: %v", err)
	}
	if got, want := h.metric(t, "refused_total", "reason", "rate"), float64(10+4+4+11); got != want {
		t.Fatalf("refused_total{rate} = %v, want %v", got, want)
	}
}

func TestConnectionFloodWarnsAndBlocks(t *testing.T) {
	h := newHarness(t, Config{})
	const addr = "192.0.2.50"
	for i := 1; i <= 600; i++ {
		h.admit(t, addr).Abandoned()
		if got, want := h.logs.count("many unauthenticated connections"), btoi(i >= 80); got != want {
			t.Fatalf("after %d connections %d warnings, want %d", i, got, want)
		}
		h.clock.Advance(time.Second)
	}
	_, err := h.Admit(netip.MustParseAddr(addr))
	mustErr(t, err, ErrBlocked)
	bs := h.Blocks()
	if len(bs) != 1 || bs[0].Reason != BlockReasonConnections || bs[0].Count != 1 {
		t.Fatalf("Blocks() = %+v, want one connections block", bs)
	}
	if got := h.metric(t, "warnings_total"); got != 1 {
		t.Fatalf("warnings_total = %v, want 1", got)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRefusedConnectionsCountTowardTheFloodBlock(t *testing.T) {
	h := newHarness(t, Config{})
	var admitted, limited int
	for range 600 {
		tk, err := h.Admit(netip.MustParseAddr("192.0.2.51"))
		if err != nil {
			mustErr(t, err, ErrRateLimited)
			limited++
			continue
		}
		admitted++
		tk.Abandoned()
	}
	if admitted != 20 || limited != 580 {
		t.Fatalf("admitted %d, limited %d; want 20 and 580", admitted, limited)
	}
	_, err := h.Admit(netip.MustParseAddr("192.0.2.51"))
	mustErr(t, err, ErrBlocked)
}

func TestAuthenticatedConnectionsDoNotCount(t *testing.T) {
	h := newHarness(t, Config{})
	for range 2000 {
		h.admit(t, "192.0.2.52").Succeeded()
		h.clock.Advance(time.Second)
	}
	if h.blocked("192.0.2.52") || h.logs.count("many unauthenticated connections") != 0 {
		t.Fatal("2000 authenticated connections in 33 minutes warned or blocked")
	}
}

func TestWarnsOncePerWindow(t *testing.T) {
	h := newHarness(t, Config{})
	burst := func(n int) {
		for range n {
			h.admit(t, "192.0.2.53").Abandoned()
			h.clock.Advance(time.Second)
		}
	}
	burst(200)
	if got := h.logs.count("many unauthenticated connections"); got != 1 {
		t.Fatalf("%d warnings for 200 connections, want 1", got)
	}
	h.clock.Advance(2 * time.Hour) // the earlier connections no longer count
	burst(79)
	if got := h.logs.count("many unauthenticated connections"); got != 1 {
		t.Fatalf("%d warnings after 79 more in a new hour, want still 1", got)
	}
	burst(1)
	if got := h.logs.count("many unauthenticated connections"); got != 2 {
		t.Fatalf("%d warnings after 80 in a new hour, want 2", got)
	}
}

func TestIPv6AddressesGroupByPrefix64(t *testing.T) {
	h := newHarness(t, Config{})
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::3%eth0", "2001:db8:1:2::4"} {
		tk, err := h.Admit(netip.MustParseAddr(a))
		if err != nil {
			t.Fatalf("Admit(%s): %v", a, err)
		}
		tk.Failed(FailMalformed)
	}
	if bs := h.Blocks(); len(bs) != 1 || bs[0].Prefix != netip.MustParsePrefix("2001:db8:1:2::/64") {
		t.Fatalf("Blocks() = %+v, want 2001:db8:1:2::/64", bs)
	}
	for addr, want := range map[string]bool{
		"2001:db8:1:2::99":  true,
		"2001:db8:1:2:8::1": true,
		"2001:db8:1:3::1":   false,
		"2001:db8:1:1::1":   false,
	} {
		if got := h.blocked(addr); got != want {
			t.Errorf("Blocked(%s) = %v, want %v", addr, got, want)
		}
	}
}

// prefix64 returns an address in the i-th /64 of 2001:db8:<site>::/48.
func prefix64(site, i int) string { return fmt.Sprintf("2001:db8:%x:%x::1", site, i) }

func TestSubnetEscalation(t *testing.T) {
	h := newHarness(t, Config{})
	for i := range 39 {
		h.blockByFailures(t, prefix64(1, i))
	}
	if h.blocked(prefix64(1, 1000)) {
		t.Fatal("the /48 is blocked after 39 of its /64s")
	}
	h.blockByFailures(t, prefix64(1, 39))
	until, ok := h.Blocked(netip.MustParseAddr(prefix64(1, 1000)))
	if !ok || !until.Equal(h.clock.Now().Add(time.Hour)) {
		t.Fatalf("an unblocked /64 of the /48: Blocked = %v, %v; want until %v", until, ok, h.clock.Now().Add(time.Hour))
	}
	if h.blocked(prefix64(2, 0)) {
		t.Fatal("a neighbouring /48 is blocked")
	}
	var subnet *Block
	for _, b := range h.Blocks() {
		if b.Prefix.Bits() == 48 {
			subnet = &b
		}
	}
	if subnet == nil || subnet.Prefix != netip.MustParsePrefix("2001:db8:1::/48") || subnet.Reason != BlockReasonSubnet {
		t.Fatalf("Blocks() has /48 block %+v, want 2001:db8:1::/48 for %q", subnet, BlockReasonSubnet)
	}
	if got := h.metric(t, "blocks_total", "reason", BlockReasonSubnet); got != 1 {
		t.Fatalf("blocks_total{subnet} = %v, want 1", got)
	}
	if got := h.metric(t, "blocked_keys"); got != 41 {
		t.Fatalf("blocked_keys = %v, want 41", got)
	}
}

func TestSubnetEscalationCountsOnlyBlocksInForce(t *testing.T) {
	h := newHarness(t, Config{})
	for i := range 39 {
		h.blockByFailures(t, prefix64(1, i))
	}
	h.clock.Advance(time.Hour) // the 39 blocks end
	h.blockByFailures(t, prefix64(1, 39))
	if h.blocked(prefix64(1, 1000)) {
		t.Fatal("the /48 is blocked though only one of its /64s is")
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"2001:db8:a:b:c:d:e:f", "2001:db8:a:b::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"64:ff9b::192.0.2.1", "64:ff9b::/64"}, // NAT64 is IPv6, not mapped
	}
	for _, tt := range tests {
		if got := KeyOf(netip.MustParseAddr(tt.addr)); got != netip.MustParsePrefix(tt.want) {
			t.Errorf("KeyOf(%s) = %v, want %s", tt.addr, got, tt.want)
		}
	}
	if got := KeyOf(netip.Addr{}); got.IsValid() {
		t.Errorf("KeyOf(zero) = %v, want the zero Prefix", got)
	}
}

func TestIPv4MappedCountsAsIPv4(t *testing.T) {
	h := newHarness(t, Config{})
	for i := range 5 {
		addr := "192.0.2.99"
		if i%2 == 0 {
			addr = "::ffff:192.0.2.99"
		}
		h.fail(t, addr)
	}
	for _, a := range []string{"192.0.2.99", "::ffff:192.0.2.99"} {
		if !h.blocked(a) {
			t.Errorf("%s is not blocked", a)
		}
	}
	if bs := h.Blocks(); len(bs) != 1 || bs[0].Prefix != netip.MustParsePrefix("192.0.2.99/32") {
		t.Fatalf("Blocks() = %+v, want 192.0.2.99/32", bs)
	}
	if _, err := h.Unblock(netip.MustParsePrefix("::ffff:192.0.2.99/128")); err != nil {
		t.Fatalf("Unblock of the mapped form: %v", err)
	}
	if h.blocked("192.0.2.99") {
		t.Fatal("still blocked after Unblock")
	}
}

func TestNeverBlock(t *testing.T) {
	h := newHarness(t, Config{
		NeverBlock:    netipPrefixes("10.0.0.0/8", "2001:db8:aaaa::/48", "::ffff:172.16.0.0/108"),
		MaxHandshakes: 1,
	})
	hold := h.admit(t, "192.0.2.1") // fills the only handshake slot
	defer hold.Succeeded()
	for _, addr := range []string{"10.1.2.3", "2001:db8:aaaa:1::5", "172.16.9.9", "::ffff:10.0.0.1"} {
		for range 1000 {
			h.fail(t, addr) // no rate limit, no handshake cap
		}
		if h.blocked(addr) {
			t.Errorf("never-block address %s is blocked", addr)
		}
	}
	if bs := h.Blocks(); len(bs) != 0 {
		t.Fatalf("Blocks() = %+v, want none", bs)
	}
	if _, err := h.Admit(netip.MustParseAddr("192.0.2.2")); !errors.Is(err, ErrBusy) {
		t.Fatalf("never-block tickets took handshake slots: Admit = %v, want ErrBusy", err)
	}
}

// TestLoopbackIsNeverBlocked: by default failures, strikes and connection floods from loopback
// (127.0.0.0/8, ::1, mapped or not) never block it; each block spared is counted and logged once
// per burst. Loopback still takes handshake slots and is still rate limited. With BlockLoopback,
// loopback is blocked like any address, and a stored loopback block is loaded only then.
func TestLoopbackIsNeverBlocked(t *testing.T) {
	store := &memStore{}
	h := newHarness(t, Config{Store: store, MaxHandshakes: 8, ConnRate: rate.Inf, BlockConnections: 100, WarnConnections: 50})
	loopback := []string{"127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "::ffff:127.0.0.3"}
	for _, addr := range loopback {
		for range 20 {
			h.fail(t, addr)
			h.Strike(netip.MustParseAddr(addr), "test")
		}
		if h.blocked(addr) {
			t.Errorf("loopback address %s is blocked", addr)
		}
	}
	for range 300 { // three times BlockConnections, none of them authenticated
		h.admit(t, "127.0.0.4").Abandoned()
	}
	if bs := h.Blocks(); len(bs) != 0 {
		t.Fatalf("Blocks() = %+v, want none", bs)
	}
	// 5 addresses x 20 failures and 20 strikes: 4 blocks spared each, for each kind.
	if got := h.metric(t, "spared_blocks_total", "reason", BlockReasonFailures); got != 5*4*2 {
		t.Errorf("spared_blocks_total{auth_failures} = %v, want 40", got)
	}
	if got := h.metric(t, "spared_blocks_total", "reason", BlockReasonConnections); got != 2 {
		t.Errorf("spared_blocks_total{connections} = %v, want 2", got)
	}
	if n := h.logs.count("loopback address not blocked (loopback is never blocked unless configured to be)"); n != 1 {
		t.Errorf("the spared blocks were logged %d times in one burst, want once", n)
	}
	// Loopback takes handshake slots like any address: the exemption is not NeverBlock.
	var held []*Ticket
	for i := range 6 { // the 8 slots less the 2 reserved for known peers
		held = append(held, h.admit(t, fmt.Sprintf("127.0.%d.1", 10+i)))
	}
	_, err := h.Admit(netip.MustParseAddr("127.0.0.99"))
	mustErr(t, err, ErrBusy)
	for _, tk := range held {
		tk.Abandoned()
	}

	// With BlockLoopback the same failures block it; the block is stored, and a guard loading
	// it without BlockLoopback drops it.
	hb := newHarness(t, Config{Store: store, BlockLoopback: true})
	if b := hb.blockByFailures(t, "127.0.0.2"); b.Prefix != netip.MustParsePrefix("127.0.0.2/32") {
		t.Fatalf("block %+v", b)
	}
	_, err = hb.Admit(netip.MustParseAddr("127.0.0.2"))
	mustErr(t, err, ErrBlocked)
	again, err := New(Config{Store: store, Now: hb.clock.Now, BlockLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if bs := again.Blocks(); len(bs) != 1 || !bs[0].Since.Equal(hb.clock.Now()) {
		t.Fatalf("reloaded with BlockLoopback: %+v, want the block since %v", bs, hb.clock.Now())
	}
	spared, err := New(Config{Store: store, Now: hb.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if bs := spared.Blocks(); len(bs) != 0 {
		t.Fatalf("reloaded without BlockLoopback: %+v, want none", bs)
	}
	if _, ok := spared.Blocked(netip.MustParseAddr("127.0.0.2")); ok {
		t.Fatal("a stored loopback block holds without BlockLoopback")
	}
}

func TestUnblockAll(t *testing.T) {
	store := &memStore{}
	h := newHarness(t, Config{Store: store})
	_, err := h.UnblockAll()
	mustErr(t, err, ErrNotBlocked)
	h.blockByFailures(t, "192.0.2.1")
	h.blockByFailures(t, "2001:db8::1")
	lifted, err := h.UnblockAll()
	if err != nil || len(lifted) != 2 || lifted[0].Prefix.String() != "192.0.2.1/32" || lifted[1].Prefix.String() != "2001:db8::/64" {
		t.Fatalf("UnblockAll = %+v, %v", lifted, err)
	}
	g2, err := New(Config{Store: store, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if bs := g2.Blocks(); len(bs) != 0 {
		t.Fatalf("after UnblockAll and a restart: %+v", bs)
	}
}

func netipPrefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestHandshakeCap(t *testing.T) {
	h := newHarness(t, Config{})
	var tickets []*Ticket
	// 192 addresses in twelve /24s, at the per-subnet cap: they fill the slots that are not
	// reserved for known peers.
	for i := range 192 {
		tickets = append(tickets, h.admit(t, fmt.Sprintf("10.0.%d.%d", i%12, i/12+1)))
	}
	if got := h.metric(t, "handshakes_in_flight"); got != 192 {
		t.Fatalf("handshakes_in_flight = %v, want 192", got)
	}
	_, err := h.Admit(netip.MustParseAddr("192.0.2.1"))
	mustErr(t, err, ErrBusy)
	tickets[0].Succeeded() // 10.0.0.1 is a known peer now
	tickets[0].Succeeded() // ignored: must not free a second slot
	tickets[0].Failed(FailTimeout)
	h.admit(t, "192.0.2.1")
	_, err = h.Admit(netip.MustParseAddr("192.0.2.2"))
	mustErr(t, err, ErrBusy)
	// Known peers take the 64 reserved slots, and no more.
	h.AddKnown(netip.MustParseAddr("192.0.2.3"))
	for range 63 {
		tickets = append(tickets, h.admit(t, "192.0.2.3"))
		h.clock.Advance(time.Second) // the key's connection rate
	}
	tickets = append(tickets, h.admit(t, "10.0.0.1"))
	_, err = h.Admit(netip.MustParseAddr("10.0.0.1"))
	mustErr(t, err, ErrBusy)
	if got := h.metric(t, "refused_total", "reason", "handshakes_full"); got != 3 {
		t.Fatalf("refused_total{handshakes_full} = %v, want 3", got)
	}
	if got := h.metric(t, "admitted_known_total"); got != 64 {
		t.Fatalf("admitted_known_total = %v, want 64", got)
	}
	if got := h.metric(t, "failures_total", "reason", FailTimeout); got != 0 {
		t.Fatalf("an ignored Failed was counted: failures_total{timeout} = %v", got)
	}
	for _, tk := range tickets {
		tk.Abandoned()
	}
	if got := h.metric(t, "handshakes_in_flight"); got != 1 { // 192.0.2.1's
		t.Fatalf("handshakes_in_flight = %v after every ticket ended, want 1", got)
	}
}

func TestHandshakeSubnetCap(t *testing.T) {
	var buf syncbuf.Buffer
	h := newHarness(t, Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	var tickets []*Ticket
	for i := range 16 {
		tickets = append(tickets, h.admit(t, fmt.Sprintf("198.51.100.%d", i+1)))
		tickets = append(tickets, h.admit(t, fmt.Sprintf("2001:db8:7:%x::1", i)))
	}
	for range 100 {
		_, err := h.Admit(netip.MustParseAddr("198.51.100.200"))
		mustErr(t, err, ErrBusy)
		_, err = h.Admit(netip.MustParseAddr("2001:db8:7:ffff::1"))
		mustErr(t, err, ErrBusy)
	}
	if got := h.metric(t, "refused_total", "reason", "subnet_full"); got != 200 {
		t.Fatalf("refused_total{subnet_full} = %v, want 200", got)
	}
	if n := strings.Count(buf.String(), "handshake slots full"); n != 1 {
		t.Fatalf("200 refusals in one burst logged %d lines, want 1:\n%s", n, buf.String())
	}
	// Other subnets, and known peers within the full ones, still get slots.
	h.admit(t, "198.51.101.1").Succeeded()
	h.admit(t, "2001:db8:8::1").Succeeded()
	h.AddKnown(netip.MustParseAddr("198.51.100.201"))
	h.admit(t, "198.51.100.201").Succeeded()
	// A slot freed in the subnet is taken again.
	tickets[0].Failed(FailTimeout)
	h.admit(t, "198.51.100.202").Abandoned()
	for _, tk := range tickets[1:] {
		tk.Abandoned()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subnets) != 0 {
		t.Fatalf("subnet counts left after every ticket ended: %v", h.subnets)
	}
}

func TestPressureShortensDeadline(t *testing.T) {
	h := newHarness(t, Config{MaxHandshakes: 8, MaxHandshakesPerSubnet: 8, ReservedHandshakes: 2})
	var tickets []*Ticket
	for i := range 4 {
		tk := h.admit(t, fmt.Sprintf("10.1.0.%d", i+1))
		if want := epoch.Add(5 * time.Second); !tk.Deadline().Equal(want) {
			t.Fatalf("ticket %d with %d in flight: deadline %v, want %v", i, i+1, tk.Deadline(), want)
		}
		tickets = append(tickets, tk)
	}
	tk := h.admit(t, "10.1.0.9") // the fifth of 8: over half
	if want := epoch.Add(time.Second); !tk.Deadline().Equal(want) {
		t.Fatalf("deadline under pressure %v, want %v", tk.Deadline(), want)
	}
	if got := h.metric(t, "short_deadlines_total"); got != 1 {
		t.Fatalf("short_deadlines_total = %v, want 1", got)
	}
	h.AddKnown(netip.MustParseAddr("10.1.1.1"))
	if k := h.admit(t, "10.1.1.1"); !k.Deadline().Equal(epoch.Add(5 * time.Second)) {
		t.Fatalf("a known peer's deadline under pressure %v, want the full 5 s", k.Deadline())
	} else {
		k.Succeeded()
	}
	tk.Abandoned()
	for _, tk := range tickets {
		tk.Abandoned()
	}
	if tk := h.admit(t, "10.1.0.10"); !tk.Deadline().Equal(epoch.Add(5 * time.Second)) {
		t.Fatalf("deadline after the pressure ended %v, want the full 5 s", tk.Deadline())
	}
}

func TestKnownPeerExpires(t *testing.T) {
	h := newHarness(t, Config{MaxHandshakes: 4, MaxHandshakesPerSubnet: 4, ReservedHandshakes: 1, KnownPeerTTL: time.Hour, MaxKnownPeers: 2})
	h.admit(t, "192.0.2.1").Succeeded()
	for i := range 3 {
		h.admit(t, fmt.Sprintf("10.2.0.%d", i+1)) // holds the three general slots
	}
	_, err := h.Admit(netip.MustParseAddr("10.2.0.99"))
	mustErr(t, err, ErrBusy)
	h.clock.Advance(59 * time.Minute)
	h.admit(t, "192.0.2.1").Succeeded() // known: takes the reserved slot, and renews
	h.clock.Advance(59 * time.Minute)
	h.admit(t, "192.0.2.1").Succeeded()
	h.clock.Advance(61 * time.Minute)
	_, err = h.Admit(netip.MustParseAddr("192.0.2.1"))
	mustErr(t, err, ErrBusy)
	// At most MaxKnownPeers are remembered; the one that expires first goes.
	h.AddKnown(netip.MustParseAddr("192.0.2.5"))
	h.clock.Advance(time.Minute)
	h.AddKnown(netip.MustParseAddr("192.0.2.6"))
	h.AddKnown(netip.MustParseAddr("192.0.2.7"))
	if got := h.metric(t, "known_peers"); got != 2 {
		t.Fatalf("known_peers = %v, want 2", got)
	}
	_, err = h.Admit(netip.MustParseAddr("192.0.2.5"))
	mustErr(t, err, ErrBusy)
	h.admit(t, "192.0.2.7").Abandoned()
	h.clock.Advance(2 * time.Hour)
	_, _ = h.Admit(netip.MustParseAddr("10.2.0.98")) // maintenance runs on Admit
	if got := h.metric(t, "known_peers"); got != 0 {
		t.Fatalf("known_peers = %v two hours on, want 0", got)
	}
}

func TestTicket(t *testing.T) {
	h := newHarness(t, Config{HandshakeTimeout: 3 * time.Second})
	tk := h.admit(t, "::ffff:192.0.2.4")
	defer tk.Abandoned()
	if tk.Addr() != netip.MustParseAddr("192.0.2.4") || tk.Key() != netip.MustParsePrefix("192.0.2.4/32") {
		t.Errorf("ticket names %v in %v", tk.Addr(), tk.Key())
	}
	if want := epoch.Add(3 * time.Second); !tk.Deadline().Equal(want) {
		t.Errorf("Deadline() = %v, want %v", tk.Deadline(), want)
	}
}

func TestInvalidAddress(t *testing.T) {
	h := newHarness(t, Config{})
	_, err := h.Admit(netip.Addr{})
	mustErr(t, err, ErrInvalidAddress)
	if _, ok := h.Blocked(netip.Addr{}); ok {
		t.Error("the zero address is blocked")
	}
	_, err = h.Unblock(netip.Prefix{})
	mustErr(t, err, ErrInvalidAddress)
}

func TestUnblock(t *testing.T) {
	store := &memStore{}
	h := newHarness(t, Config{Store: store})
	h.blockByFailures(t, "192.0.2.1")
	h.clock.Advance(2 * time.Hour)
	h.blockByFailures(t, "192.0.2.1") // second block: 6 h
	if _, err := h.Unblock(netip.MustParsePrefix("192.0.2.1/32")); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	if h.blocked("192.0.2.1") || len(h.Blocks()) != 0 {
		t.Fatal("still blocked after Unblock")
	}
	if b := h.blockByFailures(t, "192.0.2.1"); b.Count != 1 {
		t.Fatalf("block after Unblock has count %d, want 1: Unblock forgets history", b.Count)
	}
	_, err := h.Unblock(netip.MustParsePrefix("192.0.2.2/32"))
	mustErr(t, err, ErrNotBlocked)

	// A /48 unblock lifts the /48 and every /64 block inside it; a /64 unblock only the /64.
	for i := range 40 {
		h.blockByFailures(t, prefix64(7, i))
	}
	if _, err := h.Unblock(netip.MustParsePrefix(prefix64(7, 0) + "/128")); err != nil {
		t.Fatalf("Unblock of one address: %v", err)
	}
	if !h.blocked(prefix64(7, 0)) {
		t.Fatal("unblocking a /64 lifted its /48 too")
	}
	if _, err := h.Unblock(netip.MustParsePrefix("2001:db8:7::/48")); err != nil {
		t.Fatalf("Unblock of the /48: %v", err)
	}
	for i := range 41 {
		if h.blocked(prefix64(7, i)) {
			t.Fatalf("%s still blocked after its /48 was unblocked", prefix64(7, i))
		}
	}
	if got := h.metric(t, "unblocks_total"); got != 1+1+40 {
		t.Fatalf("unblocks_total = %v, want 42", got)
	}

	g2, err := New(Config{Store: store, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := g2.Blocks(); len(got) != 1 || got[0].Prefix != netip.MustParsePrefix("192.0.2.1/32") {
		t.Fatalf("after a restart Blocks() = %+v, want only 192.0.2.1/32", got)
	}
}

func TestIdleKeysAreForgotten(t *testing.T) {
	h := newHarness(t, Config{})
	for i := range 100 {
		h.admit(t, fmt.Sprintf("10.0.0.%d", i)).Succeeded()
	}
	held := h.admit(t, "10.0.1.1") // in flight: never forgotten
	h.clock.Advance(time.Hour)
	for range 100 / sweepBatch * 2 {
		h.admit(t, "192.0.2.1").Succeeded()
	}
	h.mu.Lock()
	n, heldKnown := len(h.keys), h.keys[held.Key()] != nil
	h.mu.Unlock()
	if n != 2 || !heldKnown {
		t.Fatalf("after an idle hour %d keys tracked (held one known: %v), want 2", n, heldKnown)
	}
	held.Succeeded()
	if got := h.metric(t, "tracked_keys"); got != 2 {
		t.Fatalf("tracked_keys = %v, want 2", got)
	}
}

func TestKeyCapEvictsOldestIdle(t *testing.T) {
	h := newHarness(t, Config{MaxKeys: 50, MaxHandshakes: 10, MaxHandshakesPerSubnet: 10})
	h.blockByFailures(t, "192.0.2.1")
	held := h.admit(t, "10.9.9.9")
	h.fail(t, "10.9.9.8") // one failure, then pushed out by newer keys
	for i := range 500 {
		h.clock.Advance(time.Millisecond)
		h.admit(t, fmt.Sprintf("10.0.%d.%d", i/256, i%256)).Succeeded()
		h.mu.Lock()
		n := len(h.keys)
		h.mu.Unlock()
		if n > 50 {
			t.Fatalf("%d keys tracked, cap 50", n)
		}
	}
	h.mu.Lock()
	_, heldKnown := h.keys[held.Key()]
	_, oldKnown := h.keys[KeyOf(netip.MustParseAddr("10.9.9.8"))]
	_, newKnown := h.keys[KeyOf(netip.MustParseAddr("10.0.1.243"))]
	h.mu.Unlock()
	if !heldKnown || oldKnown || !newKnown {
		t.Fatalf("held key known %v (want true), oldest idle %v (want false), newest %v (want true)", heldKnown, oldKnown, newKnown)
	}
	held.Succeeded()
	if !h.blocked("192.0.2.1") {
		t.Fatal("a block was dropped to make room")
	}
	if got := h.metric(t, "evicted_keys_total"); got < 450 {
		t.Fatalf("evicted_keys_total = %v, want at least 450", got)
	}
}

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	z := Config{}.withDefaults()
	if z.ConnRate != d.ConnRate || z.ConnBurst != d.ConnBurst || z.BlockConnections != 600 ||
		z.WarnConnections != 80 || z.FailureThreshold != 5 || z.FailureWindow != 10*time.Minute ||
		len(z.BlockDurations) != 3 || z.BlockDurations[2] != 24*time.Hour || z.MaxHandshakes != 256 ||
		z.SubnetThreshold != 40 || z.MaxKeys != 100_000 || z.BlockMemory != 7*24*time.Hour ||
		z.IdleTimeout != time.Hour || z.HandshakeTimeout != 5*time.Second || z.Now == nil || z.Logger == nil {
		t.Fatalf("zero Config does not take DefaultConfig's values: %+v", z)
	}
	if err := d.validate(); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
	if z := (Config{ConnWindow: 3 * time.Hour}).withDefaults(); z.IdleTimeout != 3*time.Hour {
		t.Errorf("IdleTimeout default with a 3 h ConnWindow = %v, want 3h", z.IdleTimeout)
	}

	_, err := New(Config{
		ConnBurst:        -1,
		MaxKeys:          -5,
		WarnConnections:  700,
		BlockDurations:   []time.Duration{time.Hour, 0},
		NeverBlock:       []netip.Prefix{{}},
		ConnRate:         -1,
		FailureThreshold: maxFailureThreshold + 1,
		IdleTimeout:      time.Minute,
	})
	mustErr(t, err, ErrInvalidConfig)
	for _, field := range []string{"ConnBurst", "MaxKeys", "WarnConnections", "BlockDurations[1]", "NeverBlock[0]", "ConnRate", "FailureThreshold", "IdleTimeout"} {
		if !containsString(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}

	// New copies the config: changing the caller's slices afterwards changes nothing.
	durations := []time.Duration{time.Minute}
	never := netipPrefixes("10.0.0.0/8")
	h := newHarness(t, Config{BlockDurations: durations, NeverBlock: never})
	durations[0], never[0] = time.Hour, netip.MustParsePrefix("192.0.2.0/24")
	if b := h.blockByFailures(t, "192.0.2.1"); b.Until.Sub(h.clock.Now()) != time.Minute {
		t.Fatalf("block lasts %v, want the 1m configured at New", b.Until.Sub(h.clock.Now()))
	}
}

func containsString(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRateInfDisablesTheLimit(t *testing.T) {
	h := newHarness(t, Config{ConnRate: rate.Inf})
	for range 500 {
		h.admit(t, "192.0.2.1").Succeeded()
	}
}

func TestMetricsRegistrationConflict(t *testing.T) {
	h := newHarness(t, Config{})
	_, err := New(Config{Registerer: h.reg})
	if err == nil {
		t.Fatal("a second guard registered on the same registry")
	}
	// The failed New left the first guard's metrics in place.
	h.admit(t, "192.0.2.1").Succeeded()
	if got := h.metric(t, "admitted_total"); got != 1 {
		t.Fatalf("admitted_total = %v, want 1", got)
	}
}

func TestFailuresLoggedOncePerBurst(t *testing.T) {
	h := newHarness(t, Config{})
	for i := range 200 {
		h.fail(t, fmt.Sprintf("10.3.%d.%d", i/200, i%200+1))
	}
	if got := h.logs.count("handshakes failed"); got != 1 {
		t.Fatalf("200 failures in one burst logged %d lines, want 1", got)
	}
	if got := h.metric(t, "failures_total", "reason", FailBadKey); got != 200 {
		t.Fatalf("failures_total{bad_key} = %v, want 200", got)
	}
}
