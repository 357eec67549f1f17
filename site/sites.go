package site

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Keys of the sites of a network. A network holds many sites; each is a record under SitesPrefix
// and a Current under its own key. The site named DefaultSite keeps its current deploy under
// CurrentKey, as networks built before sites existed do:
//
//	sites/<name>          a Record: the site's name and hosts, written by a master
//	site/<name>/current   a Current: the site's current deploy (CurrentKey for DefaultSite)
const (
	SitesPrefix = "sites/"
	// DefaultSite is the site whose current deploy is CurrentKey. It exists without a record
	// whenever CurrentKey does, and then claims every host no other site claims.
	DefaultSite = "default"
)

// MaxHosts bounds Record.Hosts: a site with more names than this is more likely a mistake or an
// attack on every node's memory than a real site.
const MaxHosts = 100

// ErrInvalidRecord is returned by ParseRecord for a site record that breaks a rule of Record.
var ErrInvalidRecord = errors.New("site: invalid site record")

// RecordKey returns the table key of a site's record: "sites/<name>".
func RecordKey(name string) string { return SitesPrefix + name }

// CurrentKeyOf returns the table key of a site's current pointer: CurrentKey for DefaultSite,
// "site/<name>/current" for the others.
func CurrentKeyOf(name string) string {
	if name == DefaultSite {
		return CurrentKey
	}
	return "site/" + name + "/current"
}

// ParseRecordKey returns the site a record key names, and false for any other key.
func ParseRecordKey(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, SitesPrefix)
	return name, ok && ValidName(name)
}

// ParseCurrentKey returns the site a current pointer's key names (DefaultSite for CurrentKey),
// and false for any other key.
func ParseCurrentKey(key string) (string, bool) {
	if key == CurrentKey {
		return DefaultSite, true
	}
	rest, ok := strings.CutPrefix(key, "site/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/current")
	return name, ok && name != DefaultSite && ValidName(name)
}

// Record is the object under RecordKey: a site and the hosts it is served on.
//
//	{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}
type Record struct {
	V     int      `json:"v"`     // always 1
	Name  string   `json:"name"`  // see ValidName
	Hosts []string `json:"hosts"` // see ValidHost; at most MaxHosts, no duplicates
}

// ParseRecord decodes a site record from untrusted bytes. It refuses unknown fields, a version
// other than 1, a name ValidName refuses, a host ValidHost refuses, duplicate hosts and more than
// MaxHosts of them. It does not check that the bytes are canonical.
func ParseRecord(b []byte) (Record, error) {
	var r Record
	if err := strictUnmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	if r.Hosts == nil {
		r.Hosts = []string{} // a site without hosts lists none, rather than null
	}
	return r, nil
}

// Validate checks r against the rules ParseRecord enforces.
func (r Record) Validate() error {
	switch {
	case r.V != 1:
		return fmt.Errorf("%w: version %d", ErrInvalidRecord, r.V)
	case !ValidName(r.Name):
		return fmt.Errorf("%w: name %q", ErrInvalidRecord, truncate(r.Name))
	case len(r.Hosts) > MaxHosts:
		return fmt.Errorf("%w: %d hosts, at most %d", ErrInvalidRecord, len(r.Hosts), MaxHosts)
	}
	seen := make(map[string]bool, len(r.Hosts))
	for _, h := range r.Hosts {
		if !ValidHost(h) || seen[h] {
			return fmt.Errorf("%w: host %q invalid or repeated", ErrInvalidRecord, truncate(h))
		}
		seen[h] = true
	}
	return nil
}

// Marshal returns the record's canonical JSON (fields in the order of Record, no white space).
func (r Record) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ValidName reports whether name is a site name: a DNS label of [a-z0-9-], 1 to 63 bytes, not
// starting or ending with '-' and without "--" (kept for "<site>--<edge>" names).
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return false
	}
	for i := range len(name) {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidHost reports whether h is a host a site may claim: a lower-case DNS name without port or
// trailing dot (labels of [a-z0-9-], 1 to 63 bytes, not starting or ending with '-', 253 bytes in
// all), or "*." and such a name for a one-label wildcard.
func ValidHost(h string) bool {
	name := strings.TrimPrefix(h, "*.")
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := range len(label) {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// NormalizeHost returns a request's Host (or TLS server name) as sites claim hosts: lower-cased,
// without port and trailing dot. An IPv6 literal keeps no brackets.
func NormalizeHost(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			host = host[1:end]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// Hosts is an index of the hosts sites claim, for Match. Build it with NewHosts; it is not
// modified afterwards, so it is safe for concurrent use.
type Hosts struct {
	exact    map[string]string // host -> site
	wildcard map[string]string // parent of "*.parent" -> site
	catchAll string            // DefaultSite when it exists without a record, else ""
}

// NewHosts indexes records. implicitDefault says CurrentKey exists while no record names
// DefaultSite: the default site then claims every host no record claims. Where two records claim
// one host, the site whose name sorts first wins, whatever the order of records.
func NewHosts(records []Record, implicitDefault bool) *Hosts {
	h := &Hosts{exact: map[string]string{}, wildcard: map[string]string{}}
	hasDefault := false
	for _, r := range records {
		hasDefault = hasDefault || r.Name == DefaultSite
		for _, host := range r.Hosts {
			m, key := h.exact, host
			if parent, ok := strings.CutPrefix(host, "*."); ok {
				m, key = h.wildcard, parent
			}
			if cur, ok := m[key]; !ok || r.Name < cur {
				m[key] = r.Name
			}
		}
	}
	if implicitDefault && !hasDefault {
		h.catchAll = DefaultSite
	}
	return h
}

// Match returns the site that serves host (a request's Host or TLS server name, normalised here
// with NormalizeHost): an exact claim first, then the wildcard "*." and the host's parent, then
// the implicit default site. It returns false when no site claims the host: the answer is then
// 421 Misdirected Request, never another site's content.
func (h *Hosts) Match(host string) (string, bool) {
	host = NormalizeHost(host)
	if name, ok := h.exact[host]; ok {
		return name, true
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		if name, ok := h.wildcard[parent]; ok {
			return name, true
		}
	}
	return h.catchAll, h.catchAll != ""
}

// SortRecords sorts records by name, the order in which claims are settled.
func SortRecords(rs []Record) {
	slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
}
