package zone

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Options tunes Parse. The zero value gives the defaults stated per field.
type Options struct {
	// Origin is the zone's apex, for relative names before any $ORIGIN. Empty: the file must
	// name its origin ($ORIGIN) or use absolute names; the SOA's owner is then the apex. When
	// set, the SOA must be at this name.
	Origin string
	// DefaultTTL applies to records without a TTL before any $TTL. Zero: 3600 s.
	DefaultTTL uint32
	// MaxRecords bounds the records in the zone. Zero: 100,000.
	MaxRecords int
}

// maxReported bounds the problems one Parse reports, so a file of garbage gives a readable error.
const maxReported = 20

// Zone is a parsed, validated zone.
type Zone struct {
	// Apex is the zone's name: the SOA's owner, canonical.
	Apex string
	// Sets are the zone's RRsets, ordered by name (canonical DNS order, RFC 4034 §6.1 within
	// presentation form) then type, with the SOA last, the order Diff writes them in.
	Sets []Set
	// Records is the number of records.
	Records int
}

// Parse reads a zone file and validates it (see the package documentation). file names the
// input in errors. $INCLUDE is refused: a zone file given to a master must not read other files.
// Every problem found is reported in one error (up to 20), each wrapping ErrSyntax or ErrInvalid.
func Parse(r io.Reader, file string, opts Options) (*Zone, error) {
	origin := opts.Origin
	if origin != "" {
		if origin = CanonicalName(origin); origin == "" {
			return nil, fmt.Errorf("%w: origin %q is not a domain name", ErrInvalid, opts.Origin)
		}
	}
	if opts.DefaultTTL == 0 {
		opts.DefaultTTL = 3600
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 100_000
	}
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetDefaultTTL(opts.DefaultTTL)
	zp.SetIncludeAllowed(false)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if len(rrs) == opts.MaxRecords {
			return nil, fmt.Errorf("%w: %s: more than %d records", ErrInvalid, file, opts.MaxRecords)
		}
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	return build(rrs, origin, file)
}

// build groups records into sets and checks the zone.
func build(rrs []dns.RR, origin, file string) (*Zone, error) {
	v := &validator{file: file}
	apex := findApex(rrs, origin, v)
	if apex == "" {
		return nil, v.err()
	}
	z := &Zone{Apex: apex}
	z.Sets, z.Records = groupSets(rrs, apex, v)
	checkZone(z, v)
	checkSets(z.Sets, v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return z, nil
}

// groupSets groups the records of the zone apex into RRsets in canonical form, sorted by
// compareSets, and counts their records (duplicates once). It refuses, through v, records that
// refuseRecord names and sets whose records disagree on the TTL.
func groupSets(rrs []dns.RR, apex string, v *validator) ([]Set, int) {
	type setID struct {
		name string
		t    uint16
	}
	sets := map[setID]*Set{}
	var order []setID
	for _, rr := range rrs {
		h := rr.Header()
		name := CanonicalName(h.Name)
		if reason := refuseRecord(h, name, apex); reason != "" {
			v.fail("%s %s: %s", name, typeName(h.Rrtype), reason)
			continue
		}
		id := setID{name, h.Rrtype}
		s := sets[id]
		if s == nil {
			s = &Set{Zone: apex, Name: name, Type: h.Rrtype, TTL: h.Ttl}
			sets[id] = s
			order = append(order, id)
		} else if s.TTL != h.Ttl {
			v.fail("%s %s: TTLs %d and %d in one RRset (RFC 2181 §5.2)", name, typeName(h.Rrtype), s.TTL, h.Ttl)
			continue
		}
		// Owner names are kept in canonical case; RDATA as written.
		rr = dns.Copy(rr)
		rr.Header().Name = name
		d := rdata(rr)
		if !slices.Contains(s.Data, d) {
			s.Data = append(s.Data, d)
		}
	}
	var (
		out     []Set
		records int
	)
	for _, id := range order {
		s := sets[id]
		slices.Sort(s.Data)
		records += len(s.Data)
		out = append(out, *s)
	}
	slices.SortFunc(out, compareSets)
	return out, records
}

// refuseRecord says why a record (its header, and its owner in canonical form) has no place in
// the zone apex, or returns "": a class other than IN, an owner outside the zone, or a type
// refusedType names.
func refuseRecord(h *dns.RR_Header, name, apex string) string {
	switch {
	case h.Class != dns.ClassINET:
		return "class " + dns.ClassToString[h.Class] + ": only IN is served"
	case !dns.IsSubDomain(apex, name):
		return "outside the zone " + apex
	}
	return refusedType(h.Rrtype)
}

// checkSets checks each set on its own: its shape, that its data survives the round trip
// through the form nodes read, and its size.
func checkSets(sets []Set, v *validator) {
	for i := range sets {
		s := &sets[i]
		if err := checkSetShape(s); err != nil {
			v.fail("%v", err)
			continue
		}
		// The form nodes read back must parse to the same records: this refuses what miekg/dns
		// reads but cannot print faithfully (such as a record with empty data).
		if _, err := s.RRs(); err != nil {
			v.fail("%s %s: data that does not survive the round trip: %v", s.Name, typeName(s.Type), errors.Unwrap(err))
			continue
		}
		if b, err := s.Marshal(); err != nil || len(b) > MaxSetSize {
			v.fail("%s %s: %d bytes over the RRset limit of %d", s.Name, typeName(s.Type), len(b), MaxSetSize)
		}
	}
}

// compareSets orders sets by name (labels from the root, so a zone reads top-down), then type,
// with the apex SOA last: a node that sees the new serial has every set written before it.
func compareSets(a, b Set) int {
	if (a.Type == dns.TypeSOA) != (b.Type == dns.TypeSOA) {
		if a.Type == dns.TypeSOA {
			return 1
		}
		return -1
	}
	if c := CompareNames(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Compare(a.Type, b.Type)
}

// CompareNames orders names label by label from the root, as a zone file reads top-down.
func CompareNames(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	slices.Reverse(la)
	slices.Reverse(lb)
	return slices.Compare(la, lb)
}

// findApex returns the zone's apex: the owner of its single SOA, which must be origin when one was
// given.
func findApex(rrs []dns.RR, origin string, v *validator) string {
	var soas []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			soas = append(soas, CanonicalName(rr.Header().Name))
		}
	}
	switch {
	case len(soas) == 0:
		v.fail("no SOA record: a zone starts with the SOA of its apex")
		return ""
	case len(soas) > 1:
		v.fail("%d SOA records (%s): a zone has exactly one, at its apex", len(soas), strings.Join(soas, ", "))
		return ""
	case origin != "" && soas[0] != origin:
		v.fail("the SOA is at %s, not at the origin %s", soas[0], origin)
		return ""
	}
	return soas[0]
}

// checkZone checks the rules that concern several sets: NS at the apex, CNAME alone and not at the
// apex, and nothing but glue below a delegation.
func checkZone(z *Zone, v *validator) {
	byName := map[string][]uint16{}
	for _, s := range z.Sets {
		byName[s.Name] = append(byName[s.Name], s.Type)
		if s.Type == dns.TypeCNAME && len(s.Data) > 1 {
			v.fail("%s CNAME: %d records; a name has at most one CNAME", s.Name, len(s.Data))
		}
	}
	if !slices.Contains(byName[z.Apex], dns.TypeNS) {
		v.fail("%s: no NS records at the apex", z.Apex)
	}
	cuts := map[string]bool{}
	for name, types := range byName {
		if name != z.Apex && slices.Contains(types, dns.TypeNS) {
			cuts[name] = true
		}
	}
	for _, name := range sortedKeys(byName) {
		types := byName[name]
		if slices.Contains(types, dns.TypeCNAME) {
			switch {
			case name == z.Apex:
				v.fail("%s CNAME: not allowed at the apex (it has SOA and NS)", name)
			case len(types) > 1:
				v.fail("%s CNAME: the name has other data too (RFC 1034 §3.6.2)", name)
			}
		}
		cut := cutAbove(name, z.Apex, cuts)
		switch {
		case cut == "":
		case cut == name:
			for _, t := range types {
				if t != dns.TypeNS && t != dns.TypeA && t != dns.TypeAAAA {
					v.fail("%s %s: at the delegation %s only NS (and glue) is served", name, typeName(t), cut)
				}
			}
		default:
			for _, t := range types {
				if t != dns.TypeA && t != dns.TypeAAAA {
					v.fail("%s %s: below the delegation %s, where only glue (A, AAAA) belongs", name, typeName(t), cut)
				}
			}
		}
	}
}

// cutAbove returns the highest delegation at or above name (below the apex), or "".
func cutAbove(name, apex string, cuts map[string]bool) string {
	labels := dns.Split(name)
	apexLabels := dns.CountLabel(apex)
	for i := len(labels) - apexLabels - 1; i >= 0; i-- {
		if n := name[labels[i]:]; cuts[n] {
			return n
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, CompareNames)
	return keys
}

// validator collects the problems of a zone.
type validator struct {
	file     string
	problems []error
	more     int
}

func (v *validator) fail(format string, args ...any) {
	if len(v.problems) == maxReported {
		v.more++
		return
	}
	v.problems = append(v.problems, fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalid, v.file}, args...)...))
}

func (v *validator) err() error {
	if v.more > 0 {
		v.problems = append(v.problems, fmt.Errorf("%w: %s: and %d more problems", ErrInvalid, v.file, v.more))
	}
	return errors.Join(v.problems...)
}
