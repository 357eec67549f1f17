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

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.8")}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sc, _, err := securelink.Client(ctxTimeout(t, 5*time.Second), raw, securelink.Config{
		NetworkKey: keys.Network, Identity: id, Prologue: a.prologue(),
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
	defer sess.Close()
	ctrl, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	waitFor(t, 5*time.Second, func() error {
		if p := a.Status().Peers; p != 1 {
			return fmt.Errorf("a has %d links", p)
		}
		return nil
	})

	heapBefore := heapInUse()
	payload := fmt.Appendf(nil, `{"pad":"%s"}`, bytes.Repeat([]byte("x"), 60<<10))
	sent := 0
	for ; sent < 1000 && gathered(t, reg, "dt_slow_peers_total") == 0; sent++ {
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
	slow := gathered(t, reg, "dt_slow_peers_total")
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

// rawJSON passes bytes that are JSON already to SendMessage unchanged.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }
