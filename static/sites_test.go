package static

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/site"
)

// siteFiles returns a small site whose every page names it, with its own 404 page.
func siteFiles(name string) map[string]*testFile {
	return map[string]*testFile{
		"/index.html": {body: []byte("<h1>" + name + "</h1>"), typ: "text/html; charset=utf-8"},
		"/404.html":   {body: []byte("<h1>" + name + " has no such page</h1>"), typ: "text/html; charset=utf-8"},
	}
}

// threeSites returns a handler serving the sites blog, docs and shop (shop without a deploy yet)
// on their hosts, and no implicit default site.
func threeSites(t *testing.T, implicitDefault bool) *Handler {
	t.Helper()
	records := []site.Record{
		{V: 1, Name: "blog", Hosts: []string{"blog.example.com", "www.blog.example.com"}},
		{V: 1, Name: "docs", Hosts: []string{"*.docs.example.com"}},
		{V: 1, Name: "shop", Hosts: []string{"shop.example.com"}},
	}
	sites := map[string]*Site{
		"blog": newDeploy(t, siteFiles("blog"), nil, SiteOptions{}).site,
		"docs": newDeploy(t, siteFiles("docs"), nil, SiteOptions{}).site,
	}
	if implicitDefault {
		sites[site.DefaultSite] = newDeploy(t, siteFiles("default"), nil, SiteOptions{}).site
	}
	h := NewHandler(HandlerConfig{})
	h.SetSites(NewSites(site.NewHosts(records, implicitDefault), sites))
	return h
}

// get sends a GET for target with the given Host and returns the status and body.
func get(t *testing.T, client *http.Client, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s Host %s: %v", url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestSitesByHost(t *testing.T) {
	for _, server := range []struct {
		name  string
		start func(testing.TB, *Handler) *testServer
	}{{"h1", startServer}, {"net-http", startStdServer}} {
		t.Run(server.name, func(t *testing.T) {
			srv := server.start(t, threeSites(t, false))
			client := srv.Client()
			for _, c := range []struct {
				host, path string
				status     int
				body       string
			}{
				{"blog.example.com", "/", 200, "<h1>blog</h1>"},
				{"WWW.Blog.Example.COM.:80", "/", 200, "<h1>blog</h1>"},
				{"blog.example.com", "/nope", 404, "<h1>blog has no such page</h1>"},
				{"v1.docs.example.com", "/", 200, "<h1>docs</h1>"},
				{"v1.docs.example.com", "/nope", 404, "<h1>docs has no such page</h1>"},
				{"docs.example.com", "/", 421, "421 Misdirected Request\n"}, // the wildcard is one label below
				{"a.v1.docs.example.com", "/", 421, "421 Misdirected Request\n"},
				{"unknown.example.net", "/", 421, "421 Misdirected Request\n"},
				{"127.0.0.1", "/nope", 421, "421 Misdirected Request\n"},
				{"shop.example.com", "/", 503, "503 Service Unavailable\n"}, // claimed, no deploy yet
			} {
				status, body := get(t, client, srv.URL+c.path, c.host)
				if status != c.status || body != c.body {
					t.Errorf("Host %s %s: %d %q, want %d %q", c.host, c.path, status, body, c.status, c.body)
				}
			}
			// OPTIONS answers nothing on a host no site claims either.
			req, _ := http.NewRequest("OPTIONS", srv.URL+"/", nil)
			req.Host = "unknown.example.net"
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 421 {
				t.Errorf("OPTIONS on an unclaimed host: %d", resp.StatusCode)
			}
		})
	}
}

// TestSitesImplicitDefault: with the default site implicit (site/current and no record of it),
// it answers every host no other site claims, as the one site did on every host before.
func TestSitesImplicitDefault(t *testing.T) {
	srv := startServer(t, threeSites(t, true))
	client := srv.Client()
	for host, want := range map[string]string{
		"blog.example.com":    "<h1>blog</h1>",
		"v1.docs.example.com": "<h1>docs</h1>",
		"unknown.example.net": "<h1>default</h1>",
		srv.Addr:              "<h1>default</h1>",
	} {
		if status, body := get(t, client, srv.URL+"/", host); status != 200 || body != want {
			t.Errorf("Host %s: %d %q, want %q", host, status, body, want)
		}
	}
}

// TestSitesBySNI serves the sites over TLS (HTTP/2 by package h2, HTTP/1.1 by net/http): the
// server name must belong to the site of the Host, or the request gets 421, so a connection
// opened for one site never serves another's content.
func TestSitesBySNI(t *testing.T) {
	addr, _ := serveTLS(t, threeSites(t, false))
	for _, proto := range []string{"h2", "http/1.1"} {
		for _, c := range []struct {
			sni, host string
			status    int
			body      string
		}{
			{"blog.example.com", "blog.example.com", 200, "<h1>blog</h1>"},
			{"www.blog.example.com", "blog.example.com", 200, "<h1>blog</h1>"}, // two names of one site
			{"v2.docs.example.com", "v2.docs.example.com", 200, "<h1>docs</h1>"},
			{"v2.docs.example.com", "blog.example.com", 421, "421 Misdirected Request\n"},
			{"unknown.example.net", "blog.example.com", 421, "421 Misdirected Request\n"},
			{"unknown.example.net", "unknown.example.net", 421, "421 Misdirected Request\n"},
		} {
			tr := &http.Transport{ForceAttemptHTTP2: proto == "h2", TLSClientConfig: &tls.Config{
				ServerName: c.sni, NextProtos: []string{proto},
				// The loopback certificate names 127.0.0.1, not the sites: what is tested here is
				// the server name sent, not the certificate.
				InsecureSkipVerify: true,
			}}
			status, body := get(t, &http.Client{Transport: tr}, "https://"+addr+"/", c.host)
			tr.CloseIdleConnections()
			if status != c.status || body != c.body {
				t.Errorf("%s SNI %s Host %s: %d %q, want %d %q", proto, c.sni, c.host, status, body, c.status, c.body)
			}
		}
	}
}

// TestSetSitesNil: a handler returned to one site serves it on every host again.
func TestSetSitesNil(t *testing.T) {
	h := threeSites(t, false)
	h.SetSite(newDeploy(t, siteFiles("one"), nil, SiteOptions{}).site)
	h.SetSites(nil)
	srv := startServer(t, h)
	if status, body := get(t, srv.Client(), srv.URL+"/", "unknown.example.net"); status != 200 || !strings.Contains(body, "one") {
		t.Errorf("%d %q", status, body)
	}
}
