package edgeset_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
	"github.com/dt-cdn/dt/site"
)

// candidates returns the node ids of d's candidates, sorted.
func candidates(d edgeset.Decision) []string {
	var out []string
	for _, c := range d.Candidates {
		out = append(out, c.Edge.Node)
	}
	slices.Sort(out)
	return out
}

// TestFallbackDefaultSite checks the moment after a publish of the default site: while no edge
// reports the new deploy, a choice with Fallback goes to the edges still serving an earlier one
// (never to one serving none, nor to one excluded for another reason), says so, and ends as soon
// as one edge reports the new deploy; a choice without Fallback finds none.
func TestFallbackDefaultSite(t *testing.T) {
	edges := []heartbeat.Edge{
		fleet.With(fleet.Live("ams", fleet.Amsterdam), func(e *heartbeat.Edge) { e.Last.Deploy = fleet.Old }),
		fleet.With(fleet.Live("fra", fleet.Frankfurt), func(e *heartbeat.Edge) { e.Last.Synced = false }),
		fleet.With(fleet.Live("empty", fleet.Amsterdam), func(e *heartbeat.Edge) { e.Last.Deploy, e.Last.Synced = "", false }),
		fleet.With(fleet.Live("drain", fleet.Amsterdam), func(e *heartbeat.Edge) { e.Last.Deploy, e.Last.Draining = fleet.Old, true }),
	}
	opts := edgeset.SelectOptions{MaxAge: time.Hour}
	if d := edgeset.Select(edges, edgeset.Client{}, fleet.Current, fleet.Now, opts); d.Chosen != nil || d.Fallback {
		t.Fatalf("without Fallback: chose %v", candidates(d))
	}
	opts.Fallback = true
	d := edgeset.Select(edges, edgeset.Client{}, fleet.Current, fleet.Now, opts)
	if got := candidates(d); !d.Fallback || d.Chosen == nil || !slices.Equal(got, []string{"ams", "fra"}) {
		t.Fatalf("with Fallback: candidates %v, fallback %v", got, d.Fallback)
	}
	if x := edgeset.Explain(d, edgeset.Client{}, fleet.Current, fleet.Now); !x.Fallback || len(x.Excluded) != len(edges) {
		t.Errorf("explanation: fallback %v, %d excluded", x.Fallback, len(x.Excluded))
	}
	edges = append(edges, fleet.Live("new", fleet.Tokyo))
	d = edgeset.Select(edges, edgeset.Client{}, fleet.Current, fleet.Now, opts)
	if got := candidates(d); d.Fallback || !slices.Equal(got, []string{"new"}) {
		t.Errorf("one edge on the new deploy: candidates %v, fallback %v", got, d.Fallback)
	}
	if d := edgeset.Select(edges[:1], edgeset.Client{}, "", fleet.Now, opts); d.Chosen != nil {
		t.Errorf("no current deploy: chose %s", d.Chosen.Edge.Node)
	}
}

// TestFallbackNamedSite checks the same for a site other than the default one: an edge listing
// the site lagging with the deploy it serves, and one that has not heard of the publish while
// serving everything it knows, are the fallback once the site had an earlier deploy; an edge
// lagging with no deploy of the site, and any edge for a site that never had an earlier deploy,
// are not; Serving never counts a fallback.
func TestFallbackNamedSite(t *testing.T) {
	edges := []heartbeat.Edge{
		fleet.Live("listed", fleet.Amsterdam),
		fleet.Live("unheard", fleet.Amsterdam),
		fleet.Live("nothing", fleet.Amsterdam),
		fleet.Live("unheard-behind", fleet.Amsterdam),
	}
	blog := edgeset.Site{Name: "blog", Hosts: []string{"blog.example.com"}, Current: "blog-2", Previous: "blog-1"}
	sites := edgeset.NewSites([]edgeset.Site{{Name: site.DefaultSite, Hosts: []string{}, Implicit: true, Current: fleet.Current}, blog})
	knows := sites.CurrentsDigest()
	before := heartbeat.CurrentsDigest(map[string]string{site.DefaultSite: fleet.Current, "blog": "blog-1"})
	servesBefore := heartbeat.SitesDigest([]heartbeat.SiteState{{Site: site.DefaultSite, Served: fleet.Current}, {Site: "blog", Served: "blog-1"}})
	v := &edgeset.View{Edges: edges, Sites: sites, Reports: map[string]edgeset.SiteReport{
		"listed":         {Reports: true, Sites: 2, Lagging: []edgeset.LaggingSite{{Site: "blog", Deploy: "blog-1"}}, Digest: "0123456789abcdef", CurrentDigest: knows},
		"unheard":        {Reports: true, Sites: 2, Digest: before, CurrentDigest: before},
		"nothing":        {Reports: true, Sites: 2, Lagging: []edgeset.LaggingSite{{Site: "blog"}}, Digest: "0123456789abcdef", CurrentDigest: knows},
		"unheard-behind": {Reports: true, Sites: 2, Digest: servesBefore, CurrentDigest: "fedcba9876543210"},
	}}
	opts := edgeset.SelectOptions{MaxAge: time.Hour, Fallback: true}
	d := edgeset.SelectSite(v, blog, edgeset.Client{}, fleet.Now, opts)
	if got := candidates(d); !d.Fallback || !slices.Equal(got, []string{"listed", "unheard"}) {
		t.Errorf("blog with an earlier deploy: candidates %v, fallback %v", got, d.Fallback)
	}
	if got := edgeset.Serving(v, blog, fleet.Now, opts); len(got) != 0 {
		t.Errorf("Serving counts fallbacks: %v", got)
	}
	fresh := blog
	fresh.Previous = ""
	if d := edgeset.SelectSite(v, fresh, edgeset.Client{}, fleet.Now, opts); !slices.Equal(candidates(d), []string{"listed"}) {
		t.Errorf("blog's first deploy: candidates %v", candidates(d))
	}
}
