package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dns/geo"
	"github.com/dt-cdn/dt/dns/resolve"
	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/dns/synth"
	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/nodehost"
)

// Defaults of Config.
const (
	// DefaultGeoTTL is the TTL of GeoDNS answers: how long a resolver may keep sending visitors
	// to an edge that has since failed, against how often it asks again.
	DefaultGeoTTL = 20 * time.Second
	// MinGeoTTL is the shortest GeoDNS TTL accepted: below a second, resolvers round to zero
	// and ask for every visitor.
	MinGeoTTL = time.Second
	// DefaultGeoAnswers is how many addresses a GeoDNS answer holds at most: enough for a client
	// to try another when the first fails, few enough to keep the answer in one UDP packet.
	DefaultGeoAnswers = 4
)

// ErrInvalidConfig is returned by New for a Config it cannot run with, wrapped with every
// problem found.
var ErrInvalidConfig = errors.New("dns: invalid config")

// Config configures a DNS node. New checks it; it is not modified afterwards. Zero values mean
// the defaults given per field.
type Config struct {
	// Host configures the DNS node's dt node, admin listener (which adds /dns), logger, metrics
	// registry and process hooks (see nodehost.Config). Host.Node.LazyBodies is always set: a
	// DNS node needs the table's records (RRsets travel inline), never a site's file data.
	// Required: Host.Node.Keys and Host.Node.DataDir. A DNS node is never a master.
	Host nodehost.Config

	// Addr is the address (host:port) on which DNS is answered over UDP and TCP; port 53 needs
	// CAP_NET_BIND_SERVICE. Port 0 picks a free port, the same for both (see Status). Run binds it
	// before the node opens, so that a port in use fails the run at once. Required.
	Addr string
	// MaxUDPSize is the largest answer sent over UDP; larger ones are truncated and the client
	// retries over TCP. Zero: server.DefaultMaxUDPSize, which avoids IP fragmentation.
	MaxUDPSize int

	// GeoName is the site's public name, whose A and AAAA queries are answered with the nearest
	// live edges, chosen as the redirector chooses from the edges' heartbeats (GeoDNS). It must
	// lie in a published zone, whose own A and AAAA records for it answer when no edge is live.
	// Empty: no GeoDNS; the name is answered from its zone like any other.
	GeoName string
	// GeoIP is the path of a MaxMind-format database that locates clients (by EDNS Client
	// Subnet or the resolver's address); it is reloaded when the file changes. It needs
	// GeoName. Empty: every live edge is in each answer, up to GeoAnswers.
	GeoIP string
	// GeoTTL is the TTL of GeoDNS answers, at least MinGeoTTL. Zero: DefaultGeoTTL.
	GeoTTL time.Duration
	// GeoAnswers bounds the addresses in one GeoDNS answer. Zero: DefaultGeoAnswers.
	GeoAnswers int
	// HeartbeatInterval is the interval assumed for edges that do not announce theirs (edges of
	// releases before heartbeat.Heartbeat.IntervalMS); the others are judged by their own. An
	// edge leaves GeoDNS answers once its last heartbeat is geo.DefaultMaxAgeBeats intervals old
	// (the answers' TTL adds to that delay, so sooner than the redirector). Zero:
	// heartbeat.DefaultInterval.
	HeartbeatInterval time.Duration

	// CDNNameServers are the host names the CDN zone (dt network set --cdn-zone) is delegated
	// to, for the SOA and NS the node makes for it when no zone of that apex is published (see
	// package dns/synth). The node answers the CDN zone whenever the network has one, with or
	// without them. Empty: the SOA names the zone itself and NS queries get NODATA, unless a
	// zone of that apex is published.
	CDNNameServers []string

	// Resolvers are the recursive resolvers (host:port) with which the node answers dt resolve.
	// Empty: the nameservers of /etc/resolv.conf; when there are none, the node runs without
	// answering dt resolve, and logs why.
	Resolvers []string
}

// validate checks cfg and returns every problem at once.
func (cfg *Config) validate() error {
	var errs []error
	if cfg.Host.Node.DataDir == "" {
		errs = append(errs, errors.New("a data directory (Host.Node.DataDir) is required"))
	}
	if cfg.Host.Node.Master {
		errs = append(errs, errors.New("a DNS node is not a master"))
	}
	if cfg.Addr == "" {
		errs = append(errs, errors.New("an address to answer on (Addr) is required"))
	}
	if cfg.GeoName == "" && len(cfg.CDNNameServers) == 0 && cfg.GeoIP != "" {
		errs = append(errs, errors.New("a GeoIP database needs GeoName or CDNNameServers"))
	}
	for _, ns := range cfg.CDNNameServers {
		if zone.CanonicalName(ns) == "" {
			errs = append(errs, fmt.Errorf("the CDN name server %q is not a domain name", ns))
		}
	}
	if cfg.GeoName != "" && zone.CanonicalName(cfg.GeoName) == "" {
		errs = append(errs, fmt.Errorf("the GeoName %q is not a domain name", cfg.GeoName))
	}
	if cfg.GeoTTL != 0 && cfg.GeoTTL < MinGeoTTL {
		errs = append(errs, fmt.Errorf("a GeoTTL of %v is shorter than %v", cfg.GeoTTL, MinGeoTTL))
	}
	if cfg.GeoAnswers < 0 || cfg.HeartbeatInterval < 0 || cfg.MaxUDPSize < 0 {
		errs = append(errs, errors.New("negative GeoAnswers, HeartbeatInterval or MaxUDPSize"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Node is a DNS node: a dt node that answers DNS for the zones its table holds, GeoDNS for the
// site's name when configured, the network's CDN zone when it has one (package synth), ACME
// DNS-01 answers from the table, and dt resolve; its admin listener adds GET /dns.
//
// Run runs it once. Status is safe to call from any goroutine.
type Node struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	running *parts // guarded by mu: the running node's parts; nil before Run and after it
}

// New checks cfg and returns a Node that Run starts.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.GeoTTL == 0 {
		cfg.GeoTTL = DefaultGeoTTL
	}
	if cfg.GeoAnswers == 0 {
		cfg.GeoAnswers = DefaultGeoAnswers
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = heartbeat.DefaultInterval
	}
	cfg.Host.Node.LazyBodies = true
	log := cfg.Host.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, log: log}, nil
}

// Run binds the DNS address, opens the node, builds the DNS node on it, and answers DNS, the
// admin listener and the node until ctx ends or a part fails; then it stops them in order (DNS,
// the admin listener, the node) and returns once every goroutine it started has ended. A Node
// runs once.
func (d *Node) Run(ctx context.Context) error {
	// Bind first: a port in use fails the run before the node opens.
	l, err := server.Listen(d.cfg.Addr)
	if err != nil {
		return err
	}
	defer l.Close() // a no-op error once Serve has closed them
	h, err := nodehost.Open(d.cfg.Host)
	if err != nil {
		return err
	}
	p, err := d.build(h.Node(), l.Addr(), h.Registerer())
	if err != nil {
		return errors.Join(err, h.Close())
	}
	defer p.close()
	if err := h.Subscribe(p); err != nil {
		return errors.Join(err, h.Close())
	}
	d.setRunning(p)
	defer d.setRunning(nil)
	return h.Run(ctx, nodehost.Role{
		Routes: func(mux *http.ServeMux) { mux.HandleFunc("GET /dns", d.serveStatus) },
		Serve: func(ctx context.Context, ready func(nodehost.Serving) error) error {
			// DNS serves no visitors over HTTP: the node is ready once the bound sockets answer,
			// which they do from here on.
			if err := ready(nodehost.Serving{}); err != nil {
				return err
			}
			d.log.Info("DNS serving", slog.String("addr", l.Addr()), slog.String("geo_name", d.cfg.GeoName))
			return p.serve(ctx, l)
		},
	})
}

// parts are what a DNS node builds on its open node: the zones, the edges (an edgeset.Set, as the
// redirector tracks them), the CDN zone's answers, the table's ACME challenges, the DNS handler,
// and optionally GeoDNS for GeoName and the resolve responder.
type parts struct {
	addr      string
	store     *server.Store
	handler   *server.Handler
	edges     *edgeset.Set
	synth     *synth.Synth
	acme      *challenge.Set
	geoName   string
	geoDB     *geoip.DB          // nil without GeoIP
	responder *resolve.Responder // nil without a resolver
}

// build makes the parts on the open node n, answering on addr, with their metrics on reg. On
// error, what it opened is closed.
func (d *Node) build(n *dt.Node, addr string, reg prometheus.Registerer) (_ *parts, err error) {
	p := &parts{addr: addr, store: server.NewStore(d.log, n.Get), responder: d.responder(n)}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if d.cfg.GeoIP != "" {
		if p.geoDB, err = geoip.Open(d.cfg.GeoIP, geoip.Options{Logger: d.log}); err != nil {
			return nil, err
		}
	}
	// One choice for answers and for /dns: an edge leaves both once its heartbeat is 2.5
	// intervals old (the answers' TTL adds to the delay, so sooner than the redirector).
	sel := edgeset.SelectOptions{MaxAge: d.cfg.HeartbeatInterval * 5 / 2, MaxAgeBeats: geo.DefaultMaxAgeBeats, Fallback: true}
	p.edges, err = edgeset.New(edgeset.Config{Node: n, HeartbeatInterval: d.cfg.HeartbeatInterval,
		Select: sel, Registerer: reg, Logger: d.log})
	if err != nil {
		return nil, err
	}
	cfg := server.Config{Store: p.store, MaxUDPSize: d.cfg.MaxUDPSize, Registerer: reg, Logger: d.log}
	if d.cfg.GeoName != "" {
		if cfg.Dynamic, err = d.answerer(d.cfg.GeoName, p, sel); err != nil {
			return nil, err
		}
		p.geoName = cfg.Dynamic.Name()
	}
	if p.synth, err = d.buildSynth(n, p, sel); err != nil {
		return nil, err
	}
	if p.acme, err = challenge.NewSet(challenge.SetConfig{Registerer: reg, Logger: d.log}); err != nil {
		return nil, err
	}
	cfg.Synth, cfg.Challenges = p.synth, p.acme.TXT
	if p.handler, err = server.NewHandler(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// answerer makes the GeoDNS answerer for name, choosing among p's edges with sel.
func (d *Node) answerer(name string, p *parts, sel edgeset.SelectOptions) (*geo.Answerer, error) {
	gcfg := geo.Config{Name: name, Edges: p.edges.Edges, TTL: d.cfg.GeoTTL, MaxAnswers: d.cfg.GeoAnswers, Select: sel}
	if p.geoDB != nil {
		gcfg.Geo = p.geoDB
	}
	return geo.New(gcfg)
}

// buildSynth makes the CDN zone's answers on p's edges.
func (d *Node) buildSynth(n *dt.Node, p *parts, sel edgeset.SelectOptions) (*synth.Synth, error) {
	// The answerer's own name is never asked for: synth answers through AnswerSite, naming the
	// site's name itself. "invalid." is reserved for such a use (RFC 6761 §6.4).
	a, err := d.answerer("invalid.", p, sel)
	if err != nil {
		return nil, err
	}
	return synth.New(synth.Config{View: p.edges.View, Geo: a, Select: a.Options(), NameServers: d.cfg.CDNNameServers,
		Load: n.Get, Held: n.Has, Logger: d.log})
}

// responder builds the node's answering side of dt resolve. Without a usable resolver it
// returns nil and logs why: the node then runs without answering.
func (d *Node) responder(n *dt.Node) *resolve.Responder {
	var stub *resolve.Stub
	if len(d.cfg.Resolvers) > 0 {
		stub = &resolve.Stub{Servers: d.cfg.Resolvers}
	} else {
		var err error
		if stub, err = resolve.SystemStub(""); err != nil {
			d.log.Warn("No resolver; this node will not answer dt resolve", slog.Any("err", err))
			return nil
		}
	}
	resp, err := resolve.NewResponder(resolve.ResponderConfig{Node: n, Self: n.ID(), Lookup: stub.Lookup, Logger: d.log})
	if err != nil {
		d.log.Warn("Resolve responder not started", slog.Any("err", err))
		return nil
	}
	return resp
}

// HandleEvent passes one of the node's events on; call it with every event, in order, from one
// goroutine.
func (p *parts) HandleEvent(ev dt.Event) {
	p.store.HandleEvent(ev)
	p.synth.HandleEvent(ev)
	p.acme.HandleEvent(ev)
	p.edges.HandleEvent(ev)
	if p.responder != nil {
		p.responder.HandleEvent(ev)
	}
}

// serve answers DNS on l until ctx ends, with the edge tracking, the GeoIP file watch and the
// resolve responder beside it; any of them failing stops all. It returns when all have ended.
func (p *parts) serve(ctx context.Context, l *server.Listeners) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			cancel()
		})
	}
	run(func(ctx context.Context) error { return server.Serve(ctx, p.handler, l) })
	run(p.edges.Run)
	if p.geoDB != nil {
		run(p.geoDB.Watch)
	}
	if p.responder != nil {
		run(p.responder.Run)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// close releases what build opened.
func (p *parts) close() {
	if p.geoDB != nil {
		p.geoDB.Close()
	}
}
