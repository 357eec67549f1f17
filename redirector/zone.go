package redirector

import (
	"net"
	"net/url"
	"sync/atomic"

	"github.com/dt-cdn/dt/cdnzone"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// zoneLabels are the edge labels of one edge list, kept while the list is current: the lists
// the Handler gets are never modified, so the first element's address and the length name one.
type zoneLabels struct {
	first  *heartbeat.Edge
	n      int
	labels *cdnzone.Labels
}

// labelCache keeps the labels of the latest edge list, so that a redirect does not rebuild them.
type labelCache struct{ latest atomic.Pointer[zoneLabels] }

func (c *labelCache) of(edges []heartbeat.Edge) *cdnzone.Labels {
	var first *heartbeat.Edge
	if len(edges) > 0 {
		first = &edges[0]
	}
	if l := c.latest.Load(); l != nil && l.first == first && l.n == len(edges) {
		return l.labels
	}
	in := make([]cdnzone.Edge, 0, len(edges))
	for _, e := range edges {
		in = append(in, cdnzone.Edge{Node: e.Node, Name: e.Last.Name})
	}
	l := &zoneLabels{first: first, n: len(edges), labels: cdnzone.NewLabels(in)}
	c.latest.Store(l)
	return l.labels
}

// origin returns where to send a visitor of t to the chosen edge: with a CDN zone the edge's
// heartbeat says it serves (and, over https, holds a valid certificate for the name),
// "<site>--<edge>.<zone>" with the scheme and port of the edge's public URL; otherwise, or when
// the site's name and the edge's label do not fit in one DNS label, the edge's public URL
// itself (for a site other than the default one, that URL serves the site only if the site
// claims the edge's host).
func (h *Handler) origin(c *edgeset.Candidate, t target) string {
	zone := ""
	if h.zone != nil {
		zone = h.zone()
	}
	if zone == "" || c.Edge.Last.CDNZone != zone {
		return c.URL // an edge that does not (yet) serve the zone's names: an earlier release
	}
	edges := t.edges
	if t.view != nil {
		edges = t.view.Edges
	}
	label, ok := h.labels.of(edges).Label(c.Edge.Node)
	name := t.site.Name
	if name == "" {
		name = site.DefaultSite
	}
	u, err := url.Parse(c.URL)
	if !ok || err != nil || cdnzone.CheckFits(name, label) != nil {
		return c.URL
	}
	host := cdnzone.SiteEdge(name, label, zone)
	if u.Scheme == "https" {
		// The edge was judged by the certificate of its URL's host: send the visitor by the
		// zone's name only if the edge reports a valid one for that name too (the zone's
		// wildcard, typically).
		if valid, _ := c.Edge.Last.Certs.ValidFor(host, h.now()); !valid {
			return c.URL
		}
	}
	if port := u.Port(); port != "" {
		host = net.JoinHostPort(host, port)
	}
	return u.Scheme + "://" + host
}
