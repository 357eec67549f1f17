package web

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
)

// Page is a redirector's dashboard together with the deploy history it shows: the one value a
// redirector node builds on its open node, feeds with the node's events, runs, and serves on its
// admin listener.
type Page struct {
	*Dashboard
	history *History
	certs   *CertIndex
	issuer  *IssuerIndex
}

// issuedCerts is the table's certificates with the issuer's reports of them.
type issuedCerts struct {
	*CertIndex
	issuer *IssuerIndex
}

func (c issuedCerts) CertReports() map[string]CertReport { return c.issuer.CertReports() }

// NewPage returns the dashboard of edges (the redirector's view of them) with the history of the
// deploys that node's table holds; its metrics go to reg (nil: none). Feed it every event of the node (HandleEvent) and run it (Run)
// so that the deploys appear; Close ends its live streams.
func NewPage(edges EdgeSource, node Loader, log *slog.Logger, reg prometheus.Registerer) (*Page, error) {
	history, err := NewHistory(HistoryConfig{Node: node, Logger: log})
	if err != nil {
		return nil, err
	}
	certs := NewCertIndex(log)
	is, err := NewIssuerIndex(log, reg)
	if err != nil {
		return nil, err
	}
	dash, err := New(Config{Edges: edges, Deploys: history, Certs: issuedCerts{certs, is}, Issuer: is, Logger: log})
	if err != nil {
		return nil, err
	}
	return &Page{Dashboard: dash, history: history, certs: certs, issuer: is}, nil
}

// HandleEvent passes one event of the node to the deploy history, the certificate index and the
// issuer's records. It
// does not block. Call it with every event of the node, in order, from one goroutine.
func (p *Page) HandleEvent(ev dt.Event) {
	p.history.HandleEvent(ev)
	p.certs.HandleEvent(ev)
	p.issuer.HandleEvent(ev)
}

// Run reads the manifests of the deploys the history notes until ctx ends (see History.Run).
func (p *Page) Run(ctx context.Context) error { return p.history.Run(ctx) }
