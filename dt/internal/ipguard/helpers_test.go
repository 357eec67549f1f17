package ipguard

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// epoch is where test clocks start: a whole hour, so fixed connection windows start with it.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a clock tests advance by hand. It is safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// memStore is an in-memory Store, the shape of the bbolt-backed one a node uses.
type memStore struct {
	mu      sync.Mutex
	data    []byte
	saves   int
	loadErr error
	saveErr error
}

func (s *memStore) Load() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.data), s.loadErr
}

func (s *memStore) Save(state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveErr != nil {
		return s.saveErr
	}
	s.data = slices.Clone(state)
	s.saves++
	return nil
}

func (s *memStore) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// logRecorder is a slog.Handler that keeps every record, for asserting what was logged.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// count returns how many records with message msg were logged.
func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Message == msg {
			n++
		}
	}
	return n
}

// harness is a guard with a fake clock, a log recorder and its own metrics registry.
type harness struct {
	*Guard
	clock *fakeClock
	logs  *logRecorder
	reg   *prometheus.Registry
}

// newHarness builds a guard from cfg, filling in a fake clock, a recording logger (unless cfg
// has a Logger) and a fresh registry, and checks the guard's internal invariants when the test ends.
func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{clock: newClock(), logs: &logRecorder{}, reg: prometheus.NewRegistry()}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(h.logs)
	}
	cfg.Registerer = h.reg
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.Guard = g
	t.Cleanup(func() { checkInvariants(t, g) })
	return h
}

// checkInvariants verifies the bookkeeping that every operation must preserve.
func checkInvariants(t testing.TB, g *Guard) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.recency.len != len(g.keys) {
		t.Errorf("recency list holds %d states, key map %d", g.recency.len, len(g.keys))
	}
	n, inflight := 0, 0
	for st := g.recency.head; st != nil; st = st.next {
		n++
		inflight += st.inflight
		if g.keys[st.key] != st {
			t.Errorf("state of %v in the recency list is not the one in the key map", st.key)
		}
		if st.inflight < 0 {
			t.Errorf("key %v has %d handshakes in flight", st.key, st.inflight)
		}
		if len(st.failures) > g.cfg.FailureThreshold {
			t.Errorf("key %v keeps %d failures", st.key, len(st.failures))
		}
	}
	if n != len(g.keys) {
		t.Errorf("walked %d states, key map holds %d", n, len(g.keys))
	}
	if inflight != g.inflight {
		t.Errorf("keys hold %d handshakes in flight, guard counts %d", inflight, g.inflight)
	}
	for sub, m := range g.blocks.subnets {
		for p := range m {
			if g.blocks.entries[p] == nil {
				t.Errorf("subnet index of %v names %v, which has no entry", sub, p)
			}
		}
	}
}

// admit calls Admit and fails the test on an error.
func (h *harness) admit(t testing.TB, addr string) *Ticket {
	t.Helper()
	tk, err := h.Admit(netip.MustParseAddr(addr))
	if err != nil {
		t.Fatalf("Admit(%s): %v", addr, err)
	}
	return tk
}

// fail admits a connection from addr and reports it failed.
func (h *harness) fail(t testing.TB, addr string) {
	t.Helper()
	h.admit(t, addr).Failed(FailBadKey)
}

// blocked reports whether addr is blocked now.
func (h *harness) blocked(addr string) bool {
	_, b := h.Blocked(netip.MustParseAddr(addr))
	return b
}

// metric returns the value of the counter or gauge name (without the dt_ipguard_ prefix) whose
// labels include the given name/value pairs.
func (h *harness) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "dt_ipguard_"+name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// mustErr fails the test unless err wraps want.
func mustErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
