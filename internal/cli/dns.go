package cli

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dns/geo"
	"github.com/dt-cdn/dt/dns/resolve"
	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
)

// dnsFlags are dt dns's own flags, beside the node's.
type dnsFlags struct {
	resolverFlags
	addr       string
	maxUDP     int
	geoName    string
	geoip      string
	geoTTL     time.Duration
	geoAnswers int
	heartbeat  time.Duration
}

func runDNS(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		df dnsFlags
	)
	fs := newFlagSet(env, "dns", "dt dns --keys DIR --data DATADIR --peer ADDR... --dns ADDR [--listen ADDR] [--admin ADDR] [--geo-name NAME [--geoip FILE.mmdb] [--geo-ttl 20s]] [--resolver ADDR]...",
		"Runs a DNS node: a dt node that answers DNS over UDP and TCP on --dns, authoritatively, for\n"+
			"the zones its table holds (written by dt dns-publish). Every DNS node of a network answers\n"+
			"alike, and one that was offline catches up when it reconnects.\n"+
			"With --geo-name, A and AAAA queries for the site's public name are answered with the\n"+
			"nearest live edges, chosen as the redirector chooses, from the edges' heartbeats; the\n"+
			"client is located by EDNS Client Subnet or the resolver's address (--geoip). The name must\n"+
			"lie in a published zone; its own A/AAAA records there answer when no edge is live.\n"+
			"The node also answers dt resolve with --resolver (or the system's resolvers). The admin\n"+
			"listener adds /dns (the zones and, with --geo-name, the edges).")
	nf.register(fs)
	df.resolverFlags.register(fs)
	fs.StringVar(&df.addr, "dns", "", "answer DNS on `ADDR` over UDP and TCP (host:port; port 53 needs CAP_NET_BIND_SERVICE); required")
	fs.IntVar(&df.maxUDP, "max-udp-size", server.DefaultMaxUDPSize, "largest UDP answer in `BYTES`; larger ones are truncated and retried over TCP")
	fs.StringVar(&df.geoName, "geo-name", "", "answer A and AAAA for `NAME` (the site's public name) with the nearest live edges")
	fs.StringVar(&df.geoip, "geoip", "", "locate clients with the MaxMind-format database `FILE.mmdb` (reloaded when the file changes); without it every live edge is in each answer")
	fs.DurationVar(&df.geoTTL, "geo-ttl", 20*time.Second, "`TTL` of GeoDNS answers: how long resolvers may keep an edge that has since failed")
	fs.IntVar(&df.geoAnswers, "geo-answers", 4, "at most `N` addresses in a GeoDNS answer")
	fs.DurationVar(&df.heartbeat, "heartbeat-interval", 2*time.Second, "the heartbeat `INTERVAL` to assume for edges older than this release, which do not announce theirs")
	if err := parsePlainNode(fs, args, &nf, "a DNS node"); err != nil {
		return err
	}
	switch {
	case df.addr == "":
		return fs.usageErrorf("--dns is required")
	case df.geoName == "" && df.geoip != "":
		return fs.usageErrorf("--geoip needs --geo-name")
	case df.geoName != "" && zone.CanonicalName(df.geoName) == "":
		return fs.usageErrorf("--geo-name %q is not a domain name", df.geoName)
	case df.geoTTL < time.Second || df.geoAnswers < 1 || df.heartbeat <= 0:
		return fs.usageErrorf("--geo-ttl must be at least 1s, --geo-answers and --heartbeat-interval positive")
	}
	// Bind first: a port in use fails the command before the node opens.
	listeners, err := server.Listen(df.addr)
	if err != nil {
		return err
	}
	defer listeners.Close() // a no-op error once Serve has closed them

	svc := newLater[dnsService]()
	events := &eventBuffer{}
	var reg prometheus.Registerer
	hooks := nodeHooks{
		// A DNS node needs the table's records, not a site's file data; RRsets travel inline.
		config: func(c *dt.Config) { c.LazyBodies, reg = true, c.Registerer },
		event:  events.handle,
		admin: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /dns", func(w http.ResponseWriter, r *http.Request) {
				s := svc.get()
				if s == nil {
					http.Error(w, "starting", http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				_ = enc.Encode(s.status())
			})
		},
	}
	hooks.work = func(ctx context.Context, n *dt.Node, log *slog.Logger, _ func(Serving) error) error {
		s, err := df.start(n, listeners.Addr(), reg, log)
		if err != nil {
			return err
		}
		defer s.close()
		svc.set(s)
		events.attach(s.handleEvent)
		log.Info("DNS serving", slog.String("addr", listeners.Addr()), slog.String("geo_name", df.geoName))
		return s.serve(ctx, listeners)
	}
	return serveNode(ctx, env, &nf, hooks)
}

// eventBuffer holds a node's events until the service that needs every one of them exists (it is
// built on the open node), then hands them over in order and passes the rest straight through.
// Unlike waiting on the event goroutine, it never blocks the node's event loop, so a node whose
// start fails before the service exists still closes.
type eventBuffer struct {
	mu      sync.Mutex
	pending []dt.Event     // guarded by mu: events before attach
	target  func(dt.Event) // guarded by mu: set by attach once pending is drained
}

// handle takes one event, on the node's event goroutine.
func (b *eventBuffer) handle(ev dt.Event) {
	b.mu.Lock()
	target := b.target
	if target == nil {
		b.pending = append(b.pending, ev)
	}
	b.mu.Unlock()
	if target != nil {
		target(ev)
	}
}

// attach replays the held events into f, in order, then routes every later event to it. Events
// that arrive during the replay join the queue and are replayed too; f is never called by two
// goroutines at once.
func (b *eventBuffer) attach(f func(dt.Event)) {
	for {
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 {
			b.target = f
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		for _, ev := range batch {
			f(ev)
		}
	}
}

// dnsService is what dt dns runs on its node: the zones, the DNS handler, and optionally GeoDNS
// (on the redirector's edge tracking) and the resolve responder.
type dnsService struct {
	addr      string
	store     *server.Store
	handler   *server.Handler
	edges     *edgeset.Set // nil without --geo-name
	geoName   string
	geoDB     *geoip.DB          // nil without --geoip
	responder *resolve.Responder // nil without a resolver
}

// start builds the service on the open node.
func (df *dnsFlags) start(n *dt.Node, addr string, reg prometheus.Registerer, log *slog.Logger) (*dnsService, error) {
	s := &dnsService{addr: addr, store: server.NewStore(log, n.Get), responder: df.responder(n, log)}
	cfg := server.Config{Store: s.store, MaxUDPSize: df.maxUDP, Registerer: reg, Logger: log}
	if df.geoName != "" {
		if df.geoip != "" {
			db, err := geoip.Open(df.geoip, geoip.Options{Logger: log})
			if err != nil {
				return nil, err
			}
			s.geoDB = db
		}
		// An edgeset.Set follows the heartbeats and the current deploy; GeoDNS asks it for the
		// edges and chooses among them with edgeset.Select.
		// One choice for answers and for /dns: an edge leaves both once its heartbeat is 2.5
		// intervals old (the answers' TTL adds to the delay, so sooner than the redirector).
		sel := edgeset.SelectOptions{MaxAge: df.heartbeat * 5 / 2, MaxAgeBeats: geo.DefaultMaxAgeBeats}
		rcfg := edgeset.Config{Node: n, HeartbeatInterval: df.heartbeat, Select: sel, Registerer: reg, Logger: log}
		edges, err := edgeset.New(rcfg)
		if err != nil {
			s.close()
			return nil, err
		}
		gcfg := geo.Config{Name: df.geoName, Edges: edges.Edges, TTL: df.geoTTL, MaxAnswers: df.geoAnswers,
			Select: sel}
		if s.geoDB != nil {
			gcfg.Geo = s.geoDB
		}
		a, err := geo.New(gcfg)
		if err != nil {
			s.close()
			return nil, err
		}
		s.edges, s.geoName, cfg.Dynamic = edges, a.Name(), a
	}
	h, err := server.NewHandler(cfg)
	if err != nil {
		s.close()
		return nil, err
	}
	s.handler = h
	return s, nil
}

func (s *dnsService) handleEvent(ev dt.Event) {
	s.store.HandleEvent(ev)
	if s.edges != nil {
		s.edges.HandleEvent(ev)
	}
	if s.responder != nil {
		s.responder.HandleEvent(ev)
	}
}

// serve answers DNS until ctx ends, with the edge tracking, the GeoIP file watch and the resolve
// responder beside it; any of them failing stops all.
func (s *dnsService) serve(ctx context.Context, l *server.Listeners) error {
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
	run(func(ctx context.Context) error { return server.Serve(ctx, s.handler, l) })
	if s.edges != nil {
		run(s.edges.Run)
	}
	if s.geoDB != nil {
		run(s.geoDB.Watch)
	}
	if s.responder != nil {
		run(s.responder.Run)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *dnsService) close() {
	if s.geoDB != nil {
		s.geoDB.Close()
	}
}

// dnsStatus is the body of GET /dns.
type dnsStatus struct {
	Addr    string               `json:"addr"`
	Zones   int                  `json:"zones"`
	RRsets  int                  `json:"rrsets"`
	GeoName string               `json:"geo_name,omitempty"`
	Edges   []edgeset.EdgeStatus `json:"edges,omitempty"`
	Deploy  string               `json:"current_deploy,omitempty"`
}

func (s *dnsService) status() dnsStatus {
	st := dnsStatus{Addr: s.addr, GeoName: s.geoName}
	st.Zones, st.RRsets = s.store.Counts()
	if s.edges != nil {
		rs := s.edges.Status()
		st.Edges, st.Deploy = rs.Edges, rs.Current
	}
	return st
}
