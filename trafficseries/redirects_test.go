package trafficseries

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestRedirectsQueryAndReopen: redirects counted from many goroutines, flushed in two minutes,
// come back per edge and reason and per edge and minute, in an hour's range too, after the
// store is reopened; and are pruned with the minute points.
func TestRedirectsQueryAndReopen(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 30, 0, time.UTC)}
	s, err := Open(Config{Dir: dir, NoSync: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	c := NewRedirectCounter()
	send := func(edge, reason string, n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { c.Count("blog", edge, reason) })
		}
		wg.Wait()
	}
	send("edge-a", "same country", 7)
	send("edge-b", "fallback", 2)
	c.Count("docs", "edge-a", "elsewhere")
	if err := c.Flush(s, clk.t); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(time.Minute)
	send("edge-a", "same country", 3)
	if err := c.Flush(s, clk.t); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(Config{Dir: dir, NoSync: true, Now: clk.now}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	minute := clk.t.Truncate(time.Minute).Unix()
	wantTotals := []Redirects{{Edge: "edge-a", Reason: "same country", N: 10}, {Edge: "edge-b", Reason: "fallback", N: 2}}
	for _, since := range []time.Duration{time.Hour, 48 * time.Hour} {
		r, err := s.Query("blog", since)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Redirects, wantTotals) {
			t.Errorf("since %v: redirects %+v, want %+v", since, r.Redirects, wantTotals)
		}
		want := map[string][]RedirectPoint{"edge-a": {{minute - 60, 7}, {minute, 3}}, "edge-b": {{minute - 60, 2}}}
		if since > 24*time.Hour {
			hour := clk.t.Truncate(time.Hour).Unix()
			want = map[string][]RedirectPoint{"edge-a": {{hour, 10}}, "edge-b": {{hour, 2}}}
		}
		if !reflect.DeepEqual(r.RedirectEdges, want) {
			t.Errorf("since %v: redirect points %+v, want %+v", since, r.RedirectEdges, want)
		}
	}
	if r, _ := s.Query("docs", time.Hour); len(r.Redirects) != 1 || r.Redirects[0].N != 1 {
		t.Errorf("docs: %+v", r.Redirects)
	}
	clk.t = clk.t.Add(MinuteRetention + PruneEvery)
	if err := s.Add("edge-a", traffic(t, "blog", clk.t, 1, 1)); err != nil { // prunes
		t.Fatal(err)
	}
	if r, _ := s.Query("blog", time.Hour); len(r.Redirects) != 0 {
		t.Errorf("minute redirects past MinuteRetention kept: %+v", r.Redirects)
	}
	if r, _ := s.Query("blog", 48*time.Hour); len(r.Redirects) != 2 {
		t.Errorf("hour redirects within HourRetention: %+v", r.Redirects)
	}
}

// TestRedirectCounterBound: past MaxPendingRedirects counts between flushes, redirects of new
// keys are dropped and counted; those of held keys still count.
func TestRedirectCounterBound(t *testing.T) {
	c := NewRedirectCounter()
	for i := range MaxPendingRedirects + 5 {
		c.Count(fmt.Sprintf("site-%d", i), "edge", "same country")
	}
	c.Count("site-0", "edge", "same country")
	if c.Dropped() != 5 || len(c.pending) != MaxPendingRedirects || c.pending[RedirectKey{"site-0", "edge", "same country"}] != 2 {
		t.Errorf("dropped %d, %d held", c.Dropped(), len(c.pending))
	}
	s, err := Open(Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := c.Flush(s, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.Count("site-x", "edge", "same country")
	if c.Dropped() != 5 || len(c.pending) != 1 {
		t.Errorf("after a flush: dropped %d, %d held", c.Dropped(), len(c.pending))
	}
}

// TestRedirectsMaxSites: redirects of sites past Config.MaxSites are dropped and counted, as the
// traffic of such sites is; the sites kept are counted again when the store is reopened.
func TestRedirectsMaxSites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, NoSync: true, MaxSites: 1})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if err := s.AddRedirects(at, map[RedirectKey]uint64{{"blog", "edge", "same country"}: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRedirects(at, map[RedirectKey]uint64{{"docs", "edge", "same country"}: 1, {"blog", "edge", "elsewhere"}: 1}); err != nil {
		t.Fatal(err)
	}
	if s.Dropped() != 1 {
		t.Errorf("dropped %d, want 1 (docs)", s.Dropped())
	}
	s.Close()
	if s, err = Open(Config{Dir: dir, NoSync: true, MaxSites: 1}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddRedirects(at, map[RedirectKey]uint64{{"corp", "edge", "same country"}: 1}); err != nil {
		t.Fatal(err)
	}
	if s.Dropped() != 1 {
		t.Errorf("after reopening: dropped %d, want 1 (corp)", s.Dropped())
	}
	for site, want := range map[string]int{"blog": 2, "docs": 0, "corp": 0} {
		if r, _ := s.Query(site, time.Hour); len(r.Redirects) != want {
			t.Errorf("%s: redirects %+v, want %d counts", site, r.Redirects, want)
		}
	}
}
