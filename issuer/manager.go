package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/dt-cdn/dt/netcert"
)

// manager obtains and renews the network's certificates while its issuer holds the lease.
// run is called by one goroutine at a time (the lease's); status may be read from any.
type manager struct {
	cfg          Config
	table        Table
	sealer       *netcert.Sealer
	http         *http.Client // to the CA
	http01Client *http.Client // to the edges, checking HTTP-01 answers
	log          *slog.Logger
	metrics      *metrics
	edges        *edgeWatch // nil: no heartbeats followed

	mu     sync.Mutex
	states map[string]*CertStatus // guarded by mu; by certificate record key
}

// run renews what is due, one order at a time, until ctx ends (the lease lost or the issuer
// stopped). An order is never placed for a name while another is in flight, and a name that
// failed waits out its backoff, so there is no stampede of orders.
func (m *manager) run(ctx context.Context) {
	m.metrics.leaseHeld.Set(1)
	defer m.metrics.leaseHeld.Set(0)
	var client *acme.Client
	for ctx.Err() == nil {
		w := readWanted(ctx, m.table)
		for _, g := range w.groups {
			if ctx.Err() != nil || !m.due(ctx, g) {
				continue
			}
			if client == nil {
				c, err := m.account(ctx)
				if err != nil {
					m.failed(g, err)
					break
				}
				client = c
			}
			r, err := m.obtain(ctx, client, g, w.zones)
			if err != nil {
				m.failed(g, err)
				continue
			}
			m.issued(g, r)
		}
		m.writeStatus(ctx, w.groups)
		_ = sleep(ctx, m.cfg.Scan)
	}
}

// due reports whether g needs an order now: no certificate record for it, one for other names,
// or one past its renewal time; and not waiting out a backoff after a failure.
func (m *manager) due(ctx context.Context, g Group) bool {
	now := m.cfg.Now()
	st := m.state(g)
	if now.Before(st.NextAttempt) {
		return false
	}
	r, leaf, ok := m.current(ctx, g)
	if !ok || !slices.Equal(r.Names, g.Names) {
		return true
	}
	m.mu.Lock()
	st.NotAfter, st.RenewAfter = leaf.NotAfter, renewTime(r, leaf)
	m.mu.Unlock()
	return !now.Before(st.RenewAfter)
}

// current returns g's certificate record as the table holds it.
func (m *manager) current(ctx context.Context, g Group) (netcert.Record, *x509.Certificate, bool) {
	b, err := m.table.Get(ctx, g.Key())
	if err != nil {
		return netcert.Record{}, nil, false
	}
	r, err := netcert.ParseAt(g.Key(), b)
	if err != nil {
		return netcert.Record{}, nil, false
	}
	leaf, err := x509.ParseCertificate(r.Chain[0])
	if err != nil {
		return netcert.Record{}, nil, false
	}
	return r, leaf, true
}

// renewTime is when r is renewed: its RenewAfter, as the issuer that obtained it chose it, or
// when a third of its lifetime is left.
func renewTime(r netcert.Record, leaf *x509.Certificate) time.Time {
	if r.RenewAfter != 0 {
		return time.Unix(r.RenewAfter, 0)
	}
	return twoThirds(leaf.NotBefore, leaf.NotAfter)
}

func (m *manager) state(g Group) *CertStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[g.Key()]
	if !ok {
		st = &CertStatus{Name: g.Names[0]}
		m.states[g.Key()] = st
	}
	st.Site, st.Names = g.Site, g.Names
	return st
}

// issued records a certificate obtained.
func (m *manager) issued(g Group, r netcert.Record) {
	m.metrics.issued.Inc()
	st := m.state(g)
	m.mu.Lock()
	defer m.mu.Unlock()
	st.NotAfter, st.RenewAfter = time.Unix(r.NotAfter, 0), time.Unix(r.RenewAfter, 0)
	st.LastAttempt, st.NextAttempt, st.Error, st.Failures = m.cfg.Now(), time.Time{}, "", 0
	m.log.Info("Certificate issued", slog.Any("names", r.Names), slog.Time("not_after", st.NotAfter),
		slog.Time("renew_after", st.RenewAfter))
}

// failed records a failed order and sets when to try again: exponential backoff from
// Config.RetryBase, doubling per failure in a row up to Config.RetryMax, with jitter (a
// uniform pick in the upper half), and no sooner than a rate limit's Retry-After.
func (m *manager) failed(g Group, err error) {
	m.metrics.failures.Inc()
	st := m.state(g)
	m.mu.Lock()
	defer m.mu.Unlock()
	st.Failures++
	d := m.cfg.RetryBase << min(st.Failures-1, 30)
	if d <= 0 || d > m.cfg.RetryMax {
		d = m.cfg.RetryMax
	}
	d = d/2 + rand.N(d/2+1)
	if after, ok := acme.RateLimit(err); ok {
		m.metrics.rateLimited.Inc()
		d = max(d, after, m.cfg.RetryBase)
	}
	now := m.cfg.Now()
	st.LastAttempt, st.NextAttempt, st.Error = now, now.Add(d), err.Error()
	if errors.Is(err, context.Canceled) {
		return
	}
	m.log.Warn("Certificate not obtained", slog.Any("names", g.Names), slog.Any("err", err),
		slog.Int("failures", st.Failures), slog.Time("next_attempt", st.NextAttempt))
}
