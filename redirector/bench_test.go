package redirector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// benchClients are addresses spread over the test database's networks (and one it lacks).
var benchClients = []string{"145.100.1.1", "2001:610::1", "85.88.7.7", "81.240.3.3", "24.1.2.3",
	"2600:1f00::5", "126.1.1.1", "177.1.1.1", "41.0.9.9", "90.0.1.1", "8.8.8.8"}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark measures the handler.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchHandler(b testing.TB, trusted []netip.Prefix) *Handler {
	edges := fleet.Edges() // 16 edges, 5 eligible: one snapshot, as a cached tracker view would be
	h, err := NewHandler(HandlerConfig{
		Edges:          func() ([]heartbeat.Edge, string) { return edges, fleet.Current },
		Geo:            fleet.GeoDB(b),
		TrustedProxies: trusted,
		Select:         edgeset.SelectOptions{Weights: fleet.Weights()},
		Now:            func() time.Time { return fleet.Now },
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// benchSitesHandler is benchHandler with 100 sites of one host each, served by 20 edges across
// the fleet's cities, edge i lagging for site i, every edge knowing every site's current deploy.
func benchSitesHandler(b testing.TB, trusted []netip.Prefix) *Handler {
	places := []*heartbeat.Location{fleet.Amsterdam, fleet.Frankfurt, fleet.NewYork, fleet.Tokyo, fleet.SaoPaulo, fleet.London, fleet.Sydney}
	var list []edgeset.Site
	for i := range benchSites {
		list = append(list, edgeset.Site{Name: fmt.Sprintf("site%03d", i), Hosts: []string{fmt.Sprintf("s%d.example.com", i)},
			Current: fmt.Sprintf("deploy-%d", i)})
	}
	v := &edgeset.View{Sites: edgeset.NewSites(list), Reports: map[string]edgeset.SiteReport{}}
	for i := range 20 {
		node := fmt.Sprintf("edge%02d", i)
		v.Edges = append(v.Edges, fleet.Live(node, places[i%len(places)]))
		v.Reports[node] = edgeset.SiteReport{Reports: true, Sites: benchSites, Lagging: []edgeset.LaggingSite{{Site: list[i].Name}},
			Digest: fmt.Sprintf("%016x", i), CurrentDigest: v.Sites.CurrentsDigest()}
	}
	h, err := NewHandler(HandlerConfig{
		Edges:          func() ([]heartbeat.Edge, string) { return v.Edges, "" },
		Sites:          func() *edgeset.View { return v },
		Geo:            fleet.GeoDB(b),
		TrustedProxies: trusted,
		Now:            func() time.Time { return fleet.Now },
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// benchSites is how many sites benchSitesHandler's network has.
const benchSites = 100

func benchRequests() []*http.Request {
	reqs := make([]*http.Request, len(benchClients))
	for i, ip := range benchClients {
		reqs[i] = httptest.NewRequest("GET", "/assets/app.js?v=3", nil)
		reqs[i].RemoteAddr = "10.0.0.1:40000"
		reqs[i].Header.Set("X-Forwarded-For", ip)
	}
	return reqs
}

// BenchmarkHandlerRedirect measures one redirect with a GeoIP lookup and a trusted
// X-Forwarded-For, on all cores; redirects/s is the throughput across them.
func BenchmarkHandlerRedirect(b *testing.B) {
	h := benchHandler(b, prefixes("10.0.0.0/8"))
	reqs := benchRequests()
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		i := 0
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%len(reqs)])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "redirects/s")
}

// BenchmarkHandlerRedirect100Sites is BenchmarkHandlerRedirect on a network of 100 sites and 20
// edges: the Host picks the site, then the choice is among the edges serving it.
func BenchmarkHandlerRedirect100Sites(b *testing.B) {
	h := benchSitesHandler(b, prefixes("10.0.0.0/8"))
	reqs := benchRequests()
	for i, r := range reqs {
		r.Host = fmt.Sprintf("s%d.example.com", i*7%benchSites)
	}
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		i := 0
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%len(reqs)])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "redirects/s")
}

// TestWrk loads the handler over HTTP on 127.0.0.1 with wrk, when DT_WRK=1 and wrk is installed:
// a figure to compare with other redirectors, not a check.
func TestWrk(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if os.Getenv("DT_WRK") != "1" || err != nil {
		t.Skip("set DT_WRK=1 with wrk installed to run")
	}
	// wrk connects from loopback, which the database does not know: the second run trusts
	// loopback as a proxy and names a located client, so each request does a successful lookup.
	// The third run is on a network of 100 sites, for one of them by its Host.
	for _, run := range []struct{ trusted, sites bool }{{false, false}, {true, false}, {true, true}} {
		trusted := run.trusted
		args := []string{"-t2", "-c64", "-d5s", "--latency"}
		var proxies []netip.Prefix
		if trusted {
			proxies = prefixes("127.0.0.0/8")
			args = append(args, "-H", "X-Forwarded-For: 145.100.1.1")
		}
		handler := benchHandler(t, proxies)
		if run.sites {
			handler = benchSitesHandler(t, proxies)
			args = append(args, "-H", "Host: s42.example.com")
		}
		srv := httptest.NewServer(handler)
		defer srv.Close()
		out, err := exec.CommandContext(t.Context(), wrk, append(args, srv.URL+"/assets/app.js")...).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk: %v\n%s", err, out)
		}
		fmt.Printf("wrk (geo lookup via trusted XFF: %v, %d sites):\n%s\n", trusted, map[bool]int{false: 1, true: benchSites}[run.sites], out)
	}
}
