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
	// Since is when the Set learned Current. An edge's heartbeat received before then cannot
	// tell whether the edge serves it, except for DefaultSite (see SelectSite).
	Since time.Time `json:"-"`
}

// Sites is the network's sites at one moment and the index of their hosts. It is not modified
// once built.
type Sites struct {
	list  []Site // sorted by name
	hosts *site.Hosts
}

// List returns the sites, sorted by name. Callers must not modify it.
func (s *Sites) List() []Site { return s.list }

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
	currents map[string]string    // site -> deploy
	since    map[string]time.Time // site -> when its current changed
}

// build makes the Sites the records say exist: every site with a record, and DefaultSite when
// its current pointer exists (implicitly, claiming every unclaimed host, when it has no record).
func (r *siteRecords) build() *Sites {
	list := make([]Site, 0, len(r.records)+1)
	for name, rec := range r.records {
		list = append(list, Site{Name: name, Hosts: rec.Hosts, Current: r.currents[name], Since: r.since[name]})
	}
	if _, ok := r.records[site.DefaultSite]; !ok {
		if cur, ok := r.currents[site.DefaultSite]; ok {
			list = append(list, Site{Name: site.DefaultSite, Hosts: []string{}, Implicit: true, Current: cur, Since: r.since[site.DefaultSite]})
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
	implicit := false
	for _, s := range list {
		if s.Implicit && s.Name == site.DefaultSite && len(s.Hosts) == 0 {
			implicit = true
			continue
		}
		recs = append(recs, site.Record{V: 1, Name: s.Name, Hosts: s.Hosts})
	}
	return &Sites{list: list, hosts: site.NewHosts(recs, implicit)}
}

// SelectSite is Select for one site: only edges that serve s's current deploy are eligible.
// For DefaultSite that is Select's rule as it always was (the edge's Deploy and Synced), which
// edges of every release report. For any other site the edge must report its sites (an edge of
// an earlier release serves DefaultSite only), not list s among its lagging sites nor report
// more lagging sites than it lists, and its last heartbeat must have arrived no earlier than the
// Set learned s's current deploy, since until then the edge may not have had it either;
// otherwise the edge is excluded with ExcludeSiteLagging. v.Reports is read, not kept.
func SelectSite(v *View, s Site, client Client, now time.Time, opts SelectOptions) Decision {
	if s.Name == site.DefaultSite {
		return Select(v.Edges, client, s.Current, now, opts)
	}
	return choose(v.Edges, client, now, opts, deployRule{site: func(e *heartbeat.Edge) (ExcludeReason, string) {
		return siteExclusion(e, v.Reports, s)
	}})
}

// Details of ExcludeSiteLagging, for people reading the explain endpoint.
const (
	detailOldRelease = "reports no sites: an edge of an earlier release, serving only the default site"
	detailListed     = "lists the site as lagging"
	detailMore       = "lags for more sites than its heartbeat lists"
	detailBefore     = "no heartbeat since the site's current deploy"
)

// siteExclusion is the deploy rule of SelectSite for a site other than DefaultSite.
func siteExclusion(e *heartbeat.Edge, reports map[string]SiteReport, s Site) (ExcludeReason, string) {
	if s.Current == "" {
		return ExcludeOldDeploy, ""
	}
	r, ok := reports[e.Node]
	switch {
	case !ok || !r.Reports:
		return ExcludeSiteLagging, detailOldRelease
	case r.LaggingMore > 0:
		return ExcludeSiteLagging, detailMore
	case r.lags(s.Name):
		return ExcludeSiteLagging, detailListed
	case e.LastSeen.Before(s.Since):
		return ExcludeSiteLagging, detailBefore
	}
	return 0, ""
}

// Serving returns the node ids of the edges eligible for s in v, for a client of unknown
// address and place, sorted.
func Serving(v *View, s Site, now time.Time, opts SelectOptions) []string {
	d := SelectSite(v, s, Client{}, now, opts)
	out := make([]string, 0, len(d.Candidates))
	for _, c := range d.Candidates {
		out = append(out, c.Edge.Node)
	}
	slices.Sort(out)
	return out
}

// observeReport keeps the per-site report of node's heartbeat h (its bytes b), unless an older
// heartbeat than the one kept. A report that does not parse is counted and kept as none: the
// edge then counts for DefaultSite alone, by the fields every release reports.
func (s *Set) observeReport(node string, h heartbeat.Heartbeat, b []byte, now time.Time) {
	r, err := ParseSiteReport(b)
	if err != nil {
		s.refused.Inc()
		s.log.Warn("Bad per-site heartbeat fields", slog.String("from", node), slog.Any("err", err))
		r = SiteReport{}
	}
	s.sitesMu.Lock()
	defer s.sitesMu.Unlock()
	if old, ok := s.reports[node]; ok && (h.Time < old.time || h.Time == old.time && h.Seq <= old.seq) {
		return
	}
	s.reports[node] = nodeReport{report: r, time: h.Time, seq: h.Seq}
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
		if recs.currents[name] != deploy {
			recs.currents[name] = deploy
			recs.since[name] = time.Now()
		}
	})
}

// removeSiteKey forgets a site record or a site's current pointer that left the table. The
// pointer of DefaultSite is kept, as it always was: a network is not left without its site by
// the removal of the pointer alone. A key the table still holds was replaced (dt reports a
// replacement as a removal and then an addition): it is kept until the addition, so that a
// publish or dt site set never leaves the site without its pointer or its hosts meanwhile.
func (s *Set) removeSiteKey(key string) {
	if s.cfg.Node.Has(key) {
		return
	}
	if name, ok := site.ParseRecordKey(key); ok {
		s.changeSites(func(recs *siteRecords) { delete(recs.records, name) })
		return
	}
	if name, ok := site.ParseCurrentKey(key); ok && name != site.DefaultSite {
		s.changeSites(func(recs *siteRecords) { delete(recs.currents, name); delete(recs.since, name) })
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
