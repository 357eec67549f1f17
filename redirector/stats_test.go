package redirector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/trafficseries"
	"github.com/dt-cdn/dt/trafficstats"
)

// TestStatsReceiver feeds the receiver an edge's statistics message as the node delivers it:
// /api/stats returns the site's series and the per-site metrics count it; a malformed message
// and other messages change nothing.
func TestStatsReceiver(t *testing.T) {
	store, err := trafficseries.Open(trafficseries.Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	redirects := trafficseries.NewRedirectCounter()
	s, err := newStatsReceiver(store, redirects, time.Minute, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := trafficstats.New(trafficstats.Config{})
	for i, status := range []int{200, 200, 304, 404} {
		c.Observe(trafficstats.Response{Site: "blog", Path: "/", Remote: "192.0.2.1:1", Status: status, Bytes: int64(10 * i)})
	}
	b, err := trafficstats.Encode(c.Take())
	if err != nil {
		t.Fatal(err)
	}
	edge := dt.NodeID{1, 2, 3}
	s.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: edge, Object: b})
	s.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: edge, Object: []byte(`{"type":"stats","v":1,"sites":[{"site":"BAD"}]}`)})
	s.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: edge, Object: []byte(`{"type":"heartbeat","v":1}`)})

	edgeB := dt.NodeID{4, 5, 6}
	for range 3 {
		redirects.Count("blog", edge.String(), "same country")
	}
	redirects.Count("blog", edgeB.String(), "fallback")
	s.flushRedirectsOnce()

	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/stats?site=blog&since=1h")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res trafficseries.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/stats: %d %v", resp.StatusCode, err)
	}
	if res.Total.Requests != 4 || res.Total.Bytes != 60 || res.Total.Status != [4]uint64{2, 1, 1, 0} || len(res.Edges[edge.String()]) != 1 || res.Visitors != 1 {
		t.Errorf("result %+v", res)
	}
	wantRedirects := []trafficseries.Redirects{{Edge: edge.String(), Reason: "same country", N: 3}, {Edge: edgeB.String(), Reason: "fallback", N: 1}}
	if !reflect.DeepEqual(res.Redirects, wantRedirects) || len(res.RedirectEdges[edge.String()]) != 1 || res.RedirectEdges[edgeB.String()][0].N != 1 {
		t.Errorf("redirects %+v by edge %+v, want %+v", res.Redirects, res.RedirectEdges, wantRedirects)
	}
	if got := promtest.Value(t, reg, "dt_redirector_redirects_unkept_total"); got != 0 {
		t.Errorf("dt_redirector_redirects_unkept_total = %v", got)
	}
	if got := promtest.Value(t, reg, "dt_redirector_site_requests_total", "site=blog"); got != 4 {
		t.Errorf("dt_redirector_site_requests_total{site=blog} = %v", got)
	}
	if got := promtest.Value(t, reg, "dt_redirector_site_responses_total", "site=blog", "class=4xx"); got != 1 {
		t.Errorf("dt_redirector_site_responses_total{site=blog,class=4xx} = %v", got)
	}
	for _, q := range []string{"?site=Not_A_Site", "?site=blog&since=forever", "?site=blog&since=2400h"} {
		resp, err := http.Get(srv.URL + "/api/stats" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /api/stats%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
