package proc

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/cli"
)

// loopbackUnlimited are the hub's arguments for a test that runs many commands in a few seconds:
// every process of a test connects from loopback, and the hub allows an address 20 new
// connections at once and 2 a second after that (dt.GuardConfig.ConnRate), which the test's own
// commands would exhaust.
var loopbackUnlimited = []string{"--never-block", "127.0.0.0/8"}

// sharedSize is the size of the file two test sites hold with identical bytes: random, so that
// compression cannot hide whether it was sent twice.
const sharedSize = 512 << 10

// siteSpec is a site of the multi-site tests: its name, the hosts it claims and one deploy's
// files (path → content), _redirects, _headers and 404.html among them.
type siteSpec struct {
	name  string
	hosts []string
	files map[string][]byte
}

// sharedFile is the file blog and docs hold with the same bytes.
func sharedFile() []byte {
	b := make([]byte, sharedSize)
	_, _ = rand.NewChaCha8([32]byte{'s', 'h', 'a', 'r', 'e', 'd'}).Read(b)
	return b
}

// makeSiteSpec returns deploy gen of a site: an index and a page naming the site and the deploy,
// its own 404 page, a redirect and a header rule of its own, and the shared file when shared.
func makeSiteSpec(name string, hosts []string, gen int, shared bool) siteSpec {
	s := siteSpec{name: name, hosts: hosts, files: map[string][]byte{
		"index.html": fmt.Appendf(nil, "<!doctype html><h1>%s, deploy %d</h1>\n", name, gen),
		"page.html":  fmt.Appendf(nil, "<!doctype html><p>a page of %s</p>\n", name),
		"404.html":   fmt.Appendf(nil, "<!doctype html><h1>%s has no such page</h1>\n", name),
		"_redirects": fmt.Appendf(nil, "/old-%s /page.html 301\n", name),
		"_headers":   fmt.Appendf(nil, "/*\n  X-Site: %s\n", name),
	}}
	if shared {
		s.files["shared.bin"] = sharedFile()
	}
	return s
}

// served lists the paths of the site's files that edges serve (the rule files are not).
func (s siteSpec) served() []string {
	var paths []string
	for p := range s.files {
		if !strings.HasPrefix(p, "_") {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	return paths
}

// write writes the site into a new directory under root and returns it.
func (s siteSpec) write(t *testing.T, root, label string) string {
	t.Helper()
	dir := filepath.Join(root, "src-"+label)
	for p, b := range s.files {
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(p)), strings.NewReader(string(b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dtCommand runs dt with args in the network's directory, bounded by a minute, and expects
// exit 0.
func (n *network) dtCommand(t *testing.T, args ...string) command {
	t.Helper()
	c := runCommand(t, time.Minute, n.dir, bins.dt, args...)
	if c.code != 0 {
		t.Fatalf("dt %s: exit %d\n%s%s", strings.Join(args, " "), c.code, c.stdout, c.stderr)
	}
	return c
}

// addSite runs dt site add with the network's master keys.
func (n *network) addSite(t *testing.T, s siteSpec) {
	t.Helper()
	args := []string{"site", "add", s.name, "--keys", n.keys, "--peer", n.hubAddr(), "--timeout", "30s", "--cache-dir", n.cacheFor(n.keys)}
	for _, h := range s.hosts {
		args = append(args, "--host", h)
	}
	n.dtCommand(t, args...)
}

// publishTo runs dt-publish --site on dir with keys and returns its outcome, with the summary
// parsed when the deploy was written.
func (n *network) publishTo(t *testing.T, keys, name, dir string) (command, publishResult) {
	t.Helper()
	c := runCommand(t, time.Minute, n.dir, bins.publish, "--keys", keys, "--peer", n.hubAddr(), "--json", "--timeout", "30s",
		"--cache-dir", n.cacheFor(keys), "--site", name, dir)
	var r publishResult
	if wrote(c.code) {
		if err := json.Unmarshal([]byte(c.stdout), &r); err != nil {
			t.Fatalf("dt-publish --site %s: exit %d, summary: %v\n%s", name, c.code, err, c.stdout)
		}
		r.took = c.took
	}
	return c, r
}

// wrote reports whether dt-publish's or dt rollback's exit status says the deploy is the
// network's: live on every edge (0), on some (3), or on none yet (4).
func wrote(code int) bool { return code == 0 || code == 3 || code == 4 }

// cacheFor is the --cache-dir of the commands run with keys: under the network's directory, never
// the user's cache, where a network of the same keys (a fixture's) may have left its records.
func (n *network) cacheFor(keys string) string {
	return filepath.Join(n.dir, "publish-cache-"+filepath.Base(keys))
}

// publishSite publishes s with the master keys and expects it live on every edge named, as
// dt-publish reports and as each edge's health endpoint says for the site's first host.
func (n *network) publishSite(t *testing.T, s siteSpec, label string, edges ...*edgeProc) publishResult {
	t.Helper()
	c, r := n.publishTo(t, n.keys, s.name, s.write(t, n.dir, label))
	n.checkLive(t, "dt-publish --site "+s.name, c, r, s.hosts[0], edges)
	return r
}

// checkLive checks that a publish or rollback exited 0, reporting its deploy live on every edge
// named, and that each edge's health endpoint names the deploy for host.
func (n *network) checkLive(t *testing.T, what string, c command, r publishResult, host string, edges []*edgeProc) {
	t.Helper()
	if c.code != 0 || r.EdgesLive != len(edges) || len(r.Edges) != len(edges) {
		t.Fatalf("%s: exit %d, live on %d of %d edges, want all %d\n%s%s", what, c.code, r.EdgesLive, len(r.Edges), len(edges), c.stdout, c.stderr)
	}
	n.waitServed(t, host, r.Deploy, edges...)
}

// waitServed waits until every edge's health endpoint, asked for host, names deploy.
func (n *network) waitServed(t *testing.T, host, deploy string, edges ...*edgeProc) {
	t.Helper()
	waitFor(t, 30*time.Second, host+" on deploy "+short(deploy)+" at every edge", func() error {
		for _, e := range edges {
			r, err := fetch(n.http, e.httpURL()+"/.well-known/dt/health", host)
			if err != nil {
				return err
			}
			if r.status != http.StatusOK || strings.TrimSpace(r.body) != deploy {
				return fmt.Errorf("%s: health %d %q", e.name, r.status, strings.TrimSpace(r.body))
			}
		}
		return nil
	})
}

func short(id string) string { return id[:min(len(id), 12)] }

// httpURL is the edge's plain-HTTP listener; url is the public URL, which is HTTPS when the edge
// serves HTTPS.
func (e *edgeProc) httpURL() string { return "http://" + e.info().HTTP }

// response is what a request got, with the fields the multi-site tests compare.
type response struct {
	status   int
	proto    int
	etag     string
	location string
	site     string // X-Site, set by each test site's _headers
	sum      string // sha256 of the body
	body     string
}

// fetch gets url with the Host header host (and no content coding, so that the ETag is the
// file's own).
func fetch(c *http.Client, url, host string) (response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return response{}, err
	}
	req.Host = host
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("GET %s (Host %s): %w", url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("GET %s (Host %s): %w", url, host, err)
	}
	sum := sha256.Sum256(b)
	return response{status: resp.StatusCode, proto: resp.ProtoMajor, etag: resp.Header.Get("ETag"),
		location: resp.Header.Get("Location"), site: resp.Header.Get("X-Site"), sum: hex.EncodeToString(sum[:]), body: string(b)}, nil
}

// TestSitesOverProcesses runs three sites on one network of processes (a hub node, three edges
// serving HTTP and HTTPS, a redirector), each with its own hosts, _redirects, _headers and 404
// page. Every edge serves each site on its hosts only, over HTTP/1.1 by Host and over HTTP/2 by
// SNI and Host, and answers 421 for a host no site claims; a file the blog and the docs share is
// sent once; a new deploy of the blog, its rollback and its removal leave the other two sites'
// bytes and ETags as they were on every edge.
func TestSitesOverProcesses(t *testing.T) {
	skipShort(t)
	t.Parallel()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n := newNetwork(t, loopbackUnlimited...)
	var edges []*edgeProc
	for i, loc := range []string{"52.37,4.90", "40.71,-74.01", "35.68,139.69"} {
		edges = append(edges, n.startEdge(t, fmt.Sprintf("edge-%d", i+1), loc, false, "--https", "127.0.0.1:0"))
	}
	n.startRedirector(t)
	t.Logf("network of 5 processes up in %s", time.Since(began).Round(time.Millisecond))

	m := &multiSite{network: n, edges: edges, sites: []siteSpec{
		makeSiteSpec("blog", []string{"blog.test", "www.blog.test"}, 1, true),
		makeSiteSpec("docs", []string{"docs.test", "*.docs.test"}, 1, true),
		makeSiteSpec("corp", []string{"corp.test"}, 1, false),
	}}
	t.Cleanup(m.closeIdle)
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"add and publish three sites", m.testPublish},
		{"each site on its hosts", m.testServedByHost},
		{"redirector by host", m.testRedirector},
		{"new deploy of one site", m.testRepublish},
		{"rollback of one site", m.testRollback},
		{"new hosts and deploy under visitors", m.testChangeUnderVisitors},
		{"remove one site", m.testRemove},
	} {
		stepBegan := time.Now()
		ok := t.Run(step.name, step.run)
		t.Logf("step %q took %s", step.name, time.Since(stepBegan).Round(time.Millisecond))
		if !ok || ctx.Err() != nil {
			t.Fatalf("stopped after %q (%v)", step.name, ctx.Err())
		}
	}
	t.Logf("TestSitesOverProcesses took %s", time.Since(began).Round(time.Millisecond))
}

// multiSite is the state TestSitesOverProcesses's steps share.
type multiSite struct {
	*network
	edges   []*edgeProc
	sites   []siteSpec              // blog, docs, corp: what each serves now
	deploys map[string][]string     // by site, oldest first
	h2s     map[string]*http.Client // by the host each names in TLS; see h2
}

// unclaimed are hosts no test site claims; *.docs.test covers one label more, not two.
var unclaimed = []string{"unknown.test", "x.blog.test", "a.b.docs.test", "test"}

// testPublish adds the three sites and publishes each from its own directory; the docs, holding
// the file the blog sent already, sends fewer bytes than that file alone.
func (m *multiSite) testPublish(t *testing.T) {
	m.deploys = map[string][]string{}
	for _, s := range m.sites {
		m.addSite(t, s)
	}
	for _, s := range m.sites {
		r := m.publishSite(t, s, s.name+"-1", m.edges...)
		t.Logf("%s: deploy %.12s, %d files, %d blobs (%d bytes) sent in %s", s.name, r.Deploy, r.Files, r.BlobsSent, r.BytesSent, r.took.Round(time.Millisecond))
		m.deploys[s.name] = append(m.deploys[s.name], r.Deploy)
		switch s.name {
		case "blog":
			if r.BytesSent < sharedSize {
				t.Errorf("the blog's first publish sent %d bytes, less than its shared file (%d)", r.BytesSent, sharedSize)
			}
		case "docs":
			if r.BytesSent >= sharedSize {
				t.Errorf("the docs sent %d bytes: the file the blog sent already (%d bytes) went again", r.BytesSent, sharedSize)
			}
		}
	}
}

// testServedByHost checks every site on every edge and each of its hosts, over HTTP/1.1 and
// HTTP/2 with SNI, and the unclaimed hosts.
func (m *multiSite) testServedByHost(t *testing.T) {
	for _, e := range m.edges {
		for _, s := range m.sites {
			for _, h := range hostsToAsk(s.hosts) {
				if err := m.checkSite(e, s, h); err != nil {
					t.Error(err)
				}
			}
		}
		for _, h := range unclaimed {
			if err := checkMisdirected(m.http, e.httpURL(), h, m.sites); err != nil {
				t.Errorf("%s over HTTP/1.1: %v", e.name, err)
			}
			if err := checkMisdirected(m.h2(h), e.url(), h, m.sites); err != nil {
				t.Errorf("%s over HTTPS: %v", e.name, err)
			}
		}
		blog, err := fetch(m.http, e.httpURL()+"/shared.bin", "blog.test")
		if err != nil {
			t.Fatal(err)
		}
		docs, err := fetch(m.http, e.httpURL()+"/shared.bin", "docs.test")
		if err != nil {
			t.Fatal(err)
		}
		if blog.etag == "" || blog.etag != docs.etag || blog.sum != docs.sum {
			t.Errorf("%s: the shared file: ETag %s for the blog, %s for the docs", e.name, blog.etag, docs.etag)
		}
	}
}

// hostsToAsk turns a site's hosts into names to send: a wildcard becomes one name under it.
func hostsToAsk(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			h = "api." + rest
		}
		out = append(out, h)
	}
	return out
}

// checkSite checks that the edge serves s for host over HTTP/1.1 (Host) and, when the edge
// serves HTTPS, HTTP/2 (SNI and Host): its files, its 404 page, its redirect, its header rule,
// and another site's redirect path answered with its own 404 page.
func (m *multiSite) checkSite(e *edgeProc, s siteSpec, host string) error {
	type over struct {
		c     *http.Client
		base  string
		proto int
	}
	ways := []over{{m.http, e.httpURL(), 1}}
	if e.info().HTTPS != "" {
		ways = append(ways, over{m.h2(host), e.url(), 2})
	}
	for _, v := range ways {
		if err := checkSiteOver(v.c, v.base, v.proto, s, host, m.sites); err != nil {
			return fmt.Errorf("%s, Host %s over HTTP/%d: %w", e.name, host, v.proto, err)
		}
	}
	return nil
}

// h2 returns an HTTP/2 client that names host in the TLS handshake (SNI), made once per host.
// It does not verify the certificate: the edges' locally generated certificates name only
// loopback, and what is checked is which site the edge picks by SNI and Host.
func (m *multiSite) h2(host string) *http.Client {
	if m.h2s == nil {
		m.h2s = map[string]*http.Client{}
	}
	if c := m.h2s[host]; c != nil {
		return c
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"h2"}},
		ForceAttemptHTTP2: true,
	}
	m.h2s[host] = &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return m.h2s[host]
}

// closeIdle closes the HTTP/2 clients' idle connections.
func (m *multiSite) closeIdle() {
	for _, c := range m.h2s {
		c.CloseIdleConnections()
	}
}

// checkSiteOver checks s served for host through c at base (an edge's URL), over HTTP/proto.
func checkSiteOver(c *http.Client, base string, proto int, s siteSpec, host string, all []siteSpec) error {
	get := func(path string) (response, error) {
		r, err := fetch(c, base+path, host)
		if err == nil && r.proto != proto {
			err = fmt.Errorf("GET %s over HTTP/%d, want HTTP/%d", path, r.proto, proto)
		}
		return r, err
	}
	for _, p := range s.served() {
		r, err := get(sitePath(p))
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || r.body != string(s.files[p]) || r.site != s.name {
			return fmt.Errorf("GET /%s: %d, X-Site %q, %d bytes; want 200, %s's %d bytes", p, r.status, r.site, len(r.body), s.name, len(s.files[p]))
		}
	}
	r, err := get("/no-such-page")
	if err != nil {
		return err
	}
	if r.status != http.StatusNotFound || r.body != string(s.files["404.html"]) {
		return fmt.Errorf("GET /no-such-page: %d %.60q, want 404 and %s's 404 page", r.status, r.body, s.name)
	}
	for _, o := range all {
		r, err := get("/old-" + o.name)
		if err != nil {
			return err
		}
		switch {
		case o.name == s.name && (r.status != http.StatusMovedPermanently || r.location != "/page.html"):
			return fmt.Errorf("GET /old-%s: %d to %q, want its own rule's 301 to /page.html", o.name, r.status, r.location)
		case o.name != s.name && (r.status != http.StatusNotFound || r.body != string(s.files["404.html"])):
			return fmt.Errorf("GET /old-%s, %s's rule: %d to %q, want %s's 404 page", o.name, o.name, r.status, r.location, s.name)
		}
	}
	return nil
}

// checkMisdirected checks that host gets 421 at base, with no site's content.
func checkMisdirected(c *http.Client, base, host string, all []siteSpec) error {
	for _, path := range []string{"/", "/index.html", "/shared.bin", "/.well-known/dt/health"} {
		r, err := fetch(c, base+path, host)
		if err != nil {
			return err
		}
		if r.status != http.StatusMisdirectedRequest {
			return fmt.Errorf("Host %s, GET %s: %d, want 421", host, path, r.status)
		}
		for _, s := range all {
			for _, b := range s.files {
				if len(b) > 0 && strings.Contains(r.body, string(b)) {
					return fmt.Errorf("Host %s, GET %s: 421 with %s's content", host, path, s.name)
				}
			}
		}
	}
	return nil
}

// siteSnapshot is what every edge answers for a site's files: by edge, host and path.
type siteSnapshot map[string]response

// snapshot fetches every file of the sites named, and a missing page, on every host of theirs
// from every edge, over HTTP/1.1.
func (m *multiSite) snapshot(t *testing.T, names ...string) siteSnapshot {
	t.Helper()
	snap := siteSnapshot{}
	for _, s := range m.sites {
		if !slices.Contains(names, s.name) {
			continue
		}
		for _, e := range m.edges {
			for _, h := range hostsToAsk(s.hosts) {
				for _, p := range append(s.served(), "no-such-page") {
					r, err := fetch(m.http, e.httpURL()+sitePath(p), h)
					if err != nil {
						t.Fatal(err)
					}
					r.body = "" // sum stands for it
					snap[e.name+" "+h+" /"+p] = r
				}
			}
		}
	}
	return snap
}

// checkUnchanged compares a snapshot with one taken before.
func checkUnchanged(t *testing.T, what string, before, after siteSnapshot) {
	t.Helper()
	if len(before) == 0 {
		t.Fatal("an empty snapshot")
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if b, a := before[k], after[k]; a != b {
			t.Errorf("%s changed %s: was %d ETag %s sha256 %.12s, now %d ETag %s sha256 %.12s",
				what, k, b.status, b.etag, b.sum, a.status, a.etag, a.sum)
		}
	}
}

// site returns the site named.
func (m *multiSite) site(name string) siteSpec {
	i := slices.IndexFunc(m.sites, func(s siteSpec) bool { return s.name == name })
	return m.sites[i]
}

// setSite replaces what the site named serves.
func (m *multiSite) setSite(s siteSpec) {
	i := slices.IndexFunc(m.sites, func(x siteSpec) bool { return x.name == s.name })
	m.sites[i] = s
}

// testRedirector checks that the redirector sends each site's visitors to an edge, and answers
// 421 for a host no site claims.
func (m *multiSite) testRedirector(t *testing.T) {
	base := "http://" + m.redAt.HTTP
	for _, s := range m.sites {
		host := s.hosts[0]
		waitFor(t, 15*time.Second, "the redirector sends "+host+" to an edge", func() error {
			r, err := fetch(m.http, base+"/page.html", host)
			if err != nil {
				return err
			}
			if e := m.edgeOf(r.location); r.status/100 != 3 || e == nil {
				return fmt.Errorf("%d to %q", r.status, r.location)
			}
			return nil
		})
	}
	for _, h := range unclaimed {
		r, err := fetch(m.http, base+"/", h)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusMisdirectedRequest {
			t.Errorf("the redirector, Host %s: %d to %q, want 421", h, r.status, r.location)
		}
	}
}

// testRepublish publishes a second deploy of the blog: every edge serves it, and the docs and
// the corporate site are as they were.
func (m *multiSite) testRepublish(t *testing.T) {
	before := m.snapshot(t, "docs", "corp")
	blog := makeSiteSpec("blog", m.site("blog").hosts, 2, true)
	r := m.publishSite(t, blog, "blog-2", m.edges...)
	if r.Previous != m.deploys["blog"][0] {
		t.Errorf("the blog's previous deploy %.12s, want %.12s", r.Previous, m.deploys["blog"][0])
	}
	m.deploys["blog"] = append(m.deploys["blog"], r.Deploy)
	m.setSite(blog)
	for _, e := range m.edges {
		for _, h := range hostsToAsk(blog.hosts) {
			if err := m.checkSite(e, blog, h); err != nil {
				t.Error(err)
			}
		}
	}
	checkUnchanged(t, "the blog's new deploy", before, m.snapshot(t, "docs", "corp"))
}

// testRollback rolls the blog back to its first deploy, which every edge serves again; the docs
// and the corporate site are as they were.
func (m *multiSite) testRollback(t *testing.T) {
	before := m.snapshot(t, "docs", "corp")
	c := runCommand(t, time.Minute, m.dir, bins.dt, "rollback", "--keys", m.keys, "--peer", m.hubAddr(),
		"--json", "--timeout", "30s", "--cache-dir", m.cacheFor(m.keys), "--site", "blog")
	var r publishResult
	if err := json.Unmarshal([]byte(c.stdout), &r); err != nil {
		t.Fatalf("dt rollback --site blog: exit %d, %v\n%s%s", c.code, err, c.stdout, c.stderr)
	}
	if r.Deploy != m.deploys["blog"][0] || r.BytesSent != 0 {
		t.Fatalf("rolled back to %.12s sending %d bytes, want %.12s and nothing sent", r.Deploy, r.BytesSent, m.deploys["blog"][0])
	}
	m.checkLive(t, "dt rollback --site blog", c, r, "blog.test", m.edges)
	blog := makeSiteSpec("blog", m.site("blog").hosts, 1, true)
	m.setSite(blog)
	for _, e := range m.edges {
		if err := m.checkSite(e, blog, "www.blog.test"); err != nil {
			t.Error(err)
		}
	}
	checkUnchanged(t, "the blog's rollback", before, m.snapshot(t, "docs", "corp"))
}

// testRemove removes the blog, whose shared file the docs still hold: every edge answers 421 for
// the blog's hosts, and the docs (shared file included) and the corporate site are as they were.
func (m *multiSite) testRemove(t *testing.T) {
	before := m.snapshot(t, "docs", "corp")
	objects, err := m.metric(m.hubAt, "dt_objects")
	if err != nil {
		t.Fatal(err)
	}
	c := m.dtCommand(t, "site", "remove", "blog", "--keys", m.keys, "--peer", m.hubAddr(), "--json", "--timeout", "30s",
		"--cache-dir", m.cacheFor(m.keys))
	t.Logf("dt site remove blog: %s", strings.TrimSpace(c.stdout))
	blog := m.site("blog")
	m.sites = slices.DeleteFunc(m.sites, func(s siteSpec) bool { return s.name == "blog" })
	for _, h := range blog.hosts {
		waitFor(t, 30*time.Second, h+" misdirected at every edge", func() error {
			for _, e := range m.edges {
				if err := checkMisdirected(m.http, e.httpURL(), h, []siteSpec{blog}); err != nil {
					return fmt.Errorf("%s: %w", e.name, err)
				}
			}
			return nil
		})
	}
	// The collection's deletions reach the edges: their tables hold what the hub's does, fewer
	// records than before. Only then may an edge have dropped a blob the docs need.
	waitFor(t, 30*time.Second, "the removal's deletions at every edge", func() error {
		hub, err := m.metric(m.hubAt, "dt_objects")
		if err != nil || hub >= objects {
			return fmt.Errorf("the hub holds %v records, %v before the removal (%v)", hub, objects, err)
		}
		for _, e := range m.edges {
			if got, err := m.metric(e.info(), "dt_objects"); err != nil || got != hub {
				return fmt.Errorf("%s holds %v records, the hub %v (%v)", e.name, got, hub, err)
			}
		}
		return nil
	})
	checkUnchanged(t, "the blog's removal", before, m.snapshot(t, "docs", "corp"))
	waitFor(t, 15*time.Second, "the redirector answers 421 for the removed blog", func() error {
		r, err := fetch(m.http, "http://"+m.redAt.HTTP+"/", "blog.test")
		if err == nil && r.status != http.StatusMisdirectedRequest {
			err = fmt.Errorf("%d to %q", r.status, r.location)
		}
		return err
	})
}

// metric reads an unlabelled metric from a node's admin /metrics.
func (n *network) metric(at cli.NodeInfo, name string) (float64, error) {
	_, _, body, err := n.get("http://" + at.Admin + "/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s's metrics", name, at.Admin)
}

// testChangeUnderVisitors gives the blog a new host (dt site set) while visitors keep asking
// every edge and the redirector for it, and then a new deploy while they keep asking every edge:
// every edge answers each of them 200 and the redirector redirects each through the change of
// hosts. (dt reports a replaced record or pointer as a removal and then an addition; neither
// may take the site away meanwhile. The redirector is left out of the publish: it stops sending
// a site's visitors to an edge from the moment it learns of a new deploy until the edge reports
// serving it.)
func (m *multiSite) testChangeUnderVisitors(t *testing.T) {
	before := m.snapshot(t, "docs", "corp")
	v := m.startSteadyVisitors("blog.test", true)
	blog := m.site("blog")
	blog.hosts = append(blog.hosts, "new.blog.test")
	args := []string{"site", "set", "blog", "--keys", m.keys, "--peer", m.hubAddr(), "--timeout", "30s", "--cache-dir", m.cacheFor(m.keys)}
	for _, h := range blog.hosts {
		args = append(args, "--host", h)
	}
	m.dtCommand(t, args...)
	m.setSite(blog)
	waitFor(t, 30*time.Second, "new.blog.test at every edge and the redirector", func() error {
		for _, e := range m.edges {
			if err := m.checkSite(e, blog, "new.blog.test"); err != nil {
				return err
			}
		}
		r, err := fetch(m.http, "http://"+m.redAt.HTTP+"/", "new.blog.test")
		if err == nil && r.status/100 != 3 {
			err = fmt.Errorf("the redirector: %d for new.blog.test", r.status)
		}
		return err
	})
	total, failed := v.finish()
	t.Logf("%d visits to the blog through the change of its hosts", total)
	for _, f := range failed {
		t.Error(f)
	}

	v = m.startSteadyVisitors("blog.test", false)
	blog3 := makeSiteSpec("blog", blog.hosts, 3, true)
	r := m.publishSite(t, blog3, "blog-3", m.edges...)
	m.deploys["blog"] = append(m.deploys["blog"], r.Deploy)
	m.setSite(blog3)
	total, failed = v.finish()
	t.Logf("%d visits to the blog's edges through its publish", total)
	for _, f := range failed {
		t.Error(f)
	}
	waitFor(t, 15*time.Second, "the redirector sends the blog's visitors to every edge on its new deploy", func() error {
		return m.redirectorServes("blog", r.Deploy, len(m.edges))
	})
	checkUnchanged(t, "the blog's new hosts and deploy", before, m.snapshot(t, "docs", "corp"))
}

// steadyVisitors ask every edge (and the redirector) for one host's index in a loop, and keep
// what did not answer as a visitor expects: 200 from an edge, a redirect from the redirector.
type steadyVisitors struct {
	stop  atomic.Bool
	wg    sync.WaitGroup
	mu    sync.Mutex
	total int      // guarded by mu
	bad   []string // guarded by mu
}

// maxBadVisits bounds the failures a steadyVisitors keeps.
const maxBadVisits = 20

func (m *multiSite) startSteadyVisitors(host string, redirector bool) *steadyVisitors {
	v := &steadyVisitors{}
	var targets []string
	for _, e := range m.edges {
		targets = append(targets, e.httpURL())
	}
	if redirector {
		targets = append(targets, "http://"+m.redAt.HTTP)
	}
	for i, base := range targets {
		toEdge := i < len(m.edges)
		v.wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			defer c.CloseIdleConnections()
			for !v.stop.Load() {
				r, err := fetch(c, base+"/index.html", host)
				ok := err == nil && (toEdge && r.status == http.StatusOK || !toEdge && r.status/100 == 3)
				v.mu.Lock()
				v.total++
				if !ok && len(v.bad) < maxBadVisits {
					v.bad = append(v.bad, fmt.Sprintf("%s, Host %s: %d %.60q %v", base, host, r.status, r.body, err))
				}
				v.mu.Unlock()
			}
		})
	}
	return v
}

// finish stops the visitors and returns how many visits they made and the failed ones.
func (v *steadyVisitors) finish() (int, []string) {
	v.stop.Store(true)
	v.wg.Wait()
	return v.total, v.bad
}

// redirectorServes checks that the redirector's status has the site on deploy with n edges
// serving it.
func (m *multiSite) redirectorServes(name, deploy string, n int) error {
	var st struct {
		Redirector *struct {
			Sites []struct {
				Name    string   `json:"name"`
				Current string   `json:"current_deploy"`
				Serving []string `json:"serving"`
			} `json:"sites"`
		} `json:"redirector"`
	}
	if err := m.getJSON("http://"+m.redAt.Admin+"/status", &st); err != nil {
		return err
	}
	if st.Redirector == nil {
		return fmt.Errorf("redirector still starting")
	}
	for _, s := range st.Redirector.Sites {
		if s.Name == name {
			if s.Current != deploy || len(s.Serving) != n {
				return fmt.Errorf("site %s on %.12s served by %d edges", name, s.Current, len(s.Serving))
			}
			return nil
		}
	}
	return fmt.Errorf("no site %s at the redirector", name)
}
