package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/netcert"
)

// EdgeSource is the redirector's view of the edges. *edgeset.Set implements it, and so does
// *redirector.Service, which holds one.
type EdgeSource interface {
	// Status returns the redirector's node, the current deploy and every edge with whether it
	// gets visitors.
	Status() edgeset.Status
	// Changed returns a channel closed at the next change of an edge's state.
	Changed() <-chan struct{}
}

// DeploySource lists the deploys the network keeps, newest first. *History implements it. A
// DeploySource that is also a SiteHistorySource gives each site's history too.
type DeploySource interface {
	Deploys() []Deploy
}

// SiteHistorySource gives, per site, the deploys its current pointer has named, newest first.
// *History implements it.
type SiteHistorySource interface {
	SiteHistory() map[string][]string
}

// Config configures a Dashboard. Zero values mean the defaults given per field.
type Config struct {
	// Edges is what the dashboard shows of the edges. Required.
	Edges EdgeSource
	// Deploys is the deploy history. Nil: the page lists no deploys.
	Deploys DeploySource
	// Certs lists the table's certificates, shown with the edges serving each. Nil: the page
	// lists only the names edges report certificates of their own for.
	Certs CertSource
	// Issuer tells whether an issuer holds the lease, so that the page warns when none does
	// (certificates then go unrenewed). Nil: no warning.
	Issuer IssuerSource
	// CertWarn is how long before its expiry a certificate is flagged. Zero: DefaultCertWarn.
	CertWarn time.Duration
	// Tick is how often a live stream sends a snapshot when no edge changed state, so that
	// heartbeat ages and load figures move. Zero: 1 s.
	Tick time.Duration
	// MaxStreams bounds the live streams open at once; more get 503 (each holds a goroutine and a
	// connection for as long as its page is open). Zero: 32.
	MaxStreams int
	// WriteTimeout bounds one write to a live stream, so a client that stopped reading is dropped
	// instead of holding its stream. Zero: 10 s.
	WriteTimeout time.Duration
	// Logger receives the dashboard's logs. Nil discards them.
	Logger *slog.Logger
}

// Dashboard serves the status page, its assets, its JSON snapshot and its live stream (see the
// package documentation for the routes). It is safe for concurrent use. It only reads its
// sources; it does not run anything of its own besides the requests it serves.
type Dashboard struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	assets  map[string]asset
	streams atomic.Int64

	closeOnce sync.Once
	done      chan struct{} // closed by Close: live streams end
}

var _ http.Handler = (*Dashboard)(nil)

// New returns a Dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Edges == nil {
		return nil, errors.New("web: Config.Edges is required")
	}
	if cfg.CertWarn <= 0 {
		cfg.CertWarn = DefaultCertWarn
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 32
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{cfg: cfg, log: cfg.Logger, assets: assets, done: make(chan struct{})}
	d.mux = d.routes()
	return d, nil
}

// routes registers every route of the dashboard.
func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.serveIndex)
	mux.HandleFunc("GET /static/{name}", d.serveAsset)
	mux.HandleFunc("GET /api/snapshot", d.serveSnapshot)
	mux.HandleFunc("GET /api/events", d.serveEvents)
	return mux
}

// ServeHTTP serves the dashboard's routes; other paths get 404.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	d.mux.ServeHTTP(w, r)
}

// Close ends the live streams (an http.Server's Shutdown waits for every request, and a stream
// would otherwise last as long as its page). New streams end at once. Safe to call twice.
func (d *Dashboard) Close() {
	d.closeOnce.Do(func() { close(d.done) })
}

// Snapshot returns what the page shows now.
func (d *Dashboard) Snapshot() Snapshot {
	var deploys []Deploy
	var history map[string][]string
	if d.cfg.Deploys != nil {
		deploys = d.cfg.Deploys.Deploys()
		if sh, ok := d.cfg.Deploys.(SiteHistorySource); ok {
			history = sh.SiteHistory()
		}
	}
	now, st := time.Now(), d.cfg.Edges.Status()
	s := snapshot(now, st, deploys, history)
	s.Certs = d.certs(now, st.Edges)
	if d.cfg.Issuer != nil {
		if is, ok := d.cfg.Issuer.IssuerState(); ok {
			s.Issuer = &is
		}
	}
	return s
}

// certs returns the page's certificates: the table's and the edges' own.
func (d *Dashboard) certs(now time.Time, edges []edgeset.EdgeStatus) []Cert {
	var recs []netcert.Record
	var reports map[string]CertReport
	if d.cfg.Certs != nil {
		recs = d.cfg.Certs.Certificates()
		reports = certReports(d.cfg.Certs)
	}
	return certRows(now, recs, reports, edges, d.cfg.CertWarn)
}

func (d *Dashboard) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(d.Snapshot())
	if err != nil {
		d.log.Error("Dashboard snapshot does not encode", slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b) // a write error means the client left
}
