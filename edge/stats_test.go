package edge

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/mmdb"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/trafficstats"
)

// TestEdgeSendsStatistics runs an edge with statistics every 200 ms and a GeoIP database that
// places 127.0.0.0/8 in the Netherlands: the responses it served over HTTP/1.1 and HTTP/2 arrive
// at a peer as stats messages whose counts add up to what was sent, including the last ones,
// sent when the edge stops.
func TestEdgeSendsStatistics(t *testing.T) {
	var (
		mu  sync.Mutex
		got []trafficstats.Site
		bad []error
	)
	collect := func(ev dt.Event) {
		m, err := trafficstats.Decode(ev.Object)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			got = append(got, m.Sites...)
		case !errors.Is(err, trafficstats.ErrNotStats):
			bad = append(bad, err)
		}
	}
	db := mmdb.LoopbackFile(t, "NL", "EU")
	reg := prometheus.NewRegistry()
	ae := startEdgeWith(t, func(c *Config) {
		c.StatsInterval = 200 * time.Millisecond
		c.GeoIP = db
		c.Host.Registry = reg
	}, collect)
	_, etag := ae.publishCompressible(t)
	requests := []request{
		{path: "/", encoding: "gzip", status: 200},
		{path: "/", encoding: "identity", ifNoneMatch: etag, status: 304},
		{path: "/missing.png", encoding: "identity", status: 404},
		{h2: true, path: "/?q=1", encoding: "identity", status: 200},
		{h2: true, path: "/missing.png", encoding: "identity", status: 404},
	}
	for i, rq := range requests {
		ae.do(t, rq, i)
	}
	if err := ae.stop(); err != nil {
		t.Fatal(err)
	}
	var total trafficstats.Site
	visitors, _ := hyperloglog.NewSketch(trafficstats.SketchPrecision, true)
	paths := map[string]uint64{}
	wait.For(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		total = trafficstats.Site{}
		clear(paths)
		for _, s := range got {
			if s.Site != site.DefaultSite {
				return fmt.Errorf("an entry of site %q", s.Site)
			}
			total.Requests += s.Requests
			total.Bytes += s.Bytes
			total.NotModified += s.NotModified
			for i := range s.Status {
				total.Status[i] += s.Status[i]
			}
			for _, c := range s.Paths {
				paths[c.Key] += c.N
			}
			total.Countries = append(total.Countries, s.Countries...)
			sk, err := s.Sketch()
			if err != nil {
				return err
			}
			visitors.Merge(sk)
		}
		if total.Requests != uint64(len(requests)) {
			return fmt.Errorf("%d requests counted in %d entries, want %d", total.Requests, len(got), len(requests))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("invalid stats messages: %v", bad)
	}
	if total.Status != [4]uint64{2, 1, 2, 0} || total.NotModified != 1 || total.Bytes == 0 {
		t.Errorf("counts %+v", total)
	}
	if paths["/"] != 3 || paths["/missing.png"] != 2 {
		t.Errorf("paths %v, want / 3 times and /missing.png twice (queries left out)", paths)
	}
	if !slices.ContainsFunc(total.Countries, func(c trafficstats.Count) bool { return c.Key == "NL" }) ||
		slices.ContainsFunc(total.Countries, func(c trafficstats.Count) bool { return c.Key != "NL" }) {
		t.Errorf("countries %v, want only NL", total.Countries)
	}
	if n := visitors.Estimate(); n != 1 {
		t.Errorf("%d unique visitors, want the one loopback address", n)
	}
	if sent := promtest.Value(t, reg, "dt_edge_stats_messages_total"); sent < 1 || promtest.Value(t, reg, "dt_edge_stats_dropped_total") != 0 {
		t.Errorf("dt_edge_stats_messages_total = %v, dt_edge_stats_dropped_total = %v", sent, promtest.Value(t, reg, "dt_edge_stats_dropped_total"))
	}
}
