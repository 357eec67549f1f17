package edgeset_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// threeSites is a network of the default site (implicit, served through Deploy and Synced),
// blog and docs.
func threeSites() *edgeset.Sites {
	return edgeset.NewSites([]edgeset.Site{
		{Name: site.DefaultSite, Hosts: []string{}, Implicit: true, Current: fleet.Current},
		{Name: "blog", Hosts: []string{"blog.example.com"}, Current: "blog-2"},
		{Name: "docs", Hosts: []string{"*.docs.example.com"}, Current: "docs-1"},
	})
}

// TestSelectSite checks the per-site rule: an edge lagging for a site is excluded for that site
// alone, an edge that lists more lagging sites than it sends is excluded for every site but the
// default one, an edge that has not heard of blog's current deploy ("before") is excluded for
// every site but the default one, and an edge of the previous release (no per-site fields)
// counts for the default site only.
func TestSelectSite(t *testing.T) {
	edges := []heartbeat.Edge{
		fleet.Live("all", fleet.Amsterdam),
		fleet.Live("blog-lags", fleet.Amsterdam),
		fleet.Live("overflow", fleet.Amsterdam),
		fleet.Live("old-release", fleet.Amsterdam),
		fleet.With(fleet.Live("default-lags", fleet.Amsterdam), func(e *heartbeat.Edge) { e.Last.Deploy = fleet.Old }),
		fleet.Live("before", fleet.Amsterdam),
	}
	sites := threeSites()
	knows := sites.CurrentsDigest()
	before := heartbeat.CurrentsDigest(map[string]string{site.DefaultSite: fleet.Current, "blog": "blog-1", "docs": "docs-1"})
	serves := heartbeat.SitesDigest([]heartbeat.SiteState{{Site: site.DefaultSite, Served: fleet.Current}, {Site: "blog", Served: "blog-1"}, {Site: "docs", Served: "docs-1"}})
	v := &edgeset.View{Edges: edges, Sites: sites, Reports: map[string]edgeset.SiteReport{
		"all":          {Reports: true, Sites: 3, Digest: knows, CurrentDigest: knows},
		"blog-lags":    {Reports: true, Sites: 3, Lagging: []edgeset.LaggingSite{{Site: "blog", Deploy: "0123456789ab"}}, Digest: "0123456789abcdef", CurrentDigest: knows},
		"overflow":     {Reports: true, Sites: 40, Lagging: []edgeset.LaggingSite{{Site: "a"}}, LaggingMore: 5, Digest: "0123456789abcdef", CurrentDigest: knows},
		"default-lags": {Reports: true, Sites: 3, Lagging: []edgeset.LaggingSite{{Site: "default"}}, Digest: "0123456789abcdef", CurrentDigest: knows},
		"before":       {Reports: true, Sites: 3, Digest: serves, CurrentDigest: before},
	}}
	opts := edgeset.SelectOptions{MaxAge: time.Hour}
	want := map[string][]string{
		site.DefaultSite: {"all", "before", "blog-lags", "old-release", "overflow"},
		"blog":           {"all", "default-lags"},
		"docs":           {"all", "blog-lags", "default-lags"},
	}
	for name, serving := range want {
		s, ok := v.Sites.Lookup(name)
		if !ok {
			t.Fatalf("no site %s", name)
		}
		if got := edgeset.Serving(v, s, fleet.Now, opts); !slices.Equal(got, serving) {
			t.Errorf("%s served by %v, want %v", name, got, serving)
		}
		d := edgeset.SelectSite(v, s, edgeset.Client{}, fleet.Now, opts)
		if d.Chosen == nil || !slices.Contains(serving, d.Chosen.Edge.Node) {
			t.Errorf("%s: chose %+v", name, d.Chosen)
		}
		x := edgeset.ExplainSite(d, edgeset.Client{}, s, fleet.Now)
		if x.Site != name || x.Deploy != s.Current {
			t.Errorf("explanation for %s/%s: %s/%s", name, s.Current, x.Site, x.Deploy)
		}
		for _, ex := range x.Excluded {
			if name != site.DefaultSite && (ex.Reason != edgeset.ExcludeSiteLagging || ex.Detail == "") {
				t.Errorf("%s: %s excluded for %v (%q)", name, ex.Node, ex.Reason, ex.Detail)
			}
		}
	}
	blog, _ := v.Sites.Lookup("blog")
	x := edgeset.ExplainSite(edgeset.SelectSite(v, blog, edgeset.Client{}, fleet.Now, opts), edgeset.Client{}, blog, fleet.Now)
	details := map[string]string{}
	for _, ex := range x.Excluded {
		details[ex.Node] = ex.Detail
	}
	for node, frag := range map[string]string{"old-release": "earlier release", "blog-lags": "lists the site",
		"overflow": "more sites", "before": "other current deploys"} {
		if !strings.Contains(details[node], frag) {
			t.Errorf("%s: detail %q lacks %q", node, details[node], frag)
		}
	}
	b, _ := json.Marshal(x)
	if !strings.Contains(string(b), `"reason":"lagging for the site"`) || !strings.Contains(string(b), `"site":"blog"`) {
		t.Errorf("JSON: %s", b)
	}
}

func TestSitesMatch(t *testing.T) {
	ss := threeSites()
	for host, want := range map[string]string{"blog.example.com": "blog", "BLOG.example.com:443": "blog",
		"a.docs.example.com": "docs", "docs.example.com": "default", "example.org": "default"} {
		if s, ok := ss.Match(host); !ok || s.Name != want {
			t.Errorf("Match(%q) = %q, %v; want %s", host, s.Name, ok, want)
		}
	}
	noDefault := edgeset.NewSites([]edgeset.Site{{Name: "blog", Hosts: []string{"blog.example.com"}}})
	if s, ok := noDefault.Match("example.org"); ok {
		t.Errorf("unclaimed host matched %q without a default site", s.Name)
	}
}

// TestSetFollowsSites feeds a Set the records, pointers and heartbeats a network would bring and
// checks its Status: the implicit default site, a site by its record, each with the edges that
// serve it; then the removal of a site.
func TestSetFollowsSites(t *testing.T) {
	s := runSet(t, edgeset.Config{})
	add := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: b})
	}
	def, blog := site.DeployIDOf([]byte("default")), site.DeployIDOf([]byte("blog"))
	add(site.CurrentKey, site.Current{Deploy: def, Time: time.Now()})
	add(site.RecordKey("blog"), site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}})
	add(site.CurrentKeyOf("blog"), site.Current{Deploy: blog, Time: time.Now()})
	add(site.RecordKey("evil"), site.Record{V: 1, Name: "other", Hosts: []string{"evil.example.com"}}) // name and key disagree: refused
	beat := func(i byte, name string, extra string) {
		h := heartbeat.Heartbeat{Seq: 1, Time: time.Now().UnixMilli(), Name: name, PublicURL: "http://" + name + ".example",
			Deploy: def.String(), Synced: true}
		b, err := heartbeat.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		if extra != "" {
			b = append(b[:len(b)-1], ","+extra+"}"...)
		}
		var from dt.NodeID
		from[0], from[15] = 0xed, i
		s.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: from, Object: b})
	}
	// An edge of the release before current_digest serving every current deploy, so its
	// sites_digest is the one the Set expects.
	all := heartbeat.CurrentsDigest(map[string]string{site.DefaultSite: def.String(), "blog": blog.String()})
	beat(1, "new", `"sites":2,"sites_digest":"`+all+`"`)
	beat(2, "lags", `"sites":2,"lagging":[{"site":"blog","deploy":""}]`)
	beat(3, "old", "")
	serving := func() (map[string][]string, error) {
		out := map[string][]string{}
		names := map[string]string{}
		st := s.Status()
		for _, e := range st.Edges {
			names[e.Node] = e.Last.Name
		}
		for _, site := range st.Sites {
			var ns []string
			for _, n := range site.Serving {
				ns = append(ns, names[n])
			}
			slices.Sort(ns)
			out[site.Name] = ns
		}
		return out, nil
	}
	got, _ := serving()
	want := map[string][]string{"default": {"lags", "new", "old"}, "blog": {"new"}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("serving %v, want %v", got, want)
	}
	if _, cur := s.Snapshot(); cur != def.String() { // what GeoDNS and a single-site redirector choose by
		t.Errorf("Snapshot's current %q, want the default site's %s", cur, def)
	}
	if st := s.Status(); st.Current != def.String() || st.Sites[1].Name != "default" || !st.Sites[1].Implicit || st.Sites[0].Hosts[0] != "blog.example.com" {
		t.Errorf("status sites %+v", st.Sites)
	}
	blog2 := site.DeployIDOf([]byte("blog 2"))
	add(site.CurrentKeyOf("blog"), site.Current{Deploy: blog2, Time: time.Now()})
	if b, _ := s.View().Sites.Lookup("blog"); b.Current != blog2.String() || b.Previous != blog.String() {
		t.Errorf("after a publish, blog's current %.8s and previous %.8s, want %.8s and %.8s", b.Current, b.Previous, blog2, blog)
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: site.RecordKey("blog")})
	wait.For(t, time.Second, func() error {
		if n := len(s.View().Sites.List()); n != 1 {
			return fmt.Errorf("%d sites after the removal", n)
		}
		return nil
	})
	// dt site remove default: the implicit default site leaves with its pointer, as it does
	// on the edges, and no site claims a host any more.
	s.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: site.CurrentKey})
	wait.For(t, time.Second, func() error {
		if n := len(s.View().Sites.List()); n != 0 {
			return fmt.Errorf("%d sites after the default pointer's removal", n)
		}
		return nil
	})
	if m, ok := s.View().Sites.Match("unknown.example.com"); ok {
		t.Errorf("an unclaimed host matched %q with no site left", m.Name)
	}
	if _, cur := s.Snapshot(); cur != "" {
		t.Errorf("Snapshot's current %q with no default pointer", cur)
	}
}

// TestHundredSites checks the benchmark's view: each site is served by every edge but the ones
// lagging for it.
func TestHundredSites(t *testing.T) {
	v, sites := HundredSites()
	for i, s := range sites {
		lagging := map[string]bool{}
		for node, r := range v.Reports {
			for _, l := range r.Lagging {
				if l.Site == s.Name {
					lagging[node] = true
				}
			}
		}
		got := edgeset.Serving(v, s, fleet.Now, edgeset.SelectOptions{})
		if len(got)+len(lagging) != 20 {
			t.Errorf("site %d served by %d edges, %d lagging", i, len(got), len(lagging))
		}
		for _, n := range got {
			if lagging[n] {
				t.Errorf("site %d served by %s, which lags for it", i, n)
			}
		}
	}
}

// TestSetRefusesOverlongReport checks MaxLagging at the Set: a heartbeat listing more lagging
// sites is counted in dt_redirector_site_reports_refused_total, and its edge counts for the
// default site alone, as an edge of the previous release does.
func TestSetRefusesOverlongReport(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := runSet(t, edgeset.Config{Registerer: reg})
	def, blog := site.DeployIDOf([]byte("default")), site.DeployIDOf([]byte("blog"))
	for key, v := range map[string]any{
		site.CurrentKey:           site.Current{Deploy: def, Time: time.Now()},
		site.RecordKey("blog"):    site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}},
		site.CurrentKeyOf("blog"): site.Current{Deploy: blog, Time: time.Now()},
	} {
		b, _ := json.Marshal(v)
		s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: b})
	}
	var lagging []string
	for i := range heartbeat.MaxLagging + 1 {
		lagging = append(lagging, fmt.Sprintf(`{"site":"s%02d","deploy":""}`, i))
	}
	b, err := heartbeat.Encode(heartbeat.Heartbeat{Seq: 1, Time: time.Now().UnixMilli(), PublicURL: "http://e.example",
		Deploy: def.String(), Synced: true})
	if err != nil {
		t.Fatal(err)
	}
	b = append(b[:len(b)-1], `,"sites":50,"lagging":[`+strings.Join(lagging, ",")+`]}`...)
	s.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: dt.NodeID{0xed, 1}, Object: b})
	if n := promtest.Value(t, reg, "dt_redirector_site_reports_refused_total"); n != 1 {
		t.Errorf("refused %v reports, want 1", n)
	}
	for _, st := range s.Status().Sites {
		if want := map[string]int{"default": 1, "blog": 0}[st.Name]; len(st.Serving) != want {
			t.Errorf("%s served by %v, want %d edges", st.Name, st.Serving, want)
		}
	}
}

// TestSetRaceOfPointerAndHeartbeat: an edge builds a heartbeat while it still knows blog's
// previous deploy, and the Set learns blog's new one before that heartbeat arrives. However late
// it arrives, the heartbeat does not count the edge for blog; it still counts for docs, on which
// the edge lags throughout, and for the default site. Once the edge hears of the new deploy it
// lists blog as lagging until it serves it.
func TestSetRaceOfPointerAndHeartbeat(t *testing.T) {
	s := runSet(t, edgeset.Config{})
	add := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: b})
	}
	id := func(s string) site.DeployID { return site.DeployIDOf([]byte(s)) }
	add(site.CurrentKey, site.Current{Deploy: id("default"), Time: time.Now()})
	for _, name := range []string{"blog", "docs"} {
		add(site.RecordKey(name), site.Record{V: 1, Name: name, Hosts: []string{name + ".example.com"}})
	}
	add(site.CurrentKeyOf("blog"), site.Current{Deploy: id("blog v1"), Time: time.Now()})
	add(site.CurrentKeyOf("docs"), site.Current{Deploy: id("docs v2"), Time: time.Now()})
	seq := uint64(0)
	beat := func(blogCurrent, blogServed string) heartbeat.Heartbeat {
		seq++
		h := heartbeat.Heartbeat{Seq: seq, Time: time.Now().UnixMilli() + int64(seq), PublicURL: "http://e.example",
			Deploy: id("default").String(), Synced: true}
		h.SetSites([]heartbeat.SiteState{
			{Site: site.DefaultSite, Current: id("default").String(), Served: id("default").String()},
			{Site: "blog", Current: id(blogCurrent).String(), Served: id(blogServed).String()},
			{Site: "docs", Current: id("docs v2").String(), Served: id("docs v1").String()},
		})
		return h
	}
	serving := func() map[string]int {
		out := map[string]int{}
		for _, st := range s.Status().Sites {
			out[st.Name] = len(st.Serving)
		}
		return out
	}
	check := func(when string, want map[string]int) {
		t.Helper()
		if got := serving(); !maps.Equal(got, want) {
			t.Errorf("%s: edges serving %v, want %v", when, got, want)
		}
	}
	deliver(t, s, 1, beat("blog v1", "blog v1"))
	check("before the publish", map[string]int{"default": 1, "blog": 1, "docs": 0})

	stale := beat("blog v1", "blog v1") // built before the edge hears of blog v2
	add(site.CurrentKeyOf("blog"), site.Current{Deploy: id("blog v2"), Time: time.Now()})
	check("the Set told of blog v2", map[string]int{"default": 1, "blog": 0, "docs": 0})
	deliver(t, s, 1, stale)
	check("a heartbeat built before the edge heard of blog v2", map[string]int{"default": 1, "blog": 0, "docs": 0})

	deliver(t, s, 1, beat("blog v2", "blog v1"))
	check("the edge fetching blog v2", map[string]int{"default": 1, "blog": 0, "docs": 0})
	deliver(t, s, 1, beat("blog v2", "blog v2"))
	check("the edge serving blog v2", map[string]int{"default": 1, "blog": 1, "docs": 0})
}
