package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/nodehost"
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
	p, cfg, err := newNodeProcess(env, &f)
	if err != nil {
		return err
	}
	return p.run(ctx, func(ctx context.Context) error { return nodehost.Run(ctx, cfg, rf.role) })
}

// runRole runs a role (dt edge, dt redirector, dt dns) as a process of the node's flags:
// newRole puts the host's configuration (newNodeProcess's) into the role's Config and makes the
// role, which then runs as nodeProcess.run runs it.
func runRole[R interface{ Run(context.Context) error }](ctx context.Context, env *Env, nf *nodeFlags, newRole func(nodehost.Config) (R, error)) error {
	p, host, err := newNodeProcess(env, nf)
	if err != nil {
		return err
	}
	r, err := newRole(host)
	if err != nil {
		return err
	}
	return p.run(ctx, r.Run)
}

// nodeProcess is what a command that runs a node does around it as a process: the log on
// stderr, the heap profile on SIGUSR2, the pid file in the data directory, the ready file and
// Env.NodeReady.
type nodeProcess struct {
	env *Env
	f   *nodeFlags
	log *slog.Logger
	// ready, when set, is told the bound addresses first (the load test's pipe to its parent).
	ready func(NodeInfo) error
	// pidWritten says the pid file is this process's, to remove at exit. Set through the host's
	// Opened, on the goroutine that runs the role, before it serves; read once the role returned.
	pidWritten bool
}

// newNodeProcess starts the process's log and returns the process with the host's
// configuration from the node's flags (hostConfig).
func newNodeProcess(env *Env, f *nodeFlags) (*nodeProcess, nodehost.Config, error) {
	log, err := newLogger(env.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		return nil, nodehost.Config{}, err
	}
	log.Info("Starting", readBuildInfo().logAttrs()...)
	logDescriptorLimit(log)
	p := &nodeProcess{env: env, f: f, log: log}
	cfg, err := p.hostConfig()
	return p, cfg, err
}

// hostConfig turns the node's flags into a host's configuration, with the process's hooks: the
// pid file once the node holds its directory, readiness to the ready file and Env.NodeReady, and
// the command's wording of errors in admin answers.
func (p *nodeProcess) hostConfig() (nodehost.Config, error) {
	f := p.f
	keys, err := loadKeys(f.keys, f.master)
	if err != nil {
		return nodehost.Config{}, err
	}
	cfg := dt.Config{}
	if f.local {
		cfg = dt.LocalConfig()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Keys, cfg.Master, cfg.DataDir = keys, f.master, f.data
	cfg.Listen, cfg.Peers = f.listen, f.peers
	cfg.Logger, cfg.Registerer = p.log, reg
	cfg.NoSync = f.noSync
	if f.linkMessageRate > 0 {
		cfg.LinkMessageRate, cfg.LinkMessageBurst = rate.Limit(f.linkMessageRate), max(1, int(2*f.linkMessageRate))
	}
	cfg.NewOriginBurst = f.newOriginBurst
	cfg.Guard.MaxHandshakes, cfg.Guard.MaxHandshakesPerSubnet = f.maxHandshakes, f.subnetHandshake
	cfg.Guard.NeverBlock, cfg.Guard.BlockLoopback = f.neverBlock, f.blockLoopback
	return nodehost.Config{
		Node:     cfg,
		Admin:    f.admin,
		Logger:   p.log,
		Registry: reg,
		Build:    readBuildInfo(),
		Version:  readBuildInfo().short(),
		Opened:   p.opened,
		Ready:    p.announce,
		// dt guard's answers read as the command's own errors do.
		DescribeError: sentence,
	}, nil
}

// opened records this process as the holder of the node's data directory.
func (p *nodeProcess) opened(*dt.Node) {
	if err := writePID(p.f.data); err != nil {
		p.log.Warn("Could not record this process in the data directory", slog.Any("err", err))
		return
	}
	p.pidWritten = true
}

// run runs a node's role with the heap-profile signal, and removes the pid and ready files once
// it has stopped. A data directory that another process holds is reported as such.
func (p *nodeProcess) run(ctx context.Context, role func(context.Context) error) (err error) {
	stopSignal := watchHeapSignal(p.f.profileDir, p.log)
	defer stopSignal()
	if p.f.readyFile != "" {
		// A ready file left by this run would tell a reader the node still serves.
		defer func() {
			if rerr := os.Remove(p.f.readyFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove ready file: %w", rerr))
			}
		}()
	}
	err = role(ctx)
	if p.pidWritten {
		removePID(p.f.data)
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return &lockedDir{dir: p.f.data, err: err}
	}
	return err
}

// announce reports the node ready with every bound address: to the load test's pipe, the ready
// file and Env.NodeReady, in that order.
func (p *nodeProcess) announce(r nodehost.Ready) error {
	info := NodeInfo{ID: r.ID.String(), Listen: r.Listen, Admin: r.Admin, PID: os.Getpid(),
		Serving: Serving{HTTP: r.Serving.HTTP, HTTPS: r.Serving.HTTPS, PublicURL: r.Serving.PublicURL}}
	if p.ready != nil {
		if err := p.ready(info); err != nil {
			return err
		}
	}
	if p.f.readyFile != "" {
		if err := writeReadyFile(p.f.readyFile, info); err != nil {
			return err
		}
	}
	if p.env.NodeReady != nil {
		p.env.NodeReady(info)
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

// loadKeys reads a keys directory; a plain node drops the master key even when the directory
// holds one, so it never signs anything.
func loadKeys(dir string, master bool) (dt.Keys, error) {
	keys, err := dt.LoadKeys(dir)
	if err != nil {
		return keys, err
	}
	if master && keys.Master == nil && keys.Publisher == nil {
		return keys, fmt.Errorf("%w: %s", ErrNoMasterKey, filepath.Join(dir, dt.MasterKeyFile))
	}
	if !master {
		keys.Master, keys.Publisher = nil, nil
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
