package dt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/testkit/needs"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
)

// openFDs returns the number of file descriptors the process holds.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		needs.Skipf(t, "cannot count descriptors: %v", err)
	}
	return len(ents)
}

// holdSlots runs a slowloris against addr from one source address until ctx ends: it connects,
// sends nothing, half a frame or Noise message 1 (so the node answers and waits for message 3),
// holds the connection until the node closes it and connects again at once; after a refusal (a
// connection closed within 50 ms) it waits a second.
func holdSlots(ctx context.Context, from net.IP, addr string, style int, conns *atomic.Int64) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conns.Add(1)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			switch style {
			case 1: // a frame header and part of its body
				_, _ = c.Write([]byte{0, 32, 1, 2, 3, 4, 5, 6, 7, 8})
			case 2: // message 1 in full: an ephemeral key is any 32 bytes
				msg := make([]byte, 34)
				msg[1] = 32
				_, _ = rand.Read(msg[2:])
				_, _ = c.Write(msg)
			}
			began := time.Now()
			_, _ = io.Copy(io.Discard, c) // until the node closes it
			stop()
			c.Close()
			conns.Add(-1)
			if time.Since(began) > 50*time.Millisecond {
				continue // held a slot: race for it again
			}
		}
		t := time.NewTimer(time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// 1,500 addresses in ten /24s (127.0.1.1 to 127.0.10.150) hold handshake slots on a node, each
// reconnecting as soon as the node drops it: with 16 slots per /24 they hold 160 of the 192
// not reserved for known peers, more than half of all 256, so every handshake from an address
// not known gets the short deadline. Meanwhile a known peer (linked before, from 127.0.0.1)
// reconnects and a new peer joins from 127.1.0.1: the known peer must link within 5 s, the new
// one within 15 s, and both messages arrive within 5 s more (three times each under the race
// detector). Afterwards the node's slots and the process's descriptors return to near where
// they started.
//
// With 20 slots per /24 ("general slots full") the attack holds all 192 slots not reserved: the
// known peer then links through the reserve, and the new peer through the slots that the short
// deadline frees every second.
func TestHandshakeSlotsHeldByManyAddresses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("binds 127.0.x.y source addresses, which only Linux routes without setup")
	}
	t.Run("defaults", func(t *testing.T) { testHandshakeSlots(t, 0, 155) })
	t.Run("general slots full", func(t *testing.T) { testHandshakeSlots(t, 20, 190) })
}

func testHandshakeSlots(t *testing.T, perSubnet int, held float64) {
	const addrs = 1500
	keys := testKeys(t)
	reg := prometheus.NewRegistry()
	target := startNode(t, "target", keys, "", listenOn("127.0.0.1:0"), func(c *Config) {
		c.Registerer = reg
		c.Guard.MaxHandshakesPerSubnet = perSubnet
	})
	knownDir := t.TempDir()
	known := startNode(t, "known", keys, knownDir, peers(target.addr()))
	waitFor(t, 10*time.Second, func() error {
		if p := target.Status().Peers; p != 1 {
			return fmt.Errorf("target has %d links", p)
		}
		return nil
	})
	known.stop()
	waitFor(t, 10*time.Second, func() error {
		if p := target.Status().Peers; p != 0 {
			return fmt.Errorf("target still has %d links", p)
		}
		return nil
	})
	fds0, goroutines0, heap0 := openFDs(t), runtime.NumGoroutine(), heapInUse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var conns atomic.Int64
	for i := range addrs {
		ip := net.IPv4(127, 0, byte(1+i/150), byte(1+i%150))
		wg.Go(func() { holdSlots(ctx, ip, target.addr(), i%3, &conns) })
	}
	inFlight := func() float64 { return promtest.Sum(t, reg, "dt_ipguard_handshakes_in_flight") }
	// The attack holds every slot it can (ten /24s of 16) and has seen its first connections
	// time out and come back.
	waitFor(t, 30*time.Second, func() error {
		if n := inFlight(); n < held {
			return fmt.Errorf("%v handshakes in flight", n)
		}
		if n := promtest.Sum(t, reg, "dt_ipguard_failures_total", "reason=timeout"); n < 200 {
			return fmt.Errorf("%v handshakes timed out", n)
		}
		return nil
	})
	attackBegan := time.Now()
	fdsDuring, goroutinesDuring, heapDuring := openFDs(t), runtime.NumGoroutine(), heapInUse()

	// A known peer comes back, and a new one joins from an address of its own.
	again := startNode(t, "known-again", keys, knownDir, peers(target.addr()))
	newcomer := startNode(t, "newcomer", keys, "", peers(target.addr()), dialFrom("127.1.0.1"))
	linked := func(n *testNode) func() error {
		return func() error {
			for _, l := range target.Status().Links {
				if l.Peer == n.ID() {
					return nil
				}
			}
			return fmt.Errorf("%s not linked; %v handshakes in flight", n.name, inFlight())
		}
	}
	waitFor(t, slowdown*5*time.Second, linked(again))
	knownAfter := time.Since(attackBegan)
	waitFor(t, slowdown*15*time.Second, linked(newcomer))
	newAfter := time.Since(attackBegan)
	for _, n := range []*testNode{again, newcomer} {
		if err := n.SendMessage(ctxTimeout(t, 5*time.Second), map[string]string{"from": n.name}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, slowdown*5*time.Second, func() error {
		if got := len(target.eventsOf(EventMessageReceived)); got != 2 {
			return fmt.Errorf("target received %d of 2 messages", got)
		}
		return nil
	})
	delivered := time.Since(attackBegan)
	peakInFlight, open := inFlight(), conns.Load()
	fdsPeak := max(fdsDuring, openFDs(t))

	cancel()
	wg.Wait()
	waitFor(t, 10*time.Second, func() error {
		if n := inFlight(); n != 0 {
			return fmt.Errorf("%v handshakes still in flight", n)
		}
		if n := openFDs(t); n > fds0+20 { // the two new links and their nodes' files
			return fmt.Errorf("%d descriptors open, %d before the attack", n, fds0)
		}
		return nil
	})
	fdsAfter, heapAfter := openFDs(t), heapInUse()

	t.Logf("known peer linked %s into the attack, new peer %s; both messages delivered by %s",
		knownAfter.Round(time.Millisecond), newAfter.Round(time.Millisecond), delivered.Round(time.Millisecond))
	t.Logf("attack: %d attacker connections open, %v handshakes in flight, descriptors %d before, %d at peak, %d after; goroutines %d before, %d during (%d of them the attackers'), %d after (two more nodes)",
		open, peakInFlight, fds0, fdsPeak, fdsAfter, goroutines0, goroutinesDuring, addrs, runtime.NumGoroutine())
	t.Logf("heap: %d KiB before, %d KiB during (attackers included), %d KiB after", heap0>>10, heapDuring>>10, heapAfter>>10)
	var reasons []string
	for _, r := range []string{"handshakes_full", "subnet_full", "rate", "blocked"} {
		reasons = append(reasons, fmt.Sprintf("%s=%v", r, promtest.Sum(t, reg, "dt_ipguard_refused_total", "reason="+r)))
	}
	// The attackers' 127.0.x.y addresses are loopback, which the guard never blocks by default;
	// that exemption leaves the slot caps in force, which the subnet_full refusals show.
	t.Logf("refused: %s; admitted %v (known %v, short deadline %v); timeouts %v; blocks %v (spared as loopback %v)",
		strings.Join(reasons, " "), promtest.Sum(t, reg, "dt_ipguard_admitted_total"), promtest.Sum(t, reg, "dt_ipguard_admitted_known_total"),
		promtest.Sum(t, reg, "dt_ipguard_short_deadlines_total"), promtest.Sum(t, reg, "dt_ipguard_failures_total", "reason=timeout"),
		promtest.Sum(t, reg, "dt_ipguard_blocks_total"), promtest.Sum(t, reg, "dt_ipguard_spared_blocks_total"))
	if promtest.Sum(t, reg, "dt_ipguard_refused_total", "reason=subnet_full") == 0 {
		t.Error("no connection was refused for its subnet's cap")
	}
	if promtest.Sum(t, reg, "dt_ipguard_admitted_known_total") == 0 {
		t.Error("the known peer was not admitted as known")
	}
	if promtest.Sum(t, reg, "dt_ipguard_short_deadlines_total") == 0 {
		t.Error("no handshake was given the short deadline under pressure")
	}
	if errors.Is(ctx.Err(), context.Canceled) && peakInFlight > 256 {
		t.Errorf("%v handshakes in flight, cap 256", peakInFlight)
	}
}
