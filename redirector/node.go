package redirector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/internal/certs"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/trafficseries"
	"github.com/dt-cdn/dt/web"
)

// Defaults of Config.
const (
	// DefaultCode is the redirect status: 301, the status the original redirector sends. Every
	// redirect carries Cache-Control: private, no-store, so even a 301 does not pin a visitor.
	DefaultCode = http.StatusMovedPermanently
)

// Config configures a redirector node. New checks it; it is not modified afterwards. Zero
// values mean the defaults given per field.
type Config struct {
	// Host configures the redirector's dt node, admin listener (/status with the edges, /explain,
	// the dashboard at /), logger, metrics registry and process hooks (see nodehost.Config).
	// Host.Node.LazyBodies is always set: a redirector needs to know what the table holds (the
	// heartbeats, the current deploy), never a site's file data. Required: Host.Node.Keys and
	// Host.Node.DataDir, which also keeps the certificates (DataDir/certs). A redirector is never
	// a master.
	Host nodehost.Config

	// HTTP is the address (host:port) on which visitors are redirected over plain HTTP; it also
	// answers ACME HTTP-01 challenges for Domains. Port 0 picks a free port, reported to
	// Host.Ready. Empty: no plain listener. At least one of HTTP and HTTPS is required.
	HTTP string
	// HTTPS is the address on which visitors are redirected over TLS (HTTP/2 and HTTP/1.1).
	// Empty: no TLS listener.
	HTTPS string
	// Domains are the names to obtain certificates for by ACME (see package internal/certs);
	// they need HTTPS, and HTTP on port 80 or HTTPS on 443 reachable under each name. Empty: a
	// locally generated self-signed certificate, which browsers warn about: for tests and for a
	// redirector behind a TLS-terminating proxy.
	Domains []string
	// ACMEDirectory is the ACME server's directory URL. Empty: Let's Encrypt's production
	// directory. Its staging directory has far higher rate limits, for trying a setup out.
	ACMEDirectory string
	// ACMEEmail is the contact address registered with the ACME account. Empty: none, and the CA
	// cannot warn about expiring certificates.
	ACMEEmail string

	// GeoIP is the path of a MaxMind-format database (GeoLite2-City, DB-IP lite) that locates
	// visitors; it is reloaded when the file changes and on Reload. Empty: no GeoIP, and every
	// visitor goes to any eligible edge, by weight: correct, but not the nearest.
	GeoIP string
	// Code is the redirect status: 301, 302, 307 or 308. Zero: DefaultCode. A 301 may be
	// remembered by a client longer than a 302 despite the Cache-Control header.
	Code int
	// TrustedProxies are the networks whose X-Forwarded-For and Forwarded headers are believed
	// (see ClientIP). Empty: none; the connection's peer is the visitor. Trusting too wide a
	// network lets a visitor choose its edge by forging the header.
	TrustedProxies []netip.Prefix
	// Select tunes the choice of edge: weights, the near band, a default location for clients
	// GeoIP does not place. Zero: Select's defaults, except that a zero MaxAge means three
	// heartbeat intervals (see ServiceConfig).
	Select edgeset.SelectOptions
	// HeartbeatInterval is the interval assumed for edges that do not announce theirs (edges of
	// releases before heartbeat.Heartbeat.IntervalMS); the others are judged by their own. Zero:
	// heartbeat.DefaultInterval.
	HeartbeatInterval time.Duration
	// RedirectFlushInterval is how often the redirects counted in memory are stored in the
	// traffic series (/api/stats, the dashboard): shorter shows them sooner for more database
	// writes. Zero: DefaultRedirectFlushInterval.
	RedirectFlushInterval time.Duration

	// MaxConns caps the visitor connections open at once, over both listeners; past it
	// connections are reset at accept. Zero: 10,000 (internal/connlimit's default), lowered to
	// fit the descriptor limit less FDReserve.
	MaxConns int
	// MaxConnsPerAddr caps the visitor connections open at once from one IPv4 address or IPv6
	// /64. Zero: 256 (internal/connlimit's default). Too low a cap refuses visitors behind one
	// NAT.
	MaxConnsPerAddr int
	// FDReserve is how many descriptors visitors cannot take, kept for the node's peers,
	// database and files. Zero: 1,024 (internal/connlimit's default); negative: no bound from
	// the descriptor limit.
	FDReserve int
	// Frontend bounds each visitor connection's time and memory (header timeout, idle timeout,
	// send timeout, header size, shutdown grace); the connection caps are MaxConns,
	// MaxConnsPerAddr and FDReserve, and its Registerer and Logger are the node's. Zero fields:
	// the defaults of FrontendConfig.
	Frontend FrontendConfig
}

// validate checks cfg and returns every problem at once.
func (cfg *Config) validate() error {
	var errs []error
	if cfg.Host.Node.DataDir == "" {
		errs = append(errs, errors.New("a data directory (Host.Node.DataDir) is required"))
	}
	if cfg.Host.Node.Master {
		errs = append(errs, errors.New("a redirector is not a master"))
	}
	if cfg.HTTP == "" && cfg.HTTPS == "" {
		errs = append(errs, errors.New("a listener (HTTP or HTTPS) is required"))
	}
	if len(cfg.Domains) > 0 && cfg.HTTPS == "" {
		errs = append(errs, errors.New("certificates for Domains need HTTPS"))
	}
	switch cfg.Code {
	case 0, 301, 302, 307, 308:
	default:
		errs = append(errs, fmt.Errorf("redirect Code %d is not 301, 302, 307 or 308", cfg.Code))
	}
	if cfg.HeartbeatInterval < 0 || cfg.MaxConns < 0 || cfg.MaxConnsPerAddr < 0 || cfg.RedirectFlushInterval < 0 {
		errs = append(errs, errors.New("negative HeartbeatInterval, MaxConns, MaxConnsPerAddr or RedirectFlushInterval"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Node is a redirector: a dt node that follows the edges' heartbeats and the current deploy, and
// answers every visitor with a redirect to the nearest live edge that serves it, on its HTTP and
// HTTPS listeners, with /explain and the dashboard on the node's admin listener.
//
// Run runs it once. Reload and the other methods are safe to call from any goroutine.
type Node struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	geo *geoip.DB // guarded by mu: the running node's GeoIP database; nil when none or not running
}

// New checks cfg and returns a Node that Run starts.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Code == 0 {
		cfg.Code = DefaultCode
	}
	if cfg.RedirectFlushInterval == 0 {
		cfg.RedirectFlushInterval = DefaultRedirectFlushInterval
	}
	cfg.Host.Node.LazyBodies = true
	log := cfg.Host.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, log: log}, nil
}

// Run opens the node, builds the redirector on it, and serves visitors, the admin listener and
// the node until ctx ends or a part fails; then it stops them in order (the visitor listeners,
// the dashboard's streams, the admin listener, the node) and returns once every goroutine it
// started has ended. A Node runs once.
func (r *Node) Run(ctx context.Context) error {
	h, err := nodehost.Open(r.cfg.Host)
	if err != nil {
		return err
	}
	p, err := r.build(h.Node(), h.Registerer())
	if err != nil {
		return errors.Join(err, h.Close())
	}
	defer p.close() // for a host that stops before Serve runs; a no-op after Serve's
	if err := h.Subscribe(dt.EventHandlerFunc(p.handleEvent)); err != nil {
		return errors.Join(err, h.Close())
	}
	r.setGeo(p.geo)
	defer r.setGeo(nil)
	return h.Run(ctx, nodehost.Role{
		Routes: func(mux *http.ServeMux) { mux.Handle("/", p.admin) },
		Status: func(st *nodehost.Status) { st.Redirector = p.svc.Status() },
		Serve: func(ctx context.Context, ready func(nodehost.Serving) error) error {
			// The dashboard's streams end as Serve returns, before the host shuts the admin
			// listener down (which waits for requests in flight); Reload stops first.
			defer func() {
				r.setGeo(nil)
				p.close()
			}()
			return r.serve(ctx, p, ready)
		},
	})
}

// Reload reads the GeoIP database again (as on SIGHUP). A file that fails to load leaves the
// loaded database in service, is logged, and its error returned. Without Config.GeoIP, or when
// the node does not run, it does nothing.
func (r *Node) Reload() error {
	r.mu.Lock()
	geo := r.geo
	r.mu.Unlock()
	if geo == nil {
		return nil
	}
	if err := geo.Reload(); err != nil {
		r.log.Warn("GeoIP reload failed; keeping the loaded database", slog.Any("err", err))
		return err
	}
	r.log.Info("GeoIP database reloaded")
	return nil
}

// setGeo publishes the running node's GeoIP database to Reload.
func (r *Node) setGeo(g *geoip.DB) {
	r.mu.Lock()
	r.geo = g
	r.mu.Unlock()
}

// parts are what a redirector builds on its open node.
type parts struct {
	svc   *Service
	geo   *geoip.DB      // nil without Config.GeoIP
	certs *certs.Manager // nil without Config.HTTPS
	dash  *web.Page
	// series keeps the edges' traffic statistics; stats logs the bad ones.
	series    *trafficseries.Store
	redirects *trafficseries.RedirectCounter // counted by the Service, stored by stats
	stats     *statsReceiver
	// admin holds the redirector's admin routes: /explain, and the dashboard on every other path.
	admin *http.ServeMux
	// reg receives the metrics of the service and the visitor listeners: the node's registry.
	reg prometheus.Registerer
}

// build makes the parts on the open node n, with their metrics on reg. On error, what it opened
// is closed.
func (r *Node) build(n *dt.Node, reg prometheus.Registerer) (_ *parts, err error) {
	p := &parts{reg: reg, admin: http.NewServeMux(), redirects: trafficseries.NewRedirectCounter()}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if r.cfg.GeoIP != "" {
		if p.geo, err = geoip.Open(r.cfg.GeoIP, geoip.Options{Logger: r.log}); err != nil {
			return nil, err
		}
	}
	if r.cfg.HTTPS != "" {
		p.certs, err = certs.New(certs.Config{Domains: r.cfg.Domains, CacheDir: filepath.Join(r.cfg.Host.Node.DataDir, "certs"),
			ACMEDirectory: r.cfg.ACMEDirectory, Email: r.cfg.ACMEEmail, Logger: r.log})
		if err != nil {
			return nil, err
		}
	}
	scfg := ServiceConfig{Node: n, TrustedProxies: r.cfg.TrustedProxies, Code: r.cfg.Code, Select: r.cfg.Select,
		HeartbeatInterval: r.cfg.HeartbeatInterval, Registerer: reg, Logger: r.log, Redirects: p.redirects}
	if p.geo != nil {
		scfg.Geo = p.geo
	}
	if len(r.cfg.Domains) > 0 {
		scfg.ACME = p.certs.HTTPHandler(nil) // answers challenges; the Service never redirects them
	}
	if p.svc, err = NewService(scfg); err != nil {
		return nil, err
	}
	p.admin.Handle("GET /explain", p.svc.Explain())
	if p.series, err = trafficseries.Open(trafficseries.Config{Dir: r.cfg.Host.Node.DataDir, NoSync: r.cfg.Host.Node.NoSync, Logger: r.log}); err != nil {
		return nil, err
	}
	if p.stats, err = newStatsReceiver(p.series, p.redirects, r.cfg.RedirectFlushInterval, reg, r.log); err != nil {
		return nil, err
	}
	p.admin.Handle("GET /api/stats", p.stats)
	if p.dash, err = web.NewPage(p.svc, n, r.log); err != nil {
		return nil, err
	}
	p.admin.Handle("/", p.dash)
	return p, nil
}

// handleEvent passes one of the node's events on; call it with every event, in order, from one
// goroutine.
func (p *parts) handleEvent(ev dt.Event) {
	p.svc.HandleEvent(ev)
	p.dash.HandleEvent(ev)
	p.stats.HandleEvent(ev)
}

// close releases what build opened; the dashboard's streams end.
func (p *parts) close() {
	if p.dash != nil {
		p.dash.Close()
	}
	if p.geo != nil {
		p.geo.Close()
	}
	if p.series != nil {
		p.series.Close()
	}
}
