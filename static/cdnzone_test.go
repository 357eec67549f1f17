package static

import (
	"crypto/tls"
	"net/http"
	"testing"
)

// TestSitesUnderCDNZone serves three sites and a CDN zone: every name under the zone reaches its
// site whatever the edge label, a preview reaches the site only for its current deploy (404
// with a message otherwise), "<edge>.<zone>" answers as the edge's own public host, a site's own
// hosts stay its, and a host outside both gets 421.
func TestSitesUnderCDNZone(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		h := threeSites(t, implicit)
		ss := h.Sites()
		h.SetSites(ss.WithZone("cdn.example.com", "blog.example.com:443"))
		blogID := ss.Site("blog").ID().String()
		other := "000000000000"
		if blogID[:12] == other {
			other = "111111111111"
		}
		srv := startServer(t, h)
		client := srv.Client()
		// A host no site claims: 421, or with the implicit default site, which claims every host
		// no other does, after the zone's names, that site.
		unclaimed, unclaimedBody := 421, "421 Misdirected Request\n"
		if implicit {
			unclaimed, unclaimedBody = 200, "<h1>default</h1>"
		}
		cases := []struct {
			host   string
			status int
			body   string
		}{
			{"blog.cdn.example.com", 200, "<h1>blog</h1>"},
			{"Docs.CDN.example.com.", 200, "<h1>docs</h1>"},
			{"blog--ams.cdn.example.com", 200, "<h1>blog</h1>"},
			{"docs--e-0123456789ab.cdn.example.com", 200, "<h1>docs</h1>"},
			{blogID[:12] + "--blog.cdn.example.com", 200, "<h1>blog</h1>"},
			{other + "--blog.cdn.example.com", 404, previewMissingText},
			{"shop.cdn.example.com", 503, "503 Service Unavailable\n"},
			{"ams.cdn.example.com", 200, "<h1>blog</h1>"}, // the edge's own public host is blog's
			{"v1.docs.example.com", 200, "<h1>docs</h1>"},
			{"a.b.cdn.example.com", unclaimed, unclaimedBody},
			{"nosuch--ams.cdn.example.com", unclaimed, unclaimedBody},
			{"blog.cdn.example.org", unclaimed, unclaimedBody},
		}
		if implicit {
			cases = append(cases, struct {
				host   string
				status int
				body   string
			}{"default.cdn.example.com", 200, "<h1>default</h1>"})
		}
		for _, c := range cases {
			status, body := get(t, client, srv.URL+"/", c.host)
			if status != c.status || body != c.body {
				t.Errorf("implicit default %v: Host %s: %d %q, want %d %q", implicit, c.host, status, body, c.status, c.body)
			}
		}
	}
	// Without a zone, the same names are nobody's.
	srv := startServer(t, threeSites(t, false))
	if status, _ := get(t, srv.Client(), srv.URL+"/", "blog.cdn.example.com"); status != 421 {
		t.Errorf("no zone: %d", status)
	}
}

// TestCDNZoneBySNI: over TLS, the server name and the Host must name one site, each by the zone
// or by the site's own hosts.
func TestCDNZoneBySNI(t *testing.T) {
	h := threeSites(t, false)
	h.SetSites(h.Sites().WithZone("cdn.example.com", ""))
	addr, _ := serveTLS(t, h)
	for _, c := range []struct {
		sni, host string
		status    int
	}{
		{"blog--ams.cdn.example.com", "blog--ams.cdn.example.com", 200},
		{"blog--ams.cdn.example.com", "blog.example.com", 200},
		{"docs.cdn.example.com", "blog.cdn.example.com", 421},
		{"nosuch.cdn.example.com", "blog.cdn.example.com", 421},
	} {
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{ServerName: c.sni, NextProtos: []string{"h2"},
			InsecureSkipVerify: true}} // the loopback certificate names 127.0.0.1: the server name sent is what is tested
		status, _ := get(t, &http.Client{Transport: tr}, "https://"+addr+"/", c.host)
		tr.CloseIdleConnections()
		if status != c.status {
			t.Errorf("SNI %s Host %s: %d, want %d", c.sni, c.host, status, c.status)
		}
	}
}
