package edgeset

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/site"
)

// MaxLagging bounds SiteReport.Lagging: an edge lists at most this many lagging sites in one
// heartbeat and counts the rest in LaggingMore, so a heartbeat's size does not grow with the
// number of sites. A heartbeat listing more is refused (and counted in
// dt_redirector_site_reports_refused_total): it did not come from a sender that keeps the bound.
const MaxLagging = 32

// ErrInvalidReport is returned by ParseSiteReport for a heartbeat whose per-site fields are
// malformed or out of range.
var ErrInvalidReport = errors.New("edgeset: invalid per-site heartbeat fields")

// SiteReport is the per-site part of an edge's heartbeat: how many sites it knows, the sites
// whose current deploy it does not serve yet, and a digest of what it serves. An edge of a
// release before sites sends none of it, and serves only the site DefaultSite (through its
// Deploy and Synced fields).
type SiteReport struct {
	// Reports says the heartbeat carried the fields: the edge follows every site.
	Reports bool `json:"reports"`
	// Sites is how many sites the edge knows.
	Sites int `json:"sites"`
	// Lagging are the sites whose network-current deploy the edge does not serve yet, sorted by
	// site, at most MaxLagging.
	Lagging []LaggingSite `json:"lagging,omitempty"`
	// LaggingMore counts the lagging sites that did not fit in Lagging: while it is not zero,
	// every site is taken as lagging.
	LaggingMore int `json:"lagging_more,omitempty"`
	// Digest is 16 hex digits of the SHA-256 of the lines "<site> <deploy served>\n" over every
	// site the edge knows, sorted: two edges with one digest serve the same.
	Digest string `json:"sites_digest,omitempty"`
}

// LaggingSite is a site an edge does not serve the current deploy of, and the deploy it serves
// instead (12 hex digits; empty for none).
type LaggingSite struct {
	Site   string `json:"site"`
	Deploy string `json:"deploy"`
}

// lags reports whether the report takes the edge as not serving name's current deploy.
func (r *SiteReport) lags(name string) bool {
	if r.LaggingMore > 0 {
		return true
	}
	_, found := slices.BinarySearchFunc(r.Lagging, name, func(l LaggingSite, n string) int { return strings.Compare(l.Site, n) })
	return found
}

// ParseSiteReport reads the per-site fields of a heartbeat (package heartbeat decodes and checks
// the rest; the same bytes, whose other fields are ignored here). A heartbeat without any of
// them is an edge of an earlier release: Reports is false. It refuses with ErrInvalidReport a
// count below zero, more than MaxLagging entries, entries out of order or repeated, a site that
// is not a valid name, a deploy that is not at most 12 lower-case hex digits, and a digest that
// is not 16.
func ParseSiteReport(b []byte) (SiteReport, error) {
	var raw struct {
		Sites       *int          `json:"sites"`
		Lagging     []LaggingSite `json:"lagging"`
		LaggingMore int           `json:"lagging_more"`
		Digest      string        `json:"sites_digest"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return SiteReport{}, fmt.Errorf("%w: %w", ErrInvalidReport, err)
	}
	r := SiteReport{Lagging: raw.Lagging, LaggingMore: raw.LaggingMore, Digest: raw.Digest}
	if raw.Sites != nil {
		r.Sites = *raw.Sites
	}
	r.Reports = raw.Sites != nil || raw.Lagging != nil || raw.Digest != "" || raw.LaggingMore != 0
	return r, r.validate()
}

func (r *SiteReport) validate() error {
	switch {
	case r.Sites < 0 || r.LaggingMore < 0:
		return fmt.Errorf("%w: negative count", ErrInvalidReport)
	case len(r.Lagging) > MaxLagging:
		return fmt.Errorf("%w: %d lagging sites listed, at most %d", ErrInvalidReport, len(r.Lagging), MaxLagging)
	case r.Digest != "" && !isHex(r.Digest, 16, 16):
		return fmt.Errorf("%w: digest is not 16 hex digits", ErrInvalidReport)
	}
	for i, l := range r.Lagging {
		if site.CheckSiteName(l.Site) != nil || !isHex(l.Deploy, 0, 12) {
			return fmt.Errorf("%w: lagging entry %d", ErrInvalidReport, i)
		}
		// Sorted and unique, so that lags can search it.
		if i > 0 && r.Lagging[i-1].Site >= l.Site {
			return fmt.Errorf("%w: lagging sites not sorted", ErrInvalidReport)
		}
	}
	return nil
}

// isHex reports whether s is between lo and hi lower-case hex digits.
func isHex(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
