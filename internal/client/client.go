package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/dt-cdn/dt/dt"
)

// Config configures Open. Zero values mean the defaults given per field.
type Config struct {
	// Keys are the network's keys. A master node needs Keys.Master. Required.
	Keys dt.Keys
	// Master makes the node a master, which may write to the table; a plain node only reads and
	// sends messages.
	Master bool
	// Peers are the addresses (host:port) the node dials. Required.
	Peers []string
	// LazyBodies keeps records without fetching bodies over the inline limit
	// (dt.Config.LazyBodies): for commands that need the table's small records, not a site's file
	// data. False fetches every body, as a node that serves them does.
	LazyBodies bool
	// CacheDir, when set, keeps the node's copy of the table between runs, under a directory per
	// network, so that a run syncs only what changed since the last. When another run holds it
	// (or it is unusable), a temporary directory serves instead. Empty: always a temporary
	// directory, so every run syncs the whole table.
	CacheDir string
	// Events sees every event of the node, on the one goroutine that reads them, before the
	// watch does. The node's events queue behind it, so it must not block for long. Nil: none.
	Events func(dt.Event)
	// Dial dials the peers; the watch wraps it. Nil: a net.Dialer with DefaultDialTimeout.
	Dial DialFunc
	// Logger receives the node's logs. Nil discards them.
	Logger *slog.Logger
}

// Client is a node joined to the network for one command, and the watch of its peers.
type Client struct {
	node  *dt.Node
	dir   string // removed at close; empty for the cache
	watch *Watch
	wg    sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open opens the node and starts reading its events. It returns the client with a context
// derived from ctx that also ends, with ErrPeersFailed as its cause, once every peer has failed
// for good (see Watch): the command waits on that context. Open does not wait for a link; the
// command waits for what it needs (dt.Node.WaitSynced, for instance).
func Open(ctx context.Context, cfg Config) (*Client, context.Context, error) {
	if len(cfg.Peers) == 0 {
		return nil, nil, errors.New("client: Config.Peers is required")
	}
	watch, ctx := NewWatch(ctx, cfg.Peers)
	node, dir, err := openNode(cfg, watch)
	if err != nil {
		watch.Stop()
		return nil, nil, err
	}
	c := &Client{node: node, dir: dir, watch: watch}
	events := node.Events() // before any write, so that its errors are on the channel
	c.wg.Go(func() {
		for ev := range events {
			if cfg.Events != nil {
				cfg.Events(ev)
			}
			watch.Observe(ev)
		}
	})
	return c, ctx, nil
}

// openNode opens the client's node on dt.LocalConfig's timers (fast redials: the command is
// short and waits on its first link).
func openNode(cfg Config, watch *Watch) (*dt.Node, string, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc := dt.LocalConfig()
	nc.Keys, nc.Master, nc.Peers, nc.Logger = cfg.Keys, cfg.Master, cfg.Peers, log
	nc.Dial = watch.Dialer(cfg.Dial)
	nc.LazyBodies = cfg.LazyBodies
	return OpenNode(nc, cfg.CacheDir)
}

// OpenNode opens a node for a short-lived command on cfg: in cacheDir, under a directory per
// network, when cacheDir is set and usable (another run may hold it), and in a new temporary
// directory otherwise. It returns the temporary directory, for the caller to remove once the
// node is closed, or "" for the cache. It sets cfg.DataDir, and cfg.NoSync: the data is a copy
// of the peers' or dies with the command, so fsync would buy nothing. Open uses it; so do
// commands that need a node of their own making (publishing).
func OpenNode(cfg dt.Config, cacheDir string) (*dt.Node, string, error) {
	cfg.NoSync = true
	if cacheDir != "" {
		// A node that kept its table since the last run resumes from its cursor: only the
		// records written since travel, instead of a list of every record.
		table := cfg.Keys.Network.TableID()
		cfg.DataDir = filepath.Join(cacheDir, hex.EncodeToString(table[:]))
		n, err := dt.Open(cfg)
		if err == nil {
			return n, "", nil
		}
		if cfg.Logger != nil {
			cfg.Logger.Info("Cache unusable; using a temporary one", slog.Any("err", err))
		}
	}
	dir, err := os.MkdirTemp("", "dt-client-*")
	if err != nil {
		return nil, "", fmt.Errorf("temporary data directory: %w", err)
	}
	cfg.DataDir = dir
	n, err := dt.Open(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return n, dir, nil
}

// Node returns the client's node. It is closed by Close, not by the caller.
func (c *Client) Node() *dt.Node { return c.node }

// Watch returns the watch of the client's peers.
func (c *Client) Watch() *Watch { return c.watch }

// Close closes the node, which first flushes the messages queued on its links, waits for the
// event reader, and removes the temporary data. Safe to call twice; later calls return the first
// one's error.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		err := c.node.Close()
		c.wg.Wait()
		if c.dir != "" {
			if rerr := os.RemoveAll(c.dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove temporary data: %w", rerr))
			}
		}
		c.closeErr = err
		c.watch.Stop()
	})
	return c.closeErr
}
