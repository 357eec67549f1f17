package dt

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestThreeNodesAddRemoveMessage(t *testing.T) {
	keys := testKeys(t)
	b := startNode(t, "b", keys, "", listenOn("127.0.0.1:0"))
	m := startNode(t, "master", keys, "", asMaster(), peers(b.addr()))
	c := startNode(t, "c", keys, "", listenOn("[::1]:0"), peers(b.addr()))
	ctx := ctxTimeout(t, 20*time.Second)

	id, err := m.AddObject(ctx, map[string]any{"hello": "world", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, sameKeys(map[string]bool{id: true}, m, b, c))
	got, err := c.Get(ctx, id)
	if err != nil || string(got) != `{"hello":"world","n":1}` {
		t.Fatalf("c.Get = %s, %v", got, err)
	}
	waitFor(t, 5*time.Second, func() error {
		for _, n := range []*testNode{b, c} {
			adds := n.eventsOf(EventObjectAdded)
			if len(adds) != 1 || adds[0].Key != id {
				return fmt.Errorf("%s object_added events: %v", n.name, adds)
			}
		}
		return nil
	})

	if err := m.RemoveObject(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, sameKeys(map[string]bool{}, m, b, c))
	waitFor(t, 5*time.Second, func() error {
		for _, n := range []*testNode{m, b, c} {
			rm := n.eventsOf(EventObjectRemoved)
			if len(rm) != 1 || rm[0].Key != id || string(rm[0].Object) != `{"hello":"world","n":1}` {
				return fmt.Errorf("%s object_removed events: %v", n.name, rm)
			}
		}
		return nil
	})

	if err := c.SendMessage(ctx, map[string]string{"ping": "from c"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		for _, n := range []*testNode{m, b} {
			msgs := n.eventsOf(EventMessageReceived)
			if len(msgs) != 1 || msgs[0].From != c.ID() {
				return fmt.Errorf("%s messages: %v", n.name, msgs)
			}
			var v map[string]string
			if err := json.Unmarshal(msgs[0].Object, &v); err != nil || v["ping"] != "from c" {
				return fmt.Errorf("%s got message %s", n.name, msgs[0].Object)
			}
		}
		return nil
	})
	if msgs := c.eventsOf(EventMessageReceived); len(msgs) != 0 {
		t.Fatalf("the sender received its own message: %v", msgs)
	}
}

func TestPlainNodeCannotWrite(t *testing.T) {
	keys := testKeys(t)
	n := startNode(t, "plain", keys, "", listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := n.AddObject(ctx, map[string]int{"a": 1}); !errors.Is(err, ErrNotMaster) {
		t.Fatalf("AddObject on a plain node: %v, want ErrNotMaster", err)
	}
	if err := n.RemoveObject(ctx, "x"); !errors.Is(err, ErrNotMaster) {
		t.Fatalf("RemoveObject on a plain node: %v, want ErrNotMaster", err)
	}
	waitFor(t, 2*time.Second, func() error {
		if errs := n.eventsOf(EventError); len(errs) != 2 || errs[0].Origin != "add_object" || errs[1].Origin != "remove_object" {
			return fmt.Errorf("error events: %v", errs)
		}
		return nil
	})
}

// TestMessageSentJustBeforeCloseArrives: a node that sends and closes at once (as `dt send`
// does) still delivers, because a closing link drains its queue and half-closes before the socket
// closes.
func TestMessageSentJustBeforeCloseArrives(t *testing.T) {
	keys := testKeys(t)
	hub := startNode(t, "hub", keys, "", listenOn("127.0.0.1:0"))
	const rounds = 10
	for i := range rounds {
		sender := startNode(t, fmt.Sprintf("sender%d", i), keys, "", peers(hub.addr()))
		ctx := ctxTimeout(t, 10*time.Second)
		if err := sender.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		// Keep the hub busy sending to the sender while it closes, as a real peer would be.
		if err := hub.SendMessage(ctx, map[string]int{"to-sender": i}); err != nil {
			t.Fatal(err)
		}
		if err := sender.SendMessage(ctx, map[string]int{"round": i}); err != nil {
			t.Fatal(err)
		}
		sender.stop()
	}
	waitFor(t, 5*time.Second, func() error {
		if got := len(hub.eventsOf(EventMessageReceived)); got != rounds {
			return fmt.Errorf("hub received %d of %d messages", got, rounds)
		}
		return nil
	})
}
