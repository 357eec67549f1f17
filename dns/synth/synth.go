package synth

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/cdnzone"
	"github.com/dt-cdn/dt/dns/geo"
	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/netconf"
)

// Defaults of the made SOA and NS.
const (
	// NegativeTTL is the made SOA's MINIMUM, the TTL of NXDOMAIN and NODATA (RFC 2308 §5):
	// short, because a name without an address now (its edge restarting, a site being
	// published) has one seconds later.
	NegativeTTL = 30
	// ZoneTTL is the TTL of the made SOA and NS: they change only when the operator changes
	// the delegation.
	ZoneTTL = 3600
)

// Config configures a Synth.
type Config struct {
	// View returns the edges, their per-site reports and the sites (edgeset.Set.View).
	// Required.
	View func() *edgeset.View
	// Geo chooses the edges of a site's name (its AnswerSite); its TTL is the TTL of every
	// address answer. Required.
	Geo *geo.Answerer
	// Select judges whether an edge is live and serves a site; it must be the options Geo
	// chooses with.
	Select edgeset.SelectOptions
	// NameServers are the host names the CDN zone is delegated to, for the made NS and SOA,
	// used when no zone of the CDN zone's apex is published. Empty: the SOA names the zone
	// itself as its primary and NS queries get NODATA.
	NameServers []string
	// Load fetches a record body an event lacks (a node with lazy bodies). Nil: such a record
	// is ignored.
	Load func(ctx context.Context, key string) ([]byte, error)
	// Held reports whether the table holds key now: dt reports a replaced record as a removal
	// and then an addition, and the zone is kept through a removal of a record still held. Nil:
	// every removal clears the zone until the addition.
	Held func(key string) bool
	// Logger receives refused records at Warn. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Synth answers the CDN zone. It follows the settings record through HandleEvent (from one
// goroutine, in event order); Answer, Apex, Zone and Labels are safe to call from any goroutine
// at once.
type Synth struct {
	cfg  Config
	log  *slog.Logger
	zone atomic.Pointer[string] // netconf form ("cdn.example.com"); "" for none

	labels atomic.Pointer[viewLabels]
}

// viewLabels are the edge labels of one view (over all its edges, so that a label does not
// change as edges start or stop serving the zone) and the view of the edges that report serving
// the zone, kept while the view and zone are current.
type viewLabels struct {
	view   *edgeset.View
	zone   string
	serves *edgeset.View
	labels *cdnzone.Labels
}

var _ server.Synthesizer = (*Synth)(nil)

// New checks cfg and returns a Synth answering no zone until the settings record names one.
func New(cfg Config) (*Synth, error) {
	if cfg.View == nil || cfg.Geo == nil {
		return nil, errors.New("synth: Config.View and Config.Geo are required")
	}
	for _, ns := range cfg.NameServers {
		if zone.CanonicalName(ns) == "" {
			return nil, errors.New("synth: name server " + ns + " is not a domain name")
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Synth{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	none := ""
	s.zone.Store(&none)
	return s, nil
}

// Zone returns the CDN zone answered, as netconf holds it; "" for none.
func (s *Synth) Zone() string { return *s.zone.Load() }

// Apex returns the CDN zone answered, canonical; "" for none.
func (s *Synth) Apex() string {
	if z := s.Zone(); z != "" {
		return z + "."
	}
	return ""
}

// Labels returns the edges' labels under the zone, for the view v.
func (s *Synth) Labels(v *edgeset.View) *cdnzone.Labels { return s.prepare(v, s.Zone()).labels }

// prepare returns the labels of v's edges and the view of those serving zone, from the cache
// when v and zone are the latest.
func (s *Synth) prepare(v *edgeset.View, zone string) *viewLabels {
	if c := s.labels.Load(); c != nil && c.view == v && c.zone == zone {
		return c
	}
	edges := make([]cdnzone.Edge, 0, len(v.Edges))
	serves := *v
	serves.Edges = make([]heartbeat.Edge, 0, len(v.Edges))
	for _, e := range v.Edges {
		edges = append(edges, cdnzone.Edge{Node: e.Node, Name: e.Last.Name})
		// An edge that does not report the zone (an earlier release, or one that has not
		// learned it yet) would answer its names 421: it gets no visitors by them.
		if e.Last.CDNZone == zone {
			serves.Edges = append(serves.Edges, e)
		}
	}
	c := &viewLabels{view: v, zone: zone, serves: &serves, labels: cdnzone.NewLabels(edges)}
	s.labels.Store(c)
	return c
}

// HandleEvent follows the settings record.
func (s *Synth) HandleEvent(ev dt.Event) {
	if ev.Key != netconf.Key {
		return
	}
	switch ev.Type {
	case dt.EventObjectAdded:
		if body := s.body(ev); body != nil {
			s.setZone(body)
		}
	case dt.EventObjectRemoved:
		if s.cfg.Held == nil || !s.cfg.Held(ev.Key) {
			s.setZone(nil)
		}
	}
}

// loadTimeout bounds the fetch of a missing body, which blocks the event loop.
const loadTimeout = 10 * time.Second

func (s *Synth) body(ev dt.Event) []byte {
	if len(ev.Object) > 0 || s.cfg.Load == nil {
		return ev.Object
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	b, err := s.cfg.Load(ctx, ev.Key)
	if err != nil {
		s.log.Warn("Record body unavailable", slog.String("key", ev.Key), slog.Any("err", err))
		return nil
	}
	return b
}

// setZone takes the settings record (nil: removed); one refused counts as none.
func (s *Synth) setZone(body []byte) {
	var st netconf.Settings
	if body != nil {
		var err error
		if st, err = netconf.ParseSettings(body); err != nil {
			s.log.Warn("Bad network settings; no CDN zone", slog.Any("err", err))
		}
	}
	z := st.CDNZone
	s.zone.Store(&z)
	s.log.Info("CDN zone", slog.String("zone", z))
}

// addressOf returns the A or AAAA record of e owned by name, none when e has no address of
// that family.
func (s *Synth) addressOf(e heartbeat.Edge, name string, qtype uint16) []dns.RR {
	ip := geo.Address(e, qtype)
	if !ip.IsValid() {
		return nil
	}
	return []dns.RR{geo.Record(name, qtype, s.cfg.Geo.TTL(), ip)}
}

// isAddress reports whether qtype asks for addresses.
func isAddress(qtype uint16) bool { return qtype == dns.TypeA || qtype == dns.TypeAAAA }

// canonical is a configured host name in canonical form (checked by New).
func canonical(name string) string { return zone.CanonicalName(name) }
