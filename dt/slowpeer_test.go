package dt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt/internal/securelink"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
)

// A peer that holds the network key links, keeps its session alive (yamux answers pings by
// itself) and never reads its control stream. The node it linked to floods 60 KiB messages: it
// must disconnect the peer once Config.MessageQueueBytes are queued for it, close the link (the
// blocked write included) and free what was queued.
func TestPeerThatStopsReadingIsDisconnected(t *testing.T) {
	keys := testKeys(t)
	reg := prometheus.NewRegistry()
	a := startNode(t, "a", keys, "", listenOn("127.0.0.1:0"), func(c *Config) {
		c.MessageQueueBytes = 1 << 20
		c.Registerer = reg
	})

	rawLink(t, a, "127.0.0.8") // and never read
	waitFor(t, 5*time.Second, func() error {
		if p := a.Status().Peers; p != 1 {
			return fmt.Errorf("a has %d links", p)
		}
		return nil
	})

	heapBefore := heapInUse()
	payload := fmt.Appendf(nil, `{"pad":"%s"}`, bytes.Repeat([]byte("x"), 60<<10))
	sent := 0
	for ; sent < 1000 && promtest.Sum(t, reg, "dt_slow_peers_total") == 0; sent++ {
		if err := a.SendMessage(ctxTimeout(t, 5*time.Second), rawJSON(payload)); err != nil {
			t.Fatal(err)
		}
	}
	dropped := time.Now()
	waitFor(t, 10*time.Second, func() error { // LinkTimeout ends the blocked write
		if p := a.Status().Peers; p != 0 {
			return fmt.Errorf("a still has %d links", p)
		}
		return nil
	})
	heapAfter := heapInUse()
	slow := promtest.Sum(t, reg, "dt_slow_peers_total")
	t.Logf("disconnected after %d messages of 60 KiB, link gone %s later; slow_peers_total %v; heap %d KiB before, %d KiB after",
		sent, time.Since(dropped).Round(time.Millisecond), slow, heapBefore>>10, heapAfter>>10)
	if sent >= 1000 {
		t.Fatal("the peer was never disconnected")
	}
	if slow != 1 {
		t.Fatalf("dt_slow_peers_total = %v, want 1", slow)
	}
	if heapAfter > heapBefore+4<<20 {
		t.Errorf("heap grew by %d KiB", (heapAfter-heapBefore)>>10)
	}
}

// rawLink links to n from the address from as a holder of the network key with an identity of
// its own making, opens the control stream and reads nothing. The link is closed at cleanup.
// It does not wait for the node to register the link.
func rawLink(t *testing.T, n *testNode, from string) *yamux.Session {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sc, _, err := securelink.Client(ctxTimeout(t, 5*time.Second), raw, securelink.Config{
		NetworkKey: n.Node.cfg.Keys.Network, Identity: id, Prologue: n.prologue(),
		Hello: hello{incarnation: 1}.marshal(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ycfg := yamux.DefaultConfig()
	ycfg.LogOutput = io.Discard
	sess, err := yamux.Client(sc, ycfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	// A refused link is closed as soon as its control stream is accepted, which may be before
	// OpenStream returns: the error is not the test's concern.
	_, _ = sess.OpenStream()
	return sess
}

// rawJSON passes bytes that are JSON already to SendMessage unchanged.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }

// A holder of the network key links from one address under 40 identities: MaxLinksPerAddress
// are kept, the rest refused and counted; another address still links.
func TestLinksPerAddressAreCapped(t *testing.T) {
	keys := testKeys(t)
	reg := prometheus.NewRegistry()
	a := startNode(t, "a", keys, "", listenOn("127.0.0.1:0"), func(c *Config) {
		c.Registerer = reg
		c.Guard.ConnBurst = 100 // this test is about links, not connection rates
	})
	heapBefore := heapInUse()
	var sessions []*yamux.Session
	for range 40 {
		sessions = append(sessions, rawLink(t, a, "127.0.0.10"))
	}
	waitFor(t, 10*time.Second, func() error {
		if r := promtest.Sum(t, reg, "dt_links_refused_total"); r != 24 {
			return fmt.Errorf("%v links refused, want 24", r)
		}
		if p := a.Status().Peers; p != 16 {
			return fmt.Errorf("a has %d links, want 16", p)
		}
		return nil
	})
	heapLinked := heapInUse()
	t.Logf("16 links held: heap %d KiB before, %d KiB with them (%d KiB per link)",
		heapBefore>>10, heapLinked>>10, int64(heapLinked-heapBefore)/16>>10)
	rawLink(t, a, "127.0.0.11")
	waitFor(t, 5*time.Second, func() error {
		if p := a.Status().Peers; p != 17 {
			return fmt.Errorf("a has %d links, want 17", p)
		}
		return nil
	})
	for _, s := range sessions {
		s.Close()
	}
	waitFor(t, 10*time.Second, func() error {
		if p := a.Status().Peers; p != 1 {
			return fmt.Errorf("a has %d links after the attacker left, want 1", p)
		}
		return nil
	})
}
