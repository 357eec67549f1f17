package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dt-cdn/dt/dt"
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

// transient is a short-lived node that joins the network for one change or message: it dials the
// given peers, never listens, and keeps its data in a temporary directory removed at close. Its
// durability comes from the peers: a write is done once a peer acknowledged it.
type transient struct {
	n     *dt.Node
	dir   string
	wg    sync.WaitGroup
	peers *peerWatch
	// timeout is what explain reports as the bound of a wait that ran out; timeoutFlag names the
	// flag that set it, if one did.
	timeout     time.Duration
	timeoutFlag string

	closeOnce sync.Once
	closeErr  error
}

func openTransient(ctx context.Context, env *Env, f *clientFlags, master bool) (*transient, context.Context, error) {
	return openTransientWith(ctx, env, f, transientOptions{master: master})
}

// transientOptions extend a transient node beyond add, remove and send.
type transientOptions struct {
	master bool
	// lazy keeps records without fetching bodies over the inline limit (dt.Config.LazyBodies):
	// for commands that need the table's small records, not a site's file data.
	lazy bool
	// event sees every event, on the event goroutine.
	event func(dt.Event)
	// cacheDir, when set, keeps the node's copy of the table between runs, as dt publish does
	// (under a directory per network), so a run syncs only what changed since the last. When
	// another run holds it, a temporary directory serves instead.
	cacheDir string
}

// openTransientWith opens the node and returns it with a context derived from ctx that also ends
// once every peer has failed for good (see peerWatch); the command waits on that context and
// passes its failures through explain.
func openTransientWith(ctx context.Context, env *Env, f *clientFlags, o transientOptions) (*transient, context.Context, error) {
	master := o.master
	keys, err := loadKeys(f.keys, master)
	if err != nil {
		return nil, nil, err
	}
	log, err := newLogger(env.Stderr, f.logLevel, "text")
	if err != nil {
		return nil, nil, err
	}
	watch, ctx := newPeerWatch(ctx, f.peers)
	cfg := dt.LocalConfig() // fast redials: the command is short and waits on its first link
	cfg.Keys, cfg.Master, cfg.Peers, cfg.Logger = keys, master, f.peers, log
	cfg.Dial = watch.dialer(nil)
	// The data is a copy of the peers' (or dies with the command): fsync would buy nothing.
	cfg.NoSync = true
	cfg.LazyBodies = o.lazy
	var (
		n   *dt.Node
		dir string // removed at close; empty for the cache
	)
	if o.cacheDir != "" {
		table := keys.Network.TableID()
		cfg.DataDir = filepath.Join(o.cacheDir, hex.EncodeToString(table[:]))
		if n, err = dt.Open(cfg); err != nil {
			log.Info("Cache unusable; using a temporary one", slog.Any("err", err))
		}
	}
	if n == nil {
		if dir, err = os.MkdirTemp("", "dt-client-*"); err != nil {
			watch.stop()
			return nil, nil, fmt.Errorf("temporary data directory: %w", err)
		}
		cfg.DataDir = dir
		if n, err = dt.Open(cfg); err != nil {
			watch.stop()
			os.RemoveAll(dir)
			return nil, nil, err
		}
	}
	t := &transient{n: n, dir: dir, peers: watch, timeout: f.timeout, timeoutFlag: "--timeout"}
	events := n.Events() // before any write, so that its errors are on the channel
	t.wg.Go(func() {
		for ev := range events {
			if o.event != nil {
				o.event(ev)
			}
			watch.observe(ev)
		}
	})
	return t, ctx, nil
}

// explain says, for an error of a wait on the network under ctx (the context openTransientWith
// returned), what happened to each peer; other errors pass through unchanged.
func (t *transient) explain(ctx context.Context, err error) error {
	return t.peers.explain(ctx, err, t.timeout, t.timeoutFlag)
}

// close closes the node (flushing queued messages) and removes its data. Safe to call twice.
func (t *transient) close() error {
	t.closeOnce.Do(func() {
		err := t.n.Close()
		t.wg.Wait()
		if t.dir != "" {
			if rerr := os.RemoveAll(t.dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove temporary data: %w", rerr))
			}
		}
		t.closeErr = err
		t.peers.stop()
	})
	return t.closeErr
}
