package edgeset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// HealthPath is the edge endpoint a Set probes when an edge's heartbeats stop: 200 when it
// serves the current deploy, 503 when not.
const HealthPath = "/.well-known/dt/health"

// DefaultProbeTimeout bounds the default probe: an edge that takes longer to answer its health
// endpoint is in no state to take visitors.
const DefaultProbeTimeout = 2 * time.Second

// Config configures a Set. Only Node is required; zero values of the others mean the defaults
// given per field. New copies what it keeps; the config is not used afterwards.
type Config struct {
	// Node is the node whose events feed the Set (through HandleEvent), named in its Status.
	// Required.
	Node *dt.Node
	// HeartbeatInterval is the interval assumed for edges that do not announce theirs in their
	// heartbeats (edges older than heartbeat.Heartbeat.IntervalMS); every other edge is judged by
	// the interval it announces. A value shorter than those edges' real interval makes them
	// flap; a longer one keeps a dead one in the choice longer. Zero: heartbeat.DefaultInterval.
	HeartbeatInterval time.Duration
	// Select is how Status judges eligibility, with Client{} as the client: it must be the
	// options the Set's users choose with, so that Status says what they do. A zero
	// Select.MaxAgeBeats means heartbeat.DefaultSuspectBeats, and a zero Select.MaxAge that many
	// HeartbeatIntervals: the silence after which the tracker suspects an edge, judged at every
	// choice instead of at the tracker's next check. Options reports the result.
	Select SelectOptions
	// Probe checks an edge whose heartbeats stopped. Nil: GET its HealthPath with a
	// DefaultProbeTimeout, healthy on 200.
	Probe func(ctx context.Context, e heartbeat.Edge) error
	// Registerer receives the dt_redirector_edges gauge (edges by state; the name predates this
	// package and dashboards depend on it). Nil: none.
	Registerer prometheus.Registerer
	// Logger receives bad heartbeats and deploy pointers (at Warn) and the current deploy (at
	// Info). Nil discards.
	Logger *slog.Logger
}

// Set follows the edges of a network through a dt node, their heartbeats and liveness and the
// network's current deploy, and keeps a snapshot of them cheap enough to read on every request.
// It is safe for concurrent use; HandleEvent must be called from one goroutine, in event order.
type Set struct {
	cfg     Config
	log     *slog.Logger
	tracker *heartbeat.Tracker

	current  atomic.Pointer[string]
	snapshot atomic.Pointer[[]heartbeat.Edge] // the tracker's edges, refreshed on change
	view     atomic.Pointer[View]             // the snapshot with the reports and sites
	// snapMu makes taking and storing a snapshot one step, so an older one never replaces a
	// newer one.
	snapMu sync.Mutex

	// sitesMu guards the site records. Lock order: snapMu, then sitesMu.
	sitesMu sync.Mutex
	recs    siteRecords           // guarded by sitesMu
	sites   atomic.Pointer[Sites] // built from recs on every change of a site

	refused prometheus.Counter // heartbeats whose per-site fields were refused
}

// New builds a Set; Run starts following liveness. It fails when Node is missing or the
// metric cannot be registered.
func New(cfg Config) (*Set, error) {
	if cfg.Node == nil {
		return nil, errors.New("edgeset: Config.Node is required")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = heartbeat.DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Select.MaxAgeBeats == 0 {
		cfg.Select.MaxAgeBeats = heartbeat.DefaultSuspectBeats
	}
	if cfg.Select.MaxAge == 0 {
		cfg.Select.MaxAge = heartbeat.DefaultSuspectBeats * cfg.HeartbeatInterval
	}
	if cfg.Probe == nil {
		cfg.Probe = probeHealth(&http.Client{Timeout: DefaultProbeTimeout})
	}
	s := &Set{cfg: cfg, log: cfg.Logger, recs: siteRecords{records: map[string]site.Record{}, currents: map[string]string{}, previous: map[string]string{}}}
	s.tracker = heartbeat.NewTracker(heartbeat.Config{Interval: cfg.HeartbeatInterval, Probe: cfg.Probe})
	empty, none := []heartbeat.Edge{}, ""
	s.snapshot.Store(&empty)
	s.current.Store(&none)
	s.sites.Store(s.recs.build())
	s.view.Store(&View{Edges: empty, Reports: map[string]SiteReport{}, Sites: s.sites.Load()})
	s.refused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
		Name: "site_reports_refused_total", Help: "Heartbeats whose per-site fields were malformed or over their bounds (heartbeat.MaxLagging); their edges count for the default site only."})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{&edgeCollector{s: s, desc: edgesGauge()}, s.refused} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("edgeset: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Options returns Config.Select with the Set's defaults filled in: the options to choose with.
func (s *Set) Options() SelectOptions { return s.cfg.Select }

// probeHealth returns a probe that GETs an edge's health endpoint.
func probeHealth(client *http.Client) func(ctx context.Context, e heartbeat.Edge) error {
	return func(ctx context.Context, e heartbeat.Edge) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.Last.PublicURL+HealthPath, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	}
}

// Run follows the edges' liveness (missed heartbeats, probes) until ctx ends, and returns once
// every probe it started has returned.
func (s *Set) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.tracker.Run(ctx) })
	wg.Go(func() { s.refresh(ctx) })
	wg.Wait()
	return nil
}

// HandleEvent takes one event of the node: heartbeats, site records and the sites' current
// deploy pointers matter, the rest is ignored. Call it with every event, in order, from one
// goroutine.
func (s *Set) HandleEvent(ev dt.Event) {
	switch ev.Type {
	case dt.EventMessageReceived:
		h, err := heartbeat.Decode(ev.Object)
		if errors.Is(err, heartbeat.ErrNotHeartbeat) {
			return
		}
		if err != nil {
			s.log.Warn("Bad heartbeat", slog.Any("from", ev.From), slog.Any("err", err))
			return
		}
		if h.SitesRefused != nil {
			// The edge counts for DefaultSite alone, by the fields every release reports.
			s.refused.Inc()
			s.log.Warn("Bad per-site heartbeat fields", slog.Any("from", ev.From), slog.Any("err", h.SitesRefused))
		}
		s.tracker.Observe(ev.From.String(), h, time.Now())
		// A heartbeat may make an edge eligible (it now serves the current deploy) without any
		// change of state the refresh loop would wake for: visitors should not wait for its tick.
		s.refreshSnapshot()
	case dt.EventObjectAdded:
		if name, ok := site.ParseRecordKey(ev.Key); ok {
			s.addRecord(name, ev.Object)
			return
		}
		name, ok := site.ParseCurrentKey(ev.Key)
		if !ok {
			return
		}
		c, err := site.ParseCurrent(ev.Object)
		if err != nil {
			s.log.Warn("Bad current deploy pointer", slog.String("site", name), slog.Any("err", err))
			return
		}
		id := c.Deploy.String()
		if name == site.DefaultSite {
			s.current.Store(&id)
		}
		s.setCurrent(name, id)
		s.log.Info("Current deploy", slog.String("site", name), slog.Any("deploy", c.Deploy))
	case dt.EventObjectRemoved:
		s.removeSiteKey(ev.Key)
	case dt.EventError:
		s.log.Debug("Node error", slog.String("origin", ev.Origin), slog.Any("err", ev.Err))
	}
}

// refresh keeps the snapshot current: the tracker copies and sorts on every call, which the
// request path should not pay for.
func (s *Set) refresh(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeartbeatInterval / 4)
	defer t.Stop()
	for {
		changed := s.tracker.Changed()
		s.refreshSnapshot()
		select {
		case <-changed:
		case <-t.C: // a safety net: heartbeats and state changes refresh it already
		case <-ctx.Done():
			return
		}
	}
}

// refreshSnapshot replaces the snapshot with the tracker's edges, and the view with them, the
// per-site reports of their last heartbeats (the tracker keeps the newest of each edge) and the
// sites.
func (s *Set) refreshSnapshot() {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	edges := s.tracker.Edges()
	s.snapshot.Store(&edges)
	reports := make(map[string]SiteReport, len(edges))
	for _, e := range edges {
		reports[e.Node] = ReportOf(e.Last)
	}
	s.view.Store(&View{Edges: edges, Reports: reports, Sites: s.sites.Load()})
}

// View returns the edges, their per-site reports and the sites as of the last heartbeat or
// change. It is cheap, for every request; callers must not modify it.
func (s *Set) View() *View { return s.view.Load() }

// Snapshot returns the edges as of the last heartbeat or change of state, and the current
// deploy of the site "default" (site.DefaultSite), the one site of a network built before sites. It is cheap, for every request; callers must not modify the slice.
func (s *Set) Snapshot() ([]heartbeat.Edge, string) {
	return *s.snapshot.Load(), *s.current.Load()
}

// Edges returns a fresh copy of the tracked edges, sorted by node id, and the current deploy.
func (s *Set) Edges() ([]heartbeat.Edge, string) {
	return s.tracker.Edges(), *s.current.Load()
}

// Changed returns a channel closed at the next change of an edge's state (for live pages).
func (s *Set) Changed() <-chan struct{} { return s.tracker.Changed() }

// Status is the set as a status endpoint reports it. Current is the current deploy of the site
// DefaultSite, as before sites existed.
type Status struct {
	Node    dt.Status    `json:"node"`
	Current string       `json:"current_deploy"`
	Edges   []EdgeStatus `json:"edges"`
	Sites   []SiteStatus `json:"sites"`
}

// SiteStatus is one site: its hosts, current deploy and the edges eligible for it (node ids),
// for a client of unknown address and place.
type SiteStatus struct {
	Site
	Serving []string `json:"serving"`
}

// EdgeStatus is one edge with why it would not be chosen.
type EdgeStatus struct {
	heartbeat.Edge
	Eligible bool   `json:"eligible"`
	Excluded string `json:"excluded,omitempty"`
	AgeMS    int64  `json:"heartbeat_age_ms"`
	// Sites is the per-site part of its last heartbeat; nil for an edge of a release before
	// sites, which serves the site "default" alone.
	Sites *SiteReport `json:"site_report,omitempty"`
}

// Status reports the node, the current deploy and every edge with its eligibility for a client
// of unknown address and place.
func (s *Set) Status() Status {
	edges, current := s.Edges()
	st := Status{Node: s.cfg.Node.Status(), Current: current, Edges: []EdgeStatus{}}
	now := time.Now()
	d := Select(edges, Client{}, current, now, s.cfg.Select)
	why := map[string]string{}
	for _, x := range d.Excluded {
		why[x.Edge.Node] = x.Reason.String()
	}
	v := s.View()
	for _, e := range edges {
		_, excluded := why[e.Node]
		es := EdgeStatus{Edge: e, Eligible: !excluded, Excluded: why[e.Node], AgeMS: now.Sub(e.LastSeen).Milliseconds()}
		if r, ok := v.Reports[e.Node]; ok && r.Reports {
			es.Sites = &r
		}
		st.Edges = append(st.Edges, es)
	}
	st.Sites = make([]SiteStatus, 0, len(v.Sites.List()))
	for _, one := range v.Sites.List() {
		st.Sites = append(st.Sites, SiteStatus{Site: one, Serving: Serving(v, one, now, s.cfg.Select)})
	}
	return st
}

func edgesGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "redirector",
		Name: "edges", Help: "Edges by state."}, []string{"state"})
}

// edgeCollector reports edges by state at scrape time.
type edgeCollector struct {
	s    *Set
	desc *prometheus.GaugeVec
}

func (c *edgeCollector) Describe(ch chan<- *prometheus.Desc) { c.desc.Describe(ch) }

func (c *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{"alive": 0, "suspect": 0, "dead": 0}
	for _, e := range c.s.tracker.Edges() {
		counts[e.State.String()]++
	}
	for state, n := range counts {
		c.desc.WithLabelValues(state).Set(n)
	}
	c.desc.Collect(ch)
}
