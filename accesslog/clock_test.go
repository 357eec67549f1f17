package accesslog

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestClockMatchesTimeFormat: a line's time, from the per-second cache or formatted anew, is
// byte for byte what time.Format writes, for times around second turns, before 1970, with and
// without a fraction, and out of order.
func TestClockMatchesTimeFormat(t *testing.T) {
	base := time.Date(2026, 12, 7, 23, 59, 59, 0, time.UTC).UnixNano()
	times := []int64{0, 1, -1, base, base - 1, base + 1, base + 999_999_999, base + 1e9, base + 100, base + 120_000_000,
		-1e9, -1e9 + 1, math.MaxInt64, math.MinInt64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		times = append(times, base+rng.Int64N(4e9)-2e9, rng.Int64())
	}
	var c clock
	for _, ns := range times {
		tm := time.Unix(0, ns).UTC()
		for _, ck := range []*clock{&c, nil} {
			if got, want := string(appendRFC3339Nano(nil, ns, ck)), tm.Format(time.RFC3339Nano); got != want {
				t.Fatalf("appendRFC3339Nano(%d) = %q, want %q", ns, got, want)
			}
			if got, want := string(ck.stamp(ns).clf), tm.Format("02/Jan/2006:15:04:05 -0700"); got != want {
				t.Fatalf("clf stamp of %d = %q, want %q", ns, got, want)
			}
		}
	}
}

// TestClockKeepsNewestSecond: a line of an earlier second does not displace the newest.
func TestClockKeepsNewestSecond(t *testing.T) {
	var c clock
	now := c.stamp(5e9)
	if c.stamp(4e9) == now || c.stamp(5e9+1) != now {
		t.Error("an earlier second replaced the newest one in the cache")
	}
}

// TestPlainPrefix: the scan 8 bytes at a time stops where the scan byte by byte does, for every
// byte at every place of strings of every length up to 26: whole words, a tail read as the last
// word, and strings shorter than a word.
func TestPlainPrefix(t *testing.T) {
	for n := range 27 {
		for c := range 256 {
			for at := range max(n, 1) {
				b := []byte("abcdefghijklmnopqrstuvwxyz")[:n]
				if at < n {
					b[at] = byte(c)
				}
				want := 0
				for want < len(b) && jsonPlain[b[want]] {
					want++
				}
				if got := plainPrefix(b); got != want {
					t.Fatalf("%d bytes, byte %#x at %d: plainPrefix = %d, want %d", n, c, at, got, want)
				}
				if got := plainPrefix(string(b)); got != want {
					t.Fatalf("%d bytes, byte %#x at %d: plainPrefix of a string = %d, want %d", n, c, at, got, want)
				}
			}
		}
	}
}

// TestAppendSeconds: durations in seconds with six decimals, negative ones as zero.
func TestAppendSeconds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, d := range []time.Duration{0, 1, time.Microsecond, 999_999 * time.Microsecond, time.Second, -time.Second, math.MaxInt64} {
		us := max(d, 0) / time.Microsecond
		if got, want := string(appendSeconds(nil, d)), fmt.Sprintf("%d.%06d", us/1e6, us%1e6); got != want {
			t.Errorf("appendSeconds(%v) = %q, want %q", d, got, want)
		}
	}
	for range 10_000 {
		d := time.Duration(rng.Int64N(int64(100 * time.Second)))
		us := d / time.Microsecond
		if got, want := string(appendSeconds(nil, d)), fmt.Sprintf("%d.%06d", us/1e6, us%1e6); got != want {
			t.Fatalf("appendSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}
