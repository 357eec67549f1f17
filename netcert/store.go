package netcert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
)

// DefaultMaxRecords bounds the certificate records a Store holds when StoreConfig.MaxRecords is
// zero. A network with a CDN zone needs one wildcard certificate, and each custom site name one
// more (or a share of one with up to MaxNames names): 4,096 covers thousands of sites, while
// bounding what a faulty issuer can make every edge keep in memory (about 64 KiB a record at
// worst, so 256 MiB; a few KiB in practice).
const DefaultMaxRecords = 4096

// loadTimeout bounds the fetch of a record body an event lacks (a node with lazy bodies), which
// blocks the event loop.
const loadTimeout = 10 * time.Second

// ErrNoCertificate is returned by Store.GetCertificate when no valid table certificate covers
// the requested server name.
var ErrNoCertificate = errors.New("netcert: no table certificate for the server name")

// StoreConfig configures a Store. NewStore does not modify it.
type StoreConfig struct {
	// Sealer opens the records' private keys: NewSealer of the node's network key. Required.
	Sealer *Sealer
	// Load fetches the body of a record whose event carries none (a node with dt's LazyBodies
	// keeps bodies over its inline limit out of events). Nil: such records are skipped, as if
	// absent.
	Load func(ctx context.Context, key string) ([]byte, error)
	// MaxRecords bounds the records held; a record past it is refused (logged, counted) until
	// others go. More costs memory on every node. Zero: DefaultMaxRecords.
	MaxRecords int
	// Now is the clock that decides which certificates are valid. Nil: time.Now.
	Now func() time.Time
	// Registerer receives the store's metrics (dt_netcert_records, dt_netcert_refused_total).
	// Nil: none.
	Registerer prometheus.Registerer
	// Logger receives a line per refused record. Nil discards them.
	Logger *slog.Logger
}

// Store holds the certificates of the table's certs/ records, opened and indexed by name, and
// serves them to TLS handshakes. Feed it every event of the node with HandleEvent (one goroutine,
// in order); GetCertificate, Lookup and Names may be called concurrently with it and with each
// other, and take no lock: they read an index that HandleEvent replaces whole.
//
// A Store does not renew, fetch or check revocation; it serves what the table holds.
type Store struct {
	cfg     StoreConfig
	log     *slog.Logger
	now     func() time.Time
	max     int
	metrics *storeMetrics

	mu      sync.Mutex        // serialises HandleEvent's writers
	entries map[string]*entry // by table key; guarded by mu
	index   atomic.Pointer[map[string][]*entry]
}

// entry is one record the store holds: its certificate ready to serve, or nil when the record
// did not open (its names are still reported, as names the edge lacks a certificate for).
type entry struct {
	rec  Record
	cert *tls.Certificate
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.Sealer == nil {
		return nil, errors.New("netcert: StoreConfig.Sealer is required")
	}
	s := &Store{cfg: cfg, log: cfg.Logger, now: cfg.Now, max: cfg.MaxRecords, entries: map[string]*entry{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.max <= 0 {
		s.max = DefaultMaxRecords
	}
	s.index.Store(&map[string][]*entry{})
	m, err := newStoreMetrics(cfg.Registerer, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// HandleEvent takes one event of the node. Records outside KeyPrefix are ignored.
func (s *Store) HandleEvent(ev dt.Event) {
	if !strings.HasPrefix(ev.Key, KeyPrefix) {
		return
	}
	switch ev.Type {
	case dt.EventObjectAdded:
		s.add(ev.Key, ev.Object)
	case dt.EventObjectRemoved:
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.entries[ev.Key]; ok {
			delete(s.entries, ev.Key)
			s.reindexLocked()
		}
	}
}

// add parses and opens the record under key, replacing the one held there.
func (s *Store) add(key string, body []byte) {
	if body == nil {
		if body = s.load(key); body == nil {
			return
		}
	}
	e, reason, err := s.open(key, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.entries[key]; !held && len(s.entries) >= s.max {
		reason, err = "limit", fmt.Errorf("netcert: %d records held, at most %d", len(s.entries), s.max)
		e = nil
	}
	if err != nil {
		s.metrics.refused.WithLabelValues(reason).Inc()
		s.log.Warn("Certificate record refused", slog.String("key", key), slog.String("reason", reason), slog.Any("err", err))
	}
	if e == nil {
		if _, held := s.entries[key]; held && reason != "limit" {
			delete(s.entries, key) // the record there now is not the one held before
			s.reindexLocked()
		}
		return
	}
	s.entries[key] = e
	s.reindexLocked()
}

// open returns the entry of a record: nil when it does not parse, without a certificate when its
// key does not open; and why it was refused.
func (s *Store) open(key string, body []byte) (*entry, string, error) {
	rec, err := ParseAt(key, body)
	if err != nil {
		return nil, "invalid", err
	}
	cert, err := rec.Open(s.cfg.Sealer)
	if err != nil {
		return &entry{rec: rec}, "open", err
	}
	return &entry{rec: rec, cert: cert}, "", nil
}

func (s *Store) load(key string) []byte {
	if s.cfg.Load == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	b, err := s.cfg.Load(ctx, key)
	if err != nil {
		s.log.Warn("Certificate record not loaded", slog.String("key", key), slog.Any("err", err))
		return nil
	}
	return b
}

// reindexLocked replaces the index with one of every entry by each of its names (lower case).
func (s *Store) reindexLocked() {
	idx := make(map[string][]*entry, len(s.entries))
	for _, e := range s.entries {
		for _, n := range e.rec.Names {
			n = strings.ToLower(n)
			idx[n] = append(idx[n], e)
		}
	}
	s.index.Store(&idx)
}

// Lookup returns the certificate to serve for host: among the valid ones (now within their
// validity) naming host exactly, the one expiring last; failing that, the same among those
// naming the wildcard of host's parent ("*.example.com" for "www.example.com"). Case and a
// trailing dot are ignored. It returns nil when no valid certificate covers host.
func (s *Store) Lookup(host string) *tls.Certificate {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return nil
	}
	idx, now := *s.index.Load(), s.now()
	if c := best(idx[host], now); c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(host, "."); ok && parent != "" {
		return best(idx["*."+parent], now)
	}
	return nil
}

// best returns the valid certificate of es at now that expires last, or nil.
func best(es []*entry, now time.Time) *tls.Certificate {
	var out *tls.Certificate
	for _, e := range es {
		if e.cert == nil || !valid(e.rec, now) {
			continue
		}
		if out == nil || e.cert.Leaf.NotAfter.After(out.Leaf.NotAfter) {
			out = e.cert
		}
	}
	return out
}

func valid(r Record, now time.Time) bool {
	t := now.Unix()
	return r.NotBefore <= t && t < r.NotAfter
}

// GetCertificate serves tls.Config.GetCertificate: Lookup of the handshake's server name, or
// ErrNoCertificate (also for a handshake without one).
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.Lookup(hello.ServerName); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoCertificate, hello.ServerName)
}

// NameStatus is one name of the table's certificates and the certificate a node holds for it.
type NameStatus struct {
	Name string // as in the certificate ("*.cdn.example.com"), lower case
	// NotAfter is when the valid certificate for Name that expires last does; zero when the node
	// holds none valid for it (expired, not yet valid, or its record does not open).
	NotAfter time.Time
	Issuer   string // the certificate's issuer (Record.Issuer); empty when NotAfter is zero
}

// Names returns, in no particular order, every name of the records held and the certificate
// served for it, for heartbeats and dashboards.
func (s *Store) Names() []NameStatus {
	idx, now := *s.index.Load(), s.now()
	out := make([]NameStatus, 0, len(idx))
	for name, es := range idx {
		st := NameStatus{Name: name}
		for _, e := range es {
			if e.cert != nil && valid(e.rec, now) && e.cert.Leaf.NotAfter.After(st.NotAfter) {
				st.NotAfter, st.Issuer = e.cert.Leaf.NotAfter, e.rec.Issuer
			}
		}
		out = append(out, st)
	}
	return out
}

// Len returns how many records the store holds, opened or not.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

type storeMetrics struct {
	refused *prometheus.CounterVec
}

func newStoreMetrics(reg prometheus.Registerer, s *Store) (*storeMetrics, error) {
	m := &storeMetrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "netcert",
		Name: "refused_total", Help: "Certificate records refused, by reason: invalid (does not parse), open (the sealed key does not open), limit (more than the store holds)."},
		[]string{"reason"})}
	if reg == nil {
		return m, nil
	}
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "netcert", Name: "records",
		Help: "Certificate records held from the table, opened or not."}, func() float64 { return float64(s.Len()) })
	for _, c := range []prometheus.Collector{m.refused, held} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("netcert: register metrics: %w", err)
		}
	}
	return m, nil
}
