// Package testnet starts dt nodes for tests: fresh keys, loopback listeners, fast timers, data in
// the test's temporary directory, and everything closed when the test ends.
package testnet

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/dt-cdn/dt/dt"
)

// Keys returns the keys of a new network with one master: master holds the master key, plain
// does not (for every other node).
func Keys(t testing.TB) (master, plain dt.Keys) {
	t.Helper()
	if _, err := rand.Read(master.Network[:]); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	master.Masters, master.Master = []ed25519.PublicKey{pub}, priv
	plain = master
	plain.Master = nil
	return master, plain
}

// Options describe a test node.
type Options struct {
	Keys       dt.Keys
	Master     bool     // needs Keys.Master
	Listen     bool     // listen on 127.0.0.1, port chosen by the system
	Peers      []string // addresses to dial
	LazyBodies bool
}

// Node opens a node with dt.LocalConfig timers and no fsync; it is closed at the end of the test
// (closing it earlier is fine). Read its events, or pass it to Drain.
func Node(t testing.TB, o Options) *dt.Node {
	t.Helper()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.Master, cfg.DataDir, cfg.NoSync, cfg.Peers, cfg.LazyBodies = o.Keys, o.Master, t.TempDir(), true, o.Peers, o.LazyBodies
	if o.Listen {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	n, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Addr returns a listening node's first address.
func Addr(n *dt.Node) string { return n.Addrs()[0].String() }

// Drain reads and drops a node's events until the node closes, for nodes whose events the test
// does not need. It subscribes before it returns (Events subscribes on its first call), so its
// goroutine exists, and is counted, from then on.
func Drain(n *dt.Node) {
	events := n.Events()
	go func() {
		for range events {
		}
	}()
}
