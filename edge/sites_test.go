package edge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// sitesEdge is an edge service on a dt network with a master, serving plain HTTP and HTTPS on
// loopback, and the heartbeats another node hears from it.
type sitesEdge struct {
	master      *dt.Node
	svc         *service
	reg         *prometheus.Registry
	http, https string // addresses

	mu   sync.Mutex
	last heartbeat.Heartbeat
}

func startSitesEdge(t *testing.T, opts ...func(*serviceConfig)) *sitesEdge {
	t.Helper()
	keys, plain := testnet.Keys(t)
	observer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	addr := []string{testnet.Addr(observer)}
	se := &sitesEdge{reg: prometheus.NewRegistry()}
	go func() {
		for ev := range observer.Events() {
			if h, err := heartbeat.Decode(ev.Object); err == nil && ev.Type == dt.EventMessageReceived {
				se.mu.Lock()
				se.last = h
				se.mu.Unlock()
			}
		}
	}()
	se.master = testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: addr})
	testnet.Drain(se.master)
	store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	node := testnet.Node(t, testnet.Options{Keys: plain, Peers: addr})
	cfg := serviceConfig{Node: node, Blobs: store, PublicURL: "http://127.0.0.1:1", HeartbeatInterval: 50 * time.Millisecond, Registerer: se.reg}
	for _, o := range opts {
		o(&cfg)
	}
	se.svc, err = newService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventsDone, beatsDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range node.Events() {
			se.svc.HandleEvent(ev)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { defer close(beatsDone); se.svc.sendHeartbeats(ctx) }()
	cert, _ := testcert.SelfSigned(t)
	var wg sync.WaitGroup
	for _, tc := range []*tls.Config{nil, {Certificates: []tls.Certificate{cert}}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if tc == nil {
			se.http = ln.Addr().String()
		} else {
			se.https = ln.Addr().String()
		}
		wg.Go(func() {
			if err := se.svc.Server().Serve(ctx, ln, tc); err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait(); <-beatsDone; node.Close(); <-eventsDone })
	return se
}

func (se *sitesEdge) heartbeat() heartbeat.Heartbeat {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.last
}

// siteDeploy is a deploy of a test site: an index page and a 404 page naming the site.
type siteDeploy struct {
	id      site.DeployID
	m       *site.Manifest
	objects map[blobs.Hash][]byte
}

func makeSiteDeploy(t *testing.T, name, version string) siteDeploy {
	t.Helper()
	d := siteDeploy{m: &site.Manifest{Version: site.ManifestVersion, Created: time.Now().UTC().Truncate(time.Second),
		Files: map[string]site.File{}}, objects: map[blobs.Hash][]byte{}}
	for path, body := range map[string]string{
		"/index.html": "<h1>" + name + " " + version + "</h1>",
		"/404.html":   "<h1>" + name + " has no such page</h1>",
	} {
		h := blobs.Sum([]byte(body))
		d.m.Files[path] = site.File{Hash: h, Size: int64(len(body)), Type: "text/html; charset=utf-8"}
		d.objects[h], _ = site.EncodeBlob([]byte(body))
	}
	var err error
	if d.id, err = d.m.ID(); err != nil {
		t.Fatal(err)
	}
	return d
}

// publishSite writes, as a master does, a site's record (hosts nil: none), its deploy's
// manifest and current pointer, and its blobs when withBlobs.
func publishSite(t *testing.T, master *dt.Node, name string, hosts []string, d siteDeploy, withBlobs bool) {
	t.Helper()
	var keys []string
	var bodies [][]byte
	if withBlobs {
		for h, obj := range d.objects {
			keys, bodies = append(keys, site.BlobKey(h)), append(bodies, obj)
		}
	}
	manifest, _ := d.m.Marshal()
	keys, bodies = append(keys, site.DeployKey(d.id)), append(bodies, manifest)
	if hosts != nil {
		rec, err := site.Record{V: 1, Name: name, Hosts: hosts}.Marshal()
		if err != nil {
			// A record Marshal refuses, as a faulty master could write it anyway.
			rec, _ = json.Marshal(site.Record{V: 1, Name: name, Hosts: hosts})
		}
		keys, bodies = append(keys, site.RecordKey(name)), append(bodies, rec)
	}
	cur, _ := site.Current{Deploy: d.id, Time: time.Now()}.Marshal()
	keys, bodies = append(keys, site.CurrentKeyOf(name)), append(bodies, cur)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := master.PutMany(ctx, keys, bodies); err != nil {
		t.Fatal(err)
	}
}

// response is what a request got.
type response struct {
	status int
	etag   string
	body   string
}

// fetch sends GET path with the given Host over plain HTTP, or over HTTPS with the given server
// name when sni is not empty.
func (se *sitesEdge) fetch(t *testing.T, host, sni, path string) response {
	t.Helper()
	url, tr := "http://"+se.http+path, &http.Transport{}
	if sni != "" {
		url = "https://" + se.https + path
		// The loopback certificate names 127.0.0.1: what is tested is the server name sent.
		tr.TLSClientConfig = &tls.Config{ServerName: sni, InsecureSkipVerify: true}
		tr.ForceAttemptHTTP2 = true
	}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s Host %s: %v", url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("ETag"), string(b)}
}

// TestEdgeServesSitesByHost runs an edge of a network of three sites (the default site under
// site/current, with a record of its own, and two others): each is served only on its hosts,
// with its own 404 page and health; an unknown Host or server name gets 421; publishing one
// site leaves the others' bytes and ETags as they were, and the heartbeats report the site as
// lagging until its blobs arrive.
func TestEdgeServesSitesByHost(t *testing.T) {
	se := startSitesEdge(t)
	def, blog, docs := makeSiteDeploy(t, "default", "v1"), makeSiteDeploy(t, "blog", "v1"), makeSiteDeploy(t, "docs", "v1")
	publishSite(t, se.master, site.DefaultSite, []string{"www.example.com"}, def, true)
	publishSite(t, se.master, "blog", []string{"blog.example.com", "www.blog.example.com"}, blog, true)
	publishSite(t, se.master, "docs", []string{"*.docs.example.com"}, docs, true)
	wait.For(t, 10*time.Second, func() error {
		for host, want := range map[string]string{"www.example.com": "<h1>default v1</h1>",
			"blog.example.com": "<h1>blog v1</h1>", "v1.docs.example.com": "<h1>docs v1</h1>"} {
			if r := se.fetch(t, host, "", "/"); r.body != want {
				return fmt.Errorf("Host %s: %d %q", host, r.status, r.body)
			}
		}
		return nil
	})

	misdirected := response{421, "", "421 Misdirected Request\n"}
	for _, c := range []struct {
		host, sni, path string
		want            response
	}{
		{"www.blog.example.com", "", "/", response{200, etagOf("<h1>blog v1</h1>"), "<h1>blog v1</h1>"}},
		{"Blog.Example.com:80", "", "/", response{200, etagOf("<h1>blog v1</h1>"), "<h1>blog v1</h1>"}},
		{"blog.example.com", "", "/nope", response{404, "", "<h1>blog has no such page</h1>"}},
		{"api.docs.example.com", "", "/nope", response{404, "", "<h1>docs has no such page</h1>"}},
		{"www.example.com", "", "/nope", response{404, "", "<h1>default has no such page</h1>"}},
		{"docs.example.com", "", "/", misdirected}, // the wildcard claims one label below only
		{"example.com", "", "/", misdirected},
		{"unknown.example.net", "", "/nope", misdirected},
		{"127.0.0.1", "", "/", misdirected},
		{"blog.example.com", "blog.example.com", "/", response{200, etagOf("<h1>blog v1</h1>"), "<h1>blog v1</h1>"}},
		{"blog.example.com", "www.blog.example.com", "/", response{200, etagOf("<h1>blog v1</h1>"), "<h1>blog v1</h1>"}},
		{"blog.example.com", "x.docs.example.com", "/", misdirected},
		{"blog.example.com", "unknown.example.net", "/", misdirected},
		{"unknown.example.net", "unknown.example.net", "/", misdirected},
	} {
		if got := se.fetch(t, c.host, c.sni, c.path); got != c.want {
			t.Errorf("Host %s SNI %q %s: %+v, want %+v", c.host, c.sni, c.path, got, c.want)
		}
	}
	for host, want := range map[string]response{
		"www.example.com":     {200, "", def.id.String() + "\n"},
		"blog.example.com":    {200, "", blog.id.String() + "\n"},
		"a.docs.example.com":  {200, "", docs.id.String() + "\n"},
		"unknown.example.net": {421, "", "no site here\n"},
	} {
		if got := se.fetch(t, host, "", HealthPath); got != want {
			t.Errorf("health on %s: %+v, want %+v", host, got, want)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if h := se.heartbeat(); h.Sites != 3 || len(h.Lagging) != 0 || h.Deploy != def.id.String() || !h.Synced || h.SitesDigest == "" {
			return fmt.Errorf("heartbeat: sites %d, lagging %v, deploy %s synced %v", h.Sites, h.Lagging, h.Deploy, h.Synced)
		}
		return nil
	})
	before := map[string]response{}
	for _, host := range []string{"www.example.com", "blog.example.com"} {
		for _, path := range []string{"/", "/nope"} {
			before[host+path] = se.fetch(t, host, "", path)
		}
	}
	digest := se.heartbeat().SitesDigest
	if st := se.svc.Status(); st.Active != def.id || len(st.Sites) != 3 || st.Sites[0].Site != "blog" || !st.Sites[0].Synced {
		t.Errorf("status: %+v", st)
	}

	// A new deploy of the docs, its blobs held back: the docs lag, and say so, until they come.
	docs2 := makeSiteDeploy(t, "docs", "v2")
	publishSite(t, se.master, "docs", []string{"*.docs.example.com"}, docs2, false)
	wait.For(t, 10*time.Second, func() error {
		h := se.heartbeat()
		want := []heartbeat.Lag{{Site: "docs", Deploy: docs.id.String()[:heartbeat.DeployPrefixLen]}}
		if fmt.Sprint(h.Lagging) != fmt.Sprint(want) || !h.LaggingOn("docs", site.DefaultSite) || h.LaggingOn("blog", site.DefaultSite) {
			return fmt.Errorf("heartbeat lagging %v", h.Lagging)
		}
		return nil
	})
	if r := se.fetch(t, "a.docs.example.com", "", HealthPath); r.status != http.StatusServiceUnavailable {
		t.Errorf("health of the lagging docs: %+v", r)
	}
	if r := se.fetch(t, "a.docs.example.com", "", "/"); r.body != "<h1>docs v1</h1>" {
		t.Errorf("the lagging docs serve %+v, want the deploy they hold", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for h, obj := range docs2.objects {
		if err := se.master.Put(ctx, site.BlobKey(h), obj); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "a.docs.example.com", "", "/"); r.body != "<h1>docs v2</h1>" {
			return fmt.Errorf("docs: %+v", r)
		}
		if h := se.heartbeat(); len(h.Lagging) != 0 || h.SitesDigest == digest {
			return fmt.Errorf("heartbeat after the docs' blobs: lagging %v, digest %s (was %s)", h.Lagging, h.SitesDigest, digest)
		}
		return nil
	})
	for key, want := range before {
		host, path, _ := cutPath(key)
		if got := se.fetch(t, host, "", path); got != want {
			t.Errorf("%s after the docs' publish: %+v, was %+v", key, got, want)
		}
	}

	// The blog's record goes: its hosts are nobody's, and the others are served as before.
	if err := se.master.Delete(ctx, site.RecordKey("blog")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "blog.example.com", "", "/"); r != misdirected {
			return fmt.Errorf("removed blog: %+v", r)
		}
		if h := se.heartbeat(); h.Sites != 2 {
			return errors.New("heartbeat still counts the removed site")
		}
		return nil
	})
	if got := se.fetch(t, "www.example.com", "", "/"); got != before["www.example.com/"] {
		t.Errorf("default after the blog's removal: %+v", got)
	}
	// Two sites' pages in memory: an index and a 404 page each.
	want := len("<h1>default v1</h1><h1>default has no such page</h1><h1>docs v2</h1><h1>docs has no such page</h1>")
	if got := promtest.Value(t, se.reg, "dt_edge_site_memory_bytes"); got != float64(want) {
		t.Errorf("dt_edge_site_memory_bytes = %v, want %d", got, want)
	}
}

// TestSiteMemoryBudget: the sites share the memory budget one site had, down to a floor.
func TestSiteMemoryBudget(t *testing.T) {
	for n, want := range map[int]int64{0: 64 << 20, 1: 64 << 20, 16: 4 << 20, 64: MinSiteMemoryBudget, 1000: MinSiteMemoryBudget} {
		if got := siteMemoryBudget(n); got != want {
			t.Errorf("siteMemoryBudget(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestEdgeSingleSiteOnEveryHost: a network with only site/current serves it on every Host and
// server name, as before sites had names, and its health answers on every Host.
func TestEdgeSingleSiteOnEveryHost(t *testing.T) {
	se := startSitesEdge(t)
	if r := se.fetch(t, "any.example", "", "/"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("before a deploy: %+v", r)
	}
	d := makeSiteDeploy(t, "one", "v1")
	publishSite(t, se.master, site.DefaultSite, nil, d, true)
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "any.example", "", "/"); r.body != "<h1>one v1</h1>" {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	for _, host := range []string{"127.0.0.1", "www.example.com", "blog.example.com"} {
		for _, sni := range []string{"", "anything.example"} {
			if r := se.fetch(t, host, sni, "/"); r.body != "<h1>one v1</h1>" {
				t.Errorf("Host %s SNI %q: %+v", host, sni, r)
			}
			if r := se.fetch(t, host, sni, HealthPath); r.status != 200 || r.body != d.id.String()+"\n" {
				t.Errorf("health on Host %s SNI %q: %+v", host, sni, r)
			}
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if h := se.heartbeat(); h.Sites != 1 || h.Deploy != d.id.String() || !h.Synced {
			return fmt.Errorf("heartbeat: %d sites, deploy %s synced %v", h.Sites, h.Deploy, h.Synced)
		}
		return nil
	})
}

func etagOf(body string) string { return `"` + blobs.Sum([]byte(body)).String() + `"` }

// cutPath splits "host/path" into host and "/path".
func cutPath(key string) (host, path string, ok bool) {
	for i := range key {
		if key[i] == '/' {
			return key[:i], key[i:], true
		}
	}
	return key, "/", false
}

// TestEdgeSiteLimits: a site record over site.MaxHosts hosts is refused and counted, and serves
// nothing; with more sites lagging than a heartbeat lists (heartbeat.MaxLagging), the heartbeat
// counts the rest in lagging_more, stays under 2 KB, and the metrics say how many lag.
func TestEdgeSiteLimits(t *testing.T) {
	se := startSitesEdge(t)
	hosts := make([]string, site.MaxHosts+1)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%d.example.com", i)
	}
	publishSite(t, se.master, "big", hosts, makeSiteDeploy(t, "big", "v1"), true)
	wait.For(t, 10*time.Second, func() error {
		if n := promtest.Sum(t, se.reg, "dt_edge_objects_refused_total"); n < 1 {
			return fmt.Errorf("%v objects refused", n)
		}
		return nil
	})
	if r := se.fetch(t, "h1.example.com", "", "/"); r.status == 200 {
		t.Errorf("a site of a refused record is served: %+v", r)
	}

	const lagging = heartbeat.MaxLagging + 8
	for i := range lagging { // deploys without their blobs: every site lags
		name := fmt.Sprintf("site-%02d", i)
		publishSite(t, se.master, name, []string{name + ".example.com"}, makeSiteDeploy(t, name, "v1"), false)
	}
	wait.For(t, 10*time.Second, func() error {
		h := se.heartbeat()
		if h.Sites != lagging || len(h.Lagging)+h.LaggingMore != lagging || h.LaggingMore == 0 {
			return fmt.Errorf("heartbeat: %d sites, %d listed, %d more", h.Sites, len(h.Lagging), h.LaggingMore)
		}
		if b, err := heartbeat.Encode(h); err != nil || len(b) >= 2048 {
			return fmt.Errorf("heartbeat of %d bytes: %v", len(b), err)
		}
		return nil
	})
	if got := promtest.Value(t, se.reg, "dt_edge_sites_lagging"); got != lagging {
		t.Errorf("dt_edge_sites_lagging = %v", got)
	}
	if got := promtest.Value(t, se.reg, "dt_edge_heartbeat_lagging_unlisted"); got != float64(se.heartbeat().LaggingMore) || got == 0 {
		t.Errorf("dt_edge_heartbeat_lagging_unlisted = %v", got)
	}
	if got := promtest.Value(t, se.reg, "dt_edge_sites"); got != lagging {
		t.Errorf("dt_edge_sites = %v", got)
	}
}
