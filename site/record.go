package site

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// DefaultSite is the name of the site whose current pointer is CurrentKey ("site/current"). A
// network built before there were several sites holds only that key, so its one site is this
// one, with no record and no step by the user; see ImplicitDefault.
const DefaultSite = "default"

// RecordVersion is the only value of Record.V this release writes and accepts. A record of
// another version is refused, so a node never serves hosts it cannot read correctly.
const RecordVersion = 1

// Limits of a site record. A record is signed by a master, but every node parses it from the
// network, so each limit bounds what one record can make a node hold and match against.
const (
	// MaxSiteName is the longest site name: a DNS label (RFC 1035 §2.3.4), so a site's name
	// can become a label of the "<site>--<edge>" names under a CDN zone.
	MaxSiteName = 63
	// MaxHosts is the most host names one site claims. It bounds the host index an edge builds
	// (every host of every site is one map entry) and the size of a record; 100 covers an apex,
	// www and the custom and wildcard names of any one site.
	MaxHosts = 100
	// MaxHostLen is the longest host name (RFC 1035 §2.3.4: 255 octets on the wire, 253
	// characters in text without the trailing dot).
	MaxHostLen = 253
	// MaxRecordBytes is the largest record ParseRecord reads: MaxHosts hosts of MaxHostLen
	// characters with their quotes and commas, and the rest of the object, fit in it.
	MaxRecordBytes = 32 << 10
	// MaxKeep is the largest Settings.Keep: how many deploys a site keeps for rollback. Each
	// kept deploy holds its manifest and its blobs on every node, so a record cannot make the
	// network hold an unbounded history; 1,000 covers years of daily publishes.
	MaxKeep = 1000
)

// Record is the object under "sites/<name>": a site and the host names it claims. It is
// written by a master ("dt site add", "dt site set") and read by every node; deleting the key
// removes the site. Its JSON, as Marshal writes it:
//
//	{"v":1,"name":"blog","hosts":["*.docs.example.com","blog.example.com"]}
//	{"v":1,"name":"app","hosts":["app.example.com"],"settings":{"clean_urls":true,"spa":true,"keep":5}}
//
// Name is a DNS label (CheckSiteName). Hosts are lower-case host names without port or
// trailing dot, or "*." followed by one, which matches exactly one more label, as TLS
// wildcards do (RFC 6125 §6.4.3); each host appears once. A site with no hosts is valid: it is
// published to and followed, but no request reaches it.
//
// Settings is written only when a setting is given: a record without settings has the bytes
// it had before settings existed, which nodes of earlier releases read. Those nodes refuse a
// record with settings (they refuse unknown fields): they never serve a site added with
// settings, keep the record they last read of a site that gains them, and drop that site when
// they restart.
type Record struct {
	V        int       `json:"v"`
	Name     string    `json:"name"`
	Hosts    []string  `json:"hosts"`
	Settings *Settings `json:"settings,omitempty"`
}

// Settings are a site's serving settings: the defaults of every publish to the site, which a
// publisher's own flags override. CleanURLs and SPA have the meaning of the Manifest fields of
// the same JSON names; each publish copies them into its deploy, which is what edges serve.
// Nil (or zero for Keep) is not set: a publish then takes the setting from the current deploy
// (Keep: the publisher's default). A setting of false is set, and turns the option off.
type Settings struct {
	CleanURLs *bool `json:"clean_urls,omitempty"`
	SPA       *bool `json:"spa,omitempty"`
	// Keep is how many deploys of the site a publish keeps for rollback, 1 to MaxKeep.
	Keep int `json:"keep,omitempty"`
}

// IsZero reports whether no setting is set.
func (s *Settings) IsZero() bool {
	return s == nil || s.CleanURLs == nil && s.SPA == nil && s.Keep == 0
}

// Merge returns s with every setting that o sets taken from o.
func (s Settings) Merge(o Settings) Settings {
	if o.CleanURLs != nil {
		s.CleanURLs = o.CleanURLs
	}
	if o.SPA != nil {
		s.SPA = o.SPA
	}
	if o.Keep != 0 {
		s.Keep = o.Keep
	}
	return s
}

// String names the settings set, compactly, in a fixed order: "clean-urls,spa,keep=10", with
// "no-" before an option set to false ("no-spa"); "-" for none.
func (s *Settings) String() string {
	if s.IsZero() {
		return "-"
	}
	var parts []string
	for _, o := range []struct {
		name string
		v    *bool
	}{{"clean-urls", s.CleanURLs}, {"spa", s.SPA}} {
		switch {
		case o.v == nil:
		case *o.v:
			parts = append(parts, o.name)
		default:
			parts = append(parts, "no-"+o.name)
		}
	}
	if s.Keep != 0 {
		parts = append(parts, fmt.Sprintf("keep=%d", s.Keep))
	}
	return strings.Join(parts, ",")
}

// normalize drops empty settings, so that a record has one form with none.
func (r *Record) normalize() {
	if r.Hosts == nil {
		r.Hosts = []string{}
	}
	slices.Sort(r.Hosts)
	if r.Settings.IsZero() {
		r.Settings = nil
	}
}

// NewRecord returns the record of a site named name claiming hosts, in canonical order, or an
// error wrapping ErrInvalidRecord saying which rule a name or host breaks. Hosts are taken as
// given: a caller accepting hosts from a user normalises them first (NormalizeHost).
func NewRecord(name string, hosts []string) (Record, error) {
	r := Record{V: RecordVersion, Name: name, Hosts: slices.Clone(hosts)}
	slices.Sort(r.Hosts)
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Validate reports the first rule the record breaks, as an error wrapping ErrInvalidRecord:
// the version, the name (CheckSiteName), the number of hosts, each host (CheckHost), hosts
// appearing twice, and a Keep setting outside 1 to MaxKeep.
func (r Record) Validate() error {
	if r.V != RecordVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalidRecord, r.V, RecordVersion)
	}
	if err := CheckSiteName(r.Name); err != nil {
		return err
	}
	if len(r.Hosts) > MaxHosts {
		return fmt.Errorf("%w: site %s: %d hosts, at most %d", ErrInvalidRecord, r.Name, len(r.Hosts), MaxHosts)
	}
	seen := make(map[string]bool, len(r.Hosts))
	for _, h := range r.Hosts {
		if err := CheckHost(h); err != nil {
			return fmt.Errorf("site %s: %w", r.Name, err)
		}
		if seen[h] {
			return fmt.Errorf("%w: site %s: host %s listed twice", ErrInvalidRecord, r.Name, h)
		}
		seen[h] = true
	}
	if r.Settings != nil && r.Settings.Keep != 0 && (r.Settings.Keep < 1 || r.Settings.Keep > MaxKeep) {
		return fmt.Errorf("%w: site %s: keep %d, want 1 to %d", ErrInvalidRecord, r.Name, r.Settings.Keep, MaxKeep)
	}
	return nil
}

// Marshal returns the record's canonical JSON: the fields in the order v, name, hosts,
// settings (left out when none is set; within it clean_urls, spa, keep, each left out when not
// set), the hosts sorted (byte order), no white space. It refuses a record that Validate refuses, so a
// master never writes one that nodes would refuse. It does not modify r.
func (r Record) Marshal() ([]byte, error) {
	r.Hosts = slices.Clone(r.Hosts)
	r.normalize()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseRecord decodes and validates a site record from untrusted bytes. Unknown fields, data
// after the object, a record over MaxRecordBytes and anything Validate refuses are refused with
// ErrInvalidRecord. The order of the hosts is not significant: the record returned has them
// sorted, as Marshal writes them. It does not check that the name matches the key the record
// was read from; see ParseRecordAt.
func ParseRecord(b []byte) (Record, error) {
	if len(b) > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidRecord, len(b), MaxRecordBytes)
	}
	var r Record
	if err := strictUnmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	r.normalize()
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// ParseRecordAt is ParseRecord for the object read under key: it also refuses a record whose
// name is not the one its key names, so that "sites/blog" can never describe another site.
func ParseRecordAt(key string, b []byte) (Record, error) {
	name, ok := ParseRecordKey(key)
	if !ok {
		return Record{}, fmt.Errorf("%w: %q is not a site record key", ErrInvalidRecord, truncate(key))
	}
	r, err := ParseRecord(b)
	if err != nil {
		return Record{}, err
	}
	if r.Name != name {
		return Record{}, fmt.Errorf("%w: record of site %s under the key of site %s", ErrInvalidRecord, r.Name, name)
	}
	return r, nil
}

// CheckSiteName reports why name is not a site name, as an error wrapping ErrInvalidRecord, or
// nil. A site name is a DNS label of lower-case letters, digits and hyphens (RFC 1035 §2.3.1),
// 1 to MaxSiteName characters, neither starting nor ending with a hyphen, and without "--",
// which separates the site from the edge in "<site>--<edge>" names.
func CheckSiteName(name string) error {
	switch {
	case name == "" || len(name) > MaxSiteName:
		return fmt.Errorf("%w: site name of %d characters, want 1 to %d", ErrInvalidRecord, len(name), MaxSiteName)
	case !isLDH(name):
		return fmt.Errorf("%w: site name %q: only a-z, 0-9 and '-'", ErrInvalidRecord, truncate(name))
	case name[0] == '-' || name[len(name)-1] == '-':
		return fmt.Errorf("%w: site name %q starts or ends with '-'", ErrInvalidRecord, name)
	case strings.Contains(name, "--"):
		return fmt.Errorf("%w: site name %q contains \"--\", reserved for <site>--<edge> names", ErrInvalidRecord, name)
	}
	return nil
}

// CheckHost reports why h is not a host a site may claim, as an error wrapping
// ErrInvalidRecord, or nil. A host is a name of one or more labels of lower-case letters,
// digits and hyphens separated by dots (RFC 1123 §2.1: a label may start with a digit), each 1
// to 63 characters and neither starting nor ending with a hyphen, at most MaxHostLen in all,
// with no port and no trailing dot; or "*." followed by such a name, a wildcard for exactly
// one label more. Internationalised names are claimed in their ASCII form ("xn--…").
func CheckHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if len(h) > MaxHostLen {
		return fmt.Errorf("%w: host of %d characters, at most %d", ErrInvalidRecord, len(h), MaxHostLen)
	}
	if name == "" {
		return fmt.Errorf("%w: empty host", ErrInvalidRecord)
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "" || len(label) > 63:
			return fmt.Errorf("%w: host %q: a label of %d characters, want 1 to 63", ErrInvalidRecord, truncate(h), len(label))
		case !isLDH(label):
			return fmt.Errorf("%w: host %q: only a-z, 0-9, '-' and '.' (lower case, no port, a wildcard only as \"*.\" in front)", ErrInvalidRecord, truncate(h))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("%w: host %q: a label starts or ends with '-'", ErrInvalidRecord, truncate(h))
		}
	}
	return nil
}

// isLDH reports whether s holds only lower-case letters, digits and hyphens.
func isLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
