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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/trafficseries"
)

// ServiceConfig configures a redirector running on a dt node.
type ServiceConfig struct {
	// Node is the redirector's node in the network (for its status). Its events reach the Service
	// through HandleEvent. Required.
	Node *dt.Node
	// Geo, TrustedProxies, Code, Select and ACME are passed to the Handler (see HandlerConfig),
	// except that zero Select.MaxAgeBeats and Select.MaxAge mean three heartbeat intervals (see
	// edgeset.Config.Select): the silence after which the tracker suspects an edge, judged at
	// each request instead of at the tracker's next check, so a dead edge stops getting visitors
	// three intervals after its last heartbeat and not up to a check period later.
	Geo            geoip.Locator
	TrustedProxies []netip.Prefix
	Code           int
	Select         edgeset.SelectOptions
	ACME           http.Handler
	// HeartbeatInterval is the interval assumed for edges that do not announce theirs (edges of
	// releases before heartbeat.Heartbeat.IntervalMS); the others are judged by their own. Zero:
	// heartbeat.DefaultInterval.
	HeartbeatInterval time.Duration
	// Probe checks an edge whose heartbeats stopped. Nil: GET its edgeset.HealthPath with a 2 s
	// timeout, healthy on 200.
	Probe func(ctx context.Context, e heartbeat.Edge) error
	// Registerer receives the redirector's metrics. Nil: none.
	Registerer prometheus.Registerer
	// Redirects counts the redirects per site, chosen edge and reason, for the traffic series;
	// it needs Registerer (the redirects are counted beside their metrics). Nil: not counted.
	Redirects *trafficseries.RedirectCounter
	// Logger receives the Service's logs. Nil discards them.
	Logger *slog.Logger
}

// Service is a redirector: it follows the edges' heartbeats and the current deploy through a dt
// node (an edgeset.Set), and answers visitors with a redirect to the nearest live edge that
// serves it.
type Service struct {
	*edgeset.Set // Run, Edges, Changed, Status; HandleEvent is the Service's own
	handler      *Handler
	node         *dt.Node
	log          *slog.Logger
	zone         atomic.Pointer[string] // the CDN zone of the settings record; "" for none
}

// settingsLoadTimeout bounds the fetch of a settings record an event came without (a node with
// lazy bodies), which blocks the event loop.
const settingsLoadTimeout = 10 * time.Second

// HandleEvent takes one event of the node: the network's settings (the CDN zone), and
// everything the edgeset.Set follows. Call it with every event, in order, from one goroutine.
func (s *Service) HandleEvent(ev dt.Event) {
	if ev.Key == netconf.Key {
		s.takeSettings(ev)
	}
	s.Set.HandleEvent(ev)
}

// takeSettings follows the settings record; one the Service refuses counts as none.
func (s *Service) takeSettings(ev dt.Event) {
	zone := ""
	if ev.Type == dt.EventObjectAdded {
		body := []byte(ev.Object)
		if len(body) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), settingsLoadTimeout)
			var err error
			body, err = s.node.Get(ctx, ev.Key)
			cancel()
			if err != nil {
				s.log.Warn("Network settings unavailable", slog.Any("err", err))
				return
			}
		}
		st, err := netconf.ParseSettings(body)
		if err != nil {
			s.log.Warn("Bad network settings; no CDN zone", slog.Any("err", err))
		}
		zone = st.CDNZone
	} else if ev.Type != dt.EventObjectRemoved || s.node.Has(ev.Key) {
		return // not a change, or a replacement (a removal, then the addition): keep the zone until then
	}
	s.zone.Store(&zone)
	s.log.Info("CDN zone", slog.String("zone", zone))
}

// Zone returns the network's CDN zone; "" for none.
func (s *Service) Zone() string {
	if z := s.zone.Load(); z != nil {
		return *z
	}
	return ""
}

// NewService builds a Service; Run starts it.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Node == nil {
		return nil, errors.New("redirector: ServiceConfig.Node is required")
	}
	set, err := edgeset.New(edgeset.Config{Node: cfg.Node, HeartbeatInterval: cfg.HeartbeatInterval, Select: cfg.Select,
		Probe: cfg.Probe, Registerer: cfg.Registerer, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	var m Metrics
	if cfg.Registerer != nil {
		pm, err := newPromMetrics(cfg.Registerer, cfg.Redirects)
		if err != nil {
			return nil, err
		}
		m = pm
	}
	svc := &Service{Set: set, node: cfg.Node, log: cfg.Logger}
	if svc.log == nil {
		svc.log = slog.New(slog.DiscardHandler)
	}
	h, err := NewHandler(HandlerConfig{
		Zone:           svc.Zone,
		Edges:          set.Snapshot,
		Sites:          set.View,
		Geo:            cfg.Geo,
		TrustedProxies: cfg.TrustedProxies,
		Code:           cfg.Code,
		Select:         set.Options(),
		ACME:           cfg.ACME,
		Metrics:        m,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	svc.handler = h
	return svc, nil
}

// Handler returns the visitors' handler: redirects to edges.
func (s *Service) Handler() http.Handler { return s.handler }

// Explain returns the explain endpoint (see Handler.Explain).
func (s *Service) Explain() http.Handler { return s.handler.Explain() }

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
	redirects     *prometheus.CounterVec
	geoMisses     prometheus.Counter
	unavailable   prometheus.Counter
	misdirected   prometheus.Counter
	siteRedirects *prometheus.CounterVec
	series        *trafficseries.RedirectCounter // nil: redirects are not kept in the series
}

func newPromMetrics(reg prometheus.Registerer, redirects *trafficseries.RedirectCounter) (*promMetrics, error) {
	m := &promMetrics{series: redirects,
		redirects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "redirects_total", Help: "Redirects sent, by edge node id and status code."}, []string{"edge", "code"}),
		geoMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "geo_misses_total", Help: "Clients the GeoIP database did not locate."}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "unavailable_total", Help: "Requests answered 503: no eligible edge."}),
		misdirected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
			Name: "misdirected_total", Help: "Requests answered 421: no site claims their Host."}),
	}
	m.siteRedirects = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
		Name: "site_redirects_total", Help: "Redirects sent, by site and chosen edge node id."}, []string{"site", "edge"})
	collectors := []prometheus.Collector{m.redirects, m.geoMisses, m.unavailable, m.misdirected, m.siteRedirects} // and edgeset's dt_redirector_edges
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

// Misdirected counts a 421: no site claims the request's Host.
func (m *promMetrics) Misdirected() { m.misdirected.Inc() }

// RedirectedSite counts a redirect of the site's visitor to the edge with node id node, and
// why, for the series.
func (m *promMetrics) RedirectedSite(site, node, reason string) {
	m.siteRedirects.WithLabelValues(site, node).Inc()
	if m.series != nil {
		m.series.Count(site, node, reason)
	}
}
