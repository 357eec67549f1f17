package site

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Keys of the table under which the sites of a network live, beside CurrentKey:
//
//	sites/<name>          a Record: the site's name and hosts, written by a master
//	site/<name>/current   a Current: the site's current deploy (CurrentKey for DefaultSite)
const (
	recordKeyPrefix  = "sites/"
	siteKeyPrefix    = "site/"
	siteCurrentSufix = "/current"
)

// DefaultSite is the name of the site whose current deploy is CurrentKey: the one site of a
// network built before sites had names. It exists implicitly while CurrentKey exists and no
// record names it, and then claims every host no other site claims.
const DefaultSite = "default"

// MaxHosts bounds the hosts of one Record, so that a host table and the records that carry it
// stay small: a site with more names is better served by a wildcard.
const MaxHosts = 100

// ErrInvalidRecord is returned by ParseRecord when a site record is malformed.
var ErrInvalidRecord = errors.New("site: invalid site record")

// RecordKey returns the table key of a site's record: "sites/<name>".
func RecordKey(name string) string { return recordKeyPrefix + name }

// ParseRecordKey returns the site a record key names, and false for any other key.
func ParseRecordKey(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, recordKeyPrefix)
	return name, ok && CheckSiteName(name) == nil
}

// CurrentKeyOf returns the table key of a site's current deploy: CurrentKey for DefaultSite,
// "site/<name>/current" for the others.
func CurrentKeyOf(name string) string {
	if name == DefaultSite {
		return CurrentKey
	}
	return siteKeyPrefix + name + siteCurrentSufix
}

// ParseCurrentKey returns the site whose current deploy key is key: DefaultSite for
// CurrentKey, name for "site/<name>/current" (except "site/default/current", which is not the
// default site's key), and false for any other key.
func ParseCurrentKey(key string) (string, bool) {
	if key == CurrentKey {
		return DefaultSite, true
	}
	rest, ok := strings.CutPrefix(key, siteKeyPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, siteCurrentSufix)
	return name, ok && name != DefaultSite && CheckSiteName(name) == nil
}

// Record is the object under RecordKey: a site and the hosts it claims.
//
//	{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}
type Record struct {
	V     int      `json:"v"`
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
}

// ParseRecord decodes a site record from untrusted bytes: version 1, unknown fields refused, a
// name CheckSiteName accepts, at most MaxHosts hosts each CheckHost accepts, none twice.
func ParseRecord(b []byte) (Record, error) {
	var r Record
	if err := strictUnmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if r.V != 1 {
		return Record{}, fmt.Errorf("%w: version %d", ErrInvalidRecord, r.V)
	}
	if err := CheckSiteName(r.Name); err != nil {
		return Record{}, err
	}
	if len(r.Hosts) > MaxHosts {
		return Record{}, fmt.Errorf("%w: %d hosts, at most %d", ErrInvalidRecord, len(r.Hosts), MaxHosts)
	}
	seen := make(map[string]bool, len(r.Hosts))
	for _, h := range r.Hosts {
		if err := CheckHost(h); err != nil {
			return Record{}, err
		}
		if seen[h] {
			return Record{}, fmt.Errorf("%w: host %q twice", ErrInvalidRecord, truncate(h))
		}
		seen[h] = true
	}
	return r, nil
}

// Marshal returns the record's JSON, as ParseRecord reads it.
func (r Record) Marshal() ([]byte, error) {
	if r.Hosts == nil {
		r.Hosts = []string{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return b, nil
}

// CheckSiteName reports whether name can name a site: a DNS label of [a-z0-9-], 1 to 63 bytes, not
// starting or ending with '-', without "--" (which separates a site from an edge in
// "<site>--<edge>" names).
func CheckSiteName(name string) error {
	if !isLabel(name) || strings.Contains(name, "--") {
		return fmt.Errorf("%w: site name %q", ErrInvalidRecord, truncate(name))
	}
	return nil
}

// CheckHost reports whether h can be a host of a Record: a lower-case DNS name without port or
// trailing dot, or "*." and such a name for a wildcard of one label, as TLS wildcards match.
func CheckHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	labels := strings.Split(name, ".")
	ok := len(h) <= 253 && name != ""
	for _, l := range labels {
		ok = ok && isLabel(l)
	}
	if !ok {
		return fmt.Errorf("%w: host %q", ErrInvalidRecord, truncate(h))
	}
	return nil
}

func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Hosts is the host table of a network's sites: which site answers a request's Host or TLS
// SNI. It is immutable, and safe for concurrent use.
type Hosts struct {
	// exact and wildcard map a host, and the parent of a "*." host, to its site's index in
	// names; catchAll is the implicit default site's index, or -1. Indices rather than names
	// let a caller keep what it serves per site in a slice beside Names and find it with the
	// one map lookup of Lookup.
	exact    map[string]int
	wildcard map[string]int
	catchAll int
	names    []string // every site, sorted
}

// NewHosts builds the host table of the given records. implicitDefault says DefaultSite
// exists without a record (CurrentKey exists): it then claims every host no record claims. A
// host two records claim goes to the site whose name sorts first, whatever the order given, so
// every node chooses alike.
func NewHosts(records []Record, implicitDefault bool) *Hosts {
	t := &Hosts{exact: map[string]int{}, wildcard: map[string]int{}, catchAll: -1}
	for _, r := range records {
		t.names = append(t.names, r.Name)
	}
	if implicitDefault && !slices.Contains(t.names, DefaultSite) {
		t.names = append(t.names, DefaultSite)
	}
	slices.Sort(t.names)
	t.names = slices.Compact(t.names)
	sorted := slices.SortedFunc(slices.Values(records), func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range sorted {
		i, _ := slices.BinarySearch(t.names, r.Name)
		for _, h := range r.Hosts {
			m, key := t.exact, h
			if parent, ok := strings.CutPrefix(h, "*."); ok {
				m, key = t.wildcard, parent
			}
			if _, taken := m[key]; !taken {
				m[key] = i
			}
		}
	}
	if implicitDefault && !slices.ContainsFunc(records, func(r Record) bool { return r.Name == DefaultSite }) {
		t.catchAll, _ = slices.BinarySearch(t.names, DefaultSite)
	}
	return t
}

// Names returns the sites of the table, sorted. The caller must not modify it.
func (t *Hosts) Names() []string { return t.names }

// Match returns the site that answers host (a Host field or a TLS server name): host is
// lower-cased and stripped of its port and trailing dot; an exact host matches first, then a
// wildcard of its parent, then the implicit default site. false: no site claims it.
func (t *Hosts) Match(host string) (string, bool) {
	if i, ok := t.Lookup(host); ok {
		return t.names[i], true
	}
	return "", false
}

// Lookup is Match returning the site's index in Names.
func (t *Hosts) Lookup(host string) (int, bool) {
	host = NormalizeHost(host)
	if i, ok := t.exact[host]; ok {
		return i, true
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		if i, ok := t.wildcard[parent]; ok {
			return i, true
		}
	}
	return t.catchAll, t.catchAll >= 0
}

// Match returns the site of records (and the implicit default site, see NewHosts) that answers
// host. Callers matching many hosts build the table once with NewHosts.
func Match(records []Record, implicitDefault bool, host string) (string, bool) {
	return NewHosts(records, implicitDefault).Match(host)
}

// NormalizeHost returns host lower-cased, without a port, the brackets of an IPv6 literal or a
// trailing dot. It does not allocate for a host already in that form.
func NormalizeHost(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			host = host[1:end]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
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
