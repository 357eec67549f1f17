package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dt-cdn/dt/internal/testkit/promtest"
)

// blockLoopback lets the node's guard block loopback addresses, which it spares by default: the
// attacks of these tests come from 127.0.0.x.
func blockLoopback(c *Config) { c.Guard.BlockLoopback = true }

// dialFrom makes a node dial from a given loopback source address, so a test can tell attackers
// from honest nodes by address.
func dialFrom(ip string) nodeOpts {
	return func(c *Config) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: time.Second}
		c.Dial = d.DialContext
	}
}

func TestWrongNetworkKeyIsRefusedAndBlocked(t *testing.T) {
	keys := testKeys(t)
	target := startNode(t, "target", keys, "", listenOn("127.0.0.1:0"), blockLoopback)
	bad := testKeys(t) // another network key altogether
	intruder := startNode(t, "intruder", bad, "", peers(target.addr()), dialFrom("127.0.0.2"))

	waitFor(t, 20*time.Second, func() error {
		if !slices.Contains(target.Status().Blocked, "127.0.0.2/32") {
			return fmt.Errorf("blocked: %v", target.Status().Blocked)
		}
		return nil
	})
	if p := target.Status().Peers; p != 0 {
		t.Fatalf("target linked %d peers with the wrong key", p)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(intruder.eventsOf(EventError)) == 0 {
			return errors.New("the intruder saw no error event for its failed handshakes")
		}
		return nil
	})
	// The block is by address: an honest node from another address still joins.
	honest := startNode(t, "honest", keys, "", peers(target.addr()))
	waitFor(t, 10*time.Second, func() error {
		if p := honest.Status().Peers; p != 1 {
			return fmt.Errorf("honest node has %d links", p)
		}
		return nil
	})
	// The block survives a restart of the target.
	target.stop()
	again := startNode(t, "target-again", keys, target.dir, listenOn("127.0.0.1:0"), blockLoopback)
	if !slices.Contains(again.Status().Blocked, "127.0.0.2/32") {
		t.Fatalf("block lost across restart: %v", again.Status().Blocked)
	}
	bs := again.Blocks()
	if len(bs) != 1 || bs[0].Reason != "auth_failures" || bs[0].Count != 1 || bs[0].Until.Sub(bs[0].Since) != time.Hour {
		t.Fatalf("Blocks() = %+v, want one first block of an hour for auth_failures", bs)
	}
	// While the node runs its database is locked; its own Unblock lifts the block and saves it.
	if s, err := OpenStoredBlocks(again.dir, true); !errors.Is(err, bolterrors.ErrTimeout) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenStoredBlocks on a running node's directory: %v, want bbolt's ErrTimeout", err)
	}
	intruder.stop()
	lifted, err := again.Unblock(netip.MustParsePrefix("127.0.0.2/32"))
	if err != nil || len(lifted) != 1 {
		t.Fatalf("Unblock = %+v, %v", lifted, err)
	}
	if _, err := again.Unblock(netip.MustParsePrefix("127.0.0.2/32")); !errors.Is(err, ErrNotBlocked) {
		t.Fatalf("second Unblock = %v, want ErrNotBlocked", err)
	}
	again.stop()
	stored, err := OpenStoredBlocks(again.dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	if bs := stored.Blocks(); len(bs) != 0 {
		t.Fatalf("stored blocks after Unblock: %+v", bs)
	}
}

// TestLoopbackIsNotBlockedByDefault: a node with the default guard never blocks a loopback
// address, however many handshakes with the wrong network key come from it, and the right key
// links from that address at once.
func TestLoopbackIsNotBlockedByDefault(t *testing.T) {
	keys := testKeys(t)
	reg := prometheus.NewRegistry()
	target := startNode(t, "target", keys, "", listenOn("127.0.0.1:0"), func(c *Config) { c.Registerer = reg })
	intruder := startNode(t, "intruder", testKeys(t), "", peers(target.addr()), dialFrom("127.0.0.2"))
	waitFor(t, 20*time.Second, func() error {
		if n := promtest.Sum(t, reg, "dt_ipguard_spared_blocks_total"); n < 2 {
			return fmt.Errorf("%v blocks spared, %v handshakes failed", n, promtest.Sum(t, reg, "dt_ipguard_failures_total"))
		}
		return nil
	})
	failed := promtest.Sum(t, reg, "dt_ipguard_failures_total", "reason=bad_key")
	intruder.stop()
	if b := target.Status().Blocked; len(b) != 0 {
		t.Fatalf("loopback blocked after %v failed handshakes: %v", failed, b)
	}
	began := time.Now()
	honest := startNode(t, "honest", keys, "", peers(target.addr()), dialFrom("127.0.0.2"))
	waitFor(t, 10*time.Second, func() error {
		if p := honest.Status().Peers; p != 1 {
			return fmt.Errorf("honest node has %d links", p)
		}
		return nil
	})
	t.Logf("%v handshakes with the wrong key from 127.0.0.2, %v blocks spared; the right key then linked in %s",
		failed, promtest.Sum(t, reg, "dt_ipguard_spared_blocks_total"), time.Since(began).Round(time.Millisecond))
}

func TestForgedRecordIsRejected(t *testing.T) {
	keys := testKeys(t)
	honest := startNode(t, "honest", keys, "", listenOn("127.0.0.1:0"))
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"), peers(honest.addr()), blockLoopback)

	// The forger holds the network key and a signing key of its own that it trusts itself.
	_, forgerKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forgerKeys := keys
	forgerKeys.Master = forgerKey
	forgerKeys.Masters = append(slices.Clone(keys.Masters), forgerKey.Public().(ed25519.PublicKey))
	forger := startNode(t, "forger", forgerKeys, "", asMaster(), peers(relay.addr()), dialFrom("127.0.0.3"))
	ctx := ctxTimeout(t, 10*time.Second)
	id, err := forger.AddObject(ctx, map[string]string{"evil": "yes"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		for _, ev := range relay.eventsOf(EventError) {
			if errors.Is(ev.Err, ErrForged) {
				return nil
			}
		}
		return errors.New("relay reported no forged record")
	})
	// The forger keeps redialing and keeps being dropped: its strikes get it blocked.
	waitFor(t, 20*time.Second, func() error {
		if !slices.Contains(relay.Status().Blocked, "127.0.0.3/32") {
			return fmt.Errorf("forger not blocked: %v", relay.Status().Blocked)
		}
		return nil
	})
	for _, n := range []*testNode{relay, honest} {
		if n.Has(id) {
			t.Fatalf("%s accepted a forged record", n.name)
		}
	}
	// A plain node cannot forge deletion either: the real master's objects survive.
	m := startNode(t, "master", keys, "", asMaster(), peers(honest.addr()))
	real, err := m.AddObject(ctx, "real")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if !relay.Has(real) {
			return errors.New("relay lacks the real object")
		}
		return nil
	})
	if err := forger.RemoveObject(context.Background(), real); err != nil {
		t.Fatal(err)
	}
	if !relay.Has(real) || !honest.Has(real) {
		t.Fatal("a forged removal took effect")
	}
}
