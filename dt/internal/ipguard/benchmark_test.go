package ipguard

import (
	"log/slog"
	"net/netip"
	"testing"

	"golang.org/x/time/rate"
)

// discard is the default logger: benchmarks measure the guard, not a log handler.
var discard = slog.New(slog.DiscardHandler)

// BenchmarkAdmitSucceeded measures the accept-path cost for a known key: Admit plus Succeeded.
func BenchmarkAdmitSucceeded(b *testing.B) {
	h := newHarness(b, Config{ConnRate: rate.Inf, Logger: discard})
	addr := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		tk, err := h.Admit(addr)
		if err != nil {
			b.Fatal(err)
		}
		tk.Succeeded()
	}
}

// BenchmarkAdmitSucceededNewKeys is the same for a new address every time with the key table
// full, so each Admit also evicts a key: the cost of a flood from many addresses.
func BenchmarkAdmitSucceededNewKeys(b *testing.B) {
	h := newHarness(b, Config{MaxKeys: 10_000, Logger: discard})
	var a [16]byte
	a[0], a[1] = 0x20, 0x01
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++ // a new /64 each time
		a[4], a[5], a[6], a[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		tk, err := h.Admit(netip.AddrFrom16(a))
		if err != nil {
			b.Fatal(err)
		}
		tk.Succeeded()
	}
}

// BenchmarkAdmitBlocked measures refusing a blocked address, the path a flood takes.
func BenchmarkAdmitBlocked(b *testing.B) {
	h := newHarness(b, Config{Logger: discard})
	addr := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		tk, err := h.Admit(addr)
		if err != nil {
			b.Fatal(err)
		}
		tk.Failed(FailBadKey)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Admit(addr); err == nil {
			b.Fatal("admitted a blocked address")
		}
	}
}
