package edge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

// TestEdgeServesCDNZone: once the network's settings name a CDN zone, the edge serves its
// sites' names under it (and their health), over HTTP and HTTPS; under a new zone once the
// record is replaced; once the zone is cleared, the names are nobody's again.
func TestEdgeServesCDNZone(t *testing.T) {
	se := startSitesEdge(t)
	def, blog := makeSiteDeploy(t, "default", "v1"), makeSiteDeploy(t, "blog", "v1")
	publishSite(t, se.master, site.DefaultSite, []string{"www.example.com"}, def, true)
	publishSite(t, se.master, "blog", []string{"blog.example.com"}, blog, true)
	setZone := func(zone string) {
		t.Helper()
		b, err := netconf.Settings{V: netconf.Version, CDNZone: zone}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := se.master.Put(ctx, netconf.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	setZone("cdn.example.com")
	wait.For(t, 10*time.Second, func() error {
		for host, want := range map[string]string{"blog.cdn.example.com": "<h1>blog v1</h1>", "default.cdn.example.com": "<h1>default v1</h1>"} {
			if r := se.fetch(t, host, "", "/"); r.body != want {
				return fmt.Errorf("%s: %+v", host, r)
			}
		}
		return nil
	})
	for _, c := range []struct{ host, sni, path, want string }{
		{"blog--ams.cdn.example.com", "", "/", "<h1>blog v1</h1>"},
		{"blog--ams.cdn.example.com", "blog--ams.cdn.example.com", "/", "<h1>blog v1</h1>"},
		{"default.cdn.example.com", "default.cdn.example.com", "/", "<h1>default v1</h1>"},
		{blog.id.String()[:12] + "--blog.cdn.example.com", "", "/", "<h1>blog v1</h1>"},
		{"blog.cdn.example.com", "", HealthPath, blog.id.String() + "\n"},
		{"blog--nyc.cdn.example.com", "", "/nope", "<h1>blog has no such page</h1>"},
	} {
		if r := se.fetch(t, c.host, c.sni, c.path); r.body != c.want {
			t.Errorf("Host %s SNI %q %s: %+v, want %q", c.host, c.sni, c.path, r, c.want)
		}
	}
	if r := se.fetch(t, "blog.cdn.example.com", "default.cdn.example.com", "/"); r.status != 421 {
		t.Errorf("a server name of another site: %+v", r)
	}
	if se.svc.Zone() != "cdn.example.com" {
		t.Errorf("Zone = %q", se.svc.Zone())
	}
	// A replaced record (a removal, then the addition, as dt reports it) moves the names.
	setZone("cdn.example.org")
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "blog.cdn.example.org", "", "/"); r.body != "<h1>blog v1</h1>" {
			return fmt.Errorf("blog.cdn.example.org: %+v", r)
		}
		if r := se.fetch(t, "blog.cdn.example.com", "", "/"); r.status != 421 {
			return fmt.Errorf("the former zone: %+v", r)
		}
		return nil
	})
	setZone("")
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "blog.cdn.example.com", "", "/"); r.status != 421 {
			return fmt.Errorf("after clearing the zone: %+v", r)
		}
		return nil
	})
}
