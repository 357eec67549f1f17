package zone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dt"
)

// KeyPrefix starts the table key of every RRset; the table's other keys never start with it.
const KeyPrefix = "dns/"

// setVersion is the format of Set's JSON written by this code.
const setVersion = 1

// MaxSetSize bounds one RRset's JSON. A body up to dt's default Config.InlineBodyMax travels
// inline with its record, so every node that holds the record holds the RRset (a node with
// LazyBodies would otherwise have only its hash); an RRset of 16 KiB is already far beyond what a
// DNS answer over UDP can carry.
const MaxSetSize = 16 << 10

// Set is one RRset in canonical form: every record of one owner name and type in a zone.
type Set struct {
	// Zone is the zone's apex, lower case and fully qualified ("example.com.").
	Zone string `json:"zone"`
	// Name is the owner, lower case and fully qualified, at or below Zone.
	Name string `json:"name"`
	// Type is the RR type.
	Type uint16 `json:"-"`
	// TTL is the RRset's TTL in seconds (RFC 2181 §5.2: one per RRset).
	TTL uint32 `json:"ttl"`
	// Data holds each record's RDATA in presentation form, sorted, without duplicates.
	Data []string `json:"data"`
}

// setJSON is the wire form of a Set: Type by name, and a version.
type setJSON struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	Set
}

// ZonePrefix is the table key prefix of every RRset of the zone with the given apex
// (canonical form).
func ZonePrefix(apex string) string { return KeyPrefix + keyName(apex) + "/" }

// Key is the set's table key: dns/<zone>/<owner>/<TYPE>.
func (s *Set) Key() string { return ZonePrefix(s.Zone) + keyName(s.Name) + "/" + typeName(s.Type) }

// keyName escapes "/" in a name (presentation form leaves it bare) so that keys split unambiguously;
// "\" is already escaped in presentation form, so the escape cannot collide.
func keyName(name string) string { return strings.ReplaceAll(name, "/", `\047`) }

// typeName is the type's mnemonic, or TYPEnnn (RFC 3597) for types without one.
func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// parseTypeName reverses typeName.
func parseTypeName(s string) (uint16, bool) {
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(s, "TYPE"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		if err == nil && "TYPE"+strconv.FormatUint(v, 10) == s {
			if _, named := dns.TypeToString[uint16(v)]; !named {
				return uint16(v), true
			}
		}
	}
	return 0, false
}

// Marshal returns the set's body in the table: canonical JSON, so that one RRset always has one
// body and Diff can compare bytes.
func (s *Set) Marshal() ([]byte, error) {
	b, err := dt.CanonicalJSON(setJSON{V: setVersion, Type: typeName(s.Type), Set: *s})
	if err != nil {
		return nil, fmt.Errorf("zone: encode %s %s: %w", s.Name, typeName(s.Type), err)
	}
	return b, nil
}

// RRs returns the set's records. They are fresh values the caller may keep.
func (s *Set) RRs() ([]dns.RR, error) {
	rrs := make([]dns.RR, 0, len(s.Data))
	for _, d := range s.Data {
		rr, err := s.rr(d)
		if err != nil {
			return nil, err
		}
		rrs = append(rrs, rr)
	}
	return rrs, nil
}

// rr parses one RDATA of the set back into a record and checks that it round-trips exactly, so
// that a body cannot smuggle a second record, another owner or another type into the set.
func (s *Set) rr(data string) (dns.RR, error) {
	if strings.ContainsAny(data, "\n\r") {
		return nil, fmt.Errorf("%w: %s %s: line break in data", ErrBadSet, s.Name, typeName(s.Type))
	}
	rr, err := dns.NewRR(s.Name + " " + strconv.FormatUint(uint64(s.TTL), 10) + " IN " + typeName(s.Type) + " " + data)
	if err != nil || rr == nil {
		return nil, fmt.Errorf("%w: %s %s %q: %v", ErrBadSet, s.Name, typeName(s.Type), data, err)
	}
	h := rr.Header()
	if h.Rrtype != s.Type || h.Name != s.Name || rdata(rr) != data {
		return nil, fmt.Errorf("%w: %s %s %q is not in canonical form", ErrBadSet, s.Name, typeName(s.Type), data)
	}
	return rr, nil
}

// rdata is the presentation form of rr's data: its text after the header.
func rdata(rr dns.RR) string {
	if u, ok := rr.(*dns.RFC3597); ok {
		// Its String writes a header of its own (CLASS1 TYPEnnn).
		return `\# ` + strconv.Itoa(len(u.Rdata)/2) + " " + u.Rdata
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// CanonicalName returns name in the one form this package keys and compares names by: fully
// qualified, lower case, and escaped as the wire form decodes (so "x\047y." and "x/y." are one
// name). It returns "" for a string that is not a domain name.
func CanonicalName(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return ""
	}
	s, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return ""
	}
	return strings.ToLower(s)
}

// DecodeSet parses a body read from the table and checks that it is a valid RRset in canonical
// form stored under key. It returns the set and its records. Bodies come from records signed by a
// master, but a node still refuses one it could not serve correctly rather than answer from it.
func DecodeSet(key string, body []byte) (*Set, []dns.RR, error) {
	if len(body) > MaxSetSize {
		return nil, nil, fmt.Errorf("%w: %s: %d bytes over %d", ErrBadSet, key, len(body), MaxSetSize)
	}
	var j setJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadSet, key, err)
	}
	if j.V != setVersion {
		return nil, nil, fmt.Errorf("%w: %s: version %d", ErrBadSet, key, j.V)
	}
	s := j.Set
	t, ok := parseTypeName(j.Type)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s: type %q", ErrBadSet, key, j.Type)
	}
	s.Type = t
	if err := checkSetShape(&s); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadSet, key, err)
	}
	if s.Key() != key {
		return nil, nil, fmt.Errorf("%w: %s holds the set of key %s", ErrBadSet, key, s.Key())
	}
	rrs, err := s.RRs()
	if err != nil {
		return nil, nil, err
	}
	return &s, rrs, nil
}

// checkSetShape checks what a set must satisfy on its own, wherever it came from.
func checkSetShape(s *Set) error {
	for _, n := range []string{s.Zone, s.Name} {
		if CanonicalName(n) != n || n == "" {
			return fmt.Errorf("name %q is not a canonical domain name", n)
		}
	}
	if !dns.IsSubDomain(s.Zone, s.Name) {
		return fmt.Errorf("%s is outside the zone %s", s.Name, s.Zone)
	}
	if reason := refusedType(s.Type); reason != "" {
		return fmt.Errorf("%s: %s", typeName(s.Type), reason)
	}
	if len(s.Data) == 0 {
		return fmt.Errorf("%s %s: no records", s.Name, typeName(s.Type))
	}
	if !slices.IsSorted(s.Data) || len(slices.Compact(slices.Clone(s.Data))) != len(s.Data) {
		return fmt.Errorf("%s %s: data not sorted or repeated", s.Name, typeName(s.Type))
	}
	if len(s.Key()) > dt.MaxKeySize {
		return fmt.Errorf("%s: name too long for a table key", s.Name)
	}
	return nil
}

// refusedType says why a type cannot be in a zone, or "" when it can.
func refusedType(t uint16) string {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeDNSKEY, dns.TypeDS,
		dns.TypeCDS, dns.TypeCDNSKEY:
		return "DNSSEC records are not supported (zones are not signed)"
	case dns.TypeDNAME:
		return "DNAME is not supported"
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeIXFR, dns.TypeAXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeANY, dns.TypeNone:
		return "a meta or query type, not data"
	}
	return ""
}
