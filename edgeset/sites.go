package edgeset

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// Site is one site of the network as a Set knows it.
type Site struct {
	Name string `json:"name"`
	// Hosts are the hosts its record claims; empty for the site DefaultSite without a record,
	// which then claims every host no other site claims (Implicit).
	Hosts    []string `json:"hosts"`
	Implicit bool     `json:"implicit,omitempty"`
	// Current is its current deploy (64 hex), empty while it has none.
	Current string `json:"current_deploy"`
	// Previous is the deploy that was current before Current, as this node saw the site's
	// pointer change; empty when it saw none. Edges still serving it are the fallback while none
	// reports Current yet (SelectOptions.Fallback).
	Previous string `json:"previous_deploy,omitempty"`
}

// Sites is the network's sites at one moment and the index of their hosts. It is not modified
// once built.
type Sites struct {
	list  []Site // sorted by name
	hosts *site.Hosts
	// currents is heartbeat.CurrentsDigest of the sites' current deploys: what an edge reports
	// when it knows the same ones (see heartbeat.Heartbeat.ServesSite).
	currents string
}

// List returns the sites, sorted by name. Callers must not modify it.
func (s *Sites) List() []Site { return s.list }

// CurrentsDigest returns heartbeat.CurrentsDigest of the sites' current deploys.
func (s *Sites) CurrentsDigest() string { return s.currents }

// Lookup returns the site named name.
func (s *Sites) Lookup(name string) (Site, bool) {
	i, ok := slices.BinarySearchFunc(s.list, name, func(x Site, n string) int { return strings.Compare(x.Name, n) })
	if !ok {
		return Site{}, false
	}
	return s.list[i], true
}

// Match returns the site that serves host (a request's Host), by site.Hosts.Match, and false
// when no site claims it.
func (s *Sites) Match(host string) (Site, bool) {
	name, ok := s.hosts.Match(host)
	if !ok {
		return Site{}, false
	}
	return s.Lookup(name)
}

// View is what a choice needs, taken at one moment: the edges, their per-site reports and the
// sites. It is not modified once built; callers must not modify it either.
type View struct {
	Edges   []heartbeat.Edge
	Reports map[string]SiteReport // by node id; none for edges that sent no heartbeat yet
	Sites   *Sites
}

// siteRecords is what a Set holds of the sites, guarded by Set.sitesMu.
type siteRecords struct {
	records  map[string]site.Record
	currents map[string]string // site -> deploy
	previous map[string]string // site -> the deploy current before, once a pointer changed
}

// build makes the Sites the records say exist: every site with a record, and DefaultSite when
// its current pointer exists (implicitly, claiming every unclaimed host, when it has no record).
func (r *siteRecords) build() *Sites {
	list := make([]Site, 0, len(r.records)+1)
	for name, rec := range r.records {
		list = append(list, Site{Name: name, Hosts: rec.Hosts, Current: r.currents[name], Previous: r.previous[name]})
	}
	if _, ok := r.records[site.DefaultSite]; !ok {
		if cur, ok := r.currents[site.DefaultSite]; ok {
			list = append(list, Site{Name: site.DefaultSite, Hosts: []string{}, Implicit: true, Current: cur, Previous: r.previous[site.DefaultSite]})
		}
	}
	return NewSites(list)
}

// NewSites indexes sites (by site.NewHosts: where two claim one host, the name sorting first
// wins). A Site with Implicit set claims every host no other claims; only DefaultSite may be
// implicit, and only without hosts of its own. It keeps list, sorted by name.
func NewSites(list []Site) *Sites {
	slices.SortFunc(list, func(a, b Site) int { return strings.Compare(a.Name, b.Name) })
	recs := make([]site.Record, 0, len(list))
	currents := make(map[string]string, len(list))
	implicit := false
	for _, s := range list {
		currents[s.Name] = s.Current
		if s.Implicit && s.Name == site.DefaultSite && len(s.Hosts) == 0 {
			implicit = true
			continue
		}
		recs = append(recs, site.Record{V: 1, Name: s.Name, Hosts: s.Hosts})
	}
	return &Sites{list: list, hosts: site.NewHosts(recs, implicit), currents: heartbeat.CurrentsDigest(currents)}
}

// SelectSite is Select for one site: only edges that serve s's current deploy are eligible.
// For DefaultSite that is Select's rule as it always was (the edge's Deploy and Synced), which
// edges of every release report. For any other site it is heartbeat.Heartbeat.ServesSite
// against v.Sites' current deploys: the edge serves every one of them, or knows the same ones
// and does not list s among its lagging sites nor lag on more sites than it lists. An edge
// whose last heartbeat was built before it heard of s's current deploy is never eligible for s;
// otherwise the edge is excluded with ExcludeSiteLagging. v.Reports is read, not kept.
func SelectSite(v *View, s Site, client Client, now time.Time, opts SelectOptions) Decision {
	if s.Name == site.DefaultSite {
		return Select(v.Edges, client, s.Current, now, opts)
	}
	expected := v.Sites.CurrentsDigest()
	return choose(v.Edges, client, now, opts, deployRule{
		site: func(e *heartbeat.Edge) (ExcludeReason, string) {
			return siteExclusion(e, v.Reports, s, expected)
		},
		earlier: func(e *heartbeat.Edge) bool {
			r := v.Reports[e.Node]
			return s.Current != "" && r.servesEarlier(s.Name, expected, s.Previous != "")
		},
	})
}

// Details of ExcludeSiteLagging, by verdict, for people reading the explain endpoint.
var siteDetails = map[heartbeat.SiteVerdict]string{
	heartbeat.ReportsNoSites: "reports no sites: an edge of an earlier release, serving only the default site",
	heartbeat.LagsListed:     "lists the site as lagging",
	heartbeat.LagsUnlisted:   "lags for more sites than its heartbeat lists",
	heartbeat.OtherCurrents:  "its last heartbeat names other current deploys than this node knows: one of them has not heard of a publish yet",
}

// siteExclusion is the deploy rule of SelectSite for a site other than DefaultSite; expected is
// heartbeat.CurrentsDigest of every site's current deploy.
func siteExclusion(e *heartbeat.Edge, reports map[string]SiteReport, s Site, expected string) (ExcludeReason, string) {
	if s.Current == "" {
		return ExcludeOldDeploy, ""
	}
	r := reports[e.Node]
	if v := r.verdict(s.Name, expected); v != heartbeat.Serves {
		return ExcludeSiteLagging, siteDetails[v]
	}
	return 0, ""
}

// Serving returns the node ids of the edges eligible for s in v, for a client of unknown
// address and place, sorted.
func Serving(v *View, s Site, now time.Time, opts SelectOptions) []string {
	opts.Fallback = false
	d := SelectSite(v, s, Client{}, now, opts)
	out := make([]string, 0, len(d.Candidates))
	for _, c := range d.Candidates {
		out = append(out, c.Edge.Node)
	}
	slices.Sort(out)
	return out
}

// addRecord takes the record of site name.
func (s *Set) addRecord(name string, b []byte) {
	r, err := site.ParseRecord(b)
	if err == nil && r.Name != name {
		err = fmt.Errorf("%w: record of %q under the key of %q", site.ErrInvalidRecord, r.Name, name)
	}
	if err != nil {
		s.log.Warn("Bad site record", slog.String("site", name), slog.Any("err", err))
		return
	}
	s.changeSites(func(recs *siteRecords) { recs.records[name] = r })
	s.log.Info("Site", slog.String("site", name), slog.Any("hosts", r.Hosts))
}

// setCurrent takes site name's current deploy.
func (s *Set) setCurrent(name, deploy string) {
	s.changeSites(func(recs *siteRecords) {
		if old := recs.currents[name]; old != "" && old != deploy {
			recs.previous[name] = old
		}
		recs.currents[name] = deploy
	})
}

// removeSiteKey forgets a site record or a site's current pointer that left the table, as the
// edges' followers do (package deploy): a site without its pointer has no current deploy, and
// DefaultSite without a record leaves with its pointer (dt site remove default). A key the
// table still holds was replaced (dt reports a replacement as a removal and then an addition):
// it is kept until the addition, so that a publish or dt site set never leaves the site without
// its pointer or its hosts meanwhile.
func (s *Set) removeSiteKey(key string) {
	if s.cfg.Node.Has(key) {
		return
	}
	if name, ok := site.ParseRecordKey(key); ok {
		s.changeSites(func(recs *siteRecords) { delete(recs.records, name) })
		return
	}
	if name, ok := site.ParseCurrentKey(key); ok {
		if name == site.DefaultSite {
			none := ""
			s.current.Store(&none)
		}
		s.changeSites(func(recs *siteRecords) { delete(recs.currents, name); delete(recs.previous, name) })
	}
}

// changeSites applies change to the records, rebuilds the sites and the view.
func (s *Set) changeSites(change func(*siteRecords)) {
	s.sitesMu.Lock()
	change(&s.recs)
	s.sites.Store(s.recs.build())
	s.sitesMu.Unlock()
	s.refreshSnapshot()
}
