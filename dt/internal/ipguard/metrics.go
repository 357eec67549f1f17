package ipguard

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons, the values of the refused_total metric's "reason" label.
const (
	refusedBlocked = "blocked"
	refusedRate    = "rate"
	refusedBusy    = "handshakes_full"
	refusedSubnet  = "subnet_full"
	refusedInvalid = "invalid_address"
)

// metrics are the guard's Prometheus metrics. They exist even when no Registerer is given, so
// the code that counts never checks for nil.
type metrics struct {
	admitted prometheus.Counter
	// admittedKnown counts admissions of known peers, which may take the reserved slots.
	admittedKnown prometheus.Counter
	// shortDeadlines counts admissions given PressureHandshakeTimeout.
	shortDeadlines prometheus.Counter
	refused        *prometheus.CounterVec // by reason
	succeeded      prometheus.Counter
	failures       *prometheus.CounterVec // by reason
	abandoned      prometheus.Counter
	blocks         *prometheus.CounterVec // by reason
	warnings       prometheus.Counter
	evicted        prometheus.Counter
	unblocks       prometheus.Counter
	spared         *prometheus.CounterVec // by reason: blocks not imposed on loopback
	stateError     *prometheus.CounterVec // by op: load, decode, save
}

func newMetrics() *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dt", Subsystem: "ipguard", Name: name, Help: help,
		})
	}
	vec := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dt", Subsystem: "ipguard", Name: name, Help: help,
		}, []string{label})
	}
	m := &metrics{
		admitted:       counter("admitted_total", "Connections admitted to a handshake."),
		admittedKnown:  counter("admitted_known_total", "Connections from known peers admitted (they may take the reserved handshake slots)."),
		shortDeadlines: counter("short_deadlines_total", "Connections admitted with the short handshake deadline, more than half the slots being taken."),
		refused:        vec("refused_total", "Connections refused at accept, by reason.", "reason"),
		succeeded:      counter("handshakes_succeeded_total", "Admitted handshakes that authenticated."),
		failures:       vec("failures_total", "Admitted handshakes that failed, by reason.", "reason"),
		abandoned:      counter("handshakes_abandoned_total", "Admitted connections closed by the peer before a handshake."),
		blocks:         vec("blocks_total", "Blocks imposed, by reason.", "reason"),
		warnings:       counter("warnings_total", "Keys warned about for many unauthenticated connections."),
		evicted:        counter("evicted_keys_total", "Tracked keys forgotten early because the key table was full."),
		unblocks:       counter("unblocks_total", "Blocks lifted by an operator."),
		spared:         vec("spared_blocks_total", "Blocks not imposed because the address is loopback (Config.BlockLoopback), by reason.", "reason"),
		stateError:     vec("state_errors_total", "Failures to load, decode or save the stored blocks.", "op"),
	}
	// Pre-create the known label values so they are exported as 0 before the first event.
	for _, r := range []string{refusedBlocked, refusedRate, refusedBusy, refusedSubnet, refusedInvalid} {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{FailBadKey, FailTimeout, FailMalformed, "other"} {
		m.failures.WithLabelValues(r)
	}
	for _, r := range []string{BlockReasonFailures, BlockReasonConnections, BlockReasonSubnet} {
		m.blocks.WithLabelValues(r)
	}
	for _, r := range []string{BlockReasonFailures, BlockReasonConnections} {
		m.spared.WithLabelValues(r)
	}
	for _, op := range []string{"load", "decode", "save"} {
		m.stateError.WithLabelValues(op)
	}
	return m
}

// collectors returns every metric of the guard, including gauges that read g's state.
func (m *metrics) collectors(g *Guard) []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "dt", Subsystem: "ipguard", Name: name, Help: help,
		}, f)
	}
	return []prometheus.Collector{
		m.admitted, m.admittedKnown, m.shortDeadlines, m.refused, m.succeeded, m.failures, m.abandoned, m.blocks, m.warnings,
		m.evicted, m.unblocks, m.spared, m.stateError,
		gauge("blocked_keys", "Prefixes blocked now (keys and /48s).", func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return float64(g.blocks.countActive(g.cfg.Now()))
		}),
		gauge("handshakes_in_flight", "Admitted handshakes not yet ended (never-block addresses excluded).", func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return float64(g.inflight)
		}),
		gauge("known_peers", "Addresses known as peers (Config.KnownPeerTTL), which may take the reserved handshake slots.", func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return float64(len(g.known))
		}),
		gauge("tracked_keys", "Keys the guard holds state for.", func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return float64(len(g.keys))
		}),
	}
}

// register registers cs on r, or none of them: on an error, those already registered are
// unregistered again so a failed New leaves r as it was.
func register(r prometheus.Registerer, cs []prometheus.Collector) error {
	if r == nil {
		return nil
	}
	var errs []error
	var done []prometheus.Collector
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, c)
	}
	if len(errs) == 0 {
		return nil
	}
	for _, c := range done {
		r.Unregister(c)
	}
	return errors.Join(errs...)
}

// failureLabel maps a caller's failure reason onto the bounded label set.
func failureLabel(reason string) string {
	switch reason {
	case FailBadKey, FailTimeout, FailMalformed, FailMisbehaved:
		return reason
	}
	return "other"
}
