package trafficstats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// clock is a Config.Now the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCollectorCounts(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	country := func(ip netip.Addr) string {
		if ip.Is4() && ip.As4()[0] == 192 {
			return "NL"
		}
		return ""
	}
	c := New(Config{Country: country, Now: clk.now})
	for i := range 100 {
		status := []int{200, 200, 304, 404}[i%4]
		c.Observe(Response{Site: "blog", Path: fmt.Sprintf("/p/%d", i%3), Referer: "https://ref.example/", Remote: fmt.Sprintf("192.0.2.%d:1000", i%10),
			Status: status, Bytes: 10})
	}
	c.Observe(Response{Site: "docs", Path: "/", Remote: "[2001:db8::1]:443", Status: 503, Bytes: 5})
	c.Observe(Response{Site: "", Path: "/", Remote: "192.0.2.1:1", Status: 421}) // no site: not counted
	clk.t = clk.t.Add(time.Minute)
	m := c.Take()
	if len(m.Sites) != 2 || m.Sites[0].Site != "blog" || m.Sites[1].Site != "docs" {
		t.Fatalf("sites %+v", m.Sites)
	}
	b := m.Sites[0]
	if b.Requests != 100 || b.Bytes != 1000 || b.Status != [4]uint64{50, 25, 25, 0} || b.NotModified != 25 {
		t.Errorf("blog counts %+v", b)
	}
	if len(b.Paths) != 3 || b.Paths[0] != (Count{Key: "/p/0", N: 34}) || b.Paths[1].N != 33 {
		t.Errorf("blog paths %+v", b.Paths)
	}
	if len(b.Referrers) != 1 || b.Referrers[0] != (Count{Key: "https://ref.example/", N: 100}) {
		t.Errorf("blog referrers %+v", b.Referrers)
	}
	if len(b.Countries) != 1 || b.Countries[0] != (Count{Key: "NL", N: 100}) {
		t.Errorf("blog countries %+v", b.Countries)
	}
	if b.Start != clk.t.Add(-time.Minute).UnixMilli() || b.End != clk.t.UnixMilli() || b.Day != "2026-12-07" {
		t.Errorf("blog interval %d..%d day %s", b.Start, b.End, b.Day)
	}
	if got := estimate(t, b); got != 10 {
		t.Errorf("blog visitors %d, want 10", got)
	}
	d := m.Sites[1]
	if d.Requests != 1 || d.Status != [4]uint64{0, 0, 0, 1} || len(d.Countries) != 1 || d.Countries[0].Key != UnknownCountry {
		t.Errorf("docs %+v", d)
	}
	checkRoundTrip(t, m)
	if next := c.Take(); len(next.Sites) != 0 {
		t.Errorf("a quiet interval sent %+v", next.Sites)
	}
}

// estimate decodes a site entry's sketch and returns its estimate.
func estimate(t *testing.T, s Site) uint64 {
	t.Helper()
	sk, err := s.Sketch()
	if err != nil {
		t.Fatal(err)
	}
	return sk.Estimate()
}

// checkRoundTrip encodes m, checks its size and decodes it back.
func checkRoundTrip(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxSize {
		t.Fatalf("message of %d bytes, over MaxSize %d", len(b), MaxSize)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode of an encoded message: %v", err)
	}
	if len(got.Sites) != len(m.Sites) {
		t.Fatalf("decoded %d sites, want %d", len(got.Sites), len(m.Sites))
	}
	return b
}

// TestUniqueVisitorsWithinError: 50,000 distinct addresses over ten intervals of one day, their
// sketches merged as a receiver does, estimate within 5 % (three standard errors).
func TestUniqueVisitorsWithinError(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}
	c := New(Config{Now: clk.now})
	rng := rand.New(rand.NewPCG(1, 2))
	const visitors = 50_000
	addrs := make([]string, visitors)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(223) + 1), byte(rng.IntN(256)), byte(i >> 8), byte(i)}), 1).String()
	}
	union, _ := hyperloglog.NewSketch(SketchPrecision, true)
	for round := range 10 {
		for i := range visitors / 5 { // each visitor comes back in two intervals
			c.Observe(Response{Site: "blog", Path: "/", Remote: addrs[(round*visitors/10+i)%visitors], Status: 200})
		}
		clk.t = clk.t.Add(time.Minute)
		m := c.Take()
		checkRoundTrip(t, m)
		sk, err := m.Sites[0].Sketch()
		if err != nil {
			t.Fatal(err)
		}
		if err := union.Merge(sk); err != nil {
			t.Fatal(err)
		}
	}
	got := float64(union.Estimate())
	if rel := math.Abs(got-visitors) / visitors; rel > 0.05 {
		t.Errorf("estimated %v unique visitors of %d: %.1f %% off", got, visitors, 100*rel)
	}
	t.Logf("estimated %v unique visitors of %d (%.2f %% off)", got, visitors, 100*math.Abs(got-visitors)/visitors)
}

// TestVisitorKeyChangesWithTheDay: the same address on two days is two visitors in the union of
// the days' sketches: the key changed, and nothing links the days.
func TestVisitorKeyChangesWithTheDay(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC)}
	c := New(Config{Now: clk.now})
	union, _ := hyperloglog.NewSketch(SketchPrecision, true)
	var days []string
	for range 2 {
		for i := range 1000 {
			c.Observe(Response{Site: "blog", Path: "/", Remote: fmt.Sprintf("198.51.100.%d:1", i%250) + "", Status: 200})
		}
		clk.t = clk.t.Add(2 * time.Minute)
		m := c.Take()
		days = append(days, m.Sites[0].Day)
		sk, _ := m.Sites[0].Sketch()
		union.Merge(sk)
	}
	if days[0] != "2026-12-07" || days[1] != "2026-12-08" {
		t.Errorf("days %v", days)
	}
	if got := union.Estimate(); got < 490 || got > 510 {
		t.Errorf("250 addresses on each of two days: %d in the union, want 500 (keys differ)", got)
	}
}

// TestTopKeepsFrequentKeys: a stream of many rare paths and a few frequent ones keeps the
// frequent ones on top, each count within its error bound of the truth.
func TestTopKeepsFrequentKeys(t *testing.T) {
	tk := newTopK(TrackedKeys)
	truth := map[string]uint64{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 100_000 {
		var k string
		if i%4 == 0 {
			k = fmt.Sprintf("/hot/%d", rng.IntN(5))
		} else {
			k = fmt.Sprintf("/rare/%d", rng.IntN(50_000))
		}
		truth[k]++
		tk.add(k)
	}
	top := tk.top(MaxTop)
	for i, c := range top[:5] {
		if c.Key[:5] != "/hot/" {
			t.Errorf("top %d is %q, want a hot path", i, c.Key)
		}
	}
	for _, c := range top {
		if c.N < truth[c.Key] || c.N-c.Err > truth[c.Key] {
			t.Errorf("%q counted %d (error %d), truly %d", c.Key, c.N, c.Err, truth[c.Key])
		}
	}
}

// TestMessageBounds: whatever the traffic (many sites, long keys, every country, many visitors),
// a message stays within MaxSites and MaxSize, and the sites that do not fit come in later ones.
func TestMessageBounds(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	c := New(Config{Now: clk.now, Country: func(ip netip.Addr) string { a := ip.As4(); return fmt.Sprintf("C%d", a[1]%60) }})
	const sites = 150
	// Keys of control bytes: JSON escapes each as six bytes, the largest a key can grow to.
	long := string(make([]byte, 1000))
	for s := range sites {
		for i := range 300 {
			c.Observe(Response{Site: fmt.Sprintf("site-%d", s), Path: fmt.Sprintf("/%d%s", i, long), Referer: fmt.Sprintf("https://r%d.example/%s", i, long),
				Remote: fmt.Sprintf("10.%d.%d.1:1", i, s), Status: 200})
		}
	}
	clk.t = clk.t.Add(time.Minute)
	seen := 0
	for range sites + 1 {
		m := c.Take()
		if len(m.Sites) > MaxSites {
			t.Fatalf("%d sites in a message", len(m.Sites))
		}
		checkRoundTrip(t, m)
		seen += len(m.Sites)
		if m.Backlog == 0 {
			break
		}
	}
	if seen != sites {
		t.Errorf("%d site entries sent, want %d", seen, sites)
	}
}

// TestMessageBytes measures a message at 1, 100 and 1,000 distinct paths per second over one
// DefaultInterval, one site, as many visitors as paths.
func TestMessageBytes(t *testing.T) {
	for _, perSecond := range []int{1, 100, 1000} {
		clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
		c := New(Config{Now: clk.now, Country: func(ip netip.Addr) string { return []string{"NL", "US", "JP"}[ip.As4()[3]%3] }})
		n := perSecond * int(DefaultInterval/time.Second)
		for i := range n {
			c.Observe(Response{Site: "blog", Path: fmt.Sprintf("/posts/2026/12/a-post-about-%d.html", i), Referer: "https://www.example.com/",
				Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1).String(), Status: 200, Bytes: 5000})
		}
		clk.t = clk.t.Add(DefaultInterval)
		b := checkRoundTrip(t, c.Take())
		t.Logf("%5d distinct paths/s: %6d bytes per %v message", perSecond, len(b), DefaultInterval)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := Site{Site: "blog", Start: 1, End: 2, Requests: 2, Status: [4]uint64{1, 1}, NotModified: 1, Day: "2026-12-07",
		Paths: []Count{{Key: "/", N: 2}}}
	for name, mutate := range map[string]func(*Message){
		"version":          func(m *Message) { m.V = 2 },
		"bad site name":    func(m *Message) { m.Sites[0].Site = "Blog!" },
		"backward":         func(m *Message) { m.Sites[0].End = 0 },
		"over a day":       func(m *Message) { m.Sites[0].End = m.Sites[0].Start + 25*3600*1000 },
		"classes > reqs":   func(m *Message) { m.Sites[0].Status[0] = 5 },
		"304 > 3xx":        func(m *Message) { m.Sites[0].NotModified = 2 },
		"bad day":          func(m *Message) { m.Sites[0].Day = "yesterday" },
		"count > reqs":     func(m *Message) { m.Sites[0].Paths[0].N = 3 },
		"error >= count":   func(m *Message) { m.Sites[0].Paths[0].Err = 2 },
		"duplicate key":    func(m *Message) { m.Sites[0].Paths = append(m.Sites[0].Paths, Count{Key: "/", N: 1}) },
		"long key":         func(m *Message) { m.Sites[0].Paths[0].Key = string(make([]byte, MaxKeyBytes+1)) },
		"bad sketch":       func(m *Message) { m.Sites[0].Visitors = []byte{2, SketchPrecision, 0, 9, 9, 9, 9, 9} },
		"other precision":  func(m *Message) { m.Sites[0].Visitors = []byte{2, 14, 0, 1, 0, 0, 0, 0} },
		"too many sites":   func(m *Message) { m.Sites = make([]Site, MaxSites+1) },
		"negative backlog": func(m *Message) { m.Backlog = -1 },
	} {
		m := Message{Sites: []Site{good}}
		m.Sites[0].Paths = append([]Count(nil), good.Paths...)
		mutate(&m)
		b, _ := Encode(m)
		if name == "version" {
			b, _ = jsonWithVersion(m, 2)
		}
		if _, err := Decode(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Decode([]byte(`{"type":"heartbeat","v":1}`)); !errors.Is(err, ErrNotStats) {
		t.Errorf("a heartbeat: %v, want ErrNotStats", err)
	}
	if b, _ := Encode(Message{Sites: []Site{good}}); len(b) == 0 {
		t.Fatal("no encoding")
	} else if _, err := Decode(b); err != nil {
		t.Errorf("the good message: %v", err)
	}
}

// TestSketchSize: a visitor sketch, sparse or dense, never encodes past MaxSketchBytes, so the
// collector never leaves one out.
func TestSketchSize(t *testing.T) {
	sk, _ := hyperloglog.NewSketch(SketchPrecision, true)
	rng := rand.New(rand.NewPCG(5, 6))
	most := 0
	for i := 1; i <= 20_000; i++ {
		sk.InsertHash(rng.Uint64())
		if i%7 != 0 && i < 19_990 {
			continue
		}
		b, err := sk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(b))
	}
	if most > MaxSketchBytes {
		t.Errorf("a sketch encoded to %d bytes, over MaxSketchBytes %d", most, MaxSketchBytes)
	}
	t.Logf("largest sketch: %d bytes", most)
}
