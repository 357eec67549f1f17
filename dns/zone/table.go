package zone

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Table is the part of a dt node that publishing zones reads and writes; *dt.Node is one. A
// master's node is needed to write.
type Table interface {
	ObjectKeys() iter.Seq[string]
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, body []byte) error
	PutMany(ctx context.Context, keys []string, bodies [][]byte) error
	Delete(ctx context.Context, key string) error
	DeleteMany(ctx context.Context, keys []string) error
	WaitReplicated(ctx context.Context, key string, peers int) error
}

// Held returns what the table holds of the zone apex (canonical form): the body of each of its
// RRsets, by key. It is the have that Diff takes.
func Held(ctx context.Context, t Table, apex string) (map[string][]byte, error) {
	prefix := ZonePrefix(apex)
	have := map[string][]byte{}
	for k := range t.ObjectKeys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		body, err := t.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		have[k] = body
	}
	return have, nil
}

// Write makes the table hold the zone that c was diffed from. It writes in the order that keeps
// the zone whole as long as possible on the nodes that follow the log: the new and changed sets,
// then the removals, then the SOA (DNS nodes read a zone's serial from it). It returns once a
// peer holds the last of them: a peer's acknowledgement covers the log before it, so the change
// outlives the writer. Empty changes write nothing.
func Write(ctx context.Context, t Table, c Changes) error {
	if c.Empty() {
		return nil
	}
	var (
		keys   []string
		bodies [][]byte
		soa    = -1
	)
	for i, s := range c.Put {
		if s.Type == dns.TypeSOA {
			soa = i
			continue
		}
		keys, bodies = append(keys, s.Key()), append(bodies, c.PutBodies[i])
	}
	last := ""
	if len(keys) > 0 {
		if err := t.PutMany(ctx, keys, bodies); err != nil {
			return fmt.Errorf("write RRsets: %w", err)
		}
		last = keys[len(keys)-1]
	}
	if len(c.Delete) > 0 {
		if err := t.DeleteMany(ctx, c.Delete); err != nil {
			return fmt.Errorf("remove RRsets: %w", err)
		}
		last = c.Delete[len(c.Delete)-1]
	}
	if soa >= 0 {
		if err := t.Put(ctx, c.Put[soa].Key(), c.PutBodies[soa]); err != nil {
			return fmt.Errorf("write the SOA: %w", err)
		}
		last = c.Put[soa].Key()
	}
	if err := t.WaitReplicated(ctx, last, 1); err != nil {
		return fmt.Errorf("zone written but not confirmed by a peer: %w", err)
	}
	return nil
}

// ChangesSOA reports whether the changes rewrite the zone's SOA. A zone that changes while its
// SOA does not keeps its serial, so secondaries outside dt would not notice the change.
func (c *Changes) ChangesSOA() bool {
	return slices.ContainsFunc(c.Put, func(s Set) bool { return s.Type == dns.TypeSOA })
}

// Removal returns the keys of every RRset of the zone apex among keys, in the order Remove
// deletes them: the SOA first, then by key. It returns nil when keys hold nothing of the zone.
func Removal(keys []string, apex string) []string {
	prefix := ZonePrefix(apex)
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	soa := (&Set{Zone: apex, Name: apex, Type: dns.TypeSOA}).Key()
	slices.SortStableFunc(out, func(a, b string) int {
		switch {
		case a == soa:
			return -1
		case b == soa:
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// Remove deletes the RRsets keys names, as Removal ordered them, and returns once a peer holds
// the last removal. The SOA goes first and alone: DNS nodes serve a zone only while its apex has
// a SOA, so they stop answering for it with the first removal they apply, and never serve a
// zone half gone.
func Remove(ctx context.Context, t Table, keys []string, apex string) error {
	if len(keys) == 0 {
		return nil
	}
	rest := keys
	if soa := (&Set{Zone: apex, Name: apex, Type: dns.TypeSOA}).Key(); keys[0] == soa {
		if err := t.Delete(ctx, soa); err != nil {
			return fmt.Errorf("remove the SOA: %w", err)
		}
		rest = keys[1:]
	}
	if len(rest) > 0 {
		if err := t.DeleteMany(ctx, rest); err != nil {
			return fmt.Errorf("remove RRsets: %w", err)
		}
	}
	if err := t.WaitReplicated(ctx, keys[len(keys)-1], 1); err != nil {
		return fmt.Errorf("zone removed but not confirmed by a peer: %w", err)
	}
	return nil
}

// Listing returns the records of the RRsets in have (bodies by key, as Held returns them) in a
// zone file's order: the SOA first, then the owners from the apex down (CompareNames), each
// owner's types in numeric order. A body that DecodeSet refuses is left out, and its error
// returned in bad, in key order.
func Listing(have map[string][]byte) (sets [][]dns.RR, bad []error) {
	type decoded struct {
		set *Set
		rrs []dns.RR
	}
	var all []decoded
	for _, k := range slices.Sorted(maps.Keys(have)) {
		s, rrs, err := DecodeSet(k, have[k])
		if err != nil {
			bad = append(bad, err)
			continue
		}
		all = append(all, decoded{s, rrs})
	}
	slices.SortFunc(all, func(a, b decoded) int {
		sa, sb := a.set, b.set
		if (sa.Type == dns.TypeSOA) != (sb.Type == dns.TypeSOA) {
			if sa.Type == dns.TypeSOA {
				return -1
			}
			return 1
		}
		if c := CompareNames(sa.Name, sb.Name); c != 0 {
			return c
		}
		return int(sa.Type) - int(sb.Type)
	})
	for _, d := range all {
		sets = append(sets, d.rrs)
	}
	return sets, bad
}
