package cli

import (
	"context"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/client"
)

// clientFlags are the flags of the commands that act through a transient node: add, remove, send.
type clientFlags struct {
	keys     string
	peers    stringList
	timeout  time.Duration
	logLevel string
}

func (f *clientFlags) register(fs *flagSet) {
	fs.StringVar(&f.keys, "keys", "", "`DIR` of keys written by dt keygen")
	fs.Var(&f.peers, "peer", "reach the network through the node at `ADDR` (host:port); repeatable; required")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after `DURATION`")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log `LEVEL` of the transient node on stderr: debug, info, warn or error")
}

// parse parses args, wants n arguments (named what, for the message) and checks the flags.
func (f *clientFlags) parse(fs *flagSet, args []string, n int, what string) error {
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(n, what); err != nil {
		return err
	}
	return f.check(fs)
}

func (f *clientFlags) check(fs *flagSet) error {
	if f.keys == "" {
		return fs.usageErrorf("--keys is required")
	}
	if len(f.peers) == 0 {
		return fs.usageErrorf("--peer is required")
	}
	if f.timeout <= 0 {
		return fs.usageErrorf("--timeout must be positive")
	}
	if err := checkPeerAddrs(f.peers); err != nil {
		return fs.usageErrorf("--peer: %v", err)
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return fs.usageErrorf("--log-level: %v", err)
	}
	return nil
}

// transient is the node of a command that joins the network for one change or message
// (client.Client), with what explain says about a wait that ran out.
type transient struct {
	c *client.Client
	n *dt.Node
	// timeout is what explain reports as the bound of a wait that ran out; timeoutFlag names the
	// flag that set it, if one did.
	timeout     time.Duration
	timeoutFlag string
}

func openTransient(ctx context.Context, env *Env, f *clientFlags, master bool) (*transient, context.Context, error) {
	return openTransientWith(ctx, env, f, transientOptions{master: master})
}

// transientOptions extend a transient node beyond add, remove and send.
type transientOptions struct {
	master bool
	// lazy keeps records without fetching bodies over the inline limit (client.Config.LazyBodies).
	lazy bool
	// event sees every event, on the event goroutine.
	event func(dt.Event)
	// cacheDir keeps the node's copy of the table between runs (client.Config.CacheDir).
	cacheDir string
}

// openTransientWith opens the node and returns it with a context derived from ctx that also ends
// once every peer has failed for good (client.Watch); the command waits on that context and
// passes its failures through explain.
func openTransientWith(ctx context.Context, env *Env, f *clientFlags, o transientOptions) (*transient, context.Context, error) {
	keys, err := loadKeys(f.keys, o.master)
	if err != nil {
		return nil, nil, err
	}
	log, err := newLogger(env.Stderr, f.logLevel, "text")
	if err != nil {
		return nil, nil, err
	}
	c, ctx, err := client.Open(ctx, client.Config{Keys: keys, Master: o.master, Peers: f.peers, LazyBodies: o.lazy,
		CacheDir: o.cacheDir, Events: o.event, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return &transient{c: c, n: c.Node(), timeout: f.timeout, timeoutFlag: "--timeout"}, ctx, nil
}

// explain says, for an error of a wait on the network under ctx (the context openTransientWith
// returned), what happened to each peer, and for a refused write that no grant could cover, that
// only a master may write it; other errors pass through unchanged.
func (t *transient) explain(ctx context.Context, err error) error {
	return explainMasterOnly(explainPeers(ctx, err, t.c.Watch(), t.timeout, t.timeoutFlag))
}

// close closes the node (flushing queued messages) and removes its data. Safe to call twice.
func (t *transient) close() error { return t.c.Close() }
