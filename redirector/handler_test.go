package redirector

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// countMetrics records the Handler's counts.
type countMetrics struct {
	mu          sync.Mutex
	redirects   map[string]int // "node code"
	geoMisses   int
	unavailable int
}

func (m *countMetrics) Redirected(node string, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.redirects == nil {
		m.redirects = map[string]int{}
	}
	m.redirects[node+" "+http.StatusText(code)]++
}

func (m *countMetrics) GeoMiss() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.geoMisses++
}

func (m *countMetrics) Unavailable() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unavailable++
}

// edgeList is a settable edge list for handlers under test.
type edgeList struct {
	mu    sync.Mutex
	edges []heartbeat.Edge
}

func (f *edgeList) set(edges []heartbeat.Edge) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.edges = edges
}

func (f *edgeList) get() ([]heartbeat.Edge, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.edges, fleet.Current
}

// testServer runs a Handler built from cfg (with the test fleet, database and clock filled in
// where cfg leaves them empty) on 127.0.0.1, with its explain endpoint on /explain of a second
// server.
type testServer struct {
	fleet   *edgeList
	metrics *countMetrics
	public  *httptest.Server
	admin   *httptest.Server
}

func newTestServer(t *testing.T, cfg HandlerConfig) *testServer {
	t.Helper()
	ts := &testServer{fleet: &edgeList{edges: fleet.Edges()}, metrics: &countMetrics{}}
	if cfg.Edges == nil {
		cfg.Edges = ts.fleet.get
	}
	if cfg.Geo == nil {
		cfg.Geo = fleet.GeoDB(t)
	}
	if cfg.Select.Weights == nil {
		cfg.Select.Weights = fleet.Weights()
	}
	cfg.Metrics = ts.metrics
	cfg.Now = func() time.Time { return fleet.Now }
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.public = httptest.NewServer(h)
	t.Cleanup(ts.public.Close)
	mux := http.NewServeMux()
	mux.Handle("/explain", h.Explain())
	ts.admin = httptest.NewServer(mux)
	t.Cleanup(ts.admin.Close)
	return ts
}

// noFollow is a client that returns redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func xff(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

var loopback = prefixes("127.0.0.0/8", "::1/128")

func TestHandlerRedirects(t *testing.T) {
	ts := newTestServer(t, HandlerConfig{TrustedProxies: loopback})
	tests := []struct {
		name, method, target, client, want string
	}{
		{"root", "GET", "/", "145.100.1.1", "https://ams.example.net/"},
		{"path and query", "GET", "/docs/a%20b.html?x=1&y=%2F", "145.100.1.1", "https://ams.example.net/docs/a%20b.html?x=1&y=%2F"},
		{"escaped slash kept", "GET", "/a%2Fb", "145.100.1.1", "https://ams.example.net/a%2Fb"},
		{"double slash stays a path", "GET", "//evil.example/x", "145.100.1.1", "https://ams.example.net//evil.example/x"},
		{"HEAD", "HEAD", "/index.html", "24.1.2.3", "https://nyc.example.net/index.html"},
		{"POST", "POST", "/form", "126.1.1.1", "https://tyo.example.net/form"},
		{"plain-http edge with a trailing slash", "GET", "/p", "177.1.1.1", "http://gru.example.net/p"},
		{"IPv6 client", "GET", "/", "2a01:4f8::7", "https://ams.example.net/"},
		{"well-known but not ACME", "GET", "/.well-known/security.txt", "145.100.1.1", "https://ams.example.net/.well-known/security.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, ts.public.URL+tt.target, xff(tt.client))
			if resp.StatusCode != http.StatusMovedPermanently {
				t.Fatalf("status %d, want 301", resp.StatusCode)
			}
			if got := resp.Header.Get("Location"); got != tt.want {
				t.Errorf("Location %q, want %q", got, tt.want)
			}
			if got := resp.Header.Get("Cache-Control"); got != "private, no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			if resp.Header.Get("Vary") != "" || body != "" {
				t.Errorf("Vary %q, body %q", resp.Header.Get("Vary"), body)
			}
		})
	}
	ts.metrics.mu.Lock()
	defer ts.metrics.mu.Unlock()
	if got := ts.metrics.redirects["ams "+http.StatusText(http.StatusMovedPermanently)]; got != 6 {
		t.Errorf("metrics: %d redirects to ams, want 6 (%v)", got, ts.metrics.redirects)
	}
}

func TestHandlerCodes(t *testing.T) {
	for _, code := range []int{301, 302, 307, 308} {
		ts := newTestServer(t, HandlerConfig{Code: code, TrustedProxies: loopback})
		resp, _ := do(t, "GET", ts.public.URL+"/x", xff("145.100.1.1"))
		if resp.StatusCode != code || resp.Header.Get("Cache-Control") != "private, no-store" {
			t.Errorf("code %d: got %d, Cache-Control %q", code, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
}

func TestNewHandlerValidates(t *testing.T) {
	edges := func() ([]heartbeat.Edge, string) { return nil, "" }
	for name, cfg := range map[string]HandlerConfig{
		"no edges":          {},
		"code 200":          {Edges: edges, Code: 200},
		"code 303":          {Edges: edges, Code: 303},
		"negative weight":   {Edges: edges, Select: edgeset.SelectOptions{Weights: map[string]float64{"a": -1}}},
		"NaN weight":        {Edges: edges, Select: edgeset.SelectOptions{Weights: map[string]float64{"a": math.NaN()}}},
		"invalid prefix":    {Edges: edges, TrustedProxies: []netip.Prefix{{}}},
		"negative factor":   {Edges: edges, Select: edgeset.SelectOptions{NearFactor: -1}},
		"default off Earth": {Edges: edges, Select: edgeset.SelectOptions{DefaultLocation: &geoip.Record{Lat: 91, HasLocation: true}}},
	} {
		if _, err := NewHandler(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := NewHandler(HandlerConfig{Edges: edges}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestHandlerACME(t *testing.T) {
	ts := newTestServer(t, HandlerConfig{TrustedProxies: loopback})
	for _, p := range []string{"/.well-known/acme-challenge/token123", "/.well-known/acme-challenge"} {
		resp, _ := do(t, "GET", ts.public.URL+p, xff("145.100.1.1"))
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" {
			t.Errorf("%s without ACME handler: %d, Location %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	acme := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "key-authz-for-"+strings.TrimPrefix(r.URL.Path, acmePrefix))
	})
	ts = newTestServer(t, HandlerConfig{ACME: acme})
	resp, body := do(t, "GET", ts.public.URL+"/.well-known/acme-challenge/tok", nil)
	if resp.StatusCode != http.StatusOK || body != "key-authz-for-tok" {
		t.Errorf("with ACME handler: %d %q", resp.StatusCode, body)
	}
}

func TestHandlerUnavailable(t *testing.T) {
	ts := newTestServer(t, HandlerConfig{})
	ts.fleet.set([]heartbeat.Edge{
		fleet.With(fleet.Live("ams", fleet.Amsterdam), func(e *heartbeat.Edge) { e.State = heartbeat.Dead }),
		fleet.With(fleet.Live("fra", fleet.Frankfurt), func(e *heartbeat.Edge) { e.Last.Draining = true }),
		fleet.With(fleet.Live("lhr", fleet.London), func(e *heartbeat.Edge) { e.Last.Deploy, e.Last.Synced = "", false }),
	})
	for _, method := range []string{"GET", "HEAD"} {
		resp, body := do(t, method, ts.public.URL+"/page", nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: status %d, Location %q", method, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.Header.Get("Retry-After") != "5" || resp.Header.Get("Cache-Control") != "private, no-store" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s headers: %v", method, resp.Header)
		}
		if (method == "GET") != strings.Contains(body, "try again") {
			t.Errorf("%s body %q", method, body)
		}
	}
	ts.metrics.mu.Lock()
	defer ts.metrics.mu.Unlock()
	if ts.metrics.unavailable != 2 {
		t.Errorf("metrics: %d unavailable, want 2", ts.metrics.unavailable)
	}
}

// explainJSON is the explain response as a client reads it.
type explainJSON struct {
	Client struct {
		IP  string        `json:"ip"`
		Geo *geoip.Record `json:"geo"`
	} `json:"client"`
	Deploy     string `json:"deploy"`
	Basis      string `json:"basis"`
	Code       int    `json:"redirect_code"`
	Chosen     *struct{ Node, URL string }
	Candidates []struct {
		Node       string   `json:"node"`
		Match      string   `json:"match"`
		DistanceKm *float64 `json:"distance_km"`
		Near       bool     `json:"near"`
		Score      float64  `json:"score"`
	} `json:"candidates"`
	Excluded []struct {
		Node   string `json:"node"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	} `json:"excluded"`
}

func explain(t *testing.T, ts *testServer, query string, header http.Header) (int, explainJSON, string) {
	t.Helper()
	resp, body := do(t, "GET", ts.admin.URL+"/explain"+query, header)
	var e explainJSON
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("explain %s: %d %q: %v", query, resp.StatusCode, body, err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, e, body
}

func TestExplain(t *testing.T) {
	ts := newTestServer(t, HandlerConfig{Code: 302})
	code, e, body := explain(t, ts, "?ip=145.100.1.1", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if e.Client.IP != "145.100.1.1" || e.Client.Geo == nil || e.Client.Geo.Country != "NL" || e.Basis != "client location" ||
		e.Deploy != fleet.Current || e.Code != 302 {
		t.Errorf("header fields: %s", body)
	}
	if e.Chosen == nil || e.Chosen.Node != "ams" || e.Chosen.URL != "https://ams.example.net" {
		t.Errorf("chosen %+v", e.Chosen)
	}
	if len(e.Candidates) != 5 || e.Candidates[0].Node != "ams" || e.Candidates[0].Match != "same country" ||
		e.Candidates[0].Score != 1 || !e.Candidates[0].Near || e.Candidates[0].DistanceKm == nil || *e.Candidates[0].DistanceKm > 5 {
		t.Errorf("candidates: %s", body)
	}
	want := fleet.Excluded()
	for _, x := range e.Excluded {
		if x.Reason != want[x.Node].String() {
			t.Errorf("%s excluded for %q, want %q", x.Node, x.Reason, want[x.Node])
		}
		delete(want, x.Node)
	}
	if len(want) != 0 {
		t.Errorf("not listed as excluded: %v", want)
	}
	for _, frag := range []string{`"stale heartbeat"`, `"last heartbeat 1m0s ago"`, `"dead: probe failed"`,
		`"serves deploy \"deploy-1\""`, `"no certificate reported"`} {
		if !strings.Contains(body, frag) {
			t.Errorf("explain lacks %s", frag)
		}
	}

	// IPv6 client: the IPv4-only edge is excluded with the families spelled out.
	_, e, body = explain(t, ts, "?ip=2a01:4f8::7", nil)
	if e.Chosen == nil || e.Chosen.Node != "ams" || !strings.Contains(body, `"client IPv6 only, edge IPv4 only"`) {
		t.Errorf("IPv6 client: %s", body)
	}
	// A client the database does not know.
	if _, e, _ = explain(t, ts, "?ip=8.8.8.8", nil); e.Client.Geo != nil || e.Basis != "no client geo" || e.Candidates[0].DistanceKm != nil {
		t.Errorf("unknown client: %+v", e)
	}
	// Zones dropped, mapped addresses unmapped.
	if _, e, _ = explain(t, ts, "?ip=::ffff:145.100.1.1", nil); e.Client.IP != "145.100.1.1" || e.Chosen.Node != "ams" {
		t.Errorf("mapped address: %+v", e.Client)
	}
}

func TestExplainBadInput(t *testing.T) {
	ts := newTestServer(t, HandlerConfig{})
	for _, q := range []string{"?ip=", "?ip=garbage", "?ip=1.2.3.4.5", "?ip=" + strings.Repeat("1", 200), "?ip=1.2.3.4/24"} {
		code, e, body := explain(t, ts, q, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, `"error"`) || e.Chosen != nil {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	resp, _ := do(t, "POST", ts.admin.URL+"/explain?ip=1.2.3.4", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestExplainProxies checks whose address the handlers believe, through explain without ip.
func TestExplainProxies(t *testing.T) {
	trusting := newTestServer(t, HandlerConfig{TrustedProxies: loopback})
	untrusting := newTestServer(t, HandlerConfig{TrustedProxies: prefixes("10.0.0.0/8")})
	tests := []struct {
		name   string
		ts     *testServer
		header http.Header
		want   string
	}{
		{"no header", trusting, nil, "127.0.0.1"},
		{"trusted XFF", trusting, xff("203.0.113.9, 145.100.1.1"), "145.100.1.1"},
		{"trusted Forwarded", trusting, http.Header{"Forwarded": {`for="[2001:610::1]:443"`}}, "2001:610::1"},
		{"trusted chain through a proxy hop", trusting, xff("145.100.1.1, 127.0.0.2"), "145.100.1.1"},
		{"untrusted XFF ignored", untrusting, xff("145.100.1.1"), "127.0.0.1"},
		{"untrusted Forwarded ignored", untrusting, http.Header{"Forwarded": {"for=145.100.1.1"}}, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e, body := explain(t, tt.ts, "", tt.header)
			if e.Client.IP != tt.want {
				t.Errorf("client %s, want %s: %s", e.Client.IP, tt.want, body)
			}
		})
	}
	// The redirect follows the believed address: NL through the trusted proxy, no geo otherwise.
	resp, _ := do(t, "GET", trusting.public.URL+"/", xff("145.100.1.1"))
	if resp.Header.Get("Location") != "https://ams.example.net/" {
		t.Errorf("trusted: Location %q", resp.Header.Get("Location"))
	}
	untrusting.metrics.mu.Lock()
	before := untrusting.metrics.geoMisses
	untrusting.metrics.mu.Unlock()
	do(t, "GET", untrusting.public.URL+"/", xff("145.100.1.1"))
	untrusting.metrics.mu.Lock()
	defer untrusting.metrics.mu.Unlock()
	if untrusting.metrics.geoMisses != before+1 {
		t.Errorf("untrusted proxy: the forged address was looked up (geo misses %d → %d)", before, untrusting.metrics.geoMisses)
	}
}

// TestHandlerSeededRand checks that a seeded Rand makes the handler's draws reproducible.
func TestHandlerSeededRand(t *testing.T) {
	picks := func() string {
		ts := newTestServer(t, HandlerConfig{TrustedProxies: loopback, Rand: rand.NewPCG(5, 6)})
		var b strings.Builder
		for range 30 {
			resp, _ := do(t, "GET", ts.public.URL+"/", xff("8.8.8.8"))
			b.WriteString(resp.Header.Get("Location") + " ")
		}
		return b.String()
	}
	a, b := picks(), picks()
	if a != b {
		t.Errorf("same seed, different picks:\n%s\n%s", a, b)
	}
	if strings.Count(a, "ams") == 30 {
		t.Errorf("30 draws among five edges all went to one: %s", a)
	}
}
