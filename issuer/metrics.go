package issuer

import "github.com/prometheus/client_golang/prometheus"

// metrics are the issuer's Prometheus metrics.
type metrics struct {
	orders      prometheus.Counter
	issued      prometheus.Counter
	failures    prometheus.Counter
	rateLimited prometheus.Counter
	leaseHeld   prometheus.Gauge
	// refused counts records and answers refused by their parsers (over their size limit or
	// malformed), by record: lease, account, renewal_info.
	refused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		orders: prometheus.NewCounter(prometheus.CounterOpts{Name: "dt_issuer_orders_total",
			Help: "ACME orders placed."}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{Name: "dt_issuer_certificates_issued_total",
			Help: "Certificates obtained and written to the table."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "dt_issuer_order_failures_total",
			Help: "Attempts to obtain a certificate that failed (each retried after a backoff)."}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "dt_issuer_rate_limited_total",
			Help: "Failures the CA answered with a rate limit, retried no sooner than its Retry-After."}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dt_issuer_lease_held",
			Help: "1 while this issuer holds the lease and acts, else 0."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dt_issuer_refused_total",
			Help: "Issuer records and CA answers refused as malformed or over their size limit, by record: lease, account, renewal_info."}, []string{"record"}),
	}
	if reg != nil {
		reg.MustRegister(m.orders, m.issued, m.failures, m.rateLimited, m.leaseHeld, m.refused)
	}
	return m
}
