package dt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/faultnet"
)

// TestLargeObjectDoesNotDelayMessages adds an object of several MiB over a slow link and sends a
// message right after it: the message arrives first, because bodies travel on their own streams.
func TestLargeObjectDoesNotDelayMessages(t *testing.T) {
	keys := testKeys(t)
	far := startNode(t, "far", keys, "", listenOn("127.0.0.1:0"))
	proxy, err := faultnet.New("127.0.0.1:0", far.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	m := startNode(t, "master", keys, "", asMaster(), peers(proxy.Addr()))
	ctx := ctxTimeout(t, 60*time.Second)
	waitFor(t, 10*time.Second, func() error {
		if far.Status().Peers != 1 {
			return errors.New("not linked")
		}
		return nil
	})
	proxy.SetBandwidth(2 << 20) // 2 MiB/s: the object takes about 3 s to cross

	data := make([]byte, 4<<20)
	rand.Read(data)
	object := map[string]string{"name": "big.bin", "data": base64.StdEncoding.EncodeToString(data)}
	id, err := m.AddObject(ctx, object)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SendMessage(ctx, map[string]string{"after": "the big object"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if !far.Has(id) {
			return errors.New("big object not there yet")
		}
		return nil
	})
	waitFor(t, 5*time.Second, func() error {
		evs := far.allEvents()
		msgAt, addAt := -1, -1
		for i, ev := range evs {
			switch {
			case ev.Type == EventMessageReceived && msgAt < 0:
				msgAt = i
			case ev.Type == EventObjectAdded && ev.Key == id:
				addAt = i
			}
		}
		if msgAt < 0 || addAt < 0 {
			return fmt.Errorf("message at %d, object at %d", msgAt, addAt)
		}
		if msgAt > addAt {
			return fmt.Errorf("the message waited behind the large object (message event %d, object event %d)", msgAt, addAt)
		}
		return nil
	})
	got, err := far.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := CanonicalJSON(object)
	if string(got) != string(want) {
		t.Fatal("large object differs after transfer")
	}
}

// TestLazyBodies: a lazy node learns every record but fetches no large body, and still writes.
func TestLazyBodies(t *testing.T) {
	keys := testKeys(t)
	m := startNode(t, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 20*time.Second)
	big := make([]byte, 256<<10)
	rand.Read(big)
	bigID, err := m.AddObject(ctx, map[string]string{"data": base64.StdEncoding.EncodeToString(big)})
	if err != nil {
		t.Fatal(err)
	}
	smallID, err := m.AddObject(ctx, map[string]int{"small": 1})
	if err != nil {
		t.Fatal(err)
	}
	lazy := startNode(t, "lazy", keys, "", asMaster(), peers(m.addr()), func(c *Config) { c.LazyBodies = true })
	if err := lazy.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if !lazy.Has(bigID) || !lazy.Has(smallID) {
		t.Fatal("the lazy node does not know every record")
	}
	if _, err := lazy.held(bigID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lazy Get of a large body: %v, want ErrNotFound", err)
	}
	if _, err := lazy.held(smallID); err != nil {
		t.Fatalf("inline body missing on the lazy node: %v", err)
	}
	if in, _ := lazy.WireBytes(); in > 64<<10 {
		t.Fatalf("the lazy node received %d bytes for a 256 KiB body it should not fetch", in)
	}
	if errs := lazy.eventsOf(EventError); len(errs) != 0 {
		t.Fatalf("error events on the lazy node: %v", errs)
	}
	// It writes like any master, and its writes reach the network.
	id, err := lazy.AddObject(ctx, "from the lazy master")
	if err != nil {
		t.Fatal(err)
	}
	if err := lazy.WaitReplicated(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if !m.Has(id) {
		t.Fatal("the origin lacks the lazy master's object")
	}
}

// TestLoadFetchesOnDemand: a lazy node loads one large body from a peer when asked.
func TestLoadFetchesOnDemand(t *testing.T) {
	keys := testKeys(t)
	m := startNode(t, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 20*time.Second)
	big := make([]byte, 100<<10)
	rand.Read(big)
	if err := m.Put(ctx, "manifest", big); err != nil {
		t.Fatal(err)
	}
	if err := m.PutMany(ctx, []string{"a", "b"}, [][]byte{[]byte(`"a"`), []byte(`"b"`)}); err != nil {
		t.Fatal(err)
	}
	lazy := startNode(t, "lazy", keys, "", peers(m.addr()), func(c *Config) { c.LazyBodies = true })
	if err := lazy.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lazy.held("manifest"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("held before Get: %v", err)
	}
	got, err := lazy.Get(ctx, "manifest")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	if got, err := lazy.held("manifest"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("held after Get: %v", err)
	}
	if err := m.DeleteMany(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if lazy.Has("a") || lazy.Has("b") {
			return errors.New("deleted keys still there")
		}
		return nil
	})
}
