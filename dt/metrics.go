package dt

import (
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus metrics. They are registered on Config.Registerer (when set)
// and unregistered at Close, so one process can run several nodes, as tests and the example do.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	bytesIn, bytesOut atomic.Uint64
	frameBytesOut     [16]atomic.Uint64 // control frame bytes sent, by frame type

	links             prometheus.Gauge
	recordsApplied    prometheus.Counter
	reconciliations   prometheus.Counter
	reconcileDiffs    prometheus.Counter
	bodiesFetched     prometheus.Counter
	framesIn          prometheus.Counter
	handshakeFailures prometheus.Counter
	refused           prometheus.Counter
	errors            prometheus.Counter
	messagesSent      prometheus.Counter
	messagesReceived  prometheus.Counter
	messagesDropped   *prometheus.CounterVec
	eventsDropped     *prometheus.CounterVec
	slowPeers         prometheus.Counter
	linksRefused      prometheus.Counter
	recordsRefused    prometheus.Counter
	recordsDropped    prometheus.Counter
	pendingDropped    prometheus.Counter
	verdictsSent      *prometheus.CounterVec
	verdictsReceived  *prometheus.CounterVec
	verdictsDropped   prometheus.Counter
	verdictsIgnored   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{reg: reg}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Name: name, Help: help})
		m.collectors = append(m.collectors, c)
		return c
	}
	m.links = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dt", Name: "links", Help: "Peers linked now."})
	m.recordsApplied = counter("records_applied_total", "Records that changed the table.")
	m.reconciliations = counter("reconciliations_total", "Set reconciliations started.")
	m.reconcileDiffs = counter("reconcile_differences_total", "Records found missing on one side by reconciliation.")
	m.bodiesFetched = counter("bodies_fetched_total", "Large bodies fetched from peers.")
	m.framesIn = counter("frames_received_total", "Control frames received.")
	m.handshakeFailures = counter("handshake_failures_total", "Handshakes that failed (wrong key, timeout, bad data).")
	m.refused = counter("connections_refused_total", "Connections refused by the address guard.")
	m.errors = counter("errors_total", "Error events.")
	m.messagesSent = counter("messages_sent_total", "Messages this node sent.")
	m.messagesReceived = counter("messages_received_total", "Messages delivered to this node.")
	m.messagesDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Name: "messages_dropped_total", Help: "Messages dropped, by reason."}, []string{"reason"})
	for _, r := range dropReasons {
		m.messagesDropped.WithLabelValues(string(r))
	}
	m.eventsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Name: "events_dropped_total",
		Help: "Events dropped for a subscriber that had Config.EventBuffer queued, by event type (message_received, error)."}, []string{"type"})
	for _, t := range []EventType{EventMessageReceived, EventError} {
		m.eventsDropped.WithLabelValues(t.String())
	}
	m.linksRefused = counter("links_refused_total", "Authenticated links closed because their address had Config.MaxLinksPerAddress already.")
	m.slowPeers = counter("slow_peers_total", "Peers disconnected because their queue of flooded messages was full (Config.MessageQueueBytes).")
	m.recordsRefused = counter("records_refused_total", "Records refused because their signer's grant does not cover them (ErrOutsideGrant).")
	m.recordsDropped = counter("records_dropped_total", "Applied records dropped because their signer's grant changed (a revocation).")
	m.pendingDropped = counter("records_pending_dropped_total", "Records waiting for their signer's grant dropped over MaxPendingRecords or MaxPendingBytes.")
	m.verdictsSent = m.verdictVec("verdicts_sent_total", "Verdicts on peers' records sent to them, by verdict (refused, pending, applied).")
	m.verdictsReceived = m.verdictVec("verdicts_received_total", "Peers' verdicts on this node's records, by verdict.")
	m.verdictsDropped = counter("verdicts_dropped_total", "Verdicts not sent because the link was over VerdictRate.")
	m.verdictsIgnored = counter("verdicts_ignored_total", "Peers' verdicts on records this node did not write or holds no more, or of unknown kinds.")
	m.collectors = append(m.collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Name: "verdicts_forgotten_total",
		Help: "Records whose peers' verdicts were forgotten to keep at most 1024 (the least recently noted first)."},
		func() float64 { return float64(n.verdictsForgotten()) }))
	m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "records_pending", Help: "Records waiting for their signer's grant (at most MaxPendingRecords)."},
		func() float64 { return float64(n.pendingCount.Load()) }))
	m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "records_pending_bytes", Help: "Inline body bytes of the records waiting for their signer's grant (at most MaxPendingBytes)."},
		func() float64 { return float64(n.pendingBytes.Load()) }))
	m.collectors = append(m.collectors, m.links, m.messagesDropped, m.eventsDropped,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Name: "link_bytes_received_total", Help: "Bytes received on peer connections, handshakes and encryption included."},
			func() float64 { return float64(m.bytesIn.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Name: "link_bytes_sent_total", Help: "Bytes sent on peer connections, handshakes and encryption included."},
			func() float64 { return float64(m.bytesOut.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "objects", Help: "Objects in the table."},
			func() float64 { n.mu.RLock(); defer n.mu.RUnlock(); return float64(n.objects) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "message_ids_seen", Help: "Message ids remembered to drop duplicates (at most Config.MaxSeenMessages)."},
			func() float64 { ids, _ := n.seen.size(); return float64(ids) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Name: "message_ids_forgotten_early_total", Help: "Times the seen cache reached half of Config.MaxSeenMessages and forgot its older half before MessageWindow."},
			func() float64 { _, early := n.seen.size(); return float64(early) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "message_origins", Help: "Origins whose message budget is remembered (at most Config.MaxOrigins)."},
			func() float64 { o, _, _ := n.flood.sizes(); return float64(o) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Name: "message_origins_forgotten_total", Help: "Origins forgotten to make room under Config.MaxOrigins."},
			func() float64 { _, _, ev := n.flood.sizes(); return float64(ev) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "message_neighbours", Help: "Neighbours whose message budget is remembered."},
			func() float64 { _, nb, _ := n.flood.sizes(); return float64(nb) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Name: "log_head", Help: "Sequence number of the newest local log entry."},
			func() float64 { return float64(n.head.Load()) }),
	)
	for typ := range m.frameBytesOut {
		if typ == 0 || frameType(typ) > frameVerdict {
			continue
		}
		m.collectors = append(m.collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "dt", Name: "frame_bytes_sent_total", Help: "Control stream bytes sent, by frame type.",
			ConstLabels: prometheus.Labels{"type": frameType(typ).String()},
		}, func() float64 { return float64(m.frameBytesOut[typ].Load()) }))
	}
	if reg != nil {
		for _, c := range m.collectors {
			_ = reg.Register(c)
		}
	}
	return m
}

// verdictVec makes a counter of verdicts by kind, every kind present from the start.
func (m *metrics) verdictVec(name, help string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Name: name, Help: help}, []string{"verdict"})
	for _, k := range knownVerdicts {
		v.WithLabelValues(k.String())
	}
	m.collectors = append(m.collectors, v)
	return v
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// count wraps a peer connection so its bytes are counted: what the resync benchmarks report as
// bytes on the wire.
func (m *metrics) count(c net.Conn) net.Conn { return &countingConn{Conn: c, m: m} }

type countingConn struct {
	net.Conn
	m *metrics
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.bytesIn.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.bytesOut.Add(uint64(n))
	return n, err
}

// WireBytes returns the bytes this node received and sent on peer connections since it opened.
func (n *Node) WireBytes() (received, sent uint64) {
	return n.metrics.bytesIn.Load(), n.metrics.bytesOut.Load()
}
