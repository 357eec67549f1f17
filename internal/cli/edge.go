package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/certs"
	"github.com/dt-cdn/dt/internal/httpserve"
)

// edgeFlags are dt edge's own flags, beside the node's.
type edgeFlags struct {
	servingFlags
	publicURL string
	name      string
	location  string
	geoip     string
	publicIPs stringList
	heartbeat time.Duration
	drainWait time.Duration
	stdHTTP1  bool
	stdHTTP2  bool
}

func runEdge(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		ef edgeFlags
	)
	fs := newFlagSet(env, "edge", "dt edge --keys DIR --data DATADIR --peer ADDR... [--listen ADDR] --http ADDR --https ADDR [--domain NAME]... [--acme-directory URL] [--public-url URL] [--location LAT,LON] [--geoip FILE] [--admin ADDR]",
		"Runs an edge: a dt node that serves the network's current deploy to visitors, switching to a\n"+
			"new deploy only once it holds every file of it, and reports itself in heartbeats.\n"+
			"With --domain, certificates come from ACME (Let's Encrypt unless --acme-directory) and\n"+
			"--http answers ACME challenges and redirects to HTTPS; without, --https uses a locally\n"+
			"generated certificate and --http serves the site too. SIGTERM drains: the edge announces\n"+
			"it, waits --drain-wait for redirectors to stop sending visitors, finishes requests in\n"+
			"flight and exits.")
	nf.register(fs)
	ef.servingFlags.register(fs, "serve HTTP on `ADDR` (ACME challenges and redirects with --domain; the site without)")
	fs.StringVar(&ef.publicURL, "public-url", "", "the `URL` visitors reach this edge at (default: from --domain or the listeners)")
	fs.StringVar(&ef.name, "name", "", "call the edge `NAME` in heartbeats and on the dashboard (default: its public URL's host)")
	fs.StringVar(&ef.location, "location", "", "the edge's location `LAT,LON` (default: its public address looked up in --geoip)")
	fs.StringVar(&ef.geoip, "geoip", "", "MaxMind-format `FILE.mmdb` to locate the edge by its public address")
	fs.Var(&ef.publicIPs, "public-ip", "the edge's public `ADDR` (IPv4 and/or IPv6); repeatable (default: the addresses its dt peers see it at, when public)")
	fs.DurationVar(&ef.heartbeat, "heartbeat-interval", 2*time.Second, "send a heartbeat every `INTERVAL`")
	fs.DurationVar(&ef.drainWait, "drain-wait", 0, "on SIGTERM, keep serving for `DURATION` after announcing the drain (0: 2 heartbeat intervals)")
	fs.BoolVar(&ef.stdHTTP1, "std-http1", false, "serve plain HTTP/1.x with Go's net/http server rather than dt's own (slower; a fallback should a client disagree with dt's)")
	fs.BoolVar(&ef.stdHTTP2, "std-http2", false, "serve HTTP/2 with Go's net/http server rather than dt's own (slower; a fallback should a client disagree with dt's)")
	if err := parsePlainNode(fs, args, &nf, "an edge"); err != nil {
		return err
	}
	if err := ef.servingFlags.check(fs); err != nil {
		return err
	}
	if ef.drainWait == 0 {
		ef.drainWait = 2 * ef.heartbeat
	}
	if len(ef.name) > 64 || strings.IndexFunc(ef.name, unicode.IsControl) >= 0 {
		return fs.usageErrorf("--name: at most 64 characters, none of them control characters")
	}
	cfg := edge.NodeConfig{HeartbeatInterval: ef.heartbeat, Version: softwareVersion(), Name: ef.name, StdHTTP1: ef.stdHTTP1, StdHTTP2: ef.stdHTTP2,
		MaxConns: ef.conns.max, MaxConnsPerIP: ef.conns.perIP, FDReserve: ef.conns.fdReserve}
	for _, s := range ef.publicIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fs.usageErrorf("--public-ip %q: %v", s, err)
		}
		if ip.Unmap().Is4() {
			cfg.IPv4 = ip.Unmap()
		} else {
			cfg.IPv6 = ip
		}
	}
	if ef.location != "" {
		loc, err := parseLocation(ef.location)
		if err != nil {
			return fs.usageErrorf("--location: %v", err)
		}
		cfg.Location = loc
	}

	node := newLater[edge.Node]()
	hooks := nodeHooks{
		release: func() { node.set(nil) }, // a no-op once work has set it
		// The edge's metrics go on the node's registry, served on the admin listener.
		config: func(c *dt.Config) { cfg.Registerer = c.Registerer },
		event: func(ev dt.Event) {
			if e := node.wait(); e != nil {
				e.HandleEvent(ev)
			}
		},
		status: func(st *nodeStatus) {
			if e := node.get(); e != nil {
				s := e.Status()
				st.Edge = &s
			}
		},
	}
	hooks.serves = true
	hooks.work = func(ctx context.Context, n *dt.Node, log *slog.Logger, up func(Serving) error) error {
		defer node.set(nil) // a failed start: release the event goroutine
		store, err := blobs.Open(filepath.Join(nf.data, "site"), blobs.Options{NoSync: nf.noSync, Logger: log})
		if err != nil {
			return err
		}
		defer store.Close()
		cm, err := ef.certificates(nf.data, log)
		if err != nil {
			return err
		}
		// Listening first resolves a :0 port before the public URL is derived from it.
		lns, err := listenEdge(ef)
		if err != nil {
			return err
		}
		defer lns.close()
		ef.http, ef.https = lns.addr(lns.http), lns.addr(lns.https)
		cfg.Node, cfg.Blobs, cfg.Logger = n, store, log
		if cfg.PublicURL, err = publicURL(ef); err != nil {
			return err
		}
		if cm != nil {
			host := hostOf(cfg.PublicURL)
			cfg.CertExpiry = func() time.Time { t, _ := cm.Expiry(host); return t }
		}
		if cfg.Location == nil && ef.geoip != "" {
			// Kept open: the address to locate may be learned from peers later, and change.
			db, err := geoip.Open(ef.geoip, geoip.Options{Logger: log})
			if err != nil {
				return err
			}
			defer db.Close()
			cfg.Locate = geoLocator(db, log)
		}
		e, err := edge.NewNode(cfg)
		if err != nil {
			return err
		}
		node.set(e)
		return serveEdge(ctx, e, cm, ef, lns, log, func() error {
			return up(Serving{HTTP: ef.http, HTTPS: ef.https, PublicURL: cfg.PublicURL})
		})
	}
	return serveNode(ctx, env, &nf, hooks)
}

// edgeListeners are the visitor listeners of an edge; a nil one is not configured.
type edgeListeners struct {
	http, https net.Listener
}

func listenEdge(ef edgeFlags) (*edgeListeners, error) {
	var lns edgeListeners
	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	var err error
	if lns.https, err = listen(ef.https); err != nil {
		return nil, err
	}
	if lns.http, err = listen(ef.http); err != nil {
		lns.close()
		return nil, err
	}
	return &lns, nil
}

// addr is ln's bound address, or "" for none.
func (l *edgeListeners) addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// close closes the listeners; closing one a server already closed is harmless.
func (l *edgeListeners) close() {
	for _, ln := range []net.Listener{l.http, l.https} {
		if ln != nil {
			ln.Close()
		}
	}
}

// serveEdge serves on lns until ctx ends, then drains: it announces the drain (health 503, a
// draining heartbeat), keeps serving drainWait so redirectors move visitors away, and only then
// stops the listeners, letting requests in flight finish. It calls up once the servers run.
func serveEdge(ctx context.Context, e *edge.Node, cm *certs.Manager, ef edgeFlags, lns *edgeListeners, log *slog.Logger, up func() error) error {
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	if lns.https != nil {
		wg.Go(func() { errc <- e.Server().Serve(serveCtx, lns.https, cm.TLSConfig()) })
	}
	if lns.http != nil {
		if len(ef.domains) > 0 {
			// ACME challenges and redirects count against the visitor caps too.
			wg.Go(func() { errc <- serveHTTP(serveCtx, e.Server().Limit(lns.http), cm.HTTPHandler(nil), log) })
		} else {
			wg.Go(func() { errc <- e.Server().Serve(serveCtx, lns.http, nil) })
		}
	}
	hbCtx, stopBeats := context.WithCancel(context.Background())
	beatsDone := make(chan struct{})
	go func() { defer close(beatsDone); e.Run(hbCtx) }()
	log.Info("Edge serving", slog.String("http", ef.http), slog.String("https", ef.https))

	err := up()
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	}
	e.Drain()
	stopBeats() // sends the draining heartbeat
	<-beatsDone
	if err == nil {
		log.Info("Draining", slog.Duration("wait", ef.drainWait))
		t := time.NewTimer(ef.drainWait)
		select {
		case <-t.C:
		case err = <-errc:
			t.Stop()
		}
	}
	stopServing()
	wg.Wait()
	close(errc)
	for serr := range errc {
		err = errors.Join(err, serr)
	}
	return err
}

// serveHTTP serves h on ln until ctx ends, by net/http's server with the edge's bounds
// (httpserve's defaults): without IdleTimeout an idle connection would keep its place under the
// caps for ever.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv, err := httpserve.New(httpserve.Config{Handler: h, StdHTTP1: true, Logger: log})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln, nil)
}

// publicURL is --public-url, or the URL visitors reach the edge at by its domain or listeners.
func publicURL(ef edgeFlags) (string, error) {
	if ef.publicURL != "" {
		u, err := url.Parse(ef.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--public-url %q is not an http(s) URL", ef.publicURL)
		}
		return strings.TrimSuffix(ef.publicURL, "/"), nil
	}
	if len(ef.domains) > 0 {
		_, port, _ := net.SplitHostPort(ef.https)
		if port == "443" || port == "" {
			return "https://" + ef.domains[0], nil
		}
		return "https://" + net.JoinHostPort(ef.domains[0], port), nil
	}
	if ef.https != "" {
		return "https://" + listenHost(ef.https), nil
	}
	return "http://" + listenHost(ef.http), nil
}

// listenHost turns a listen address into one a visitor can use (an empty host means localhost).
func listenHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// parseLocation reads "LAT,LON".
func parseLocation(s string) (*heartbeat.Location, error) {
	lat, lon, ok := strings.Cut(s, ",")
	if !ok {
		return nil, errors.New("want LAT,LON")
	}
	la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
	lo, err2 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 {
		return nil, fmt.Errorf("%q is not a latitude,longitude", s)
	}
	return &heartbeat.Location{Lat: la, Lon: lo}, nil
}

// geoLocator returns an edge.NodeConfig.Locate that looks an address up in db.
func geoLocator(db *geoip.DB, log *slog.Logger) func(netip.Addr) *heartbeat.Location {
	return func(ip netip.Addr) *heartbeat.Location {
		if rec, err := db.Lookup(ip); err == nil && rec != nil && rec.HasLocation {
			return &heartbeat.Location{Lat: rec.Lat, Lon: rec.Lon, Country: rec.Country, Continent: rec.Continent}
		}
		log.Warn("Public address not found in the GeoIP database; location unknown (give --location)", slog.String("addr", ip.String()))
		return nil
	}
}

// softwareVersion names this build for heartbeats: the module version, or the VCS revision of a
// development build.
func softwareVersion() string { return readBuildInfo().short() }
