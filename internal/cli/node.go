package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/connlimit"
)

// nodeFlags are the flags of `dt node`, shared with the load test's node processes.
type nodeFlags struct {
	keys       string
	data       string
	master     bool
	listen     stringList
	peers      stringList
	admin      string
	logLevel   string
	logFormat  string
	profileDir string
	local      bool
	noSync     bool
	readyFile  string

	// Limits of the dt port; zero means dt's default.
	linkMessageRate float64
	newOriginBurst  int
	maxHandshakes   int
	subnetHandshake int
	neverBlock      prefixList
	blockLoopback   bool
}

func (f *nodeFlags) register(fs *flagSet) {
	fs.StringVar(&f.keys, "keys", "", "`DIR` of keys written by dt keygen (network.key, master.pub; master.key for --master)")
	fs.StringVar(&f.data, "data", "", "`DATADIR` holding the node's identity, database and blobs (created if missing)")
	fs.Var(&f.listen, "listen", "accept peers on `ADDR` (host:port, [::1]:port for IPv6); repeatable; none: dial out only")
	fs.Var(&f.peers, "peer", "dial the peer at `ADDR`; repeatable")
	fs.StringVar(&f.admin, "admin", "", "serve /status, /metrics, /guard (dt guard) and /debug/pprof/ on `ADDR` (off unless given; keep it on loopback)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL` on stderr: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&f.profileDir, "profile-dir", ".", "`DIR` where SIGUSR2 writes heap-<unix-nanos>.pprof")
	fs.BoolVar(&f.local, "local", false, "use fast timers for nodes on one machine (dt.LocalConfig)")
	fs.BoolVar(&f.noSync, "no-sync", false, "skip fsync: faster writes, but a crash may lose or corrupt the data (tests and benchmarks only)")
	fs.Float64Var(&f.linkMessageRate, "link-message-rate", 0, "flooded messages one neighbour may deliver per second, burst twice that (`RATE`; 0: 1000)")
	fs.IntVar(&f.newOriginBurst, "new-origin-burst", 0, "origins not known yet that one neighbour may introduce at once, then one per second (`N`; 0: 64)")
	fs.IntVar(&f.maxHandshakes, "max-handshakes", 0, "handshakes in flight on the dt port, a quarter reserved for known peers (`N`; 0: 256)")
	fs.IntVar(&f.subnetHandshake, "handshakes-per-subnet", 0, "handshakes in flight from one IPv4 /24 or IPv6 /48 (`N`; 0: max-handshakes/16)")
	fs.Var(&f.neverBlock, "never-block", "never block, rate limit or refuse for load the addresses in `CIDR` (an address or a prefix,\n"+
		"such as your own nodes and monitoring); repeatable. Loopback is not blocked either, unless --block-loopback")
	fs.BoolVar(&f.blockLoopback, "block-loopback", false, "block loopback addresses (127.0.0.0/8, ::1) like any other: for peers that reach\n"+
		"this node through a proxy or tunnel on the same machine")
	fs.StringVar(&f.readyFile, "ready-file", "", "once every listener serves, write their bound addresses (a :0 port resolved) as JSON to `FILE`,\nreplacing it atomically; removed at a clean exit")
}

// registerMaster adds --master, which only `dt node` takes: an edge, a redirector and a DNS node
// are never masters.
func (f *nodeFlags) registerMaster(fs *flagSet) {
	fs.BoolVar(&f.master, "master", false, "run as a master, which may add and remove objects (needs DIR/master.key)")
}

// check validates the flags that parsing alone cannot.
func (f *nodeFlags) check(fs *flagSet) error {
	if f.keys == "" {
		return fs.usageErrorf("--keys is required")
	}
	if f.data == "" {
		return fs.usageErrorf("--data is required")
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return fs.usageErrorf("--log-level: %v", err)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return fs.usageErrorf("--log-format: %q is not text or json", f.logFormat)
	}
	if f.linkMessageRate < 0 || f.newOriginBurst < 0 || f.maxHandshakes < 0 || f.subnetHandshake < 0 {
		return fs.usageErrorf("--link-message-rate, --new-origin-burst, --max-handshakes and --handshakes-per-subnet cannot be negative")
	}
	return nil
}

func runNode(ctx context.Context, args []string, env *Env) error {
	var (
		f  nodeFlags
		rf resolverFlags
	)
	fs := newFlagSet(env, "node", "dt node --keys DIR --data DATADIR [--master] [--listen ADDR]... [--peer ADDR]... [--admin ADDR] [flags]",
		"Runs a node until SIGINT or SIGTERM, then closes it cleanly. Every event (started,\n"+
			"object_added, object_removed, message_received, error) is logged on stderr.\n"+
			"SIGUSR2 writes a heap profile for `go tool pprof`. The node answers dt resolve.")
	f.register(fs)
	f.registerMaster(fs)
	rf.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	return serveNode(ctx, env, &f, rf.nodeHooks())
}

// nodeHooks let the load test extend a node without a second copy of its lifecycle.
type nodeHooks struct {
	// event sees every event after it is logged, on the event goroutine.
	event func(dt.Event)
	// status fills the load test's part of /status.
	status func(*nodeStatus)
	// ready is called with the bound addresses once the node serves.
	ready func(NodeInfo) error
	// work runs once the node serves, until it returns or ctx ends; an error stops the node.
	// It is given the function that reports the node ready (see serves).
	work func(ctx context.Context, n *dt.Node, log *slog.Logger, up func(Serving) error) error
	// serves says that work opens listeners of its own (for visitors): the node is reported
	// ready (ready, Env.NodeReady, --ready-file) only when work calls up with their addresses,
	// so that the report names every listener. Without it the node is reported ready before
	// work starts, and up does nothing.
	serves bool
	// config adjusts the node's configuration before it opens.
	config func(*dt.Config)
	// admin adds routes to the admin server.
	admin func(*http.ServeMux)
	// release is called once the node has stopped, whether or not work ran (an admin listener
	// that could not bind stops the node before it): it settles whatever the event hook waits
	// for, so that the event goroutine can finish.
	release func()
}

// serveNode runs a node with its event log, admin server and heap-profile signal until ctx ends
// or hooks.work fails. Shutdown order: the admin server first (no request sees a closed node),
// then the node, whose Close ends the event channel, then the goroutines that read it.
func serveNode(ctx context.Context, env *Env, f *nodeFlags, hooks nodeHooks) error {
	log, err := newLogger(env.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	log.Info("Starting", readBuildInfo().logAttrs()...)
	logDescriptorLimit(log)
	keys, err := loadKeys(f.keys, f.master)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := dt.Config{}
	if f.local {
		cfg = dt.LocalConfig()
	}
	cfg.Keys, cfg.Master, cfg.DataDir = keys, f.master, f.data
	cfg.Listen, cfg.Peers = f.listen, f.peers
	cfg.Logger, cfg.Registerer = log, reg
	cfg.NoSync = f.noSync
	if f.linkMessageRate > 0 {
		cfg.LinkMessageRate, cfg.LinkMessageBurst = rate.Limit(f.linkMessageRate), max(1, int(2*f.linkMessageRate))
	}
	cfg.NewOriginBurst = f.newOriginBurst
	cfg.Guard.MaxHandshakes, cfg.Guard.MaxHandshakesPerSubnet = f.maxHandshakes, f.subnetHandshake
	cfg.Guard.NeverBlock, cfg.Guard.BlockLoopback = f.neverBlock, f.blockLoopback
	if hooks.config != nil {
		hooks.config(&cfg)
	}
	n, err := dt.Open(cfg)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return &lockedDir{dir: f.data, err: err}
	}
	if err != nil {
		return err
	}
	if err := writePID(f.data); err != nil {
		log.Warn("Could not record this process in the data directory", slog.Any("err", err))
	}
	defer removePID(f.data)
	var wg sync.WaitGroup
	events := n.Events() // at once: messages and errors before the first call are not on it
	wg.Go(func() {
		for ev := range events {
			logEvent(log, ev)
			if hooks.event != nil {
				hooks.event(ev)
			}
		}
	})
	srv := &nodeServer{env: env, f: f, hooks: hooks, n: n, gatherer: reg, log: log}
	err = srv.serve(ctx)
	err = errors.Join(err, n.Close())
	if hooks.release != nil {
		hooks.release()
	}
	wg.Wait()
	return err
}

// nodeServer is an open node's admin server, heap-profile signal and work hook.
type nodeServer struct {
	env      *Env
	f        *nodeFlags
	hooks    nodeHooks
	n        *dt.Node
	gatherer prometheus.Gatherer
	log      *slog.Logger
}

// serve serves until ctx ends or the work hook fails.
func (s *nodeServer) serve(ctx context.Context) (err error) {
	info := NodeInfo{ID: s.n.ID().String(), Listen: []string{}, PID: os.Getpid()}
	for _, a := range s.n.Addrs() {
		info.Listen = append(info.Listen, a.String())
	}
	if s.f.admin != "" {
		routes := func(mux *http.ServeMux) {
			guardRoutes(mux, s.n, s.log)
			if s.hooks.admin != nil {
				s.hooks.admin(mux)
			}
		}
		admin, err := startAdmin(s.f.admin, s.status, s.gatherer, routes, s.log)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, admin.shutdown()) }()
		info.Admin = admin.addr()
	}
	stopSignal := watchHeapSignal(s.f.profileDir, s.log)
	defer stopSignal()

	s.log.Info("Node serving", slog.String("version", readBuildInfo().short()), slog.String("node_id", info.ID), slog.Any("listen", info.Listen),
		slog.String("admin", info.Admin), slog.Any("peers", []string(s.f.peers)))
	if s.f.readyFile != "" {
		// A ready file left by this run would tell a reader the node still serves.
		defer func() {
			if rerr := os.Remove(s.f.readyFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove ready file: %w", rerr))
			}
		}()
	}
	var once sync.Once
	up := func(sv Serving) (err error) {
		once.Do(func() { err = s.announce(info, sv) })
		return err
	}
	if !s.hooks.serves {
		if err := up(Serving{}); err != nil {
			return err
		}
		up = func(Serving) error { return nil }
	}
	if s.hooks.work != nil {
		if err := s.hooks.work(ctx, s.n, s.log, up); err != nil && ctx.Err() == nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// announce reports the node ready with every bound address: to the ready hook, the ready file
// and Env.NodeReady, in that order.
func (s *nodeServer) announce(info NodeInfo, sv Serving) error {
	info.Serving = sv
	if s.hooks.ready != nil {
		if err := s.hooks.ready(info); err != nil {
			return err
		}
	}
	if s.f.readyFile != "" {
		if err := writeReadyFile(s.f.readyFile, info); err != nil {
			return err
		}
	}
	if s.env.NodeReady != nil {
		s.env.NodeReady(info)
	}
	return nil
}

// writeReadyFile writes info as JSON to path through a temporary file in the same directory
// renamed over it, so a reader polling for the file never sees it half written.
func writeReadyFile(path string, info NodeInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", werr)
	}
	return nil
}

// status is the body of GET /status.
func (s *nodeServer) status() nodeStatus {
	st := nodeStatus{Status: s.n.Status(), Build: readBuildInfo()}
	st.LinkBytesReceived, st.LinkBytesSent = s.n.WireBytes()
	if s.hooks.status != nil {
		s.hooks.status(&st)
	}
	return st
}

// loadKeys reads a keys directory; a plain node drops the master key even when the directory
// holds one, so it never signs anything.
func loadKeys(dir string, master bool) (dt.Keys, error) {
	keys, err := dt.LoadKeys(dir)
	if err != nil {
		return keys, err
	}
	if master && keys.Master == nil {
		return keys, fmt.Errorf("%w: %s", ErrNoMasterKey, filepath.Join(dir, dt.MasterKeyFile))
	}
	if !master {
		keys.Master = nil
	}
	return keys, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch s {
	case "debug", "info", "warn", "error":
		return l, l.UnmarshalText([]byte(s))
	}
	return l, fmt.Errorf("%q is not debug, info, warn or error", s)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// maxLoggedObject bounds how much of an object or message one log line shows.
const maxLoggedObject = 200

// logEvent logs one event with stable keys: type, key, from, origin, err, object.
func logEvent(log *slog.Logger, ev dt.Event) {
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("type", ev.Type.String())}
	if ev.Key != "" {
		attrs = append(attrs, slog.String("key", ev.Key))
	}
	if ev.From != (dt.NodeID{}) {
		attrs = append(attrs, slog.Any("from", ev.From))
	}
	if ev.Origin != "" {
		attrs = append(attrs, slog.String("origin", ev.Origin))
	}
	if ev.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Any("err", ev.Err))
	}
	if len(ev.Object) > 0 {
		attrs = append(attrs, slog.String("object", truncate(string(ev.Object), maxLoggedObject)))
	}
	log.LogAttrs(context.Background(), level, "Event", attrs...)
}

// truncate shortens s to at most n bytes plus an ellipsis, never splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// logDescriptorLimit raises the soft descriptor limit to the hard limit where the Go runtime has
// not (it does at start on every Unix), and logs both: a server short of descriptors stops
// accepting peers and visitors alike, and the limit is the first thing to look at.
func logDescriptorLimit(log *slog.Logger) {
	soft, hard, err := connlimit.RaiseDescriptorLimit()
	if err != nil && soft == 0 {
		log.Debug("No descriptor limit", slog.Any("err", err))
		return
	}
	if err != nil {
		log.Warn("Descriptor limit not raised", slog.Uint64("soft", soft), slog.Uint64("hard", hard), slog.Any("err", err))
		return
	}
	log.Info("Descriptor limit", slog.Uint64("soft", soft), slog.Uint64("hard", hard))
}
