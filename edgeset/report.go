package edgeset

import (
	"slices"
	"strings"

	"github.com/dt-cdn/dt/heartbeat"
)

// SiteReport is the per-site part of an edge's heartbeat (heartbeat.Heartbeat's Sites, Lagging,
// LaggingMore, SitesDigest and CurrentDigest, which heartbeat.Decode checks): how many sites it
// knows, the sites whose current deploy it does not serve yet, a digest of what it serves and
// one of the current deploys it knows. An edge of a release before sites sends none of it, and
// serves only the site DefaultSite (through its Deploy and Synced fields).
type SiteReport struct {
	// Reports says the heartbeat carried the fields: the edge follows every site.
	Reports bool `json:"reports"`
	// Sites is how many sites the edge knows.
	Sites int `json:"sites"`
	// Lagging are the sites whose current deploy the edge does not serve yet, sorted by site,
	// at most heartbeat.MaxLagging.
	Lagging []LaggingSite `json:"lagging,omitempty"`
	// LaggingMore counts the lagging sites that did not fit in Lagging: while it is not zero,
	// every site is taken as lagging.
	LaggingMore int `json:"lagging_more,omitempty"`
	// Digest is heartbeat.SitesDigest of what the edge serves: two edges with one digest serve
	// the same.
	Digest string `json:"sites_digest,omitempty"`
	// CurrentDigest is heartbeat.CurrentsDigest of the current deploys the edge knows; empty
	// for an edge of a release before it.
	CurrentDigest string `json:"current_digest,omitempty"`
}

// LaggingSite is a site an edge does not serve the current deploy of, and the deploy it serves
// instead (heartbeat.DeployPrefixLen hex digits; empty for none).
type LaggingSite = heartbeat.Lag

// ReportOf returns the per-site report of a decoded heartbeat.
func ReportOf(h heartbeat.Heartbeat) SiteReport {
	return SiteReport{Reports: h.SitesDigest != "", Sites: h.Sites, Lagging: h.Lagging, LaggingMore: h.LaggingMore,
		Digest: h.SitesDigest, CurrentDigest: h.CurrentDigest}
}

// verdict applies heartbeat.ServesSite to the report.
func (r *SiteReport) verdict(name, expected string) heartbeat.SiteVerdict {
	if !r.Reports {
		return heartbeat.ReportsNoSites
	}
	h := heartbeat.Heartbeat{Sites: r.Sites, Lagging: r.Lagging, LaggingMore: r.LaggingMore, SitesDigest: r.Digest, CurrentDigest: r.CurrentDigest}
	return h.ServesSite(name, expected)
}

// servesEarlier reports whether the edge, not serving site name's current deploy, still serves
// an earlier one of it: it lists the site lagging with the deploy it serves, or it has not heard
// of the site's latest publish (its known current deploys differ from expected) while serving
// every deploy it knows, and the site had a deploy before (hadEarlier). An edge reporting no
// sites serves none but the default site's.
func (r *SiteReport) servesEarlier(name, expected string, hadEarlier bool) bool {
	switch r.verdict(name, expected) {
	case heartbeat.LagsListed:
		i, _ := slices.BinarySearchFunc(r.Lagging, name, func(l LaggingSite, n string) int { return strings.Compare(l.Site, n) })
		return r.Lagging[i].Deploy != ""
	case heartbeat.OtherCurrents:
		return hadEarlier && r.Digest == r.CurrentDigest
	}
	return false
}
