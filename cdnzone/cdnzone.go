package cdnzone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dt-cdn/dt/internal/dnsname"
)

// Kind is what a name under the zone names.
type Kind int

// Kinds of names. A Label is "<x>.<zone>": a site or an edge (see Resolve).
const (
	KindLabel    Kind = iota + 1 // <site or edge>.<zone>
	KindSiteEdge                 // <site>--<edge>.<zone>
	KindPreview                  // <deploy12>--<site>.<zone>
)

// DeployPrefixLen is how many hex digits of a deploy id a preview name holds: 48 bits, enough
// that the kept deploys of one site (a few dozen) never share a prefix by chance.
const DeployPrefixLen = 12

// MaxLabel is the longest DNS label (RFC 1035 §2.3.4).
const MaxLabel = 63

// sep joins the two parts of a label; site names and edge labels never contain it.
const sep = "--"

// ErrNotInZone is returned by Parse for a name outside the zone or not of a form above.
var ErrNotInZone = errors.New("cdnzone: not a name of the CDN zone")

// Name is a parsed name under the zone. Label is set for KindLabel, Site and Edge for
// KindSiteEdge, Deploy (DeployPrefixLen hex digits) and Site for KindPreview.
type Name struct {
	Kind   Kind
	Label  string
	Site   string
	Edge   string
	Deploy string
}

// Parse reads host (any case, with or without a trailing dot, without a port) as a name under
// zone (normalised, as
// netconf.NormalizeZone gives it). It checks the form only; whether the site, edge or deploy
// exists is the caller's to check.
func Parse(host, zone string) (Name, error) {
	if zone == "" || len(host) <= len(zone)+1 {
		return Name{}, ErrNotInZone
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	first, ok := strings.CutSuffix(host, "."+zone)
	if !ok || !dnsname.IsLabel(first) {
		return Name{}, ErrNotInZone
	}
	a, b, two := strings.Cut(first, sep)
	switch {
	case !two:
		return Name{Kind: KindLabel, Label: first}, nil
	case !isPart(a) || !isPart(b):
		return Name{}, ErrNotInZone
	case isDeployPrefix(a):
		return Name{Kind: KindPreview, Deploy: a, Site: b}, nil
	}
	return Name{Kind: KindSiteEdge, Site: a, Edge: b}, nil
}

// String returns the name under zone, without a trailing dot: the inverse of Parse.
func (n Name) String(zone string) string {
	switch n.Kind {
	case KindSiteEdge:
		return SiteEdge(n.Site, n.Edge, zone)
	case KindPreview:
		return Preview(n.Deploy, n.Site, zone)
	}
	return n.Label + "." + zone
}

// Single returns "<label>.<zone>": an edge's or a site's name.
func Single(label, zone string) string { return label + "." + zone }

// SiteEdge returns "<site>--<edge>.<zone>".
func SiteEdge(site, edge, zone string) string { return site + sep + edge + "." + zone }

// Preview returns "<deploy12>--<site>.<zone>" for a deploy id (hex; its first DeployPrefixLen
// digits are used).
func Preview(deploy, site, zone string) string {
	return deploy[:min(len(deploy), DeployPrefixLen)] + sep + site + "." + zone
}

// CheckFits reports an error when "<a>--<b>" is longer than a DNS label, as a site name and an
// edge label of up to 63 characters each may be: that pair then has no name under the zone.
func CheckFits(a, b string) error {
	if len(a)+len(sep)+len(b) > MaxLabel {
		return fmt.Errorf("cdnzone: %s%s%s is %d characters, longer than a DNS label (%d)", a, sep, b, len(a)+len(sep)+len(b), MaxLabel)
	}
	return nil
}

// isPart reports whether p may be one side of "<a>--<b>": a label without "--".
func isPart(p string) bool { return dnsname.IsLabel(p) && !strings.Contains(p, sep) }

func isDeployPrefix(s string) bool {
	if len(s) != DeployPrefixLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
