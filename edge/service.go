package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/challenge"
	follow "github.com/dt-cdn/dt/deploy"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/fdcache"
	"github.com/dt-cdn/dt/internal/h2"
	"github.com/dt-cdn/dt/internal/httpserve"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/static"
	"github.com/dt-cdn/dt/trafficstats"
)

// HealthPath answers, for the site of the request's Host, 200 with the deploy id when the edge
// serves the site's current deploy, 503 when it does not (yet), and 421 when no site claims the
// Host: what redirectors probe and load balancers may check.
const HealthPath = "/.well-known/dt/health"

// serviceConfig configures an edge's service on an open dt node.
type serviceConfig struct {
	// Node is the edge's dt node. Its events reach the service through HandleEvent. Required.
	Node *dt.Node
	// Blobs holds the site's file data. Required.
	Blobs *blobs.Store
	// PublicURL is where visitors reach this edge. Required.
	PublicURL string
	// IPv4 and IPv6 are the edge's public addresses (Config.IPv4).
	IPv4, IPv6 netip.Addr
	// Location is where the edge is. Nil: from Locate, else unknown.
	Location *heartbeat.Location
	// Locate, when set and Location is nil, finds where the edge is from the public address it
	// reports (a GeoIP lookup). It is called again only when that address changes.
	Locate func(netip.Addr) *heartbeat.Location
	// HeartbeatInterval is how often the edge reports. Zero: DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// CertExpiry returns when the edge's certificate expires. Nil: no certificate (plain HTTP).
	CertExpiry func() time.Time
	// CertStates returns every name the edge serves and its certificate's expiry, for the
	// heartbeat's certificate report. Nil: none (plain HTTP).
	CertStates func() []heartbeat.CertState
	// Version and Name are reported in heartbeats (Config.Host.Version, Config.Name).
	Version, Name string
	// StdHTTP1, StdHTTP2, MaxConns, MaxConnsPerIP and FDReserve configure the server
	// (Config).
	StdHTTP1, StdHTTP2                 bool
	MaxConns, MaxConnsPerIP, FDReserve int
	// AccessLog receives a line for every response of a site. Nil: none.
	AccessLog *accesslog.Logger
	// Stats counts every response of a site, and sendStats sends its messages every
	// StatsInterval. Nil: no statistics.
	Stats         *trafficstats.Collector
	StatsInterval time.Duration
	// Country returns the country of a visitor's address (Config.GeoIP). Nil: unknown.
	Country func(netip.Addr) string
	// Registerer receives the edge's metrics. Nil: none.
	Registerer prometheus.Registerer
	// Logger receives the edge's logs. Nil discards them.
	Logger *slog.Logger
	// Routes registers further routes before the site (an ACME challenge handler, say).
	Routes func(r chi.Router)
	// ACME answers the HTTP-01 challenges the table holds, before the site (on every listener:
	// a CA may follow a redirect to HTTPS). Nil: none.
	ACME *challenge.Set
}

// service is an edge on an open dt node: it follows the current deploy into its blob store,
// switches the served site atomically once every blob is on disk, reports itself in heartbeats
// and serves visitors. Node assembles it; it owns no goroutine of its own.
type service struct {
	cfg      serviceConfig
	log      *slog.Logger
	handler  *static.Handler
	server   *httpserve.Server
	follower *follow.Follower
	acct     *Accounting // the handler's Observer
	metrics  *edgeMetrics

	mu sync.Mutex
	// sites are the deploys being served, by site, and hosts the host table of the network's
	// sites (nil until the first site appears: the handler then serves one site on every host,
	// as an edge of a network without named sites does). Guarded by mu.
	sites map[string]*static.Site
	hosts *site.Hosts
	// zone is the network's CDN zone (netconf), empty for none: the edge serves the names under
	// it too (static.Sites.WithZone). Guarded by mu.
	zone     string
	draining atomic.Bool
	// beatNow asks for a heartbeat at once (buffered: one pending request is enough).
	beatNow chan struct{}

	// siteCounts are, for the metrics, the last heartbeat's counts of sites and certificate
	// names, and the bytes of file data the served deploys hold in memory.
	siteCounts gaugeCounts

	// statsCounts are, for the metrics, the statistics messages sent, the site entries
	// waiting for a later message and those dropped from a full backlog.
	statsCounts statsCounts

	located   netip.Addr          // the address Locate was last asked about; only report touches it
	locatedAt *heartbeat.Location // what Locate answered for it
}

// newService builds an edge's service; sendHeartbeats sends its heartbeats and Server serves
// visitors.
func newService(cfg serviceConfig) (*service, error) {
	var errs []error
	if cfg.Node == nil {
		errs = append(errs, errors.New("edge: serviceConfig.Node is required"))
	}
	if cfg.Blobs == nil {
		errs = append(errs, errors.New("edge: serviceConfig.Blobs is required"))
	}
	if cfg.PublicURL == "" {
		errs = append(errs, errors.New("edge: serviceConfig.PublicURL is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &service{cfg: cfg, log: cfg.Logger, beatNow: make(chan struct{}, 1), sites: map[string]*static.Site{}}
	acct, err := NewAccounting(AccountingConfig{Registerer: cfg.Registerer, AccessLog: cfg.AccessLog, Stats: cfg.Stats})
	if err != nil {
		return nil, err
	}
	e.acct = acct
	e.handler = static.NewHandler(static.HandlerConfig{
		Logger:      cfg.Logger,
		Observer:    acct,
		SendTimeout: httpserve.DefaultSendTimeout, // the server's
		OpenFiles:   openFiles(cfg.MaxConns, cfg.FDReserve),
		Routes: func(r chi.Router) {
			r.Get(HealthPath, e.serveHealth)
			r.Head(HealthPath, e.serveHealth)
			if cfg.Routes != nil {
				cfg.Routes(r)
			}
		},
	})
	var h http.Handler = e.handler
	if cfg.ACME != nil {
		h = cfg.ACME.Handler(h)
	}
	srv, err := httpserve.New(httpserve.Config{
		Handler:    h,
		Logger:     cfg.Logger,
		StdHTTP1:   cfg.StdHTTP1,
		StdHTTP2:   cfg.StdHTTP2,
		ConnCaps:   &connlimit.Config{MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerIP, FDReserve: cfg.FDReserve},
		Registerer: cfg.Registerer,
		Subsystem:  "edge",
	})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	e.server = srv
	if cfg.Registerer != nil {
		m, err := newEdgeMetrics(cfg.Registerer, srv.H2Stats(), e.handler.OpenFiles(), &e.siteCounts)
		if err != nil {
			return nil, err
		}
		e.metrics = m
		if err := registerStatsMetrics(cfg.Registerer, &e.statsCounts); err != nil {
			return nil, err
		}
	}
	e.follower, err = follow.New(follow.Config{Blobs: cfg.Blobs, Logger: cfg.Logger, OnSwitch: e.switchTo, OnSites: e.setHosts,
		Held: cfg.Node.Has})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// MinSiteMemoryBudget is the least memory a site's deploy may hold its small files in
// (static.SiteOptions.MemoryBudget). An edge shares static.DefaultMemoryBudget among the sites
// of the network, so that a hundred sites do not hold a hundred times what one does; this floor
// keeps each site's most-requested small files (its pages, scripts and icons) served from
// memory however many sites there are, at up to 1 MiB a site.
const MinSiteMemoryBudget = 1 << 20

// siteMemoryBudget returns the memory a deploy of one of n sites may hold its small files in:
// an equal share of static.DefaultMemoryBudget, at least MinSiteMemoryBudget. A site keeps the
// share it got when its deploy was built until its next deploy.
func siteMemoryBudget(n int) int64 {
	return max(static.DefaultMemoryBudget/int64(max(n, 1)), MinSiteMemoryBudget)
}

// switchTo builds the new deploy's site (reading its small files into memory, within its share
// of the memory budget) and swaps it in for its site: requests already running finish on the
// old deploy, new ones get the new one.
func (e *service) switchTo(a follow.Active) {
	e.mu.Lock()
	prev := e.sites[a.Site]
	n := 1
	if e.hosts != nil {
		n = len(e.hosts.Names())
	}
	e.mu.Unlock()
	s, err := static.NewSite(a.ID, a.Manifest, e.cfg.Blobs, static.SiteOptions{Previous: prev, MemoryBudget: siteMemoryBudget(n)})
	if err != nil {
		e.log.Error("Cannot serve deploy", slog.String("site", a.Site), slog.Any("deploy", a.ID), slog.Any("err", err))
		return
	}
	e.mu.Lock()
	e.sites[a.Site] = s
	e.publishLocked()
	e.mu.Unlock()
	e.log.Info("Serving deploy", slog.String("site", a.Site), slog.Any("deploy", a.ID), slog.Int("files", len(a.Manifest.Files)), slog.Int64("memory_bytes", s.MemoryBytes()))
	// Redirectors send visitors only to edges that say they serve the current deploy: tell
	// them now rather than at the next tick, or every edge looks outdated for up to an interval
	// after each publish and visitors get 503s meanwhile.
	select {
	case e.beatNow <- struct{}{}:
	default:
	}
}

// setHosts takes the network's new host table: sites no longer in it stop being served.
func (e *service) setHosts(hosts *site.Hosts) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hosts = hosts
	for name := range e.sites {
		if !slices.Contains(hosts.Names(), name) {
			delete(e.sites, name)
		}
	}
	e.publishLocked()
	select { // receivers learn of the change within the interval
	case e.beatNow <- struct{}{}:
	default:
	}
}

// publishLocked gives the handler what it serves: the default site's deploy on every host until
// the network has sites, then each site's on its hosts. The handler's Sites is a copy, never
// changed once given.
func (e *service) publishLocked() {
	var held int64
	for _, s := range e.sites {
		held += s.MemoryBytes()
	}
	e.siteCounts.memory.Store(held)
	e.handler.SetSite(e.sites[site.DefaultSite])
	if e.hosts == nil {
		return
	}
	e.handler.SetSites(static.NewSites(e.hosts, maps.Clone(e.sites)).WithZone(e.zone, hostOf(e.cfg.PublicURL)))
}

// setZone takes the network's settings record (nil: removed): the CDN zone whose names the
// edge serves. A record the edge refuses counts as none.
func (e *service) setZone(body []byte) {
	zone := ""
	if body != nil {
		s, err := netconf.ParseSettings(body)
		if err != nil {
			e.log.Warn("Bad network settings; no CDN zone", slog.Any("err", err))
		}
		zone = s.CDNZone
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if zone != e.zone {
		e.zone = zone
		e.publishLocked()
		e.log.Info("CDN zone", slog.String("zone", zone))
		select { // DNS nodes and redirectors send visitors by the zone's names once told
		case e.beatNow <- struct{}{}:
		default:
		}
	}
}

// Zone returns the CDN zone the edge serves names under; "" for none.
func (e *service) Zone() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.zone
}

// servedOf returns the deploy that answers new requests of the named site (zero before the
// first).
func (e *service) servedOf(name string) site.DeployID {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sites[name]; s != nil {
		return s.ID()
	}
	return site.DeployID{}
}

// serving returns the deploy whose site answers new requests of the named site (zero before the
// first) and whether it is the site's current deploy. Heartbeats and the health endpoint report
// these rather than the follower's active deploy, which the follower sets before the site is
// built and swapped in, and which stays set when the site fails to build.
func (e *service) serving(name string) (served site.DeployID, synced bool) {
	served = e.servedOf(name)
	target := e.follower.StatusOf(name).Target
	return served, !target.IsZero() && served == target
}

// HandleEvent takes one event of the node; call it with every event, in order, from one goroutine.
func (e *service) HandleEvent(ev dt.Event) {
	if ev.Key == netconf.Key {
		e.handleSettings(ev)
		return
	}
	if err := e.follower.Handle(ev); err != nil {
		if e.metrics != nil {
			e.metrics.refused.Inc()
		}
		e.log.Warn("Deploy object refused", slog.String("key", ev.Key), slog.Any("err", err))
	}
}

// settingsLoadTimeout bounds the fetch of a settings record an event came without (a node with
// lazy bodies), which blocks the event loop.
const settingsLoadTimeout = 10 * time.Second

// handleSettings takes an event of the settings record.
func (e *service) handleSettings(ev dt.Event) {
	switch ev.Type {
	case dt.EventObjectRemoved:
		if e.cfg.Node.Has(ev.Key) {
			return // replaced (dt reports a removal, then the addition): keep the zone until then
		}
		e.setZone(nil)
	case dt.EventObjectAdded:
		body := []byte(ev.Object)
		if len(body) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), settingsLoadTimeout)
			var err error
			body, err = e.cfg.Node.Get(ctx, ev.Key)
			cancel()
			if err != nil {
				e.log.Warn("Network settings unavailable", slog.Any("err", err))
				return
			}
		}
		e.setZone(body)
	}
}

// Handler returns the HTTP handler serving visitors (and the health endpoint).
func (e *service) Handler() http.Handler { return e.handler }

// Server returns the HTTP server, to Serve on listeners.
func (e *service) Server() *httpserve.Server { return e.server }

// Status reports the deploy state for /status: the default site's, and every site's under
// "sites".
func (e *service) Status() follow.Status {
	s := e.follower.Status()
	s.Sites = e.follower.Sites()
	return s
}

// Drain marks the edge as going away: the next heartbeats say so and the health endpoint answers
// 503, so redirectors stop sending visitors before the listener closes.
func (e *service) Drain() { e.draining.Store(true) }

func (e *service) serveHealth(w http.ResponseWriter, r *http.Request) {
	name := site.DefaultSite
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if ss := e.handler.Sites(); ss != nil {
		var claimed bool
		if name, _, claimed = ss.Pick(r); !claimed {
			w.WriteHeader(http.StatusMisdirectedRequest)
			fmt.Fprintln(w, "no site here")
			return
		}
	}
	served, synced := e.serving(name)
	if !synced || e.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		if e.draining.Load() {
			fmt.Fprintln(w, "draining")
		} else {
			fmt.Fprintln(w, "syncing")
		}
		return
	}
	fmt.Fprintln(w, served)
}

// sendHeartbeats sends heartbeats until ctx ends, and a last one saying the edge drains; one goes
// out at once each time the edge starts serving a new deploy.
func (e *service) sendHeartbeats(ctx context.Context) {
	heartbeat.SendWhen(ctx, e.cfg.Node, e.cfg.HeartbeatInterval, e.beatNow, e.report, func(err error) {
		e.log.Warn("Heartbeat not sent", slog.Any("err", err))
	})
}

// report fills a heartbeat.
func (e *service) report(h *heartbeat.Heartbeat) {
	h.Version, h.Name = e.cfg.Version, e.cfg.Name
	h.PublicURL = e.cfg.PublicURL
	h.IPv4, h.IPv6 = e.cfg.IPv4, e.cfg.IPv6
	if !h.IPv4.IsValid() && !h.IPv6.IsValid() {
		h.IPv4, h.IPv6 = publicAddrs(e.cfg.Node.ObservedAddrs())
	}
	h.Location = e.cfg.Location
	if h.Location == nil && e.cfg.Locate != nil {
		h.Location = e.locate(h.IPv4, h.IPv6)
	}
	served, synced := e.serving(site.DefaultSite)
	if !served.IsZero() {
		h.Deploy = served.String()
	}
	h.Synced = synced
	e.reportSites(h)
	h.CDNZone = e.Zone()
	h.SiteSettings = true
	h.Draining = e.draining.Load()
	if n, b, err := e.cfg.Blobs.Count(usageMaxAge); err == nil {
		h.Objects, h.Bytes = n, b
	}
	if free, err := e.cfg.Blobs.DiskFree(); err == nil {
		h.DiskFree = free
	}
	h.Load = e.acct.load.sample()
	if e.cfg.CertExpiry != nil {
		if t := e.cfg.CertExpiry(); !t.IsZero() {
			h.CertExpiry = t.UnixMilli()
		}
	}
	if e.cfg.CertStates != nil {
		states := e.cfg.CertStates()
		h.SetCerts(states)
		e.countCerts(h.Certs, states)
	}
	if e.cfg.ACME != nil {
		h.ACME, h.ACMEDigest = e.cfg.ACME.Held()
	}
}

// countCerts keeps the certificate report's counts for the metrics: names, those without a
// valid certificate (a name given twice has one if either is valid), those past the list.
func (e *service) countCerts(c *heartbeat.Certs, states []heartbeat.CertState) {
	valid := make(map[string]bool, len(states))
	for _, s := range states {
		valid[s.Name] = valid[s.Name] || !s.NotAfter.IsZero()
	}
	invalid := 0
	for _, ok := range valid {
		if !ok {
			invalid++
		}
	}
	e.siteCounts.certNames.Store(int64(c.N))
	e.siteCounts.certInvalid.Store(int64(invalid))
	e.siteCounts.certsUnlisted.Store(int64(c.More))
}

// reportSites fills the heartbeat's per-site fields from the deploy each site of the table serves
// and its current one, and keeps the counts for the metrics.
func (e *service) reportSites(h *heartbeat.Heartbeat) {
	sites := e.follower.Sites()
	states := make([]heartbeat.SiteState, len(sites))
	lagging := 0
	for i, s := range sites {
		states[i].Site = s.Site
		if served := e.servedOf(s.Site); !served.IsZero() {
			states[i].Served = served.String()
		}
		if !s.Target.IsZero() {
			states[i].Current = s.Target.String()
		}
		if states[i].Current != "" && states[i].Served != states[i].Current {
			lagging++
		}
	}
	h.SetSites(states)
	e.siteCounts.sites.Store(int64(h.Sites))
	e.siteCounts.lagging.Store(int64(lagging))
	e.siteCounts.unlisted.Store(int64(h.LaggingMore))
}

// usageMaxAge is how old the blob store's count in a heartbeat may be: the store keeps it current
// for its own writes, and a walk of a large store on every beat would cost more than it tells.
const usageMaxAge = 10 * time.Minute

// locate returns where the edge's reported address is, asking Locate only when the address
// changed. IPv4 is looked up first: GeoIP databases place it better.
func (e *service) locate(v4, v6 netip.Addr) *heartbeat.Location {
	ip := v4
	if !ip.IsValid() {
		ip = v6
	}
	if !ip.IsValid() {
		return nil
	}
	if ip != e.located {
		e.located, e.locatedAt = ip, e.cfg.Locate(ip)
	}
	return e.locatedAt
}

// publicAddrs picks, from the addresses peers see this node at (most-seen first), the first
// public one of each family. Loopback, private (RFC 1918, RFC 4193), link-local and shared
// carrier-grade NAT (RFC 6598) addresses are no use to visitors elsewhere.
func publicAddrs(observed []netip.Addr) (v4, v6 netip.Addr) {
	for _, ip := range observed {
		ip = ip.Unmap()
		if !ip.IsGlobalUnicast() || ip.IsPrivate() || sharedNAT.Contains(ip) {
			continue
		}
		if ip.Is4() && !v4.IsValid() {
			v4 = ip
		} else if ip.Is6() && !v6.IsValid() {
			v6 = ip
		}
	}
	return v4, v6
}

// sharedNAT is RFC 6598's shared address space, used behind carrier-grade NAT.
var sharedNAT = netip.MustParsePrefix("100.64.0.0/10")

// loadMeter turns counters into the rates a heartbeat reports, over the time since the last one.
type loadMeter struct {
	requests, bytes, errors5xx atomic.Int64

	mu        sync.Mutex
	start     time.Time
	lastCPU   time.Duration
	lastReqs  int64
	lastBytes int64
	lastErrs  int64
}

func (m *loadMeter) sample() heartbeat.Load {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	secs := now.Sub(m.start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	reqs, bytes, errs := m.requests.Load(), m.bytes.Load(), m.errors5xx.Load()
	cpu := processCPU()
	l := heartbeat.Load{
		RequestsPS: float64(reqs-m.lastReqs) / secs,
		BytesPS:    float64(bytes-m.lastBytes) / secs,
		CPU:        min(1, max(0, (cpu-m.lastCPU).Seconds()/secs/float64(runtime.NumCPU()))),
	}
	if reqs > m.lastReqs {
		l.ErrorRate5xx = float64(errs-m.lastErrs) / float64(reqs-m.lastReqs)
	}
	m.start, m.lastCPU, m.lastReqs, m.lastBytes, m.lastErrs = now, cpu, reqs, bytes, errs
	return l
}

// processCPU returns the CPU time the process used so far (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// edgeMetrics are the edge's Prometheus metrics.
type edgeMetrics struct {
	refused prometheus.Counter
}

// gaugeCounts are what the last heartbeat reported, for the edge's gauges.
type gaugeCounts struct {
	sites, lagging, unlisted, memory      atomic.Int64
	certNames, certInvalid, certsUnlisted atomic.Int64
}

func newEdgeMetrics(reg prometheus.Registerer, h2s *h2.Stats, of *fdcache.Stats, c *gaugeCounts) (*edgeMetrics, error) {
	m := &edgeMetrics{
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge", Name: "objects_refused_total",
			Help: "Table objects of sites and deploys the edge refused as invalid: blobs, manifests, current pointers, site records (over site.MaxHosts hosts, say)."}),
	}
	cs := []prometheus.Collector{m.refused}
	for _, l := range []struct {
		name, help string
		v          *atomic.Uint64
	}{
		{"h2_streams_reaped_total", "HTTP/2 streams reset after SendTimeout without flow-control window.", &h2s.StreamsReaped},
		{"h2_stalled_conns_total", "HTTP/2 connections closed: every open stream without window for SendTimeout.", &h2s.StalledConns},
		{"h2_write_timeouts_total", "HTTP/2 connections closed: the client took nothing for SendTimeout.", &h2s.WriteTimeouts},
		{"h2_idle_conns_total", "HTTP/2 connections closed after IdleTimeout without a request.", &h2s.IdleConns},
		{"h2_control_floods_total", "HTTP/2 connections closed: too many control frames queued for a client that does not read.", &h2s.ControlFloods},
		{"h2_continuation_floods_total", "HTTP/2 connections closed: too many CONTINUATION frames in a header block.", &h2s.ContinuationFloods},
		{"h2_send_memory_waits_total", "Times an HTTP/2 connection waited for the send memory budget.", &h2s.SendMemoryWaits},
		{"open_files_hits_total", "Responses sent from a blob file kept open (static.HandlerConfig.OpenFiles).", &of.Hits},
		{"open_files_misses_total", "Responses whose blob file was opened for them, not found kept open.", &of.Misses},
		{"open_files_evicted_total", "Blob files closed, unused, to keep within the bound on files kept open.", &of.Evicted},
	} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge", Name: l.name, Help: l.help},
			func() float64 { return float64(l.v.Load()) }))
	}
	for _, g := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"open_files", "Blob files open to send responses: kept open between them, and being sent.", &of.Open},
		{"sites", "Sites of the network the edge serves, as its last heartbeat reported.", &c.sites},
		{"sites_lagging", "Sites whose current deploy the edge did not serve yet, as its last heartbeat reported.", &c.lagging},
		{"heartbeat_lagging_unlisted", "Lagging sites the last heartbeat counted in lagging_more, past heartbeat.MaxLagging or MaxLaggingBytes.", &c.unlisted},
		{"site_memory_bytes", "File data the served deploys of every site hold in memory, each within its share of static.DefaultMemoryBudget (at least MinSiteMemoryBudget).", &c.memory},
		{"cert_names", "Names the edge serves over HTTPS (the table's certificates', its own), as its last heartbeat reported.", &c.certNames},
		{"cert_names_invalid", "Names the edge serves without a valid certificate, as its last heartbeat reported.", &c.certInvalid},
		{"heartbeat_certs_unlisted", "Names the last heartbeat counted in certs.more, past heartbeat.MaxCertNames or MaxCertNamesBytes.", &c.certsUnlisted},
	} {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: "edge", Name: g.name, Help: g.help},
			func() float64 { return float64(g.v.Load()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: register metrics: %w", err)
		}
	}
	return m, nil
}
