package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/challenge"
	follow "github.com/dt-cdn/dt/deploy"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/internal/certs"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/trafficstats"
)

// Node is an edge: a dt node that serves the network's current deploy to visitors, switching
// to a new deploy only once it holds every file of it, and reports itself in heartbeats. Run
// assembles it, serves, and drains when its context ends.
type Node struct {
	cfg     Config
	started atomic.Bool
	svc     atomic.Pointer[service] // set by Run once the edge is assembled
	access  atomic.Pointer[accesslog.Logger]
}

// ErrRunOnce is returned by a second call of Node.Run: a Node's listeners and data directory
// are its one run's.
var ErrRunOnce = errors.New("edge: a Node runs once")

// New checks cfg; Run opens and serves the edge. It opens nothing itself.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Node{cfg: cfg.withDefaults()}, nil
}

// parts are what an edge opens beside its node, closed once the node has closed.
type parts struct {
	store *blobs.Store
	certs *certs.Manager // nil without HTTPS
	table *netcert.Store // the network's certificates from the table; nil without HTTPS
	acme  *challenge.Set // the table's ACME challenge answers
	lns   listeners
	geo   *geoip.DB // nil without Config.GeoIP
	svc   *service
	// access is the access log, nil without Config.AccessLog. Its writer runs from serve until
	// the servers have stopped, so that requests in flight are logged too.
	access *accesslog.Logger
}

// close closes what was opened; listeners a server already closed are harmless to close again.
func (p *parts) close() error {
	p.lns.close()
	var err error
	if p.geo != nil {
		err = p.geo.Close()
	}
	if p.access != nil {
		err = errors.Join(err, p.access.Close()) // its writer's Run closed it, if it ran
	}
	if p.svc != nil {
		err = errors.Join(err, p.svc.handler.Close()) // the blob files it keeps open
	}
	if p.store != nil {
		err = errors.Join(err, p.store.Close())
	}
	return err
}

// Run opens the edge's node, its blob store, certificates and listeners, and serves until ctx
// ends. Then it drains: it announces the drain (health 503, a draining heartbeat), keeps serving
// DrainWait so that redirectors move visitors away, stops the listeners letting requests in
// flight finish, and closes the admin listener, the node and the store, in that order. It
// returns once everything it started has stopped. A Node runs once (ErrRunOnce).
func (e *Node) Run(ctx context.Context) (err error) {
	if !e.started.CompareAndSwap(false, true) {
		return ErrRunOnce
	}
	h, err := nodehost.Open(e.cfg.Host)
	if err != nil {
		return err
	}
	var p parts
	defer func() { err = errors.Join(err, p.close()) }()
	if err := e.assemble(h, &p); err != nil {
		return errors.Join(err, h.Close())
	}
	return h.Run(ctx, nodehost.Role{
		Status: func(st *nodehost.Status) {
			s := p.svc.Status()
			st.Edge = &s
		},
		Serve: func(ctx context.Context, ready func(nodehost.Serving) error) error {
			return e.serve(ctx, &p, h.Logger(), ready)
		},
	})
}

// Status reports the deploy the edge follows, as /status shows it under "edge": zero until Run
// has assembled the edge.
func (e *Node) Status() follow.Status {
	if s := e.svc.Load(); s != nil {
		return s.Status()
	}
	return follow.Status{}
}

// assemble opens the edge's parts on its open node and subscribes the service to its events.
func (e *Node) assemble(h *nodehost.Host, p *parts) error {
	c, log := e.cfg, h.Logger()
	var err error
	if p.store, err = blobs.Open(filepath.Join(c.Host.Node.DataDir, "site"), blobs.Options{NoSync: c.Host.Node.NoSync, Logger: log}); err != nil {
		return err
	}
	if p.certs, err = e.certificates(log); err != nil {
		return err
	}
	if err := e.tableParts(h, p); err != nil {
		return err
	}
	// Listening first resolves a :0 port before the public URL is derived from it.
	if p.lns, err = listen(c.HTTP, c.HTTPS); err != nil {
		return err
	}
	sc := serviceConfig{Node: h.Node(), Blobs: p.store, IPv4: c.IPv4, IPv6: c.IPv6, Location: c.Location,
		HeartbeatInterval: c.HeartbeatInterval, Version: c.Host.Version, Name: c.Name, StdHTTP1: c.StdHTTP1, StdHTTP2: c.StdHTTP2,
		MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP, FDReserve: c.FDReserve, Registerer: h.Registerer(), Logger: log,
		ACME: p.acme}
	sc.PublicURL = publicURL(c.PublicURL, c.Domains, p.lns.addr(p.lns.http), p.lns.addr(p.lns.https))
	if p.certs != nil {
		cs := certStatus{table: p.table, own: p.certs, host: strings.ToLower(hostOf(sc.PublicURL)), now: time.Now}
		sc.CertExpiry, sc.CertStates = cs.expiry, cs.states
	}
	if err := e.openGeoIP(p, &sc, log); err != nil {
		return err
	}
	if c.StatsInterval > 0 {
		sc.Stats = trafficstats.New(trafficstats.Config{Country: sc.Country, Logger: log})
		sc.StatsInterval = c.StatsInterval
	}
	if sc.AccessLog, err = e.openAccessLog(h); err != nil {
		return err
	}
	p.access = sc.AccessLog
	if p.svc, err = newService(sc); err != nil {
		return err
	}
	e.svc.Store(p.svc)
	return h.Subscribe(p.svc)
}

// openGeoIP opens Config.GeoIP, to locate the edge (without a Location) and its visitors. With
// a Location the database serves only the statistics' countries, so a file that fails to open
// is logged rather than stopping the edge.
func (e *Node) openGeoIP(p *parts, sc *serviceConfig, log *slog.Logger) error {
	c := e.cfg
	if c.GeoIP == "" {
		return nil
	}
	var err error
	if p.geo, err = geoip.Open(c.GeoIP, geoip.Options{Logger: log}); err != nil {
		if c.Location == nil {
			return err
		}
		log.Warn("GeoIP database not opened; visitors' countries unknown", slog.Any("err", err))
		return nil
	}
	if c.Location == nil {
		sc.Locate = geoLocator(p.geo, log)
	}
	sc.Country = geoCountry(p.geo)
	return nil
}

// openAccessLog opens the access log of Config.AccessLog, or returns nil without one.
func (e *Node) openAccessLog(h *nodehost.Host) (*accesslog.Logger, error) {
	if e.cfg.AccessLog == nil {
		return nil, nil
	}
	c := *e.cfg.AccessLog
	if c.Logger == nil {
		c.Logger = h.Logger()
	}
	if c.Registerer == nil {
		c.Registerer = h.Registerer()
	}
	l, err := accesslog.New(c)
	if err != nil {
		return nil, fmt.Errorf("edge: access log: %w", err)
	}
	e.access.Store(l)
	return l, nil
}

// Reopen closes the access log's file and opens its path again, as logrotate needs after it
// renamed the file (dt edge calls it on SIGHUP). It does not wait for the reopen. Without an
// access log, or before Run opened it, it does nothing.
func (e *Node) Reopen() {
	if l := e.access.Load(); l != nil {
		l.Reopen()
	}
}

// tableParts makes what the edge serves from the table: the ACME challenge answers, and with
// HTTPS the network's certificates, and subscribes them to the node's events.
func (e *Node) tableParts(h *nodehost.Host, p *parts) error {
	var err error
	if p.acme, err = challenge.NewSet(challenge.SetConfig{Registerer: h.Registerer(), Logger: h.Logger()}); err != nil {
		return err
	}
	if err := h.Subscribe(p.acme); err != nil {
		return err
	}
	if p.certs == nil {
		return nil
	}
	sealer, err := netcert.NewSealer(e.cfg.Host.Node.Keys.Network)
	if err != nil {
		return err
	}
	p.table, err = netcert.NewStore(netcert.StoreConfig{Sealer: sealer, Load: h.Node().Get, Registerer: h.Registerer(), Logger: h.Logger()})
	if err != nil {
		return err
	}
	return h.Subscribe(p.table)
}

// certificates returns the certificate manager for HTTPS (kept in DataDir/certs), or nil
// without HTTPS.
func (e *Node) certificates(log *slog.Logger) (*certs.Manager, error) {
	c := e.cfg
	if c.HTTPS == "" {
		return nil, nil
	}
	return certs.New(certs.Config{Domains: c.Domains, CacheDir: filepath.Join(c.Host.Node.DataDir, "certs"),
		ACMEDirectory: c.ACMEDirectory, Email: c.ACMEEmail, Logger: log})
}

// serve serves on the listeners until ctx ends or a server fails, then drains (see Run). It
// reports the edge ready once the servers run.
func (e *Node) serve(ctx context.Context, p *parts, log *slog.Logger, ready func(nodehost.Serving) error) error {
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	var wg sync.WaitGroup
	errc := e.startServers(serveCtx, &wg, p, log)
	logCtx, stopLog := context.WithCancel(context.Background())
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		if p.access != nil {
			_ = p.access.Run(logCtx) // only ErrRunOnce, and this is its one run
		}
	}()
	beatCtx, stopBeats := context.WithCancel(context.Background())
	beatsDone := make(chan struct{})
	go func() { defer close(beatsDone); p.svc.sendHeartbeats(beatCtx) }()
	statsCtx, stopStats := context.WithCancel(context.Background())
	statsDone := make(chan struct{})
	go func() { defer close(statsDone); p.svc.sendStats(statsCtx) }()
	sv := nodehost.Serving{HTTP: p.lns.addr(p.lns.http), HTTPS: p.lns.addr(p.lns.https), PublicURL: p.svc.cfg.PublicURL}
	log.Info("Edge serving", slog.String("http", sv.HTTP), slog.String("https", sv.HTTPS))

	err := ready(sv)
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	}
	p.svc.Drain()
	stopBeats() // sends the draining heartbeat
	<-beatsDone
	if err == nil {
		log.Info("Draining", slog.Duration("wait", e.cfg.DrainWait))
		t := time.NewTimer(e.cfg.DrainWait)
		select {
		case <-t.C:
		case err = <-errc:
			t.Stop()
		}
	}
	stopServing()
	wg.Wait()
	stopLog() // after the servers: the requests that were in flight are logged and counted
	stopStats()
	<-logDone
	<-statsDone
	close(errc)
	for serr := range errc {
		err = errors.Join(err, serr)
	}
	return err
}

// startServers serves visitors on every listener until ctx ends; each server's result goes to
// the returned channel, which has room for all of them.
func (e *Node) startServers(ctx context.Context, wg *sync.WaitGroup, p *parts, log *slog.Logger) chan error {
	errc := make(chan error, 2)
	srv := p.svc.Server()
	if p.lns.https != nil {
		wg.Go(func() { errc <- srv.Serve(ctx, p.lns.https, p.certs.TLSConfigWith(p.table)) })
	}
	if p.lns.http == nil {
		return errc
	}
	if len(e.cfg.Domains) > 0 {
		// ACME challenges and redirects count against the visitor caps too.
		h := p.acme.Handler(p.certs.HTTPHandlerWith(nil, p.table))
		wg.Go(func() { errc <- serveHTTP(ctx, srv.Limit(p.lns.http), h, log) })
	} else {
		wg.Go(func() { errc <- srv.Serve(ctx, p.lns.http, nil) })
	}
	return errc
}
