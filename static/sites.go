package static

import (
	"net/http"
	"slices"

	"github.com/dt-cdn/dt/cdnzone"
	"github.com/dt-cdn/dt/site"
)

// Sites is what a Handler serves for a network of many sites: the host table that picks a site
// by the request's Host (and TLS server name), and the deploy each site serves. It is immutable
// and safe for concurrent use; a change is a new Sites swapped in with Handler.SetSites.
type Sites struct {
	hosts *site.Hosts
	sites []*Site // by the site's index in hosts.Names(); nil: no deploy yet
	// zone is the CDN zone (netconf form), empty for none; own is the edge's own public host,
	// which "<edge>.<zone>" is answered as. See WithZone.
	zone, own string
}

// NewSites returns the Sites of the host table hosts, with the deploys of sites (by name).
// Entries of sites the table does not name are never served.
func NewSites(hosts *site.Hosts, sites map[string]*Site) *Sites {
	ss := &Sites{hosts: hosts, sites: make([]*Site, len(hosts.Names()))}
	for i, name := range hosts.Names() {
		ss.sites[i] = sites[name]
	}
	return ss
}

// Hosts returns the host table.
func (ss *Sites) Hosts() *site.Hosts { return ss.hosts }

// Site returns the deploy the named site serves, or nil.
func (ss *Sites) Site(name string) *Site {
	if i, ok := slices.BinarySearch(ss.hosts.Names(), name); ok {
		return ss.sites[i]
	}
	return nil
}

// WithZone returns a copy of ss that also serves the names under the CDN zone (package cdnzone;
// empty: none): "<site>.<zone>" and "<site>--<edge>.<zone>" as the site (whatever the edge
// label: a visitor GeoDNS or an older redirect sent here still gets the site),
// "<deploy12>--<site>.<zone>" as the site while its current deploy starts with those digits
// (see PickDeploy), and "<edge>.<zone>" as own, the edge's own public host. A host a site's
// record claims is that site's, under the zone or not; the implicit default site's catch-all
// comes after the zone's names.
func (ss *Sites) WithZone(zone, own string) *Sites {
	c := *ss
	c.zone, c.own = zone, site.NormalizeHost(own)
	return &c
}

// lookup returns the index of the site serving host, and the deploy prefix a preview name
// holds ("" for other names).
func (ss *Sites) lookup(host string) (i int, preview string, ok bool) {
	i, ok = ss.hosts.Lookup(host)
	if ss.zone == "" || ok && ss.hosts.Names()[i] != site.DefaultSite {
		return i, "", ok
	}
	n, err := cdnzone.Parse(site.NormalizeHost(host), ss.zone)
	if err != nil {
		return i, "", ok
	}
	name := n.Site
	if n.Kind == cdnzone.KindLabel {
		name = n.Label
	}
	if j, found := slices.BinarySearch(ss.hosts.Names(), name); found {
		return j, n.Deploy, true
	}
	if n.Kind == cdnzone.KindLabel && ss.own != "" {
		i, ok = ss.hosts.Lookup(ss.own)
	}
	return i, "", ok
}

// PickDeploy is Pick, with the deploy prefix of a preview name ("" for other names): the caller
// serves the site only when its deploy's id starts with it.
func (ss *Sites) PickDeploy(r *http.Request) (name string, s *Site, claimed bool, preview string) {
	i, preview, claimed := ss.lookup(r.Host)
	if !claimed {
		return "", nil, false, ""
	}
	if r.TLS != nil && r.TLS.ServerName != "" {
		if sni, _, ok := ss.lookup(r.TLS.ServerName); !ok || sni != i {
			return "", nil, false, ""
		}
	}
	return ss.hosts.Names()[i], ss.sites[i], true, preview
}

// Pick returns the site that answers r: the site of its Host (":authority" over HTTP/2), which
// must also be the site of its TLS server name when it came over TLS with one. claimed is false
// when no site claims the Host, or the server name belongs to another site (or to none): a
// client that reuses a connection for another site's name (RFC 9113 §9.1.1) must ask again on
// a connection of its own, so 421 Misdirected Request (RFC 9110 §15.5.20). s is nil for a site
// that serves no deploy yet.
func (ss *Sites) Pick(r *http.Request) (name string, s *Site, claimed bool) {
	name, s, claimed, _ = ss.PickDeploy(r)
	return name, s, claimed
}
