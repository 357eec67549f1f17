package zone

import (
	"bytes"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Changes are the writes that make the table hold a zone.
type Changes struct {
	// Put are the sets to write, new or changed, in the zone's order (the SOA last).
	Put []Set
	// PutBodies are their bodies, in the same order.
	PutBodies [][]byte
	// Delete are the keys of the zone's sets that the table holds and the zone no longer has,
	// sorted.
	Delete []string
	// Unchanged counts the sets the table already holds as they are.
	Unchanged int
}

// Empty reports whether the table already holds the zone exactly.
func (c *Changes) Empty() bool { return len(c.Put) == 0 && len(c.Delete) == 0 }

// Diff compares z with what the table holds: have maps every table key under z's prefix
// (ZonePrefix(z.Apex)) to its body. Keys of other zones in have are ignored, so the caller may
// pass the whole table.
func Diff(z *Zone, have map[string][]byte) (Changes, error) {
	var c Changes
	want := make(map[string]bool, len(z.Sets))
	for i := range z.Sets {
		s := &z.Sets[i]
		body, err := s.Marshal()
		if err != nil {
			return Changes{}, err
		}
		key := s.Key()
		want[key] = true
		if old, ok := have[key]; ok && bytes.Equal(old, body) {
			c.Unchanged++
			continue
		}
		c.Put = append(c.Put, *s)
		c.PutBodies = append(c.PutBodies, body)
	}
	prefix := ZonePrefix(z.Apex)
	for key := range have {
		if strings.HasPrefix(key, prefix) && !want[key] {
			c.Delete = append(c.Delete, key)
		}
	}
	slices.Sort(c.Delete)
	return c, nil
}

// Serial returns the serial of the zone's SOA.
func (z *Zone) Serial() uint32 {
	for i := range z.Sets {
		if s := &z.Sets[i]; s.Type == dns.TypeSOA {
			if rrs, err := s.RRs(); err == nil && len(rrs) == 1 {
				return rrs[0].(*dns.SOA).Serial
			}
		}
	}
	return 0
}

// Zones returns the apexes of the zones whose sets are among keys, sorted: the zones the table
// holds.
func Zones(keys []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, KeyPrefix)
		if !ok {
			continue
		}
		apex, _, ok := strings.Cut(rest, "/")
		if !ok || seen[apex] {
			continue
		}
		seen[apex] = true
		out = append(out, strings.ReplaceAll(apex, `\047`, "/"))
	}
	slices.SortFunc(out, CompareNames)
	return out
}
