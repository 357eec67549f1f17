package edgeset

// ExcludeReason says why an edge was not a candidate. An edge gets the first reason that
// applies, in the order of the constants below: the most fundamental first, so an edge that is
// both dead and on an old deploy is reported dead.
type ExcludeReason int

// Reasons for excluding an edge.
const (
	// ExcludeNotAlive: the tracker holds the edge Suspect or Dead.
	ExcludeNotAlive ExcludeReason = iota + 1
	// ExcludeStale: the edge's last heartbeat is older than SelectOptions.MaxAge, although the
	// tracker has not marked it yet (its check may lag).
	ExcludeStale
	// ExcludeNoPublicURL: the heartbeat carries no http(s) origin to redirect to.
	ExcludeNoPublicURL
	// ExcludeDraining: the edge is shutting down and asked for no new visitors.
	ExcludeDraining
	// ExcludeOldDeploy: the edge serves another deploy than the network's current one (or no
	// deploy is current).
	ExcludeOldDeploy
	// ExcludeNotSynced: the edge names the current deploy but does not hold all of it yet.
	ExcludeNotSynced
	// ExcludeSiteLagging: the choice is for a site other than the default one, and the edge
	// does not serve that site's current deploy by its heartbeats (see SelectSite).
	ExcludeSiteLagging
	// ExcludeCertificate: the edge's URL is https and it holds no valid certificate for the
	// name visitors will use (SelectOptions.CertName, else its URL's host): by its report of
	// names, or for an edge of an earlier release by CertExpiry.
	ExcludeCertificate
	// ExcludeWrongFamily: the edge cannot be reached over the client's IP family (see
	// edgeFamilies).
	ExcludeWrongFamily
	// ExcludeDisabled: the configuration gives the edge weight 0.
	ExcludeDisabled
)

// String returns the reason as the explain endpoint shows it.
func (r ExcludeReason) String() string {
	switch r {
	case ExcludeNotAlive:
		return "not alive"
	case ExcludeStale:
		return "stale heartbeat"
	case ExcludeNoPublicURL:
		return "no public URL"
	case ExcludeDraining:
		return "draining"
	case ExcludeOldDeploy:
		return "old deploy"
	case ExcludeNotSynced:
		return "not synced"
	case ExcludeSiteLagging:
		return "lagging for the site"
	case ExcludeCertificate:
		return "certificate expired or absent"
	case ExcludeWrongFamily:
		return "wrong IP family"
	case ExcludeDisabled:
		return "disabled by weight"
	}
	return "unknown"
}

// MarshalText encodes the reason by its String, for JSON.
func (r ExcludeReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Match says how an eligible edge's place relates to the client's; it is the first ranking key.
type Match int

// Matches, best first.
const (
	// MatchCountry: the edge is in the client's country.
	MatchCountry Match = iota + 1
	// MatchContinent: the edge is on the client's continent, in another country.
	MatchContinent
	// MatchElsewhere: the edge is on another continent, or either side's country and continent
	// are unknown.
	MatchElsewhere
)

// String returns the match as the explain endpoint shows it.
func (m Match) String() string {
	switch m {
	case MatchCountry:
		return "same country"
	case MatchContinent:
		return "same continent"
	case MatchElsewhere:
		return "elsewhere"
	}
	return "unknown"
}

// MarshalText encodes the match by its String, for JSON.
func (m Match) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Basis says what Select knew of the client's place.
type Basis int

// Bases of a decision.
const (
	// BasisLocation: the client's GeoIP record had coordinates; country, continent and distance
	// ranked the edges.
	BasisLocation Basis = iota + 1
	// BasisDefaultLocation: nothing was known of the client, so SelectOptions.DefaultLocation
	// stood in for it.
	BasisDefaultLocation
	// BasisCountry: the client's record had a country or continent but no coordinates (a
	// country-level database): country and continent ranked the edges, then weights alone.
	BasisCountry
	// BasisNone: nothing was known of the client: weights alone chose among all eligible edges.
	BasisNone
)

// String returns the basis as the explain endpoint shows it.
func (b Basis) String() string {
	switch b {
	case BasisLocation:
		return "client location"
	case BasisDefaultLocation:
		return "default location"
	case BasisCountry:
		return "client country"
	case BasisNone:
		return "no client geo"
	}
	return "unknown"
}

// MarshalText encodes the basis by its String, for JSON.
func (b Basis) MarshalText() ([]byte, error) { return []byte(b.String()), nil }
