package dt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/faultnet"
)

// fiveNodes builds the original's example topology: a master without a listener dials node 2;
// nodes 3 and 5 dial node 2, node 4 dials node 3; node 5 is on IPv6.
func fiveNodes(t *testing.T, keys Keys) (master *testNode, plain []*testNode) {
	n2 := startNode(t, "n2", keys, "", listenOn("127.0.0.1:0"))
	n3 := startNode(t, "n3", keys, "", listenOn("127.0.0.1:0"), peers(n2.addr()))
	n4 := startNode(t, "n4", keys, "", listenOn("127.0.0.1:0"), peers(n3.addr()))
	n5 := startNode(t, "n5", keys, "", listenOn("[::1]:0"), peers(n2.addr()))
	master = startNode(t, "master", keys, "", asMaster(), peers(n2.addr()))
	if len(master.Addrs()) != 0 {
		t.Fatal("the master listens")
	}
	if !strings.HasPrefix(n5.addr(), "[::1]:") {
		t.Fatalf("n5 listens on %s", n5.addr())
	}
	return master, []*testNode{n2, n3, n4, n5}
}

func TestFiveNodeExample(t *testing.T) {
	keys := testKeys(t)
	master, plain := fiveNodes(t, keys)
	all := append([]*testNode{master}, plain...)
	ctx := ctxTimeout(t, 30*time.Second)

	want := map[string]bool{}
	for i := range 20 {
		id, err := master.AddObject(ctx, map[string]any{"i": i, "data": strings.Repeat("x", i*100)})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	waitFor(t, 10*time.Second, sameKeys(want, all...))

	var removed string
	for id := range want {
		removed = id
		break
	}
	if err := master.RemoveObject(ctx, removed); err != nil {
		t.Fatal(err)
	}
	delete(want, removed)
	waitFor(t, 10*time.Second, sameKeys(want, all...))

	// A message from every node reaches every other node exactly once, even though n2 relays for
	// three of them and the mesh could carry copies.
	for _, n := range all {
		if err := n.SendMessage(ctx, map[string]string{"from": n.name}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for _, n := range all {
			got := map[NodeID]int{}
			for _, ev := range n.eventsOf(EventMessageReceived) {
				got[ev.From]++
			}
			for _, other := range all {
				if other == n {
					continue
				}
				if got[other.ID()] != 1 {
					return fmt.Errorf("%s received %d messages from %s", n.name, got[other.ID()], other.name)
				}
			}
			if len(got) != len(all)-1 {
				return fmt.Errorf("%s received messages from %d nodes", n.name, len(got))
			}
		}
		return nil
	})

	// Every plain node saw: started first, then 20 adds, then the removal, each exactly once.
	waitFor(t, 5*time.Second, func() error {
		for _, n := range plain {
			evs := n.allEvents()
			if len(evs) == 0 || evs[0].Type != EventStarted {
				return fmt.Errorf("%s: first event is not started", n.name)
			}
			if adds := len(n.eventsOf(EventObjectAdded)); adds != 20 {
				return fmt.Errorf("%s: %d object_added events, want 20", n.name, adds)
			}
			rm := n.eventsOf(EventObjectRemoved)
			if len(rm) != 1 || rm[0].Key != removed {
				return fmt.Errorf("%s: object_removed events %v", n.name, rm)
			}
			if errs := n.eventsOf(EventError); len(errs) != 0 {
				return fmt.Errorf("%s: error events %v", n.name, errs)
			}
		}
		return nil
	})
}

func TestStartedThenExistingObjects(t *testing.T) {
	keys := testKeys(t)
	m := startNode(t, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 20*time.Second)
	want := map[string]bool{}
	for i := range 50 {
		id, err := m.AddObject(ctx, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	late := startNode(t, "late", keys, "", peers(m.addr()))
	waitFor(t, 10*time.Second, sameKeys(want, late))
	waitFor(t, 5*time.Second, func() error {
		evs := late.allEvents()
		if len(evs) < 51 {
			return fmt.Errorf("%d events", len(evs))
		}
		if evs[0].Type != EventStarted {
			return fmt.Errorf("first event %v", evs[0].Type)
		}
		seen := map[string]bool{}
		for _, ev := range evs[1:] {
			if ev.Type != EventObjectAdded || !want[ev.Key] || seen[ev.Key] {
				return fmt.Errorf("unexpected event %v %s", ev.Type, ev.Key)
			}
			seen[ev.Key] = true
		}
		return nil
	})
}

// TestReconnectMakesNodeEqualToMaster takes a node offline, changes the set at the master, and
// restarts the node on its old data: objects removed meanwhile go (with events), added ones arrive.
func TestReconnectMakesNodeEqualToMaster(t *testing.T) {
	keys := testKeys(t)
	m := startNode(t, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 30*time.Second)
	ids := make([]string, 10)
	for i := range ids {
		var err error
		if ids[i], err = m.AddObject(ctx, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	off := startNode(t, "offline", keys, dir, peers(m.addr()))
	waitFor(t, 10*time.Second, func() error {
		if got := len(slices.Collect(off.ObjectKeys())); got != 10 {
			return fmt.Errorf("offline node holds %d", got)
		}
		return nil
	})
	off.stop()

	want := map[string]bool{}
	for _, id := range ids[5:] {
		want[id] = true
	}
	for _, id := range ids[:5] {
		if err := m.RemoveObject(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for i := 10; i < 15; i++ {
		id, err := m.AddObject(ctx, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}

	back := startNode(t, "back", keys, dir, peers(m.addr()))
	waitFor(t, 10*time.Second, sameKeys(want, back, m))
	waitFor(t, 5*time.Second, func() error {
		if rm := back.eventsOf(EventObjectRemoved); len(rm) != 5 {
			return fmt.Errorf("%d object_removed events after reconnect, want 5", len(rm))
		}
		// started, then the 10 it already held and the 5 new ones, once each
		if adds := back.eventsOf(EventObjectAdded); len(adds) != 15 {
			return fmt.Errorf("%d object_added events after reconnect, want 15", len(adds))
		}
		return nil
	})
}

// TestPartitionedSegmentConverges cuts a two-node segment off, changes the set at the master,
// heals the cut, and expects the segment equal to the master's set.
func TestPartitionedSegmentConverges(t *testing.T) {
	keys := testKeys(t)
	hub := startNode(t, "hub", keys, "", listenOn("127.0.0.1:0"))
	m := startNode(t, "master", keys, "", asMaster(), peers(hub.addr()))
	proxy, err := faultnet.New("127.0.0.1:0", hub.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s1 := startNode(t, "s1", keys, "", listenOn("127.0.0.1:0"), peers(proxy.Addr()))
	s2 := startNode(t, "s2", keys, "", peers(s1.addr()))
	ctx := ctxTimeout(t, 40*time.Second)

	want := map[string]bool{}
	var ids []string
	for i := range 10 {
		id, err := m.AddObject(ctx, map[string]int{"before": i})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
		ids = append(ids, id)
	}
	waitFor(t, 10*time.Second, sameKeys(want, hub, s1, s2))

	proxy.Cut()
	waitFor(t, 10*time.Second, func() error {
		if p := s1.Status().Peers; p != 1 {
			return fmt.Errorf("s1 has %d links during the partition, want 1 (s2)", p)
		}
		return nil
	})
	for _, id := range ids[:4] {
		if err := m.RemoveObject(ctx, id); err != nil {
			t.Fatal(err)
		}
		delete(want, id)
	}
	for i := range 6 {
		id, err := m.AddObject(ctx, map[string]int{"during": i})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	waitFor(t, 10*time.Second, sameKeys(want, hub))
	if got := len(slices.Collect(s2.ObjectKeys())); got != 10 {
		t.Fatalf("the partitioned node changed: %d objects", got)
	}
	proxy.Heal()
	waitFor(t, 15*time.Second, sameKeys(want, hub, s1, s2, m))
}

// TestNewMasterNeverWipesNetwork: a master with no local state (a new laptop) joins a network of
// 30 objects and adds one: the network keeps all 31, and its later removal of an old object wins.
func TestNewMasterNeverWipesNetwork(t *testing.T) {
	keys := testKeys(t)
	origin := startNode(t, "origin", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	edge := startNode(t, "edge", keys, "", peers(origin.addr()))
	ctx := ctxTimeout(t, 30*time.Second)
	want := map[string]bool{}
	var first string
	for i := range 30 {
		id, err := origin.AddObject(ctx, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = id
		}
		want[id] = true
	}
	waitFor(t, 10*time.Second, sameKeys(want, edge))

	// Same master key, empty data directory, a clock two minutes slow (within MaxClockSkew): its
	// records must still win over the ones written before.
	laptop := startNode(t, "laptop", keys, "", asMaster(), peers(origin.addr()), func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	})
	id, err := laptop.AddObject(ctx, map[string]string{"from": "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	want[id] = true
	if err := laptop.RemoveObject(ctx, first); err != nil {
		t.Fatal(err)
	}
	delete(want, first)
	waitFor(t, 10*time.Second, sameKeys(want, origin, edge, laptop))

	// Both processes hold the master key at once and keep writing: nothing breaks.
	var a, b string
	if a, err = origin.AddObject(ctx, map[string]string{"from": "origin"}); err != nil {
		t.Fatal(err)
	}
	if b, err = laptop.AddObject(ctx, map[string]string{"from": "laptop", "again": "yes"}); err != nil {
		t.Fatal(err)
	}
	want[a], want[b] = true, true
	waitFor(t, 10*time.Second, sameKeys(want, origin, edge, laptop))
}

func TestWaitReplicated(t *testing.T) {
	keys := testKeys(t)
	peer := startNode(t, "peer", keys, "", listenOn("127.0.0.1:0"))
	m := startNode(t, "master", keys, "", asMaster(), peers(peer.addr()))
	ctx := ctxTimeout(t, 10*time.Second)
	id, err := m.AddObject(ctx, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReplicated(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if !peer.Has(id) {
		t.Fatal("WaitReplicated returned before the peer held the object")
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := m.WaitReplicated(short, id, 2); err == nil {
		t.Fatal("WaitReplicated for 2 peers succeeded with one peer")
	}
}

// TestNodeOfflineLongerThanTombstoneTTLResyncs: a node away longer than the tombstone TTL cannot
// tell removed objects from live ones any more, so it starts from an empty table and takes the
// network's set; an object removed (and its tombstone collected) while it was away stays gone.
func TestNodeOfflineLongerThanTombstoneTTLResyncs(t *testing.T) {
	keys := testKeys(t)
	m := startNode(t, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 20*time.Second)
	keep, err := m.AddObject(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := m.AddObject(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	away := startNode(t, "away", keys, dir, peers(m.addr()))
	waitFor(t, 10*time.Second, sameKeys(map[string]bool{keep: true, gone: true}, away))
	waitFor(t, 5*time.Second, func() error {
		if away.Status().Links[0].Cursor == 0 {
			return errors.New("no cursor saved yet")
		}
		return nil
	})
	away.stop()
	if err := m.RemoveObject(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// 40 days later (the default TTL is 30): the tombstone would be collected by now.
	later := func(c *Config) { c.Now = func() time.Time { return time.Now().Add(40 * 24 * time.Hour) } }
	back := startNode(t, "back", keys, dir, peers(m.addr()), later)
	if got := back.Status().Records; got != 0 {
		t.Fatalf("a node away past the TTL kept %d records", got)
	}
	waitFor(t, 10*time.Second, sameKeys(map[string]bool{keep: true}, back))
}

// TestSlowLinksConverge runs a chain master → relay → leaf over links with 40 ms of latency each
// way and a 1 MB/s cap, and expects every change to arrive, in any order.
func TestSlowLinksConverge(t *testing.T) {
	keys := testKeys(t)
	leaf := startNode(t, "leaf", keys, "", listenOn("127.0.0.1:0"))
	slowLeaf, err := faultnet.New("127.0.0.1:0", leaf.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slowLeaf.Close()
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"), peers(slowLeaf.Addr()))
	slowRelay, err := faultnet.New("127.0.0.1:0", relay.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slowRelay.Close()
	for _, p := range []*faultnet.Proxy{slowLeaf, slowRelay} {
		p.SetLatency(40 * time.Millisecond)
		p.SetBandwidth(1 << 20)
	}
	m := startNode(t, "master", keys, "", asMaster(), peers(slowRelay.Addr()))
	ctx := ctxTimeout(t, 60*time.Second)
	want := map[string]bool{}
	objects := make([]any, 300)
	for i := range objects {
		objects[i] = map[string]any{"i": i, "pad": strings.Repeat("s", 500)}
	}
	ids, err := m.AddObjects(ctx, objects)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		want[id] = true
	}
	for _, id := range ids[:100] {
		if err := m.RemoveObject(ctx, id); err != nil {
			t.Fatal(err)
		}
		delete(want, id)
	}
	if err := m.SendMessage(ctx, "over slow links"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 40*time.Second, sameKeys(want, relay, leaf))
	waitFor(t, 5*time.Second, func() error {
		if len(leaf.eventsOf(EventMessageReceived)) != 1 {
			return errors.New("the message did not reach the leaf")
		}
		return nil
	})
}
