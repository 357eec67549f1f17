package trafficstats

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestMergedTopKeepsFrequentKeys: a stream split over four counts, as the shards of a Collector
// split it, keeps the frequent keys on top once merged, each count within its error bound of the
// truth, and the bound within n/k.
func TestMergedTopKeepsFrequentKeys(t *testing.T) {
	parts := []*topK{newTopK(TrackedKeys), newTopK(TrackedKeys), newTopK(TrackedKeys), newTopK(TrackedKeys)}
	truth := map[string]uint64{}
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 100_000
	for i := range n {
		k := fmt.Sprintf("/rare/%d", rng.IntN(50_000))
		if i%4 == 0 {
			k = fmt.Sprintf("/hot/%d", rng.IntN(5))
		}
		truth[k]++
		parts[rng.IntN(len(parts))].add(k)
	}
	for _, p := range parts[1:] {
		parts[0].merge(p)
	}
	top := parts[0].top(MaxTop)
	for i, c := range top[:5] {
		if c.Key[:5] != "/hot/" {
			t.Errorf("top %d is %q, want a hot path", i, c.Key)
		}
	}
	for _, c := range top {
		if c.N < truth[c.Key] || c.N-c.Err > truth[c.Key] || c.Err > n/TrackedKeys || c.Err >= c.N {
			t.Errorf("%q counted %d (error %d), truly %d", c.Key, c.N, c.Err, truth[c.Key])
		}
	}
	if got := len(parts[0].heap); got != TrackedKeys {
		t.Errorf("%d counters after the merge, want %d", got, TrackedKeys)
	}
}

// TestConcurrentObserveCountsExactly: responses counted from many goroutines at once, spread over
// the shards, add up exactly once taken, and the merged message decodes.
func TestConcurrentObserveCountsExactly(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	c := New(Config{Now: clk.now, Country: func(netip.Addr) string { return "NL" }})
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				site := []string{"blog", "docs"}[i%2]
				c.Observe(Response{Site: site, Path: fmt.Sprintf("/%d", i%7), Remote: fmt.Sprintf("192.0.2.%d:1", w), Status: 200 + 104*(i%2), Bytes: 3})
			}
		})
	}
	wg.Wait()
	clk.t = clk.t.Add(time.Minute)
	m := c.Take()
	if len(m.Sites) != 2 {
		t.Fatalf("sites %+v", m.Sites)
	}
	for _, s := range m.Sites {
		var paths uint64
		for _, p := range s.Paths {
			paths += p.N
			if p.Err != 0 {
				t.Errorf("%s: %q has error %d with 7 paths and %d counters", s.Site, p.Key, p.Err, TrackedKeys)
			}
		}
		if s.Requests != workers*each/2 || s.Bytes != 3*s.Requests || paths != s.Requests || s.Countries[0].N != s.Requests {
			t.Errorf("%s: %d requests, %d bytes, %d in paths, countries %+v", s.Site, s.Requests, s.Bytes, paths, s.Countries)
		}
		if got := estimate(t, s); got != workers {
			t.Errorf("%s: %d visitors, want %d", s.Site, got, workers)
		}
	}
	checkRoundTrip(t, m)
	if c.tracked.Load() != 0 {
		t.Errorf("%d site counts still tracked after Take", c.tracked.Load())
	}
}

// TestFilteredTopKBounds: one counter set over a stream of a few frequent keys in a long tail of
// rare ones (most keys filtered rather than taking a counter) keeps space-saving's bounds: every
// key truly more frequent than n/k holds a counter, each count is at least the truth and at most
// its error above it, the error stays within n/k, and the counters sum to at most n.
func TestFilteredTopKBounds(t *testing.T) {
	tk, truth := newTopK(TrackedKeys), map[string]uint64{}
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 200_000
	for range n {
		k := fmt.Sprintf("/tail/%d", rng.IntN(100_000))
		if r := rng.IntN(100); r < 30 {
			k = fmt.Sprintf("/hot/%d", r%10) // 3 % each: over n/k
		}
		truth[k]++
		tk.add(k)
	}
	held, sum := map[string]bool{}, uint64(0)
	for _, s := range tk.heap {
		held[s.Key], sum = true, sum+s.N
		if s.N < truth[s.Key] || s.N-s.Err > truth[s.Key] || s.Err > n/TrackedKeys {
			t.Errorf("%q counted %d (error %d), truly %d", s.Key, s.N, s.Err, truth[s.Key])
		}
	}
	for k, c := range truth {
		if c > n/TrackedKeys && !held[k] {
			t.Errorf("%q (%d of %d) holds no counter", k, c, n)
		}
	}
	if sum > n {
		t.Errorf("counters sum to %d, over the %d keys counted", sum, n)
	}
}

// TestBlockOf: addresses share a country cache entry exactly when they share their /24 (IPv4)
// or /48 (IPv6); no IPv4 block is an IPv6 one.
func TestBlockOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(v6 bool) netip.Addr {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(3)) // few values: many pairs share a block
		}
		if v6 {
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	for range 20_000 {
		a, b := random(rng.IntN(2) == 0), random(rng.IntN(2) == 0)
		same := a.Is4() == b.Is4()
		if same {
			bits := map[bool]int{true: 24, false: 48}[a.Is4()]
			pa, _ := a.Prefix(bits)
			pb, _ := b.Prefix(bits)
			same = pa == pb
		}
		if got := blockOf(a) == blockOf(b); got != same {
			t.Fatalf("%v and %v: same block %v, want %v", a, b, got, same)
		}
	}
}

// TestRunsOfOneClientCountExactly: a client's responses in runs, alternating between two sites
// and going on across an interval's end, count every response under its site and country, and
// the client once per site and interval.
func TestRunsOfOneClientCountExactly(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	lookups := 0
	c := New(Config{Now: clk.now, Country: func(ip netip.Addr) string {
		lookups++
		if ip.As4()[0] == 192 {
			return "NL"
		}
		return "DE"
	}})
	observe := func(site, remote string, n int) {
		for range n {
			c.Observe(Response{Site: site, Path: "/", Remote: remote, Status: 200, Bytes: 1})
		}
	}
	observe("blog", "192.0.2.1:1000", 5)
	observe("docs", "192.0.2.1:1000", 3)
	observe("blog", "198.51.100.2:1000", 2)
	observe("blog", "192.0.2.1:1001", 4)
	clk.t = clk.t.Add(time.Minute)
	first := c.Take()
	observe("blog", "192.0.2.1:1000", 6) // the run goes on in the next interval
	clk.t = clk.t.Add(time.Minute)
	second := c.Take()

	want := func(m Message, site string, requests uint64, countries []Count, visitors uint64) {
		t.Helper()
		for _, s := range m.Sites {
			if s.Site != site {
				continue
			}
			if s.Requests != requests || !slices.Equal(s.Countries, countries) {
				t.Errorf("%s: %d requests, countries %+v; want %d, %+v", site, s.Requests, s.Countries, requests, countries)
			}
			if got := estimate(t, s); got != visitors {
				t.Errorf("%s: %d visitors, want %d", site, got, visitors)
			}
			return
		}
		t.Errorf("%s missing from %+v", site, m.Sites)
	}
	want(first, "blog", 11, []Count{{Key: "DE", N: 2}, {Key: "NL", N: 9}}, 2)
	want(first, "docs", 3, []Count{{Key: "NL", N: 3}}, 1)
	want(second, "blog", 6, []Count{{Key: "NL", N: 6}}, 1)
	if lookups != 3 { // each address once per interval
		t.Errorf("%d country lookups, want 3", lookups)
	}
}
