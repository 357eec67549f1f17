package redirector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// HealthPath is the edge endpoint the redirector probes when an edge's heartbeats stop: 200 when
// it serves the current deploy, 503 when not.
const HealthPath = "/.well-known/dt/health"

// suspectAfter is how many heartbeat intervals of silence make an edge suspect, and ineligible
// until a probe or a heartbeat vouches for it again.
const suspectAfter = 3

// ServiceConfig configures a redirector running on a dt node.
type ServiceConfig struct {
	// Node is the redirector's node in the network (for its status). Its events reach the Service
	// through HandleEvent. Required.
	Node *dt.Node
	// Geo, TrustedProxies, Code, Select and ACME are passed to the Handler (see HandlerConfig),
	// except that a zero Select.MaxAge means three heartbeat intervals: the silence after which
	// the tracker suspects an edge, judged at each request instead of at the tracker's next
	// check, so a dead edge stops getting visitors three intervals after its last heartbeat and
	// not up to a check period later.
	Geo            GeoLookup
	TrustedProxies []netip.Prefix
	Code           int
	Select         SelectOptions
	ACME           http.Handler
	// HeartbeatInterval is the edges' heartbeat interval. Zero: 2 s.
	HeartbeatInterval time.Duration
	// Probe checks an edge whose heartbeats stopped. Nil: GET its HealthPath with a 2 s timeout,
	// healthy on 200.
	Probe func(ctx context.Context, e heartbeat.Edge) error
	// Registerer receives the redirector's metrics. Nil: none.
	Registerer prometheus.Registerer
	// Logger receives the Service's logs. Nil discards them.
	Logger *slog.Logger
}

// Service is a redirector: it follows the edges' heartbeats and the current deploy through a dt
// node, and answers visitors with a redirect to the nearest live edge that serves it.
type Service struct {
	cfg     ServiceConfig
	log     *slog.Logger
	tracker *heartbeat.Tracker
	handler *Handler
	metrics *promMetrics

	current  atomic.Pointer[string]
	snapshot atomic.Pointer[[]heartbeat.Edge] // the tracker's edges, refreshed on change
	// snapMu makes taking and storing a snapshot one step, so an older one never replaces a
	// newer one.
	snapMu sync.Mutex
}

// NewService builds a Service; Run starts it.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Node == nil {
		return nil, errors.New("redirector: ServiceConfig.Node is required")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Select.MaxAge == 0 {
		cfg.Select.MaxAge = suspectAfter * cfg.HeartbeatInterval
	}
	if cfg.Probe == nil {
		cfg.Probe = probeHealth(&http.Client{Timeout: 2 * time.Second})
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	s.tracker = heartbeat.NewTracker(heartbeat.Config{Interval: cfg.HeartbeatInterval, SuspectAfter: suspectAfter * cfg.HeartbeatInterval, Probe: cfg.Probe})
	empty, none := []heartbeat.Edge{}, ""
	s.snapshot.Store(&empty)
	s.current.Store(&none)
	var m Metrics
	if cfg.Registerer != nil {
		pm, err := newPromMetrics(cfg.Registerer, s)
		if err != nil {
			return nil, err
		}
		s.metrics, m = pm, pm
	}
	h, err := NewHandler(HandlerConfig{
		Edges:          func() ([]heartbeat.Edge, string) { return *s.snapshot.Load(), *s.current.Load() },
		Geo:            cfg.Geo,
		TrustedProxies: cfg.TrustedProxies,
		Code:           cfg.Code,
		Select:         cfg.Select,
		ACME:           cfg.ACME,
		Metrics:        m,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

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

// Handler returns the visitors' handler: redirects to edges.
func (s *Service) Handler() http.Handler { return s.handler }

// Explain returns the explain endpoint (see Handler.Explain).
func (s *Service) Explain() http.Handler { return s.handler.Explain() }

// Run follows the edges' liveness (missed heartbeats, probes) until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.tracker.Run(ctx) })
	wg.Go(func() { s.refresh(ctx) })
	wg.Wait()
	return nil
}

// HandleEvent takes one event of the node: heartbeats and the current deploy pointer matter, the
// rest is ignored. Call it with every event, in order, from one goroutine.
func (s *Service) HandleEvent(ev dt.Event) {
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
		s.tracker.Observe(ev.From.String(), h, time.Now())
		// A heartbeat may make an edge eligible (it now serves the current deploy) without any
		// change of state the refresh loop would wake for: visitors should not wait for its tick.
		s.refreshSnapshot()
	case dt.EventObjectAdded:
		if ev.Key != site.CurrentKey {
			return
		}
		c, err := site.ParseCurrent(ev.Object)
		if err != nil {
			s.log.Warn("Bad current deploy pointer", slog.Any("err", err))
			return
		}
		id := c.Deploy.String()
		s.current.Store(&id)
		s.log.Info("Current deploy", slog.Any("deploy", c.Deploy))
	case dt.EventError:
		s.log.Debug("Node error", slog.String("origin", ev.Origin), slog.Any("err", ev.Err))
	}
}

// refresh keeps the handler's snapshot of edges current: the tracker copies and sorts on every
// call, which the request path should not pay for.
func (s *Service) refresh(ctx context.Context) {
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

// refreshSnapshot replaces the handler's snapshot with the tracker's edges.
func (s *Service) refreshSnapshot() {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	edges := s.tracker.Edges()
	s.snapshot.Store(&edges)
}

// Edges returns the tracked edges and the current deploy.
func (s *Service) Edges() ([]heartbeat.Edge, string) {
	return s.tracker.Edges(), *s.current.Load()
}

// Changed returns a channel closed at the next change of an edge's state (for live pages).
func (s *Service) Changed() <-chan struct{} { return s.tracker.Changed() }

// Status is what the admin /status endpoint reports.
type Status struct {
	Node    dt.Status    `json:"node"`
	Current string       `json:"current_deploy"`
	Edges   []EdgeStatus `json:"edges"`
}

// EdgeStatus is one edge as the redirector sees it, with why it would not get visitors.
type EdgeStatus struct {
	heartbeat.Edge
	Eligible bool   `json:"eligible"`
	Excluded string `json:"excluded,omitempty"`
	AgeMS    int64  `json:"heartbeat_age_ms"`
}

// Status reports the node, the current deploy and every edge with its eligibility.
func (s *Service) Status() Status {
	edges, current := s.Edges()
	st := Status{Node: s.cfg.Node.Status(), Current: current, Edges: []EdgeStatus{}}
	now := time.Now()
	d := Select(edges, Client{}, current, now, s.cfg.Select)
	why := map[string]string{}
	for _, x := range d.Excluded {
		why[x.Edge.Node] = x.Reason.String()
	}
	for _, e := range edges {
		_, excluded := why[e.Node]
		st.Edges = append(st.Edges, EdgeStatus{Edge: e, Eligible: !excluded, Excluded: why[e.Node], AgeMS: now.Sub(e.LastSeen).Milliseconds()})
	}
	return st
}

// ServeStatus writes Status as JSON.
func (s *Service) ServeStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Status())
}

// promMetrics counts redirects for Prometheus.
type promMetrics struct {
	redirects   *prometheus.CounterVec
	geoMisses   prometheus.Counter
	unavailable prometheus.Counter
}

func newPromMetrics(reg prometheus.Registerer, s *Service) (*promMetrics, error) {
	m := &promMetrics{
		redirects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "redirects_total", Help: "Redirects sent, by edge node id and status code."}, []string{"edge", "code"}),
		geoMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "geo_misses_total", Help: "Clients the GeoIP database did not locate."}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "unavailable_total", Help: "Requests answered 503: no eligible edge."}),
	}
	edges := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "redirector",
		Name: "edges", Help: "Edges by state."}, []string{"state"})
	collectors := []prometheus.Collector{m.redirects, m.geoMisses, m.unavailable, &edgeCollector{s: s, desc: edges}}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("redirector: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *promMetrics) Redirected(node string, code int) {
	m.redirects.WithLabelValues(node, strconv.Itoa(code)).Inc()
}
func (m *promMetrics) GeoMiss()     { m.geoMisses.Inc() }
func (m *promMetrics) Unavailable() { m.unavailable.Inc() }

// edgeCollector reports edges by state at scrape time.
type edgeCollector struct {
	s    *Service
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
