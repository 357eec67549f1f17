package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/static"
	"github.com/dt-cdn/dt/trafficstats"
)

// countTraffic counts one response in the edge's statistics; referer is the request's Referer.
func countTraffic(c *trafficstats.Collector, r *http.Request, site, referer string, ri *static.ResponseInfo) {
	tr := trafficstats.Response{Site: site, Remote: r.RemoteAddr, Referer: referer, Status: ri.Status, Bytes: ri.Bytes}
	if r.URL != nil {
		tr.Path = r.URL.Path
	}
	c.Observe(tr)
}

// refererOf returns the request's Referer field, looked up by its canonical key directly (Get
// would canonicalise it again).
func refererOf(r *http.Request) string {
	if v := r.Header["Referer"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// sendStats sends the statistics every StatsInterval until ctx ends, then once more with what
// was counted since: call it after the servers stopped, so that the last requests are in it.
// Without statistics it returns at once.
func (e *service) sendStats(ctx context.Context) {
	if e.cfg.Stats == nil {
		return
	}
	t := time.NewTicker(e.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.sendStatsOnce(ctx)
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), time.Second)
			e.sendStatsOnce(final)
			cancel()
			return
		}
	}
}

// sendStatsOnce takes the collector's message and sends it, unless it has nothing to say.
func (e *service) sendStatsOnce(ctx context.Context) {
	m := e.cfg.Stats.Take()
	e.statsCounts.backlog.Store(int64(m.Backlog))
	e.statsCounts.dropped.Add(int64(m.Dropped))
	if len(m.Sites) == 0 && m.Dropped == 0 {
		return
	}
	b, err := trafficstats.Encode(m)
	if err == nil {
		err = e.cfg.Node.SendMessage(ctx, json.RawMessage(b))
	}
	if err != nil {
		e.log.Warn("Statistics not sent", slog.Any("err", err))
		return
	}
	e.statsCounts.sent.Add(1)
}

// statsCounts are the statistics' figures the metrics report.
type statsCounts struct{ sent, backlog, dropped atomic.Int64 }

// registerStatsMetrics registers dt_edge_stats_messages_total, dt_edge_stats_backlog and
// dt_edge_stats_dropped_total.
func registerStatsMetrics(reg prometheus.Registerer, c *statsCounts) error {
	for _, m := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge", Name: "stats_messages_total",
			Help: "Statistics messages sent (trafficstats, one per interval with traffic)."}, func() float64 { return float64(c.sent.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "edge", Name: "stats_backlog",
			Help: "Site entries of the statistics waiting for a later message (past trafficstats.MaxSites or MaxSize in one)."}, func() float64 { return float64(c.backlog.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge", Name: "stats_dropped_total",
			Help: "Site entries of the statistics dropped from a full backlog (trafficstats.MaxBacklog)."}, func() float64 { return float64(c.dropped.Load()) }),
	} {
		if err := reg.Register(m); err != nil {
			return fmt.Errorf("edge: register metrics: %w", err)
		}
	}
	return nil
}
