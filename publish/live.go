package publish

import (
	"cmp"
	"context"
	"slices"

	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// liveRule tells, from an edge's last heartbeat, whether it serves a site's current deploy.
// For site.DefaultSite it is the rule every release reports: the heartbeat's Deploy and Synced.
// For any other site it is heartbeat.Heartbeat.ServesSite against the current deploys of every
// site as the session's copy of the table names them, as a redirector counts edges; edges that
// report no sites (a release before sites) serve none but the default site and are left out.
type liveRule struct {
	site string
	// current is the site's current deploy in the table; expected is heartbeat.CurrentsDigest
	// of every site's. Both are unused for site.DefaultSite.
	current, expected string
	// gen is the session's sitesGen when current and expected were read.
	gen   uint64
	ready bool
}

// refreshRule makes rule the one for the site name, reading the table's sites and pointers again
// when they changed since rule was made.
func (s *session) refreshRule(ctx context.Context, rule *liveRule, name string) error {
	gen := s.sitesGen.Load()
	if rule.ready && rule.gen == gen {
		return nil
	}
	var currents map[string]string
	if name != site.DefaultSite {
		var err error
		if currents, err = s.siteCurrents(ctx); err != nil {
			return err
		}
	}
	*rule = newLiveRule(name, currents)
	rule.gen, rule.ready = gen, true
	return nil
}

// newLiveRule returns the rule for the site name, given the current deploy of every site
// (unused for site.DefaultSite).
func newLiveRule(name string, currents map[string]string) liveRule {
	if name == site.DefaultSite {
		return liveRule{site: name}
	}
	return liveRule{site: name, current: currents[name], expected: heartbeat.CurrentsDigest(currents)}
}

// siteCurrents returns the current deploy of every site the table holds (every record, and the
// implicit default site), by name, as edges and redirectors count them; sites without one are
// left out.
func (s *session) siteCurrents(ctx context.Context) (map[string]string, error) {
	records, implicit, err := s.sites(ctx)
	if err != nil {
		return nil, err
	}
	pointers, err := s.currents(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(records)+1)
	for _, r := range records {
		names = append(names, r.Name)
	}
	if implicit {
		names = append(names, site.DefaultSite)
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		if id, ok := pointers[name]; ok {
			out[name] = id.String()
		}
	}
	return out, nil
}

// serves reports whether the edge's last heartbeat says it serves id, and what it serves of the
// site: the full deploy id, the prefix its heartbeat lists when it lags on the site, or "" when
// the heartbeat does not say.
func (r *liveRule) serves(h heartbeat.Heartbeat, id site.DeployID) (bool, string) {
	want := id.String()
	if r.site == site.DefaultSite {
		return h.Deploy == want && h.Synced, h.Deploy
	}
	if r.current == want && h.ServesSite(r.site, r.expected) == heartbeat.Serves {
		return true, want
	}
	if i, ok := slices.BinarySearchFunc(h.Lagging, r.site, func(l heartbeat.Lag, n string) int { return cmp.Compare(l.Site, n) }); ok {
		return false, h.Lagging[i].Deploy
	}
	return false, ""
}

// results returns the live edges that count for the rule's site, sorted by URL, each with
// whether it serves id, and how many do. Draining edges take no visitors and do not count.
func (r *liveRule) results(all []heartbeat.Edge, id site.DeployID) ([]EdgeResult, int) {
	var edges []EdgeResult
	live := 0
	for _, e := range all {
		if e.State != heartbeat.Alive || e.Last.Draining {
			continue
		}
		if r.site != site.DefaultSite && e.Last.SitesDigest == "" {
			continue
		}
		ok, deploy := r.serves(e.Last, id)
		if ok {
			live++
		}
		edges = append(edges, EdgeResult{Node: e.Node, Name: e.Last.Name, URL: e.Last.PublicURL, Deploy: deploy, Live: ok})
	}
	slices.SortFunc(edges, func(a, b EdgeResult) int { return cmp.Compare(a.URL, b.URL) })
	return edges, live
}
