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

// SetSites fills Sites, Lagging, LaggingMore and SitesDigest from the state of every site the
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
	_, listed := slices.BinarySearchFunc(h.Lagging, name, func(l Lag, n string) int { return strings.Compare(l.Site, n) })
	return listed
}

// validateSites checks the per-site fields: counts not negative, at most MaxLagging entries,
// sorted by site without repeats, each a site name and a deploy prefix, and a digest of
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
	if h.SitesDigest == "" && (h.Sites != 0 || len(h.Lagging) != 0) {
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
