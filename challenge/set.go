package challenge

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
)

// DefaultMaxHeld bounds the challenge records a Set holds when SetConfig.MaxHeld is zero. An
// order has one authorization per name, and an issuer keeps a few orders in flight: 1,024 leaves
// room for an issuer renewing hundreds of names at once, while bounding what a faulty one can
// make every node keep (4 KiB a record at most).
const DefaultMaxHeld = 1024

// HTTP01Path is the path prefix under which a CA fetches an HTTP-01 key authorization (RFC 8555
// §8.3); the token follows it.
const HTTP01Path = "/.well-known/acme-challenge/"

// SetConfig configures a Set. NewSet does not modify it.
type SetConfig struct {
	// MaxHeld bounds the records held; one past it is refused (logged, counted in
	// dt_acme_refused_total) until others go. Zero: DefaultMaxHeld.
	MaxHeld int
	// Now is the clock that decides which answers are live. Nil: time.Now.
	Now func() time.Time
	// Registerer receives dt_acme_refused_total and dt_acme_records. Nil: none.
	Registerer prometheus.Registerer
	// Logger receives a line per refused record. Nil discards them.
	Logger *slog.Logger
}

// Set holds the challenge records of the table (acme/), from a node's events, and answers
// HTTP-01 requests from them. Feed it every event with HandleEvent (one goroutine, in order);
// its other methods may be called concurrently with it.
//
// A Set does not fetch bodies a lazy node lacks: challenge records are far below dt's inline
// body limit, so events carry them.
type Set struct {
	cfg     SetConfig
	log     *slog.Logger
	now     func() time.Time
	max     int
	refused *prometheus.CounterVec

	mu   sync.RWMutex
	http map[string]HTTP01 // by token; guarded by mu
	dns  map[string]DNS01  // by domain; guarded by mu
}

// NewSet returns an empty Set.
func NewSet(cfg SetConfig) (*Set, error) {
	s := &Set{cfg: cfg, log: cfg.Logger, now: cfg.Now, max: cfg.MaxHeld, http: map[string]HTTP01{}, dns: map[string]DNS01{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.max <= 0 {
		s.max = DefaultMaxHeld
	}
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dt", Subsystem: "acme", Name: "refused_total",
		Help: "ACME challenge records refused, by reason: invalid (does not parse), limit (more than the node holds)."}, []string{"reason"})
	if cfg.Registerer != nil {
		held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "acme", Name: "records",
			Help: "ACME challenge records held from the table, live or not."}, func() float64 { return float64(s.Len()) })
		for _, c := range []prometheus.Collector{s.refused, held} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("challenge: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// HandleEvent takes one event of the node. Records outside KeyPrefix are ignored.
func (s *Set) HandleEvent(ev dt.Event) {
	if !strings.HasPrefix(ev.Key, KeyPrefix) {
		return
	}
	switch ev.Type {
	case dt.EventObjectAdded:
		if err := s.add(ev.Key, ev.Object); err != nil {
			s.log.Warn("Challenge record refused", slog.String("key", ev.Key), slog.Any("err", err))
		}
	case dt.EventObjectRemoved:
		s.mu.Lock()
		defer s.mu.Unlock()
		if t, ok := ParseHTTP01Key(ev.Key); ok {
			delete(s.http, t)
		} else if d, ok := ParseDNS01Key(ev.Key); ok {
			delete(s.dns, d)
		}
	}
}

func (s *Set) add(key string, body []byte) error {
	var h HTTP01
	var d DNS01
	var err error
	switch {
	case strings.HasPrefix(key, http01Prefix):
		h, err = ParseHTTP01At(key, body)
	case strings.HasPrefix(key, dns01Prefix):
		d, err = ParseDNS01At(key, body)
	default:
		return nil // another record under acme/ (an issuer's own), not an answer
	}
	if err != nil {
		s.refused.WithLabelValues("invalid").Inc()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, heldH := s.http[h.Token]
	_, heldD := s.dns[d.Domain]
	if !heldH && !heldD && len(s.http)+len(s.dns) >= s.max {
		s.refused.WithLabelValues("limit").Inc()
		return fmt.Errorf("challenge: %d records held, at most %d", len(s.http)+len(s.dns), s.max)
	}
	if h.Token != "" {
		s.http[h.Token] = h
	} else {
		s.dns[d.Domain] = d
	}
	return nil
}

// Len returns how many records the Set holds, live or not.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.http) + len(s.dns)
}

// KeyAuthorization returns the answer to the HTTP-01 challenge of token for host (a Host header:
// case, a port and a trailing dot are ignored), and whether a live record gives one: the record
// of token must name host as its Domain.
func (s *Set) KeyAuthorization(token, host string) (string, bool) {
	s.mu.RLock()
	r, ok := s.http[token]
	s.mu.RUnlock()
	if !ok || !r.Live(s.now()) || r.Domain != requestHost(host) {
		return "", false
	}
	return r.KeyAuthorization, true
}

// TXT returns the TXT values of the live DNS-01 record of domain (lower case, without "*." or a
// trailing dot), sorted, and none without one: what a DNS node answers for
// "_acme-challenge.<domain>".
func (s *Set) TXT(domain string) []string {
	s.mu.RLock()
	r, ok := s.dns[domain]
	s.mu.RUnlock()
	if !ok || !r.Live(s.now()) {
		return nil
	}
	return slices.Clone(r.TXT)
}

// Held returns how many live records the Set holds, and Digest of their table keys: what a node
// reports in its heartbeats, so that an issuer knows it can answer every challenge it wrote.
func (s *Set) Held() (int, string) {
	now := s.now()
	s.mu.RLock()
	keys := make([]string, 0, len(s.http)+len(s.dns))
	for t, r := range s.http {
		if r.Live(now) {
			keys = append(keys, HTTP01Key(t))
		}
	}
	for d, r := range s.dns {
		if r.Live(now) {
			keys = append(keys, DNS01Key(d))
		}
	}
	s.mu.RUnlock()
	return len(keys), Digest(keys)
}

// Handler returns next behind the HTTP-01 answers: a GET or HEAD of HTTP01Path+token whose Host
// a live record of token names gets its key authorization (text/plain, RFC 8555 §8.3); every
// other request goes to next unchanged.
func (s *Set) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, HTTP01Path)
		if ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if ka, ok := s.KeyAuthorization(token, r.Host); ok {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Cache-Control", "no-store")
				_, _ = w.Write([]byte(ka))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requestHost returns the host of a Host header, lower case, without port or trailing dot.
func requestHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
