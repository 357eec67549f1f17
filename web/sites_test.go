package web

import (
	"slices"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/site"
)

// TestSnapshotShowsSites feeds a real redirector and a History two sites (the implicit default
// one and blog, published twice) and three edges (one reporting its sites all current, one of
// the previous release, one lagging for blog), and checks the page's sites: hosts, current deploy, the edges serving each, and
// each site's history newest first.
func TestSnapshotShowsSites(t *testing.T) {
	r := newTestRedirector(t, time.Hour)
	_, plain := testnet.Keys(t)
	node := testnet.Node(t, testnet.Options{Keys: plain})
	testnet.Drain(node)
	history, err := NewHistory(HistoryConfig{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	both := func(ev dt.Event) { r.svc.HandleEvent(ev); history.HandleEvent(ev) }
	pointer := func(name string, id site.DeployID) {
		b, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
		both(dt.Event{Type: dt.EventObjectAdded, Key: site.CurrentKeyOf(name), Object: b})
	}
	def, b1, b2 := site.DeployIDOf([]byte("default")), site.DeployIDOf([]byte("blog 1")), site.DeployIDOf([]byte("blog 2"))
	pointer(site.DefaultSite, def)
	rec, _ := site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}}.Marshal()
	both(dt.Event{Type: dt.EventObjectAdded, Key: site.RecordKey("blog"), Object: rec})
	pointer("blog", b1)
	pointer("blog", b2)

	beat := func(i byte, fields string) {
		b, err := heartbeat.Encode(heartbeat.Heartbeat{Seq: 1, Time: time.Now().UnixMilli(), PublicURL: "http://e.example",
			Deploy: def.String(), Synced: true})
		if err != nil {
			t.Fatal(err)
		}
		if fields != "" {
			b = append(b[:len(b)-1], ","+fields+"}"...)
		}
		r.svc.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: edgeID(i), Object: b})
	}
	knows := heartbeat.CurrentsDigest(map[string]string{site.DefaultSite: def.String(), "blog": b2.String()})
	beat(1, `"sites":2,"sites_digest":"0123456789abcdef","current_digest":"`+knows+`"`)
	beat(2, "")
	beat(3, `"sites":2,"lagging":[{"site":"blog","deploy":"`+b1.String()[:12]+`"}],"sites_digest":"1123456789abcdef","current_digest":"`+knows+`"`)

	_, url := newDashboard(t, Config{Edges: r.svc, Deploys: history})
	var snap Snapshot
	getJSON(t, url+"/api/snapshot", &snap)
	if len(snap.Sites) != 2 {
		t.Fatalf("sites %+v", snap.Sites)
	}
	blog, dflt := snap.Sites[0], snap.Sites[1]
	// Edge 3 lags for blog and edge 2 is of the previous release: blog has edge 1 alone.
	if blog.Name != "blog" || !slices.Equal(blog.Hosts, []string{"blog.example.com"}) || blog.CurrentDeploy != b2.String() ||
		!slices.Equal(blog.Serving, []string{edgeID(1).String()}) || !slices.Equal(blog.History, []string{b2.String(), b1.String()}) {
		t.Errorf("blog: %+v", blog)
	}
	if dflt.Name != site.DefaultSite || !dflt.Implicit || dflt.CurrentDeploy != def.String() || len(dflt.Serving) != 3 ||
		!slices.Equal(dflt.History, []string{def.String()}) || snap.CurrentDeploy != def.String() {
		t.Errorf("default: %+v", dflt)
	}
	e1, _ := edgeByNode(snap, edgeID(1))
	e2, _ := edgeByNode(snap, edgeID(2))
	if e1.Sites != 2 || e1.SitesDigest != "0123456789abcdef" || e2.Sites != 0 || e2.SitesDigest != "" {
		t.Errorf("edges' sites: %+v, %+v", e1, e2)
	}
	if e3, _ := edgeByNode(snap, edgeID(3)); !slices.Equal(e3.Lagging, []string{"blog"}) {
		t.Errorf("lagging edge: %+v", e3)
	}
	// Republishing an earlier deploy moves it to the front, once.
	pointer("blog", b1)
	if h := history.SiteHistory()["blog"]; !slices.Equal(h, []string{b1.String(), b2.String()}) {
		t.Errorf("history after a rollback: %v", h)
	}
	// A site's pointer removed takes its history.
	history.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: site.CurrentKeyOf("blog")})
	if _, ok := history.SiteHistory()["blog"]; ok {
		t.Error("history of a removed site kept")
	}
}
