package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/redirector"
)

// redirectorFlags are dt redirector's own flags, beside the node's.
type redirectorFlags struct {
	http      string
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
	fs := newFlagSet(env, "redirector", "dt redirector --keys DIR --data DATADIR --peer ADDR... [--listen ADDR] --http ADDR [--geoip FILE.mmdb] [--redirect-code 301|302|307|308] [--trusted-proxy CIDR]... [--admin ADDR]",
		"Runs a redirector: a dt node that follows the edges' heartbeats and the current deploy, and\n"+
			"answers every visitor with a redirect to the nearest live edge that serves it. Point the\n"+
			"site's public name here. The admin listener adds /explain?ip=ADDR (why each edge would or\n"+
			"would not get that client) and the edges to /status. SIGHUP reloads the GeoIP database.")
	nf.register(fs)
	fs.StringVar(&rf.http, "http", "", "serve visitors over HTTP on `ADDR` (host:port); required")
	fs.StringVar(&rf.geoip, "geoip", "", "locate visitors with the MaxMind-format database `FILE.mmdb` (reloaded when the file changes)")
	fs.IntVar(&rf.code, "redirect-code", 301, "redirect with status `CODE`: 301, 302, 307 or 308 (every redirect carries Cache-Control: private, no-store)")
	fs.Var(&rf.trusted, "trusted-proxy", "believe X-Forwarded-For and Forwarded from `CIDR`; repeatable")
	fs.DurationVar(&rf.heartbeat, "heartbeat-interval", 2*time.Second, "the edges' heartbeat `INTERVAL`")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if err := nf.check(fs); err != nil {
		return err
	}
	if nf.master {
		return fs.usageErrorf("a redirector is not a master: drop --master")
	}
	if rf.http == "" {
		return fs.usageErrorf("--http is required")
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
	var svc *redirector.Service
	ready := make(chan struct{})
	current := func() *redirector.Service {
		select {
		case <-ready:
			return svc
		default:
			return nil
		}
	}
	hooks := nodeHooks{
		// A redirector needs to know what the table holds, not the site's file data.
		config: func(c *dt.Config) { c.LazyBodies = true },
		event: func(ev dt.Event) {
			<-ready
			if svc != nil {
				svc.HandleEvent(ev)
			}
		},
		admin: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /explain", func(w http.ResponseWriter, r *http.Request) {
				if s := current(); s != nil {
					s.Explain().ServeHTTP(w, r)
					return
				}
				http.Error(w, "starting", http.StatusServiceUnavailable)
			})
		},
		status: func(st *nodeStatus) {
			if s := current(); s != nil {
				st.Redirector = s.Status()
			}
		},
	}
	hooks.work = func(ctx context.Context, n *dt.Node, log *slog.Logger) error {
		defer func() {
			select {
			case <-ready:
			default:
				close(ready) // a failed start: release the event goroutine
			}
		}()
		var geo *redirector.GeoDB
		if rf.geoip != "" {
			var err error
			if geo, err = redirector.OpenGeoDB(rf.geoip, redirector.GeoOptions{Logger: log}); err != nil {
				return err
			}
			defer geo.Close()
		}
		cfg := redirector.ServiceConfig{Node: n, TrustedProxies: trusted, Code: rf.code, HeartbeatInterval: rf.heartbeat, Logger: log}
		if geo != nil {
			cfg.Geo = geo
		}
		var err error
		if svc, err = redirector.NewService(cfg); err != nil {
			return err
		}
		close(ready)
		return serveRedirector(ctx, svc, geo, rf.http, log)
	}
	return serveNode(ctx, env, &nf, hooks)
}

// serveRedirector serves visitors until ctx ends, reloading the GeoIP database on SIGHUP.
func serveRedirector(ctx context.Context, svc *redirector.Service, geo *redirector.GeoDB, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- svc.Run(ctx) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if geo != nil {
		go func() { errc <- geo.Watch(ctx) }()
	}
	log.Info("Redirector serving", slog.String("http", ln.Addr().String()))
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
				cancel()
				shutdown(srv)
				return err
			}
		case <-ctx.Done():
			shutdown(srv)
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
