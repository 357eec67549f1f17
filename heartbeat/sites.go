package heartbeat

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Limits of a heartbeat's per-site report. A heartbeat lists only the sites an edge lags on, so
// in steady state (every site current) it is as small at 1,000 sites as at one; these bound it
// while many sites lag at once (a fresh edge, a publish of many sites), keeping it under 2 KiB
// beside its other fields.
const (
	// MaxLagging bounds Heartbeat.Lagging; the sites past it are counted in LaggingMore.
	MaxLagging = 32
	// MaxLaggingBytes bounds the JSON of Heartbeat.Lagging's entries: with long site names fewer
	// than MaxLagging fit, and the rest are counted in LaggingMore.
	MaxLaggingBytes = 1 << 10
	// DeployPrefixLen is the length of the deploy prefix in a Lag: 12 hex digits, 48 bits, tell
	// a site's deploys apart in practice; the digest tells edges' states apart exactly.
	DeployPrefixLen = 12
	// DigestLen is the length of Heartbeat.SitesDigest in hex digits.
	DigestLen = 16
)

// Lag is a site whose current deploy the edge does not serve yet.
type Lag struct {
	Site string `json:"site"`
	// Deploy is the first DeployPrefixLen hex digits of the deploy the edge serves for the site,
	// empty when it serves none.
	Deploy string `json:"deploy"`
}

// SiteState is what an edge serves of one site, to fill a heartbeat with SetSites.
type SiteState struct {
	Site string
	// Served is the deploy the edge serves for the site (64 hex digits), empty for none.
	Served string
	// Current is the site's current deploy as the edge last saw it, empty when the site has
	// none; the edge lags on the site when it serves another.
	Current string
}

// SetSites fills Sites, Lagging, LaggingMore, SitesDigest and CurrentDigest from the state of every site the
// edge knows (in any order). It leaves Deploy and Synced, the default site's, to the caller.
func (h *Heartbeat) SetSites(states []SiteState) {
	states = slices.SortedFunc(slices.Values(states), func(a, b SiteState) int { return cmp.Compare(a.Site, b.Site) })
	h.Sites, h.Lagging, h.LaggingMore = len(states), nil, 0
	size := 0
	for _, s := range states {
		if s.Current == "" || s.Served == s.Current {
			continue
		}
		lag := Lag{Site: s.Site, Deploy: s.Served[:min(len(s.Served), DeployPrefixLen)]}
		n := len(`{"site":"","deploy":""},`) + len(lag.Site) + len(lag.Deploy)
		if len(h.Lagging) == MaxLagging || size+n > MaxLaggingBytes {
			h.LaggingMore++
			continue
		}
		h.Lagging, size = append(h.Lagging, lag), size+n
	}
	h.SitesDigest = SitesDigest(states)
	currents := make(map[string]string, len(states))
	for _, s := range states {
		currents[s.Site] = s.Current
	}
	h.CurrentDigest = CurrentsDigest(currents)
}

// SitesDigest returns the first DigestLen hex digits of the SHA-256 of the lines
// "<site> <served>\n" (served: the 64 hex digits of the deploy served, empty for none) of every
// site, sorted by site name. Two edges serving the same deploys of the same sites report the same
// digest.
func SitesDigest(states []SiteState) string {
	states = slices.SortedFunc(slices.Values(states), func(a, b SiteState) int { return cmp.Compare(a.Site, b.Site) })
	d := sha256.New()
	for _, s := range states {
		fmt.Fprintf(d, "%s %s\n", s.Site, s.Served)
	}
	return hex.EncodeToString(d.Sum(nil))[:DigestLen]
}

// CurrentsDigest returns the digest of the current deploys of a network's sites (site name to
// deploy, 64 hex digits; a site without one, "", is left out): SitesDigest of each site serving
// its current deploy. An edge reports it of the deploys it knows as current (CurrentDigest);
// a receiver computes it of those it knows, and so learns whether the edge serves every current
// deploy (SitesDigest equal to it) or has heard of the same publishes (CurrentDigest equal).
func CurrentsDigest(currents map[string]string) string {
	states := make([]SiteState, 0, len(currents))
	for name, deploy := range currents {
		if deploy != "" {
			states = append(states, SiteState{Site: name, Served: deploy})
		}
	}
	return SitesDigest(states)
}

// SiteVerdict is whether a heartbeat says its edge serves a site's current deploy, and why not.
type SiteVerdict int

// Verdicts of ServesSite.
const (
	// Serves: the edge serves the site's current deploy.
	Serves SiteVerdict = iota
	// ReportsNoSites: the heartbeat has no per-site fields, an edge of a release before sites.
	ReportsNoSites
	// LagsUnlisted: the edge lags on more sites than its heartbeat lists (LaggingMore).
	LagsUnlisted
	// LagsListed: the heartbeat lists the site in Lagging.
	LagsListed
	// OtherCurrents: the edge knows other current deploys than the receiver (it has not heard
	// of a publish yet, or the receiver has not), or does not say which it knows (an edge of a
	// release before CurrentDigest), and does not serve every deploy the receiver knows.
	OtherCurrents
)

// ServesSite reports whether the edge serves the current deploy of the site name as the
// receiver knows it, given expected, CurrentsDigest of every site's current deploy as the
// receiver knows them. The edge serves it when its SitesDigest equals expected (it serves
// exactly those deploys), or when its CurrentDigest does (it knows the same current deploys,
// so a site it does not list as lagging is one whose current deploy it serves) and it lists
// every site it lags on and not name among them. A heartbeat built before the edge learned of
// the site's newest deploy matches neither, whenever it arrives. For site.DefaultSite every
// release also reports Deploy and Synced, which receivers read for edges reporting no sites.
func (h Heartbeat) ServesSite(name, expected string) SiteVerdict {
	switch {
	case h.SitesDigest == "":
		return ReportsNoSites
	case h.SitesDigest == expected:
		return Serves
	case h.LaggingMore > 0:
		return LagsUnlisted
	case h.listsLagging(name):
		return LagsListed
	case h.CurrentDigest != expected:
		return OtherCurrents
	}
	return Serves
}

// listsLagging reports whether Lagging lists the site name.
func (h Heartbeat) listsLagging(name string) bool {
	_, listed := slices.BinarySearchFunc(h.Lagging, name, func(l Lag, n string) int { return strings.Compare(l.Site, n) })
	return listed
}

// LaggingOn reports whether the edge does not serve the named site's current deploy, as far as
// the heartbeat says: the site is listed in Lagging, or LaggingMore says the list is cut short
// (then every site not listed may lag too). A heartbeat of an edge that reports no sites (an
// earlier release) lags on the default site unless Synced, and on every other site (it serves
// none of them).
func (h Heartbeat) LaggingOn(name, defaultSite string) bool {
	if h.SitesDigest == "" {
		return name != defaultSite || !h.Synced
	}
	if h.LaggingMore > 0 {
		return true
	}
	return h.listsLagging(name)
}

// validateSites checks the per-site fields: counts not negative, at most MaxLagging entries,
// sorted by site without repeats, each a site name and a deploy prefix, and digests of
// DigestLen hex digits. Receivers binary-search Lagging, so the order is checked, not trusted.
func (h *Heartbeat) validateSites() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if h.Sites < 0 || h.LaggingMore < 0 || len(h.Lagging)+h.LaggingMore > h.Sites {
		return bad("%d sites, %d+%d lagging", h.Sites, len(h.Lagging), h.LaggingMore)
	}
	if len(h.Lagging) > MaxLagging {
		return bad("%d lagging sites listed, at most %d", len(h.Lagging), MaxLagging)
	}
	for i, l := range h.Lagging {
		if !isSiteName(l.Site) || i > 0 && h.Lagging[i-1].Site >= l.Site {
			return bad("lagging site %d not a site name in order", i)
		}
		if len(l.Deploy) != 0 && len(l.Deploy) != DeployPrefixLen || !isHex(l.Deploy) {
			return bad("lagging site %s: deploy %q", l.Site, l.Deploy)
		}
	}
	if h.SitesDigest != "" && (len(h.SitesDigest) != DigestLen || !isHex(h.SitesDigest)) {
		return bad("sites digest %q", h.SitesDigest)
	}
	if h.CurrentDigest != "" && (len(h.CurrentDigest) != DigestLen || !isHex(h.CurrentDigest)) {
		return bad("current digest %q", h.CurrentDigest)
	}
	if h.SitesDigest == "" && (h.Sites != 0 || len(h.Lagging) != 0 || h.CurrentDigest != "") {
		return bad("sites reported without a digest")
	}
	return nil
}

// isSiteName reports whether s is a site name: a DNS label of [a-z0-9-], 1 to 63 bytes, not
// starting or ending with '-' (package site's rule).
func isSiteName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
