package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/internal/certs"
	"github.com/dt-cdn/dt/internal/nodehost"
	"github.com/dt-cdn/dt/redirector"
	"github.com/dt-cdn/dt/web"
	"github.com/prometheus/client_golang/prometheus"
)

// redirectorFlags are dt redirector's own flags, beside the node's.
type redirectorFlags struct {
	servingFlags
	geoip     string
	code      int
	trusted   stringList
	heartbeat time.Duration
}

func runRedirector(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		rf redirectorFlags
	)
	fs := newFlagSet(env, "redirector", "dt redirector --keys DIR --data DATADIR --peer ADDR... [--listen ADDR] --http ADDR [--https ADDR] [--domain NAME]... [--geoip FILE.mmdb] [--redirect-code 301|302|307|308] [--trusted-proxy CIDR]... [--admin ADDR]",
		"Runs a redirector: a dt node that follows the edges' heartbeats and the current deploy, and\n"+
			"answers every visitor with a redirect to the nearest live edge that serves it. Point the\n"+
			"site's public name here. The admin listener serves the dashboard at / (every edge, a map,\n"+
			"the deploys, live), adds /explain?ip=ADDR (why each edge would or would not get that\n"+
			"client) and the edges to /status. SIGHUP reloads the GeoIP database.")
	nf.register(fs)
	rf.servingFlags.register(fs, "serve visitors over HTTP on `ADDR` (host:port); it also answers ACME challenges")
	fs.StringVar(&rf.geoip, "geoip", "", "locate visitors with the MaxMind-format database `FILE.mmdb` (reloaded when the file changes)")
	fs.IntVar(&rf.code, "redirect-code", 301, "redirect with status `CODE`: 301, 302, 307 or 308 (every redirect carries Cache-Control: private, no-store)")
	fs.Var(&rf.trusted, "trusted-proxy", "believe X-Forwarded-For and Forwarded from `CIDR`; repeatable")
	fs.DurationVar(&rf.heartbeat, "heartbeat-interval", 2*time.Second, "the heartbeat `INTERVAL` to assume for edges older than this release, which do not announce theirs")
	if err := parsePlainNode(fs, args, &nf, "a redirector"); err != nil {
		return err
	}
	if err := rf.servingFlags.check(fs); err != nil {
		return err
	}
	switch rf.code {
	case 301, 302, 307, 308:
	default:
		return fs.usageErrorf("--redirect-code must be 301, 302, 307 or 308")
	}
	var trusted []netip.Prefix
	for _, c := range rf.trusted {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fs.usageErrorf("--trusted-proxy %q: %v", c, err)
		}
		trusted = append(trusted, p.Masked())
	}

	// The service needs the open node, and the node's events need the service: events wait (in
	// the node's queue) until the service exists, and the admin routes answer 503 until then.
	parts := newLater[redirectorParts]()
	var registerer prometheus.Registerer
	hooks := nodeHooks{
		release: func() { parts.set(nil) }, // a no-op once work has set it
		// A redirector needs to know what the table holds, not the site's file data.
		config: func(c *dt.Config) {
			c.LazyBodies = true
			registerer = c.Registerer // the service's metrics go on the node's registry, served on --admin
		},
		event: func(ev dt.Event) {
			if p := parts.wait(); p != nil {
				p.handleEvent(ev)
			}
		},
		admin: func(mux *http.ServeMux) {
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if p := parts.get(); p != nil {
					p.admin.ServeHTTP(w, r)
					return
				}
				http.Error(w, "starting", http.StatusServiceUnavailable)
			})
		},
		status: func(st *nodehost.Status) {
			if p := parts.get(); p != nil {
				st.Redirector = p.svc.Status()
			}
		},
	}
	hooks.serves = true
	hooks.work = func(ctx context.Context, n *dt.Node, log *slog.Logger, up func(Serving) error) error {
		defer parts.set(nil) // a failed start: release the event goroutine
		var (
			geo *geoip.DB
			err error
		)
		if rf.geoip != "" {
			if geo, err = geoip.Open(rf.geoip, geoip.Options{Logger: log}); err != nil {
				return err
			}
			defer geo.Close()
		}
		cm, err := rf.certificates(nf.data, log)
		if err != nil {
			return err
		}
		cfg := redirector.ServiceConfig{Node: n, TrustedProxies: trusted, Code: rf.code, HeartbeatInterval: rf.heartbeat, Registerer: registerer, Logger: log}
		if len(rf.domains) > 0 {
			cfg.ACME = cm.HTTPHandler(nil) // answers challenges; the Service never redirects them
		}
		if geo != nil {
			cfg.Geo = geo
		}
		p, err := newRedirectorParts(n, cfg, log)
		if err != nil {
			return err
		}
		defer p.dash.Close() // before the admin server shuts down: it waits for open streams
		p.registerer = registerer
		parts.set(p)
		return serveRedirector(ctx, p, geo, rf, cm, log, up)
	}
	return serveNode(ctx, env, &nf, hooks)
}

// redirectorParts are what a redirector builds on its open node: the service that answers
// visitors, and the dashboard with the deploy history it shows.
type redirectorParts struct {
	svc     *redirector.Service
	history *web.History
	dash    *web.Dashboard
	// admin holds the redirector's admin routes beside the node's: /explain, and the dashboard
	// on every other path.
	admin *http.ServeMux
	// registerer receives the visitor listeners' connection metrics; nil for none.
	registerer prometheus.Registerer
}

func newRedirectorParts(n *dt.Node, cfg redirector.ServiceConfig, log *slog.Logger) (*redirectorParts, error) {
	svc, err := redirector.NewService(cfg)
	if err != nil {
		return nil, err
	}
	history, err := web.NewHistory(web.HistoryConfig{Node: n, Logger: log})
	if err != nil {
		return nil, err
	}
	dash, err := web.New(web.Config{Edges: svc, Deploys: history, Logger: log})
	if err != nil {
		return nil, err
	}
	p := &redirectorParts{svc: svc, history: history, dash: dash, admin: http.NewServeMux()}
	p.admin.Handle("GET /explain", svc.Explain())
	p.admin.Handle("/", dash)
	return p, nil
}

// handleEvent passes one of the node's events on; call it with every event, in order, from one
// goroutine.
func (p *redirectorParts) handleEvent(ev dt.Event) {
	p.svc.HandleEvent(ev)
	p.history.HandleEvent(ev)
}

// serveRedirector serves visitors until ctx ends, reloading the GeoIP database on SIGHUP. It
// calls up once every listener serves.
func serveRedirector(ctx context.Context, p *redirectorParts, geo *geoip.DB, rf redirectorFlags, cm *certs.Manager, log *slog.Logger, up func(Serving) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	svc := p.svc
	wg.Go(func() { _ = p.history.Run(ctx) })
	errc := make(chan error, 4)
	// Past the caps, connections are reset at accept, before a TLS handshake; the rest have a
	// deadline on every write.
	ccfg := rf.conns.config()
	front, err := redirector.NewFrontend(svc.Handler(), redirector.FrontendConfig{ConnCaps: &ccfg, Registerer: p.registerer, Logger: log})
	if err != nil {
		return err
	}
	var bound Serving
	serve := func(addr string, tlsConfig *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		if tlsConfig != nil {
			bound.HTTPS = ln.Addr().String()
		} else {
			bound.HTTP = ln.Addr().String()
		}
		wg.Go(func() { errc <- front.Serve(ctx, ln, tlsConfig) })
		log.Info("Redirector serving", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tlsConfig != nil))
		return nil
	}
	if rf.http != "" {
		if err := serve(rf.http, nil); err != nil {
			return err
		}
	}
	if rf.https != "" {
		if err := serve(rf.https, cm.TLSConfig()); err != nil {
			return err
		}
		if len(rf.domains) > 0 {
			go func() {
				if err := cm.Warm(ctx); err != nil && ctx.Err() == nil {
					log.Warn("Certificate not obtained yet", slog.Any("err", err))
				}
			}()
		}
	}
	go func() { errc <- svc.Run(ctx) }()
	if err := up(bound); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if geo != nil {
		go func() { errc <- geo.Watch(ctx) }()
	}
	for {
		select {
		case <-hup:
			if geo == nil {
				continue
			}
			if err := geo.Reload(); err != nil {
				log.Warn("GeoIP reload failed; keeping the loaded database", slog.Any("err", err))
			} else {
				log.Info("GeoIP database reloaded")
			}
		case err := <-errc:
			if ctx.Err() == nil && err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// shutdown stops an HTTP server, letting requests in flight finish for up to 5 s.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
}
