package trafficseries

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dt-cdn/dt/trafficstats"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// edgeStats is an edge's collector, on a clock the test moves.
type edgeStats struct {
	clk *clock
	c   *trafficstats.Collector
}

func newEdgeStats(start time.Time) *edgeStats {
	clk := &clock{start}
	return &edgeStats{clk: clk, c: trafficstats.New(trafficstats.Config{Now: clk.now,
		Country: func(ip netip.Addr) string { return []string{"NL", "JP"}[ip.As4()[2]%2] }})}
}

// traffic makes the edge's message for the interval ending at end: n requests of site, half 200
// and half 304, from visitors distinct addresses (each in a /24 of its own).
func (es *edgeStats) traffic(site string, end time.Time, n, visitors int) trafficstats.Message {
	for i := range n {
		es.c.Observe(trafficstats.Response{Site: site, Path: fmt.Sprintf("/p%d", i%3), Referer: "https://r.example/",
			Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i % visitors >> 8), byte(i % visitors), 1}), 1).String(),
			Status: []int{200, 304}[i%2], Bytes: 100})
	}
	es.clk.t = end
	return es.c.Take()
}

// traffic is one message of a new edge.
func traffic(t *testing.T, site string, end time.Time, n, visitors int) trafficstats.Message {
	t.Helper()
	return newEdgeStats(end.Add(-time.Minute)).traffic(site, end, n, visitors)
}

func TestAddQueryAndReopen(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	s, err := Open(Config{Dir: dir, NoSync: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	edges := map[string]*edgeStats{"edge-a": newEdgeStats(clk.t), "edge-b": newEdgeStats(clk.t)}
	for range 3 {
		clk.t = clk.t.Add(time.Minute)
		for name, es := range edges {
			if err := s.Add(name, es.traffic("blog", clk.t, 10, 5)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{Dir: dir, NoSync: true, Now: clk.now}) // the series survive a restart
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Query("blog", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.Step != 60 || len(r.Points) != 3 || len(r.Edges) != 2 || len(r.Edges["edge-a"]) != 3 {
		t.Fatalf("points %+v, edges %d", r.Points, len(r.Edges))
	}
	if r.Total.Requests != 60 || r.Total.Bytes != 6000 || r.Total.Status != [4]uint64{30, 30, 0, 0} || r.Total.NotModified != 30 {
		t.Errorf("total %+v", r.Total)
	}
	if len(r.Paths) != 3 || r.Paths[0].N != 24 || len(r.Referrers) != 1 || r.Referrers[0].N != 60 {
		t.Errorf("paths %+v referrers %+v", r.Paths, r.Referrers)
	}
	if len(r.Countries) != 2 || r.Countries[0].N+r.Countries[1].N != 60 {
		t.Errorf("countries %+v", r.Countries)
	}
	// Each edge keys its visitors apart: 5 addresses at each of 2 edges are 10 in the union.
	if r.Visitors != 10 {
		t.Errorf("visitors %d, want 10", r.Visitors)
	}
	if long, err := s.Query("blog", 48*time.Hour); err != nil || long.Step != 3600 || long.Total.Requests != 60 {
		t.Errorf("a 48 h query: step %d, total %+v, %v", long.Step, long.Total, err)
	}
	if none, err := s.Query("docs", time.Hour); err != nil || none.Total.Requests != 0 {
		t.Errorf("a site without traffic: %+v %v", none, err)
	}
	if _, err := s.Query("blog", 100*24*time.Hour); err == nil {
		t.Error("a query past MaxSince accepted")
	}
}

// TestPrune: minute points go after MinuteRetention, hours and days after HourRetention.
func TestPrune(t *testing.T) {
	clk := &clock{time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(Config{Dir: t.TempDir(), NoSync: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clk.t = clk.t.Add(time.Minute)
	if err := s.Add("e", traffic(t, "blog", clk.t, 4, 2)); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(MinuteRetention + time.Hour)
	if err := s.Add("e", traffic(t, "blog", clk.t, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Query("blog", 24*time.Hour); r.Total.Requests != 1 || len(r.Points) != 1 {
		t.Errorf("minutes after a day: %+v", r.Points)
	}
	if r, _ := s.Query("blog", 30*24*time.Hour); r.Total.Requests != 5 {
		t.Errorf("hours after a day: %+v", r.Total)
	}
	clk.t = clk.t.Add(HourRetention)
	if err := s.Add("e", traffic(t, "blog", clk.t, 2, 1)); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Query("blog", MaxSince); r.Total.Requests != 2 || len(r.Paths) == 0 || r.Paths[0].N > 2 {
		t.Errorf("after 90 days: total %+v, paths %+v", r.Total, r.Paths)
	}
}

// TestMeasureDisk fills the store as 100 sites at one edge would over 90 days (an hour point
// and a day each, a day's minutes for the last day) and reports the file's size. It takes
// minutes: DT_MEASURE=1 runs it.
func TestMeasureDisk(t *testing.T) {
	if os.Getenv("DT_MEASURE") == "" {
		t.Skip("a measurement: DT_MEASURE=1 runs it")
	}
	dir := t.TempDir()
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{start}
	s, err := Open(Config{Dir: dir, NoSync: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	const sites, days = 100, 90
	msgs := make([]trafficstats.Message, sites)
	for i := range msgs {
		msgs[i] = traffic(t, fmt.Sprintf("site-%d", i), start.Add(time.Minute), 200, 150)
	}
	step := time.Hour
	for at := start.Add(step); at.Before(start.Add(days * 24 * time.Hour)); at = at.Add(step) {
		if step == time.Hour && at.After(start.Add((days-1)*24*time.Hour)) {
			step = time.Minute // the last day at minute resolution, as the store keeps it
		}
		clk.t = at
		var m trafficstats.Message
		for i := range msgs {
			e := msgs[i].Sites[0]
			e.Start, e.End, e.Day = at.Add(-time.Minute).UnixMilli(), at.UnixMilli(), at.Format(time.DateOnly)
			m.Sites = append(m.Sites, e)
			if len(m.Sites) == trafficstats.MaxSites || i == len(msgs)-1 {
				if err := s.Add("edge-1", m); err != nil {
					t.Fatal(err)
				}
				m.Sites = nil
			}
		}
	}
	r, err := s.Query("site-7", MaxSince)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(days*24-1+23*60) * 200; math.Abs(float64(r.Total.Requests)-float64(want)) > float64(want)/50 {
		t.Errorf("site-7 over 90 days: %d requests, want about %d", r.Total.Requests, want)
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, "traffic.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sites, one edge, %d days: traffic.db is %.1f MiB (%d hour points and %d minute points a site)",
		sites, days, float64(fi.Size())/(1<<20), days*24, 24*60)
}

// TestMaxSites: past MaxSites sites, entries of new sites are dropped and counted, also after a
// restart; kept sites still add up.
func TestMaxSites(t *testing.T) {
	const MaxSites = 50
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, NoSync: true, Now: clk.now, MaxSites: MaxSites})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entry := func(i int) trafficstats.Site {
		return trafficstats.Site{Site: fmt.Sprintf("s%d", i), Start: clk.t.Add(-time.Minute).UnixMilli(), End: clk.t.UnixMilli(),
			Requests: 1, Status: [4]uint64{1}, Day: "2026-12-07"}
	}
	var m trafficstats.Message
	for i := range MaxSites + 2 {
		m.Sites = append(m.Sites, entry(i))
		if len(m.Sites) == 20 || i == MaxSites+1 {
			if err := s.Add("e", m); err != nil {
				t.Fatal(err)
			}
			m.Sites = nil
		}
	}
	s.Close()
	if s, err = Open(Config{Dir: dir, NoSync: true, Now: clk.now, MaxSites: MaxSites}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("e", trafficstats.Message{Sites: []trafficstats.Site{entry(0), entry(MaxSites + 5)}}); err != nil {
		t.Fatal(err)
	}
	sites, err := s.Sites()
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != MaxSites || s.Dropped() != 1 {
		t.Errorf("%d sites kept, %d entries dropped after the restart; want %d and 1", len(sites), s.Dropped(), MaxSites)
	}
	if r, _ := s.Query("s0", time.Hour); r.Total.Requests != 2 {
		t.Errorf("a kept site: %d requests, want 2", r.Total.Requests)
	}
}
