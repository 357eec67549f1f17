package edge

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/static"
	"github.com/dt-cdn/dt/trafficstats"
)

// Accounting is what an edge does with every response of its static.Handler, as the handler's
// Observer: it counts the response for the load its heartbeats report and for the metrics, logs
// it in the access log and counts it in the traffic statistics. The edge's service makes its
// own; NewAccounting makes one for a program that serves a static.Handler by itself (the peer
// benchmark measures the edge with it, as the edge runs).
type Accounting struct {
	load    loadMeter
	metrics *responseMetrics // nil: none
	log     *accesslog.Logger
	stats   *trafficstats.Collector
}

// AccountingConfig configures an Accounting.
type AccountingConfig struct {
	// Registerer receives the response metrics: dt_edge_requests_total,
	// dt_edge_response_bytes_total and dt_edge_response_seconds. Nil: none.
	Registerer prometheus.Registerer
	// AccessLog receives a line for every response of a site. Nil: none.
	AccessLog *accesslog.Logger
	// Stats counts every response of a site. Nil: none.
	Stats *trafficstats.Collector
}

// NewAccounting returns an Accounting whose load is counted from now.
func NewAccounting(cfg AccountingConfig) (*Accounting, error) {
	a := &Accounting{log: cfg.AccessLog, stats: cfg.Stats}
	a.load.start = time.Now()
	if cfg.Registerer != nil {
		m, err := newResponseMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		a.metrics = m
	}
	return a, nil
}

// ObserveResponse counts a response for the load report and the metrics.
func (a *Accounting) ObserveResponse(ri static.ResponseInfo) {
	a.load.requests.Add(1)
	a.load.bytes.Add(ri.Bytes)
	if ri.Status >= 500 {
		a.load.errors5xx.Add(1)
	}
	if a.metrics != nil {
		a.metrics.observe(ri)
	}
}

// ObserveRequest counts a response as ObserveResponse does, logs it in the access log and
// counts it in the statistics.
func (a *Accounting) ObserveRequest(r *http.Request, site string, ri static.ResponseInfo) {
	a.ObserveResponse(ri)
	var referer string
	if a.log != nil {
		e := accesslog.Entry{Time: ri.End, Site: site, Status: ri.Status, Bytes: ri.Bytes, Duration: ri.Duration,
			Encoding: ri.Encoding}
		e.SetRequest(r)
		a.log.Log(&e)
		referer = e.Referer // looked up once for both
	} else if a.stats != nil {
		referer = refererOf(r)
	}
	if a.stats != nil {
		countTraffic(a.stats, r, site, referer, &ri)
	}
}

var _ static.RequestObserver = (*Accounting)(nil)

// responseMetrics are the metrics counted per response.
type responseMetrics struct {
	requests *prometheus.CounterVec
	bytes    prometheus.Counter
	latency  prometheus.Histogram
	// byCode caches requests' counters of the usual statuses and codings, so that a response
	// costs an atomic load instead of hashing its labels and formatting its status.
	byCode [600 - 100][len(codings)]atomic.Pointer[prometheus.Counter]
}

// codings are the content codings a static.Handler sends, as ResponseInfo.Encoding names them,
// and the label each is counted under.
var codings = [...]struct{ name, label string }{{"", "identity"}, {"gzip", "gzip"}, {"br", "br"}, {"zstd", "zstd"}}

func newResponseMetrics(reg prometheus.Registerer) (*responseMetrics, error) {
	m := &responseMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge", Name: "requests_total",
			Help: "Responses of the site, by status code and content coding."}, []string{"code", "encoding"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge", Name: "response_bytes_total",
			Help: "Body bytes sent."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dt", Subsystem: "edge", Name: "response_seconds",
			Help: "Time to serve a response, body included.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.bytes, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *responseMetrics) observe(ri static.ResponseInfo) {
	m.counter(ri.Status, ri.Encoding).Inc()
	m.bytes.Add(float64(ri.Bytes))
	m.latency.Observe(ri.Duration.Seconds())
}

// counter returns the requests counter of a status and coding.
func (m *responseMetrics) counter(status int, enc string) prometheus.Counter {
	for i, c := range codings {
		if c.name != enc {
			continue
		}
		if status < 100 || status >= 600 {
			return m.requests.WithLabelValues(strconv.Itoa(status), c.label)
		}
		p := &m.byCode[status-100][i]
		if cached := p.Load(); cached != nil {
			return *cached
		}
		counter := m.requests.WithLabelValues(strconv.Itoa(status), c.label)
		p.Store(&counter) // a race stores the same counter: the vector holds one per labels
		return counter
	}
	return m.requests.WithLabelValues(strconv.Itoa(status), enc)
}
