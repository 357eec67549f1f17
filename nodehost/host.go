package nodehost

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dt-cdn/dt/dt"
)

// ErrStarted is returned by Subscribe and Run once Run has started or Close has closed the host:
// a consumer added then would miss events, and a host runs once.
var ErrStarted = errors.New("nodehost: already running or closed")

// Config configures a Host: the part of a node's configuration every role shares, named once by
// each role's Config as its Host field. Open does not modify it. The zero value (plus Node's
// required fields, Keys and DataDir) runs a node without an admin listener, logging nowhere.
type Config struct {
	// Node configures the dt node: keys, data directory, listeners, peers, timers. A nil
	// Node.Logger is replaced by Logger, a nil Node.Registerer by the host's registry, so that
	// the node's metrics are served on /metrics. A role may set what it always needs (a
	// redirector and a DNS node set Node.LazyBodies) and refuse what it never is (no role but a
	// plain node is a master); its Config says which.
	Node dt.Config

	// Admin is the address of the admin listener (host:port; port 0 picks a free one). It serves
	// /status, /metrics, /debug/pprof/, the address guard's /guard and /guard/unblock (what dt
	// guard calls) and the routes of AdminRoutes and Role.Routes. Empty: no admin listener. It
	// exposes heap contents and lifts blocks: bind it to loopback or a private network only.
	Admin string

	// AdminRoutes, when set, adds the process's own routes to the admin listener, before the
	// role's. Nil: none.
	AdminRoutes func(*http.ServeMux, *dt.Node)

	// DescribeError words a failure in an admin answer (POST /guard/unblock's "error") for a
	// person, as the dt command words its own errors. Nil: the error's text.
	DescribeError func(error) string

	// Logger receives the host's and the role's logs, and a line per event of the node. Nil
	// discards them.
	Logger *slog.Logger

	// Registry gathers the node's and the role's metrics, served on /metrics. Nil: a new
	// registry with the Go runtime and process collectors. Several hosts in one process need a
	// registry each: the node's metrics have fixed names.
	Registry *prometheus.Registry

	// Build describes the running binary, reported under "build" in /status. Nil reports null.
	Build any

	// Version names the build in the "Node serving" log line; an edge also reports it in its
	// heartbeats. Empty: an empty attribute, and no version in heartbeats.
	Version string

	// Opened, when set, is called once the node holds its data directory (its database lock),
	// before anything serves: the place to record this process as the directory's holder. Nil:
	// nothing is called.
	Opened func(*dt.Node)

	// Ready, when set, is called once, from Run, when every listener serves, with their bound
	// addresses (a :0 port resolved) and what the role serves visitors on. An error stops the
	// host as a failed role would. Nil: readiness is not reported.
	Ready func(Ready) error
}

// Ready names every address a hosted node serves on, once it serves.
type Ready struct {
	// ID is the node's identity.
	ID dt.NodeID
	// Listen are the node's peer listeners, resolved; empty when it only dials out.
	Listen []string
	// Admin is the admin listener, resolved; empty when there is none.
	Admin string
	// Serving is what the role serves visitors on; zero for a plain node.
	Serving Serving
}

// Serving is what a role serves visitors on.
type Serving struct {
	HTTP      string // plain HTTP listener, resolved; empty for none
	HTTPS     string // HTTPS listener, resolved; empty for none
	PublicURL string // where an edge tells redirectors to send visitors; empty for other roles
}

// Role is what a role adds to its host: admin routes, its part of /status, and the serving
// itself.
type Role struct {
	// Routes adds the role's routes to the admin listener. Nil: none.
	Routes func(*http.ServeMux)
	// Status fills the role's part of GET /status; it runs on the request's goroutine. Nil: none.
	Status func(*Status)
	// Serve runs the role until ctx ends and returns once everything it started has stopped.
	// It calls ready once with what it serves on, as soon as it serves; a role without
	// listeners of its own calls it first. An error before ctx ends stops the host; a nil
	// return before then leaves the node running until ctx ends (and reports it ready if Serve
	// did not). Nil: the node alone.
	Serve func(ctx context.Context, ready func(Serving) error) error
}

// Host is an open dt node with what every role shares around it. Open it, build the role on
// Node, subscribe the role's consumers, then Run; or Close it if the role cannot be built.
type Host struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	node   *dt.Node
	events <-chan dt.Event // the node's subscription taken at Open, read from Run

	mu        sync.Mutex
	consumers []dt.EventHandler // guarded by mu; fixed once started
	started   bool              // guarded by mu: Run or Close was called
}

// Open opens the node and subscribes to its events at once (dt.Node.Events), so that no message
// or error is missed; they wait in the subscription's queue until Run hands them to the
// consumers. The error of dt.Open is returned as it is, so that callers can tell a data directory
// locked by another process (bbolt's ErrTimeout).
func Open(cfg Config) (*Host, error) {
	h := &Host{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.reg == nil {
		h.reg = prometheus.NewRegistry()
		h.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if h.cfg.Node.Logger == nil {
		h.cfg.Node.Logger = h.log
	}
	if h.cfg.Node.Registerer == nil {
		h.cfg.Node.Registerer = h.reg
	}
	n, err := dt.Open(h.cfg.Node)
	if err != nil {
		return nil, err
	}
	h.node, h.events = n, n.Events()
	if cfg.Opened != nil {
		cfg.Opened(n)
	}
	return h, nil
}

// Node returns the open node.
func (h *Host) Node() *dt.Node { return h.node }

// Logger returns the host's logger (never nil).
func (h *Host) Logger() *slog.Logger { return h.log }

// Registerer returns where the role registers its metrics: the node's registerer, served on
// /metrics unless Config.Node.Registerer named another.
func (h *Host) Registerer() prometheus.Registerer { return h.cfg.Node.Registerer }

// Subscribe adds c to the consumers of the node's events, after those added before. The host
// calls c.HandleEvent with every event, in order, from one goroutine, never concurrently; it must
// return promptly, since every other consumer of the node waits meanwhile. It returns ErrStarted
// once Run or Close was called.
func (h *Host) Subscribe(c dt.EventHandler) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return ErrStarted
	}
	h.consumers = append(h.consumers, c)
	return nil
}

// start marks the host started and returns its consumers; false if it already was.
func (h *Host) start() ([]dt.EventHandler, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return nil, false
	}
	h.started = true
	return h.consumers, true
}

// Run serves the admin listener, hands events to the consumers and runs the role until ctx ends
// or the role fails, then closes everything in order (see the package documentation) and
// returns once it has stopped. Consumers get events only once the admin listener serves: an
// admin address that cannot be bound stops the host before any consumer waits on a role that
// will never run. A host runs once: a second Run returns ErrStarted.
func (h *Host) Run(ctx context.Context, role Role) (err error) {
	consumers, ok := h.start()
	if !ok {
		return ErrStarted
	}
	ready := Ready{ID: h.node.ID(), Listen: []string{}}
	for _, a := range h.node.Addrs() {
		ready.Listen = append(ready.Listen, a.String())
	}
	var admin *adminServer
	if h.cfg.Admin != "" {
		if admin, err = startAdmin(h.cfg.Admin, h.adminHandler(role), h.log); err != nil {
			return errors.Join(err, h.closeNode(nil))
		}
		ready.Admin = admin.addr()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.deliver(consumers)
	}()
	err = h.serve(ctx, role, ready)
	if admin != nil {
		err = errors.Join(err, admin.shutdown())
	}
	err = errors.Join(err, h.node.Close())
	<-done
	return err
}

// Close closes a host that will not Run (its role could not be built): the node closes and the
// events still queued are logged. Once Run or Close was called it does nothing: a running host
// stops when Run's context ends.
func (h *Host) Close() error {
	if _, ok := h.start(); !ok {
		return nil
	}
	return h.closeNode(nil)
}

// closeNode closes the node, handing the events still queued to consumers (none, when the role
// never ran) and logging them.
func (h *Host) closeNode(consumers []dt.EventHandler) error {
	err := h.node.Close()
	h.deliver(consumers)
	return err
}

// deliver logs every event and hands it to the consumers, until the node closes its channel.
func (h *Host) deliver(consumers []dt.EventHandler) {
	for ev := range h.events {
		logEvent(h.log, ev)
		for _, c := range consumers {
			c.HandleEvent(ev)
		}
	}
}

// serve runs the role until ctx ends or the role fails.
func (h *Host) serve(ctx context.Context, role Role, ready Ready) error {
	h.log.Info("Node serving", slog.String("version", h.cfg.Version), slog.String("node_id", ready.ID.String()), slog.Any("listen", ready.Listen),
		slog.String("admin", ready.Admin), slog.Any("peers", h.cfg.Node.Peers))
	var (
		once      sync.Once
		announced bool
	)
	announce := func(s Serving) (err error) {
		once.Do(func() {
			announced = true
			ready.Serving = s
			if h.cfg.Ready != nil {
				err = h.cfg.Ready(ready)
			}
		})
		return err
	}
	if role.Serve != nil {
		if err := role.Serve(ctx, announce); err != nil && ctx.Err() == nil {
			return err
		}
	}
	if ctx.Err() == nil && !announced {
		if err := announce(Serving{}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// Run opens a host, builds the role on its open node and runs it until ctx ends: Open, build,
// then Host.Run. build subscribes the role's consumers; when it fails, the host is closed and its
// error returned.
func Run(ctx context.Context, cfg Config, build func(*Host) (Role, error)) error {
	h, err := Open(cfg)
	if err != nil {
		return err
	}
	role, err := build(h)
	if err != nil {
		return errors.Join(err, h.Close())
	}
	return h.Run(ctx, role)
}
