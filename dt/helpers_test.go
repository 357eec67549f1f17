package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// testKeys returns fresh keys for a test network: a network key and one master.
func testKeys(t testing.TB) Keys {
	t.Helper()
	var k Keys
	if _, err := rand.Read(k.Network[:]); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.Masters = []ed25519.PublicKey{pub}
	k.Master = priv
	return k
}

// plain returns keys without the master's private key: a node that can only relay.
func (k Keys) plain() Keys {
	k.Master = nil
	return k
}

// testNode is a node under test with everything it emitted.
type testNode struct {
	*Node
	name string
	dir  string
	cfg  Config

	mu     sync.Mutex
	events []Event
	times  []time.Time // when each event was read
	done   chan struct{}
}

// nodeOpts tweak a test node's config.
type nodeOpts func(*Config)

func listenOn(addrs ...string) nodeOpts { return func(c *Config) { c.Listen = addrs } }
func peers(addrs ...string) nodeOpts    { return func(c *Config) { c.Peers = addrs } }
func asMaster() nodeOpts                { return func(c *Config) { c.Master = true } }

// startNode opens a node in dir (a fresh temp dir when empty) and records its events; it is
// closed at cleanup.
func startNode(t testing.TB, name string, keys Keys, dir string, opts ...nodeOpts) *testNode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := LocalConfig()
	cfg.Keys = keys
	cfg.DataDir = dir
	cfg.NoSync = true
	if testing.Verbose() && os.Getenv("DT_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("name", name)
	}
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.Master {
		cfg.Keys = cfg.Keys.plain()
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	tn := &testNode{Node: n, name: name, dir: dir, cfg: cfg, done: make(chan struct{})}
	events := n.Events() // before any write of the test, so that its errors are on the channel
	go func() {
		defer close(tn.done)
		for ev := range events {
			tn.mu.Lock()
			tn.events = append(tn.events, ev)
			tn.times = append(tn.times, time.Now())
			tn.mu.Unlock()
		}
	}()
	t.Cleanup(func() { tn.stop() })
	return tn
}

// stop closes the node and waits for its event channel to close.
func (tn *testNode) stop() {
	tn.Close()
	<-tn.done
}

// addr returns the node's first listening address.
func (tn *testNode) addr() string { return tn.Addrs()[0].String() }

// eventsOf returns the events of one type, in order.
func (tn *testNode) eventsOf(typ EventType) []Event {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	var out []Event
	for _, ev := range tn.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// allEvents returns a copy of every event so far.
func (tn *testNode) allEvents() []Event {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return append([]Event(nil), tn.events...)
}

// waitFor polls cond until it returns nil or the timeout passes (see package wait).
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	wait.For(t, timeout, cond)
}

// sameKeys checks that every node holds exactly want.
func sameKeys(want map[string]bool, nodes ...*testNode) func() error {
	return func() error {
		for _, n := range nodes {
			got := slices.Collect(n.ObjectKeys())
			if len(got) != len(want) {
				return fmt.Errorf("%s holds %d objects, want %d", n.name, len(got), len(want))
			}
			for _, k := range got {
				if !want[k] {
					return fmt.Errorf("%s holds %s, which it should not", n.name, k[:12])
				}
			}
		}
		return nil
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
