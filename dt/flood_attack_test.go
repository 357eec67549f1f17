package dt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// signedMessage returns a message signed by key, as n would send it.
func signedMessage(t *testing.T, n *Node, key ed25519.PrivateKey, payload []byte) *Message {
	t.Helper()
	m := &Message{Origin: key.Public().(ed25519.PublicKey), Time: n.cfg.Now().UnixMilli(), Payload: payload}
	if _, err := rand.Read(m.ID[:]); err != nil {
		t.Fatal(err)
	}
	m.Sig = ed25519.Sign(key, m.signedBytes(n.table, n.cfg.Epoch))
	return m
}

// flood sends messages from n as fast as its links take them (keeping their queues short, so
// n never drops its own link as too slow) until next returns nil or stop passes, and returns
// how many it sent.
func flood(n *Node, next func(i int) *Message, stop time.Time) int {
	sent := 0
	for time.Now().Before(stop) {
		if n.longestMessageQueue() > 1024 {
			time.Sleep(time.Millisecond)
			continue
		}
		m := next(sent)
		if m == nil {
			break
		}
		n.forward(m, nil)
		sent++
	}
	return sent
}

func (n *Node) longestMessageQueue() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	longest := 0
	for _, l := range n.links {
		longest = max(longest, len(l.msgOut))
	}
	return longest
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A holder of the network key floods a line of nodes X → A → B → C, first with a new identity
// per message as fast as it can sign, then at 800/s from 8 identities the network has admitted,
// from X and from a second address X2 at once. An honest node H, also linked to A, sends a
// heartbeat every 500 ms throughout (an edge sends one per 2 s; this is the fastest rate that
// still counts as quiet); its heartbeats share the links A → B → C with the flood. In the second
// phase A passes twice B's budget for A (one budget for each of X and X2): B must drop the
// excess and still pass the heartbeats, through the share kept for quiet origins.
//
// What must hold: the flood reaching C is bounded by the budgets for one neighbour
// (NewOriginBurst plus NewOriginRate for minted identities; LinkMessageBurst plus
// LinkMessageRate for established ones), every heartbeat reaches C within 5 s (an edge is
// suspected after 6 s without one; three times that under the race detector), and no node's
// seen cache or origin table grows past its bound.
//
// The neighbour budget is set to 100 messages/s (burst 200) and new origins to a burst of 16,
// below what the attacker can sign even under the race detector on a loaded machine, so that
// the bounds are what limits the flood; the defaults are ten times higher. The seen cache is
// bounded to 256 ids, so it forgets early during the flood.
func TestMintedIdentityFloodIsBoundedPerLink(t *testing.T) {
	keys := testKeys(t)
	budget := func(c *Config) {
		c.LinkMessageRate, c.LinkMessageBurst = 100, 200
		c.NewOriginRate, c.NewOriginBurst = 1, 16
		c.MaxSeenMessages = 256 // forgets early under this flood
	}
	a := startNode(t, "a", keys, "", listenOn("127.0.0.1:0"), budget)
	b := startNode(t, "b", keys, "", listenOn("127.0.0.1:0"), peers(a.addr()), budget)
	c := startNode(t, "c", keys, "", peers(b.addr()), budget)
	h := startNode(t, "h", keys, "", peers(a.addr()), budget)
	x := startNode(t, "x", keys, "", peers(a.addr()), dialFrom("127.0.0.5"), budget)
	x2 := startNode(t, "x2", keys, "", peers(a.addr()), dialFrom("127.0.0.6"), budget)
	waitFor(t, 10*time.Second, func() error {
		if p := a.Status().Peers; p != 4 {
			return fmt.Errorf("a has %d links, want 4", p)
		}
		if p := c.Status().Peers; p != 1 {
			return fmt.Errorf("c has %d links", p)
		}
		return nil
	})

	// Heartbeats from H, before and throughout the flood.
	var (
		hbMu   sync.Mutex
		hbSent = map[int]time.Time{}
		hbStop = make(chan struct{})
		hbDone = make(chan struct{})
	)
	go func() {
		defer close(hbDone)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			hbMu.Lock()
			hbSent[seq] = time.Now()
			hbMu.Unlock()
			ctx := ctxTimeout(t, 5*time.Second)
			if err := h.SendMessage(ctx, map[string]int{"hb": seq}); err != nil {
				t.Errorf("heartbeat %d: %v", seq, err)
				return
			}
			select {
			case <-tick.C:
			case <-hbStop:
				return
			}
		}
	}()
	waitFor(t, 10*time.Second, func() error {
		if len(c.eventsOf(EventMessageReceived)) == 0 {
			return fmt.Errorf("no heartbeat at c yet")
		}
		return nil
	})
	heapBefore := heapInUse()

	// Phase 1: a new identity per message, minted and signed as fast as this machine can.
	var admitted []ed25519.PrivateKey
	start1 := time.Now()
	sent1 := flood(x.Node, func(i int) *Message {
		k := newKey(t)
		if i < 8 {
			admitted = append(admitted, k) // within NewOriginBurst: let through everywhere
		}
		return signedMessage(t, x.Node, k, fmt.Appendf(nil, `{"flood":%d,"phase":1}`, i))
	}, start1.Add(3*time.Second))
	// Phase 2: the admitted identities in turn, 800 messages a second for 3 s from each of X and
	// X2 (eight times a neighbour budget each), signed beforehand so that the rate holds
	// whatever the signing costs (under the race detector, a millisecond each).
	batches := make([][]*Message, 2)
	for i := range 2 * 2400 {
		batches[i%2] = append(batches[i%2], signedMessage(t, x.Node, admitted[i%len(admitted)], fmt.Appendf(nil, `{"flood":%d,"phase":2}`, i)))
	}
	start2 := time.Now()
	sent := make([]int, 2)
	var floods sync.WaitGroup
	for j, from := range []*Node{x.Node, x2.Node} {
		floods.Go(func() {
			sent[j] = flood(from, func(i int) *Message {
				if i == len(batches[j]) {
					return nil
				}
				time.Sleep(time.Until(start2.Add(time.Duration(i) * time.Second / 800)))
				return batches[j][i]
			}, start2.Add(10*time.Second))
		})
	}
	floods.Wait()
	sent2 := sent[0] + sent[1]
	end := time.Now()
	time.Sleep(500 * time.Millisecond) // heartbeats on their way
	close(hbStop)
	<-hbDone
	hbMu.Lock()
	lastSent := len(hbSent) - 1
	hbMu.Unlock()
	hbBound := slowdown * 5 * time.Second
	waitFor(t, hbBound, func() error {
		for _, ev := range c.eventsOf(EventMessageReceived) {
			if bytes.Equal(ev.Object, fmt.Appendf(nil, `{"hb":%d}`, lastSent)) {
				return nil
			}
		}
		return fmt.Errorf("the last heartbeat (%d) has not reached c", lastSent)
	})

	// What reached C.
	c.mu.Lock()
	events, times := append([]Event(nil), c.events...), append([]time.Time(nil), c.times...)
	c.mu.Unlock()
	var flood1, flood2 int
	var last1, last2 time.Time // the last of each phase to reach c
	hbAt := map[int]time.Time{}
	for i, ev := range events {
		if ev.Type != EventMessageReceived {
			continue
		}
		var p struct {
			HB    *int `json:"hb"`
			Phase int  `json:"phase"`
		}
		if err := json.Unmarshal(ev.Object, &p); err != nil {
			t.Fatalf("message %s: %v", ev.Object, err)
		}
		switch {
		case p.HB != nil:
			hbAt[*p.HB] = times[i]
		case p.Phase == 1:
			flood1++
			last1 = times[i]
		case p.Phase == 2:
			flood2++
			last2 = times[i]
		}
	}
	// The budgets bound what passes per second of processing: on a loaded machine a hop may
	// still be working through its backlog after the attacker stopped, and its buckets refill
	// meanwhile. So each bound runs from the phase's start to its last message at c.
	cfg := a.Node.cfg
	d1, d2 := start2.Sub(start1).Seconds(), end.Sub(start2).Seconds() // d1 includes the signing
	span1, span2 := max(d1, last1.Sub(start1).Seconds()), max(d2, last2.Sub(start2).Seconds())
	max1 := cfg.NewOriginBurst + int(float64(cfg.NewOriginRate)*(span1+1)) + 2
	max2 := cfg.LinkMessageBurst + int(float64(cfg.LinkMessageRate)*(span2+1))
	t.Logf("phase 1: %d messages from as many identities in %.1f s; %d reached c within %.1f s (bound %d)", sent1, d1, flood1, span1, max1)
	t.Logf("phase 2: %d messages from %d admitted identities through two addresses in %.1f s; %d reached c within %.1f s (bound %d)",
		sent2, len(admitted), d2, flood2, span2, max2)
	if sent1 < 10*max1 || float64(sent2) < 2*(float64(cfg.LinkMessageBurst)+float64(cfg.LinkMessageRate)*(d2+1)) {
		t.Fatalf("the attacker sent only %d and %d messages: no flood", sent1, sent2)
	}
	if flood1 > max1 {
		t.Errorf("%d messages from minted identities reached c, bound %d", flood1, max1)
	}
	if flood2 > max2 {
		t.Errorf("%d messages from admitted identities reached c, bound %d", flood2, max2)
	}

	var worst time.Duration
	hbMu.Lock()
	for seq, sentAt := range hbSent {
		at, ok := hbAt[seq]
		if !ok {
			t.Errorf("heartbeat %d (sent %s after the flood began) never reached c", seq, sentAt.Sub(start1).Round(time.Millisecond))
			continue
		}
		worst = max(worst, at.Sub(sentAt))
	}
	nHB := len(hbSent)
	hbMu.Unlock()
	t.Logf("%d heartbeats reached c, the slowest in %s", nHB, worst.Round(time.Millisecond))
	if os.Getenv("DT_TEST_HOPS") != "" {
		for _, n := range []*testNode{a, b, c} {
			n.mu.Lock()
			for i, ev := range n.events {
				var p struct {
					HB *int `json:"hb"`
				}
				if ev.Type == EventMessageReceived && json.Unmarshal(ev.Object, &p) == nil && p.HB != nil {
					hbMu.Lock()
					t.Logf("%s hb %d after %s (sent %s into the flood)", n.name, *p.HB, n.times[i].Sub(hbSent[*p.HB]).Round(time.Millisecond), hbSent[*p.HB].Sub(start1).Round(time.Millisecond))
					hbMu.Unlock()
				}
			}
			n.mu.Unlock()
		}
	}
	// Without the race detector heartbeats take milliseconds; with it, on a loaded machine,
	// each hop verifies the admitted flood ahead of them at a few milliseconds a signature.
	if worst > hbBound {
		t.Errorf("a heartbeat took %s to reach c, bound %s", worst, hbBound)
	}

	for _, n := range []*testNode{a, b, c} {
		drops := map[string]float64{}
		for _, r := range dropReasons {
			drops[string(r)] = counterValue(t, n.metrics.messagesDropped.WithLabelValues(string(r)))
		}
		t.Logf("%s: dropped %v", n.name, drops)
		ids, early := n.seen.size()
		origins, neighbours, evicted := n.flood.sizes()
		t.Logf("%s: %d message ids remembered (%d early rotations), %d origins (%d forgotten), %d neighbours", n.name, ids, early, origins, evicted, neighbours)
		if ids > cfg.MaxSeenMessages {
			t.Errorf("%s remembers %d message ids, bound %d", n.name, ids, cfg.MaxSeenMessages)
		}
		if origins > max1+8 {
			t.Errorf("%s holds budgets for %d origins: minted identities were remembered", n.name, origins)
		}
	}
	heapAfter := heapInUse()
	t.Logf("heap: %d KiB before the flood, %d KiB after (every node in this process, events kept)", heapBefore>>10, heapAfter>>10)
	if heapAfter > heapBefore+64<<20 {
		t.Errorf("heap grew by %d MiB during the flood", (heapAfter-heapBefore)>>20)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
