package redirector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/burstlog"
	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/trafficseries"
	"github.com/dt-cdn/dt/trafficstats"
)

// DefaultStatsSince is the range of /api/stats without since=.
const DefaultStatsSince = 24 * time.Hour

// DefaultRedirectFlushInterval is how often the redirects counted in memory are stored in the series:
// often enough that the dashboard's minute points fill as the minute goes, seldom enough that a
// busy redirector writes its database a few times a minute rather than per redirect.
const DefaultRedirectFlushInterval = 10 * time.Second

// statsReceiver stores the edges' statistics messages in the series, counts them per site for
// Prometheus, and answers /api/stats.
type statsReceiver struct {
	series     *trafficseries.Store
	redirects  *trafficseries.RedirectCounter
	flushEvery time.Duration // how often redirects are stored
	log        *slog.Logger
	bad        burstlog.Logger

	requests, bytes, notModified *prometheus.CounterVec
	responses                    *prometheus.CounterVec
}

func newStatsReceiver(series *trafficseries.Store, redirects *trafficseries.RedirectCounter, flushEvery time.Duration, reg prometheus.Registerer, log *slog.Logger) (*statsReceiver, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector", Name: name, Help: help}, labels)
	}
	s := &statsReceiver{series: series, redirects: redirects, flushEvery: flushEvery, log: log,
		bad:         burstlog.Logger{Log: log, Level: slog.LevelWarn, Msg: "Bad statistics message"},
		requests:    counter("site_requests_total", "Responses the edges sent for the site, as their statistics report (one message per edge a minute).", "site"),
		bytes:       counter("site_response_bytes_total", "Body bytes the edges sent for the site, as their statistics report.", "site"),
		notModified: counter("site_not_modified_total", "304 responses (cache validations) the edges sent for the site.", "site"),
		responses:   counter("site_responses_total", "Responses of the site by status class (2xx, 3xx, 4xx, 5xx), as the edges' statistics report.", "site", "class"),
	}
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector", Name: "stats_entries_dropped_total",
		Help: "Site entries of the edges' statistics, and the redirectors' redirect counts, not kept: their site would pass trafficseries.DefaultMaxSites sites."}, func() float64 { return float64(series.Dropped()) })
	if reg != nil {
		unkept := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector", Name: "redirects_unkept_total",
			Help: "Redirects not kept in the traffic series: trafficseries.MaxPendingRedirects (site, edge, reason) counts were waiting for the next store."},
			func() float64 { return float64(redirects.Dropped()) })
		for _, c := range []prometheus.Collector{s.requests, s.bytes, s.notModified, s.responses, dropped, unkept} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("redirector: register metrics: %w", err)
			}
		}
	}
	series.OnAdd = s.count
	return s, nil
}

// count adds one stored entry to the per-site metrics.
func (s *statsReceiver) count(_ string, e *trafficstats.Site) {
	s.requests.WithLabelValues(e.Site).Add(float64(e.Requests))
	s.bytes.WithLabelValues(e.Site).Add(float64(e.Bytes))
	s.notModified.WithLabelValues(e.Site).Add(float64(e.NotModified))
	for i, class := range []string{"2xx", "3xx", "4xx", "5xx"} {
		s.responses.WithLabelValues(e.Site, class).Add(float64(e.Status[i]))
	}
}

// flushRedirects stores the redirects counted every flushEvery until ctx ends, then
// once more.
func (s *statsReceiver) flushRedirects(ctx context.Context) error {
	t := time.NewTicker(s.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			s.flushRedirectsOnce()
			return nil
		}
		s.flushRedirectsOnce()
	}
}

func (s *statsReceiver) flushRedirectsOnce() {
	if err := s.redirects.Flush(s.series, time.Now()); err != nil {
		s.log.Warn("Redirect counts not stored", slog.Any("err", err))
	}
}

// HandleEvent stores a statistics message; other events are not its.
func (s *statsReceiver) HandleEvent(ev dt.Event) {
	if ev.Type != dt.EventMessageReceived {
		return
	}
	m, err := trafficstats.Decode(ev.Object)
	if errors.Is(err, trafficstats.ErrNotStats) {
		return
	}
	if err == nil {
		err = s.series.Add(ev.From.String(), m)
	}
	if err != nil {
		s.bad.Hit(context.Background(), slog.Any("from", ev.From), slog.Any("err", err))
	}
}

// ServeHTTP answers GET /api/stats?site=S&since=24h with the site's series (trafficseries.Result)
// as JSON. site defaults to the default site; since to DefaultStatsSince, at most
// trafficseries.MaxSince.
func (s *statsReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("site")
	if name == "" {
		name = site.DefaultSite
	}
	if err := site.CheckSiteName(name); err != nil {
		writeJSONError(w, http.StatusBadRequest, "site: not a site name")
		return
	}
	since := DefaultStatsSince
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > trafficseries.MaxSince {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("since: want a duration up to %v", trafficseries.MaxSince))
			return
		}
		since = d
	}
	res, err := s.series.Query(name, since)
	if err != nil {
		s.log.Error("Traffic series query failed", slog.Any("err", err))
		writeJSONError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}
