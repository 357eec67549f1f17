package proc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/mmdb"
	"github.com/dt-cdn/dt/trafficseries"
	"github.com/dt-cdn/dt/trafficstats"
)

// trafficCountries places the test's visitors: the dialers of NL's clients bind addresses in
// 127.0.1.0/24, JP's in 127.0.2.0/24.
var trafficCountries = map[string]byte{"NL": 1, "JP": 2}

// trafficClientsPerCountry is how many addresses of each country visit each edge; every edge
// gets addresses of its own, so each visitor is counted by one edge's sketch only.
const trafficClientsPerCountry = 2

// TestTrafficStatsOverProcesses sends traffic of known shape to two sites over three edge
// processes (HTTP/1.1 and HTTP/2; 200, 304 and 404; clients from two countries by a generated
// GeoIP database) and checks that the redirector's /api/stats and dt stats --json report what
// was sent: requests, bytes, status classes, 304s, top paths and countries exactly, per site and
// per edge, and unique visitors within the sketch's error.
func TestTrafficStatsOverProcesses(t *testing.T) {
	skipShort(t)
	t.Parallel()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var nets []mmdb.Net
	for cc, b := range trafficCountries {
		nets = append(nets, mmdb.Net{CIDR: fmt.Sprintf("127.0.%d.0/24", b), Country: cc, Continent: "EU", Lat: 52.37, Lon: 4.89, Radius: 20})
	}
	db := mmdb.LoopbackNetsFile(t, nets)
	n := newNetwork(t, loopbackUnlimited...)
	var edges []*edgeProc
	for i, loc := range []string{"52.37,4.90", "40.71,-74.01", "35.68,139.69"} {
		edges = append(edges, n.startEdge(t, fmt.Sprintf("edge-%d", i+1), loc, false,
			"--https", "127.0.0.1:0", "--geoip", db, "--stats-interval", "500ms"))
	}
	n.startRedirector(t)
	sites := []siteSpec{makeSiteSpec("blog", []string{"blog.test"}, 1, false), makeSiteSpec("docs", []string{"docs.test"}, 1, false)}
	for _, s := range sites {
		n.addSite(t, s)
		n.publishSite(t, s, s.name+"-1", edges...)
	}
	t.Logf("network up, two sites published in %s", time.Since(began).Round(time.Millisecond))

	for _, s := range sites {
		sent := sendTraffic(ctx, t, edges, s)
		got := n.waitStats(ctx, t, s.name, sent.total.Requests)
		sent.check(t, edges, got)
		var cli trafficseries.Result
		out := n.dtCommand(t, "stats", "--admin", n.redAt.Admin, "--site", s.name, "--since", "1h", "--json").stdout
		if err := json.Unmarshal([]byte(out), &cli); err != nil {
			t.Fatalf("dt stats --json: %v\n%s", err, out)
		}
		sent.check(t, edges, cli)
	}
	t.Logf("TestTrafficStatsOverProcesses took %s", time.Since(began).Round(time.Millisecond))
}

// sentTraffic is what the test sent to one site, as the statistics should count it.
type sentTraffic struct {
	total     trafficseries.Point
	edges     map[string]trafficseries.Point // by the edge's node id
	paths     map[string]uint64
	countries map[string]uint64
	visitors  int
}

// sendTraffic sends the site's traffic: from each edge's own addresses of each country, over
// HTTP/1.1 and HTTP/2, the index three times, the page once and then once more with its ETag
// (304), and a missing page (404).
func sendTraffic(ctx context.Context, t *testing.T, edges []*edgeProc, s siteSpec) sentTraffic {
	t.Helper()
	st := sentTraffic{edges: map[string]trafficseries.Point{}, paths: map[string]uint64{}, countries: map[string]uint64{}}
	for i, e := range edges {
		for cc, b := range trafficCountries {
			for j := range trafficClientsPerCountry {
				from := net.IPv4(127, 0, b, byte(10*(i+1)+j))
				st.visitors++
				for _, proto := range []int{1, 2} {
					c, base := clientFrom(from, s.hosts[0], proto, e)
					p, err := visitSite(ctx, c, base, s.hosts[0], proto, st.paths)
					c.CloseIdleConnections()
					if err != nil {
						t.Fatalf("%s from %s over HTTP/%d: %v", e.name, from, proto, err)
					}
					addPoint(&st.total, p)
					ep := st.edges[e.info().ID]
					addPoint(&ep, p)
					st.edges[e.info().ID] = ep
					st.countries[cc] += p.Requests
				}
			}
		}
	}
	return st
}

// clientFrom returns a client whose connections come from the address from, and the edge's URL
// for proto: its HTTP listener for HTTP/1.1, its HTTPS one (SNI host) for HTTP/2.
func clientFrom(from net.IP, host string, proto int, e *edgeProc) (*http.Client, string) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true}
	base := e.httpURL()
	if proto == 2 {
		tr.TLSClientConfig = &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"h2"}}
		tr.ForceAttemptHTTP2 = true
		base = "https://" + e.info().HTTPS
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base
}

// visitSite makes one visitor's requests and returns what they add up to, counting the paths.
func visitSite(ctx context.Context, c *http.Client, base, host string, proto int, paths map[string]uint64) (trafficseries.Point, error) {
	var p trafficseries.Point
	etag := ""
	for _, want := range []struct {
		path   string
		status int
	}{{"/index.html", 200}, {"/index.html", 200}, {"/index.html", 200}, {"/page.html", 200}, {"/page.html", 304}, {"/missing.html", 404}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+want.path, nil)
		if err != nil {
			return p, err
		}
		req.Host = host
		req.Header.Set("Accept-Encoding", "identity")
		if want.status == 304 {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := c.Do(req)
		if err != nil {
			return p, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return p, err
		}
		if resp.StatusCode != want.status || resp.ProtoMajor != proto {
			return p, fmt.Errorf("GET %s: %d over HTTP/%d, want %d over HTTP/%d", want.path, resp.StatusCode, resp.ProtoMajor, want.status, proto)
		}
		etag = resp.Header.Get("ETag")
		p.Requests++
		p.Bytes += uint64(len(body))
		p.Status[want.status/100-2]++
		if want.status == 304 {
			p.NotModified++
		}
		paths[want.path]++
	}
	return p, nil
}

// waitStats waits until the redirector's series of the site count requests requests, and
// returns it; more than were sent fails at once.
func (n *network) waitStats(ctx context.Context, t *testing.T, name string, requests uint64) trafficseries.Result {
	t.Helper()
	var res trafficseries.Result
	took := waitFor(t, time.Minute, name+"'s statistics at the redirector", func() error {
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		res = trafficseries.Result{}
		if err := n.getJSON("http://"+n.redAt.Admin+"/api/stats?site="+name+"&since=1h", &res); err != nil {
			return err
		}
		if res.Total.Requests > requests {
			t.Fatalf("%s: %d requests counted, %d sent", name, res.Total.Requests, requests)
		}
		if res.Total.Requests < requests {
			return fmt.Errorf("%d of %d requests counted", res.Total.Requests, requests)
		}
		return nil
	})
	t.Logf("%s: %d requests counted at the redirector %s after the last was sent", name, requests, took.Round(time.Millisecond))
	return res
}

// check compares the series with what was sent.
func (st sentTraffic) check(t *testing.T, edges []*edgeProc, res trafficseries.Result) {
	t.Helper()
	total := res.Total
	total.Time = 0
	if total != st.total {
		t.Errorf("%s: total %+v, sent %+v", res.Site, total, st.total)
	}
	for _, e := range edges {
		var sum trafficseries.Point
		for _, p := range res.Edges[e.info().ID] {
			p.Time = 0
			addPoint(&sum, p)
		}
		if want := st.edges[e.info().ID]; sum != want {
			t.Errorf("%s at %s: %+v, sent %+v", res.Site, e.name, sum, want)
		}
	}
	if got := countsOf(res.Paths); !reflect.DeepEqual(got, st.paths) {
		t.Errorf("%s: paths %v, sent %v", res.Site, got, st.paths)
	}
	if got := countsOf(res.Countries); !reflect.DeepEqual(got, st.countries) {
		t.Errorf("%s: countries %v, sent %v", res.Site, got, st.countries)
	}
	// A few visitors stay in the sketch's sparse form, where the estimate is all but exact; the
	// bound allowed is three standard errors of the dense form, and at least one visitor.
	bound := max(1, 3*1.04/math.Sqrt(1<<trafficstats.SketchPrecision)*float64(st.visitors))
	if d := math.Abs(float64(res.Visitors) - float64(st.visitors)); d > bound {
		t.Errorf("%s: %d unique visitors estimated, %d sent (bound %.1f)", res.Site, res.Visitors, st.visitors, bound)
	}
}

// countsOf maps counts by key, refusing an inexact one (its error bound above zero).
func countsOf(cs []trafficstats.Count) map[string]uint64 {
	m := map[string]uint64{}
	for _, c := range cs {
		m[c.Key] = c.N
		if c.Err != 0 {
			m[c.Key+" (inexact)"] = c.Err
		}
	}
	return m
}

// addPoint adds q's counts to p.
func addPoint(p *trafficseries.Point, q trafficseries.Point) {
	p.Requests += q.Requests
	p.Bytes += q.Bytes
	for i := range p.Status {
		p.Status[i] += q.Status[i]
	}
	p.NotModified += q.NotModified
}
