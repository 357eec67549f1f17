package server

import (
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts answers for Prometheus. A nil *metrics counts nothing.
type metrics struct {
	answers   *prometheus.CounterVec
	truncated prometheus.Counter
	dynamic   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "dns",
			Name: "answers_total", Help: "DNS answers sent, by response code and transport."}, []string{"rcode", "transport"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "dns",
			Name: "truncated_total", Help: "UDP answers truncated to the client's buffer size (TC set)."}),
		dynamic: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "dns",
			Name: "geo_answers_total", Help: "Answers chosen by GeoDNS from the live edges."}),
	}
	zones := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "dns",
		Name: "zones", Help: "Zones served (with a SOA)."}, func() float64 { z, _ := s.Counts(); return float64(z) })
	sets := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "dns",
		Name: "rrsets", Help: "RRsets held."}, func() float64 { _, n := s.Counts(); return float64(n) })
	for _, c := range []prometheus.Collector{m.answers, m.truncated, m.dynamic, zones, sets} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) count(msg *dns.Msg, tcp bool) {
	if m == nil {
		return
	}
	transport := "udp"
	if tcp {
		transport = "tcp"
	}
	m.answers.WithLabelValues(dns.RcodeToString[msg.Rcode], transport).Inc()
	if msg.Truncated {
		m.truncated.Inc()
	}
}

func (m *metrics) dynamicAnswer() {
	if m != nil {
		m.dynamic.Inc()
	}
}
