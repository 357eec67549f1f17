package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
)

// Store holds the zones a node serves, as the table's events build them: every RRset record
// (package zone) that enters the table is added, every one that leaves is removed. It is safe for
// concurrent use: one goroutine feeds it events while any number answer queries.
type Store struct {
	log  *slog.Logger
	load func(ctx context.Context, key string) ([]byte, error)

	mu    sync.RWMutex
	zones map[string]*zoneData // guarded by mu: by apex
	byKey map[string]setRef    // guarded by mu: where each table key's set lives
}

// setRef locates a set in the store.
type setRef struct {
	zone, name string
	t          uint16
}

// zoneData is one zone's names. A zone is served only once its apex holds a SOA: the SOA is
// written last, so a zone arriving for the first time is not answered for half-built.
type zoneData struct {
	apex  string
	names map[string]*nameNode
}

// nameNode is one name of a zone: its RRsets, and how many names with data lie below it, so that
// an empty non-terminal (a name with no data but with data below it) answers NODATA, not
// NXDOMAIN (RFC 8020).
type nameNode struct {
	sets  map[uint16][]dns.RR
	below int
}

// NewStore returns an empty store. load, when not nil, fetches a body that an event lacks (a
// node with dt's LazyBodies gets events without bodies over its inline limit; zone.MaxSetSize
// keeps RRsets under it, so this is a fallback for networks configured otherwise).
func NewStore(log *slog.Logger, load func(ctx context.Context, key string) ([]byte, error)) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{log: log, load: load, zones: map[string]*zoneData{}, byKey: map[string]setRef{}}
}

// loadTimeout bounds the fetch of a missing body, which blocks the event loop.
const loadTimeout = 10 * time.Second

// HandleEvent applies one event of the node: RRset records added and removed; the rest is
// ignored. Call it with every event, in order, from one goroutine.
func (s *Store) HandleEvent(ev dt.Event) {
	if !strings.HasPrefix(ev.Key, zone.KeyPrefix) {
		return
	}
	switch ev.Type {
	case dt.EventObjectAdded:
		body := []byte(ev.Object)
		if len(body) == 0 && s.load != nil {
			ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
			var err error
			body, err = s.load(ctx, ev.Key)
			cancel()
			if err != nil {
				s.log.Warn("RRset body unavailable; not served", slog.String("key", ev.Key), slog.Any("err", err))
				s.Remove(ev.Key)
				return
			}
		}
		if err := s.Put(ev.Key, body); err != nil {
			s.log.Warn("Bad RRset record; not served", slog.String("key", ev.Key), slog.Any("err", err))
		}
	case dt.EventObjectRemoved:
		s.Remove(ev.Key)
	}
}

// Put adds or replaces the RRset stored under key. A body that is not a valid RRset (see
// zone.DecodeSet) is refused, and whatever the key held before is removed: serving a stale set
// would be worse than serving none.
func (s *Store) Put(key string, body []byte) error {
	set, rrs, err := zone.DecodeSet(key, body)
	if err != nil {
		s.Remove(key)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[set.Zone]
	if z == nil {
		z = &zoneData{apex: set.Zone, names: map[string]*nameNode{}}
		s.zones[set.Zone] = z
	}
	n := z.names[set.Name]
	if n == nil {
		n = &nameNode{}
		z.names[set.Name] = n
	}
	if len(n.sets) == 0 {
		z.adjustAncestors(set.Name, +1)
	}
	if n.sets == nil {
		n.sets = map[uint16][]dns.RR{}
	}
	n.sets[set.Type] = rrs
	s.byKey[key] = setRef{zone: set.Zone, name: set.Name, t: set.Type}
	return nil
}

// Remove drops the RRset stored under key, if any.
func (s *Store) Remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.byKey[key]
	if !ok {
		return
	}
	delete(s.byKey, key)
	z := s.zones[ref.zone]
	n := z.names[ref.name]
	delete(n.sets, ref.t)
	if len(n.sets) > 0 {
		return
	}
	z.adjustAncestors(ref.name, -1)
	if n.below == 0 {
		delete(z.names, ref.name)
	}
	if len(z.names) == 0 {
		delete(s.zones, ref.zone)
	}
}

// adjustAncestors counts a name that gained (+1) or lost (-1) its data in every name between it
// and the apex, creating and dropping the empty non-terminals on the way.
func (z *zoneData) adjustAncestors(name string, delta int) {
	for anc := parent(name); anc != "" && dns.IsSubDomain(z.apex, anc); anc = parent(anc) {
		n := z.names[anc]
		if n == nil {
			n = &nameNode{}
			z.names[anc] = n
		}
		n.below += delta
		if n.below == 0 && len(n.sets) == 0 {
			delete(z.names, anc)
		}
	}
}

// parent returns the name one label up, or "" above the root.
func parent(name string) string {
	if name == "." {
		return ""
	}
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// Counts returns the number of zones served (with a SOA) and RRsets held.
func (s *Store) Counts() (zones, sets int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, z := range s.zones {
		if z.soa() != nil {
			zones++
		}
	}
	return zones, len(s.byKey)
}

// soa returns the apex SOA, or nil while the zone has none.
func (z *zoneData) soa() *dns.SOA {
	if n := z.names[z.apex]; n != nil {
		if rrs := n.sets[dns.TypeSOA]; len(rrs) == 1 {
			return rrs[0].(*dns.SOA)
		}
	}
	return nil
}

// findZone returns the served zone closest to name, or nil. Called with mu held.
func (s *Store) findZone(name string) *zoneData {
	for n := name; n != ""; n = parent(n) {
		if z := s.zones[n]; z != nil && z.soa() != nil {
			return z
		}
	}
	return nil
}
