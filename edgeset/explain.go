package edgeset

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/dt-cdn/dt/geoip"
)

// Explanation is a Decision told for people (and its JSON for the explain endpoints): the client
// and what was known of its place, every eligible edge with its match, distance, weight and
// chance of being chosen, every other edge with its reason and what made the rule fail. It holds
// copies, no pointers into the edges decided on.
type Explanation struct {
	Client ExplainedClient `json:"client"`
	// Site is the site decided for (empty from Explain; ExplainSite sets it).
	Site       string               `json:"site,omitempty"`
	Deploy     string               `json:"deploy"`
	Basis      Basis                `json:"basis"`
	NearKm     float64              `json:"near_km,omitempty"`
	Chosen     *ExplainedCandidate  `json:"chosen"`
	Candidates []ExplainedCandidate `json:"candidates"`
	Excluded   []ExplainedExclusion `json:"excluded"`
	// Fallback says no edge served the current deploy and the candidates still serve an
	// earlier one (Decision.Fallback).
	Fallback bool `json:"fallback,omitempty"`
}

// ExplainedClient is the client a decision was made for.
type ExplainedClient struct {
	IP  netip.Addr    `json:"ip"`
	Geo *geoip.Record `json:"geo"`
}

// ExplainedCandidate is an eligible edge and how it ranked (see Candidate).
type ExplainedCandidate struct {
	Node       string   `json:"node"`
	URL        string   `json:"url"`
	Match      Match    `json:"match"`
	DistanceKm *float64 `json:"distance_km,omitempty"` // nil when a distance took no part
	Near       bool     `json:"near"`
	CPU        float64  `json:"cpu"`
	Weight     float64  `json:"weight"`
	Score      float64  `json:"score"`
}

// ExplainedExclusion is an edge that was not a candidate, why, and in a few words what made the
// rule fail.
type ExplainedExclusion struct {
	Node   string        `json:"node"`
	URL    string        `json:"url,omitempty"`
	Reason ExcludeReason `json:"reason"`
	Detail string        `json:"detail,omitempty"`
}

// Explain tells d, made for client c with current as the network's deploy, at now. Chosen points
// into the result's Candidates.
func Explain(d Decision, c Client, current string, now time.Time) Explanation {
	x := Explanation{Client: ExplainedClient(c), Deploy: current, Basis: d.Basis, NearKm: d.NearKm, Fallback: d.Fallback}
	x.Candidates = make([]ExplainedCandidate, len(d.Candidates))
	for i, cand := range d.Candidates {
		x.Candidates[i] = explainCandidate(cand)
		if d.Chosen == &d.Candidates[i] {
			x.Chosen = &x.Candidates[i]
		}
	}
	x.Excluded = make([]ExplainedExclusion, len(d.Excluded))
	for i, ex := range d.Excluded {
		x.Excluded[i] = ExplainedExclusion{
			Node:   ex.Edge.Node,
			URL:    ex.Edge.Last.PublicURL,
			Reason: ex.Reason,
			Detail: exclusionDetail(ex, c, now),
		}
	}
	return x
}

// ExplainSite is Explain for a decision of SelectSite for s.
func ExplainSite(d Decision, c Client, s Site, now time.Time) Explanation {
	x := Explain(d, c, s.Current, now)
	x.Site = s.Name
	return x
}

func explainCandidate(c Candidate) ExplainedCandidate {
	ec := ExplainedCandidate{
		Node:   c.Edge.Node,
		URL:    c.URL,
		Match:  c.Match,
		Near:   c.Near,
		CPU:    c.Edge.Last.Load.CPU,
		Weight: c.Weight,
		Score:  c.Score,
	}
	if c.HasDistance {
		km := c.Distance
		ec.DistanceKm = &km
	}
	return ec
}

// exclusionDetail says in a few words what made the rule fail, for people reading the endpoint.
func exclusionDetail(x Exclusion, c Client, now time.Time) string {
	e := x.Edge
	switch x.Reason {
	case ExcludeNotAlive:
		if e.Reason != "" {
			return e.State.String() + ": " + e.Reason
		}
		return e.State.String()
	case ExcludeStale:
		return "last heartbeat " + now.Sub(e.LastSeen).Round(time.Millisecond).String() + " ago"
	case ExcludeNoPublicURL:
		return fmt.Sprintf("url %q", e.Last.PublicURL)
	case ExcludeOldDeploy:
		return "serves deploy " + quoteOrNone(e.Last.Deploy)
	case ExcludeNotSynced:
		return "still syncing deploy " + quoteOrNone(e.Last.Deploy)
	case ExcludeCertificate:
		if x.detail != "" {
			return x.detail
		}
		if e.Last.CertExpiry == 0 {
			return "no certificate reported"
		}
		return "certificate expired " + time.UnixMilli(e.Last.CertExpiry).UTC().Format(time.RFC3339)
	case ExcludeWrongFamily:
		return "client " + familyName(familyOf(c.IP)) + ", edge " + familyName(edgeFamilies(e, e.Last.PublicURL))
	case ExcludeDisabled:
		return "weight 0"
	case ExcludeSiteLagging:
		return x.detail
	}
	return ""
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

func familyName(f family) string {
	switch f {
	case familyV4:
		return "IPv4 only"
	case familyV6:
		return "IPv6 only"
	}
	return "IPv4 and IPv6"
}
