package site

import (
	"slices"
	"strings"
)

// Hosts maps a request's host to the site that serves it: the one host matching rule of every
// node (edge, redirector, DNS), so that all of them send a visitor to the same site. It is
// built once from the site records (NewHosts) and is then read-only: Match is safe for
// concurrent use. It does not follow the table; whoever follows it builds a new Hosts on each
// change.
type Hosts struct {
	// exact and wildcard map a host, and the parent of "*.<parent>", to its site's index in
	// names; catchAll is the implicit DefaultSite's index, or -1. Indices let a caller keep what
	// it serves per site in a slice beside Names and find it with Lookup's one map lookup.
	exact    map[string]int
	wildcard map[string]int
	catchAll int
	names    []string // every site, sorted
}

// NewHosts indexes the hosts of records. implicitDefault says whether the site DefaultSite
// exists without a record (ImplicitDefault); it then claims every host no record claims, as
// the one site of a network of the previous release served every host. When records claim one
// host twice (concurrent masters can write that; "dt site add" refuses it), the site whose
// name sorts first wins, so every node picks the same one whatever order records came in.
func NewHosts(records []Record, implicitDefault bool) *Hosts {
	sorted := slices.Clone(records)
	slices.SortFunc(sorted, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	h := &Hosts{exact: map[string]int{}, wildcard: map[string]int{}, catchAll: -1}
	for _, r := range sorted {
		h.names = append(h.names, r.Name)
	}
	if implicitDefault {
		h.names = append(h.names, DefaultSite)
	}
	slices.Sort(h.names)
	h.names = slices.Compact(h.names)
	for _, r := range sorted {
		i, _ := slices.BinarySearch(h.names, r.Name)
		for _, host := range r.Hosts {
			m, key := h.exact, host
			if parent, ok := strings.CutPrefix(host, "*."); ok {
				m, key = h.wildcard, parent
			}
			if _, taken := m[key]; !taken {
				m[key] = i
			}
		}
	}
	if implicitDefault {
		h.catchAll, _ = slices.BinarySearch(h.names, DefaultSite)
	}
	return h
}

// Names returns every site of the table, the implicit DefaultSite included, sorted. The caller
// must not modify it.
func (h *Hosts) Names() []string { return h.names }

// ImplicitDefault reports whether the site DefaultSite exists with no record: when its current
// pointer (CurrentKey) exists and no record is named DefaultSite. A network of the previous
// release is in that state.
func ImplicitDefault(records []Record, hasDefaultCurrent bool) bool {
	return hasDefaultCurrent && !slices.ContainsFunc(records, func(r Record) bool { return r.Name == DefaultSite })
}

// Match returns the site serving host, a request's Host header or TLS server name, and false
// when no site does (an edge then answers 421 Misdirected Request, RFC 9110 §15.5.20). The host
// is compared lower-cased, without its port and trailing dot (NormalizeHost): first the sites'
// exact hosts, then their wildcards ("*.example.com" matches "a.example.com", not
// "a.b.example.com" nor "example.com", as TLS wildcards match, RFC 6125 §6.4.3), then the
// implicit default site if it exists. A host that is not a valid name (an IP literal with
// colons, a "*" label) matches only the implicit default site.
func (h *Hosts) Match(host string) (string, bool) {
	if i, ok := h.Lookup(host); ok {
		return h.names[i], true
	}
	return "", false
}

// Lookup is Match returning the site's index in Names.
func (h *Hosts) Lookup(host string) (int, bool) {
	host = NormalizeHost(host)
	if isMatchableHost(host) {
		if i, ok := h.exact[host]; ok {
			return i, true
		}
		if _, parent, ok := strings.Cut(host, "."); ok {
			if i, ok := h.wildcard[parent]; ok {
				return i, true
			}
		}
	}
	return h.catchAll, h.catchAll >= 0
}

// NormalizeHost returns host lower-cased, without a port and without one trailing dot:
// "WWW.Example.com.:443" becomes "www.example.com", "[::1]:8443" becomes "::1". A host with
// more than one colon and no brackets is an IPv6 address without a port and is kept whole. It
// allocates only when host has upper-case letters.
func NormalizeHost(host string) string {
	if rest, ok := strings.CutPrefix(host, "["); ok {
		if i := strings.IndexByte(rest, ']'); i >= 0 {
			host = rest[:i]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && strings.LastIndexByte(host, ':') == i {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// isMatchableHost reports whether a normalised host can equal a host of a record: a non-empty
// name of a-z, 0-9, '-' and '.', of at most MaxHostLen characters. It checks less than
// CheckHost (label lengths and hyphens): a name that passes it but no record can hold simply
// finds no exact or wildcard host.
func isMatchableHost(host string) bool {
	if host == "" || len(host) > MaxHostLen {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Claim is a host that one site's record claims and another site already claims: exactly the
// same string, an exact host or a wildcard.
type Claim struct {
	Host string // the host, as in both records
	Site string // the site that claims it already
}

// Claimed returns the hosts of r that another site among records claims already, sorted by
// host. Records of r's own site are skipped, so a site may be set to the hosts it has. It is
// what "dt site add" and "dt site set" refuse; it does not refuse a wildcard overlapping
// another site's exact host ("*.example.com" and "a.example.com"), which Match resolves: the
// exact host wins.
func Claimed(records []Record, r Record) []Claim {
	owner := map[string]string{}
	for _, o := range records {
		if o.Name == r.Name {
			continue
		}
		for _, h := range o.Hosts {
			if s, ok := owner[h]; !ok || o.Name < s {
				owner[h] = o.Name
			}
		}
	}
	var out []Claim
	for _, h := range r.Hosts {
		if s, ok := owner[h]; ok {
			out = append(out, Claim{Host: h, Site: s})
		}
	}
	slices.SortFunc(out, func(a, b Claim) int { return strings.Compare(a.Host, b.Host) })
	return out
}
