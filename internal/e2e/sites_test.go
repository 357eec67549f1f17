package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/redirector"
	"github.com/dt-cdn/dt/site"
)

// hostResponse is what an edge answered for a Host.
type hostResponse struct {
	status     int
	etag, body string
}

func getHost(t *testing.T, url, host string) hostResponse {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s Host %s: %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return hostResponse{resp.StatusCode, resp.Header.Get("ETag"), string(b)}
}

// TestEdgesServeSitesByHost runs two edges (edge.Node) of a network built the way an earlier
// release built it: one site published to site/current, served on every Host. A master then
// adds a second site sharing a file with the first; both edges serve each site on its hosts,
// the first still on every other host, with its bytes and ETags unchanged. Once the master gives
// the default site hosts of its own, other hosts get 421; publishing the default site again
// (dt-publish's path, site/current) reaches both edges and leaves the second site untouched.
func TestEdgesServeSitesByHost(t *testing.T) {
	n := newTestNetwork(t, 100*time.Millisecond)
	edges := []*runningEdge{n.startEdge(amsterdam), n.startEdge(newYork)}
	n.publishFiles(map[string]string{"index.html": "<h1>main v1</h1>", "shared.css": "body{margin:0}"}, 2)
	everyEdge := func(host, path string, check func(hostResponse) error) {
		t.Helper()
		wait.For(t, 10*time.Second, func() error {
			for _, e := range edges {
				if err := check(getHost(t, e.url+path, host)); err != nil {
					return fmt.Errorf("edge %s, Host %s %s: %w", e.url, host, path, err)
				}
			}
			return nil
		})
	}
	body := func(want string) func(hostResponse) error {
		return func(r hostResponse) error {
			if r.status != 200 || r.body != want {
				return fmt.Errorf("%d %q, want %q", r.status, r.body, want)
			}
			return nil
		}
	}
	everyEdge("anything.example", "/", body("<h1>main v1</h1>"))
	mainBefore := getHost(t, edges[0].url+"/", "www.example.com")

	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	putSite(t, ctx, master, "blog", []string{"blog.example.com", "*.blog.example.com"},
		map[string]string{"/index.html": "<h1>blog v1</h1>", "/shared.css": "body{margin:0}", "/404.html": "<h1>no such blog page</h1>"})
	everyEdge("blog.example.com", "/", body("<h1>blog v1</h1>"))
	everyEdge("x.blog.example.com", "/missing", func(r hostResponse) error {
		if r.status != 404 || r.body != "<h1>no such blog page</h1>" {
			return fmt.Errorf("%d %q", r.status, r.body)
		}
		return nil
	})
	everyEdge("www.example.com", "/", func(r hostResponse) error {
		if r != mainBefore {
			return fmt.Errorf("%+v, was %+v", r, mainBefore)
		}
		return nil
	})
	blogBefore := getHost(t, edges[1].url+"/shared.css", "blog.example.com")
	if mainCSS := getHost(t, edges[1].url+"/shared.css", "www.example.com"); mainCSS.etag != blogBefore.etag || blogBefore.etag == "" {
		t.Errorf("the file the sites share: ETag %q for one, %q for the other", mainCSS.etag, blogBefore.etag)
	}

	// The default site gets hosts of its own: it no longer answers every host.
	rec, _ := site.Record{V: 1, Name: site.DefaultSite, Hosts: []string{"www.example.com"}}.Marshal()
	if err := master.Put(ctx, site.RecordKey(site.DefaultSite), rec); err != nil {
		t.Fatal(err)
	}
	everyEdge("anything.example", "/", func(r hostResponse) error {
		if r.status != http.StatusMisdirectedRequest || strings.Contains(r.body, "<h1>") {
			return fmt.Errorf("%d %q, want 421 and no site's content", r.status, r.body)
		}
		return nil
	})
	everyEdge("www.example.com", "/", func(r hostResponse) error {
		if r != mainBefore {
			return fmt.Errorf("%+v, was %+v", r, mainBefore)
		}
		return nil
	})

	// Publishing the default site as dt-publish does reaches both edges; the blog stays as it was.
	n.publishSiteFiles(site.DefaultSite, map[string]string{"index.html": "<h1>main v2</h1>", "shared.css": "body{margin:0}"}, 2)
	everyEdge("www.example.com", "/", body("<h1>main v2</h1>"))
	everyEdge("blog.example.com", "/shared.css", func(r hostResponse) error {
		if r != blogBefore {
			return fmt.Errorf("%+v, was %+v", r, blogBefore)
		}
		return nil
	})
	everyEdge("blog.example.com", "/", body("<h1>blog v1</h1>"))
}

// putSite writes, as a master does, a site's blobs, manifest, record and current pointer.
func putSite(t *testing.T, ctx context.Context, master *dt.Node, name string, hosts []string, files map[string]string) {
	t.Helper()
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().UTC().Truncate(time.Second), Files: map[string]site.File{}}
	var keys []string
	var bodies [][]byte
	for path, content := range files {
		h := blobs.Sum([]byte(content))
		typ := "text/html; charset=utf-8"
		if strings.HasSuffix(path, ".css") {
			typ = "text/css; charset=utf-8"
		}
		m.Files[path] = site.File{Hash: h, Size: int64(len(content)), Type: typ}
		obj, err := site.EncodeBlob([]byte(content))
		if err != nil {
			t.Fatal(err)
		}
		keys, bodies = append(keys, site.BlobKey(h)), append(bodies, obj)
	}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := m.Marshal()
	rec, _ := site.Record{V: 1, Name: name, Hosts: hosts}.Marshal()
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	keys = append(keys, site.DeployKey(id), site.RecordKey(name), site.CurrentKeyOf(name))
	bodies = append(bodies, manifest, rec, cur)
	if err := master.PutMany(ctx, keys, bodies); err != nil {
		t.Fatal(err)
	}
}

// TestRedirectorFollowsEdgeSites runs two edges and a redirector: the redirector sends a
// visitor of each site to the nearest edge serving it, stops sending the blog's visitors to
// edges serving its new deploy while the edges' heartbeats report the blog lagging (its new
// deploy's blobs held back) but to the nearest edge still serving its previous deploy, rather
// than answering 503, meanwhile still sends the default site's, and sends the blog's to edges
// serving the new deploy once the blobs arrive.
func TestRedirectorFollowsEdgeSites(t *testing.T) {
	n := newTestNetwork(t, 100*time.Millisecond)
	ams := n.startEdge(amsterdam)
	nyc := n.startEdge(newYork)
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: n.beat, Code: 302,
		Select: edgeset.SelectOptions{DefaultLocation: &geoip.Record{Lat: 50, Lon: 5, HasLocation: true}}})
	n.publishFiles(map[string]string{"index.html": "<h1>main</h1>"}, 2)
	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	putSite(t, ctx, master, "blog", []string{"blog.example.com"}, map[string]string{"/index.html": "<h1>blog v1</h1>"})

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	redirect := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", rd.url+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, strings.TrimSuffix(resp.Header.Get("Location"), "/")
	}
	toAmsterdam := func(host string) func() error {
		return func() error {
			if code, loc := redirect(host); code != 302 || loc != ams.url {
				return fmt.Errorf("Host %s: %d to %q, want 302 to %s", host, code, loc, ams.url)
			}
			return nil
		}
	}
	// fallback checks the redirector's choice for the blog's visitors: the blog's, a fallback or not.
	fallback := func(want bool) func() error {
		return func() error {
			var x struct {
				Site     string `json:"site"`
				Fallback bool   `json:"fallback"`
			}
			resp, err := http.Get(rd.admin + "/explain?host=blog.example.com")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&x); err != nil {
				return fmt.Errorf("/explain: %w", err)
			}
			if x.Site != "blog" || x.Fallback != want {
				return fmt.Errorf("the redirector's choice for the blog: site %q, fallback %v, want blog, %v", x.Site, x.Fallback, want)
			}
			return nil
		}
	}
	// Until the redirector knows the blog's record, blog.example.com is the default site's (it
	// claims every host): wait for both edges to serve the blog and for the redirector's choice to
	// be the blog's.
	for _, url := range []string{ams.url, nyc.url} {
		wait.For(t, 10*time.Second, func() error {
			if r := getHost(t, url+"/", "blog.example.com"); r.body != "<h1>blog v1</h1>" {
				return fmt.Errorf("blog on %s: %+v", url, r)
			}
			return nil
		})
	}
	wait.For(t, 10*time.Second, func() error {
		if err := fallback(false)(); err != nil {
			return err
		}
		return toAmsterdam("blog.example.com")()
	})
	wait.For(t, 10*time.Second, toAmsterdam("www.example.com"))

	// A new blog deploy whose blobs are held back: every edge lags for the blog.
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().UTC().Truncate(time.Second),
		Files: map[string]site.File{"/index.html": {Hash: blobs.Sum([]byte("<h1>blog v2</h1>")), Size: 16, Type: "text/html; charset=utf-8"}}}
	id, _ := m.ID()
	manifest, _ := m.Marshal()
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	if err := master.PutMany(ctx, []string{site.DeployKey(id), site.CurrentKeyOf("blog")}, [][]byte{manifest, cur}); err != nil {
		t.Fatal(err)
	}
	// No edge serves it: the blog's visitors go to the nearest edge still serving v1, and
	// /explain says the choice is a fallback, rather than getting 503.
	wait.For(t, 10*time.Second, fallback(true))
	if err := toAmsterdam("blog.example.com")(); err != nil {
		t.Errorf("the blog's visitors while every edge lags: %v", err)
	}
	if r := getHost(t, ams.url+"/", "blog.example.com"); r.body != "<h1>blog v1</h1>" {
		t.Errorf("blog on Amsterdam while it lags: %+v", r)
	}
	if err := toAmsterdam("www.example.com")(); err != nil {
		t.Errorf("the default site while the blog lags: %v", err)
	}
	obj, _ := site.EncodeBlob([]byte("<h1>blog v2</h1>"))
	if err := master.Put(ctx, site.BlobKey(blobs.Sum([]byte("<h1>blog v2</h1>"))), obj); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if err := fallback(false)(); err != nil {
			return err
		}
		return toAmsterdam("blog.example.com")()
	})
	// The redirector counts an edge for the blog only on a heartbeat built once the edge knew
	// the blog's new deploy and served it: the edge it sends visitors to serves v2 at once.
	if r := getHost(t, ams.url+"/", "blog.example.com"); r.body != "<h1>blog v2</h1>" {
		t.Errorf("blog on Amsterdam: %+v", r)
	}
}

// TestRemovedDefaultSiteIsMisdirected runs an edge of a network whose default site has no
// record (built before sites) beside a named site, and removes the default site as dt site
// remove does: the edge stops answering every host with it, so an unknown host gets 421 (not
// 503, not the removed site's content), while the blog is served on as before. The blog's pointer
// then leaves the table while its record stays: it is still served, with its last deploy.
func TestRemovedDefaultSiteIsMisdirected(t *testing.T) {
	n := newTestNetwork(t, 100*time.Millisecond)
	e := n.startEdge(amsterdam)
	n.publishFiles(map[string]string{"index.html": "<h1>main</h1>"}, 1)
	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	putSite(t, ctx, master, "blog", []string{"blog.example.com"}, map[string]string{"/index.html": "<h1>blog</h1>"})
	check := func(host string, want func(hostResponse) bool) {
		t.Helper()
		wait.For(t, 10*time.Second, func() error {
			if r := getHost(t, e.url+"/", host); !want(r) {
				return fmt.Errorf("Host %s: %d %q", host, r.status, r.body)
			}
			return nil
		})
	}
	served := func(body string) func(hostResponse) bool {
		return func(r hostResponse) bool { return r.status == 200 && r.body == body }
	}
	check("anything.example", served("<h1>main</h1>"))
	check("blog.example.com", served("<h1>blog</h1>"))

	if _, err := publish.RemoveSite(ctx, site.DefaultSite, publish.NetworkOptions{Keys: n.keys, Peers: []string{n.peer}, HeartbeatInterval: n.beat, Node: dt.LocalConfig()}); err != nil {
		t.Fatal(err)
	}
	check("anything.example", func(r hostResponse) bool {
		return r.status == http.StatusMisdirectedRequest && !strings.Contains(r.body, "<h1>")
	})
	check("blog.example.com", served("<h1>blog</h1>"))

	if err := master.Delete(ctx, site.CurrentKeyOf("blog")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if master.Has(site.CurrentKeyOf("blog")) {
			return fmt.Errorf("the blog's pointer is still in the master's table")
		}
		return nil
	})
	check("blog.example.com", served("<h1>blog</h1>"))
}
