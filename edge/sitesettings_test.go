package edge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// TestEdgeSiteSettings: an edge says in its heartbeats that it reads site records with
// settings, keeps serving a site whose record gains settings, and refuses (and counts) a record
// whose keep setting is over site.MaxKeep, serving nothing of a site with no other record.
func TestEdgeSiteSettings(t *testing.T) {
	se := startSitesEdge(t)
	wait.For(t, 10*time.Second, func() error {
		if !se.heartbeat().SiteSettings {
			return fmt.Errorf("heartbeat without site_settings: %+v", se.heartbeat())
		}
		return nil
	})
	app := makeSiteDeploy(t, "app", "v1")
	publishSite(t, se.master, "app", []string{"app.example.com"}, app, true)
	put := func(name, rec string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := se.master.Put(ctx, site.RecordKey(name), []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	put("app", `{"v":1,"name":"app","hosts":["app.example.com"],"settings":{"spa":true,"keep":3}}`)
	refusedBefore := promtest.Sum(t, se.reg, "dt_edge_objects_refused_total")
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "app.example.com", "", "/"); r.status != 200 {
			return fmt.Errorf("a site whose record has settings: %+v", r)
		}
		return nil
	})

	// A site whose only record is refused: its pointer and blobs arrive, but no host reaches it.
	publishSite(t, se.master, "big", nil, makeSiteDeploy(t, "big", "v1"), true)
	put("big", fmt.Sprintf(`{"v":1,"name":"big","hosts":["big.example.com"],"settings":{"keep":%d}}`, site.MaxKeep+1))
	wait.For(t, 10*time.Second, func() error {
		if n := promtest.Sum(t, se.reg, "dt_edge_objects_refused_total"); n <= refusedBefore {
			return fmt.Errorf("%v objects refused", n)
		}
		return nil
	})
	if r := se.fetch(t, "big.example.com", "", "/"); r.status == 200 {
		t.Errorf("a site of a refused record is served: %+v", r)
	}
}
