package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

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
	target := startNode(t, "target", keys, "", listenOn("127.0.0.1:0"))
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
	again := startNode(t, "target-again", keys, target.dir, listenOn("127.0.0.1:0"))
	if !slices.Contains(again.Status().Blocked, "127.0.0.2/32") {
		t.Fatalf("block lost across restart: %v", again.Status().Blocked)
	}
}

func TestForgedRecordIsRejected(t *testing.T) {
	keys := testKeys(t)
	honest := startNode(t, "honest", keys, "", listenOn("127.0.0.1:0"))
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"), peers(honest.addr()))

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
