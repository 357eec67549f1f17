package resolve

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testdns"
)

// relay stands for the network between two nodes: what one node sends arrives at the other as a
// message_received event signed by the sender.
type relay struct {
	from    dt.NodeID
	deliver func(dt.Event)
	sent    atomic.Int32
}

func (r *relay) SendMessage(_ context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.sent.Add(1)
	r.deliver(dt.Event{Type: dt.EventMessageReceived, From: r.from, Object: b})
	return nil
}

// TestGatherReachesALateNode loses the first send of a request (the other node had not linked
// yet) and checks that Gather's repeat reaches it: its answer and the asking machine's own are
// both gathered, and Gather returns as soon as the expected two are in.
func TestGatherReachesALateNode(t *testing.T) {
	lookup := (&Stub{Servers: []string{testdns.MXResolver(t, "mail.example.com.")}}).Lookup
	asker, other := nodeID(1), nodeID(2)
	req, err := NewRequest(asker, "example.com", "MX", rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := NewCollector(req)
	back := &relay{from: other, deliver: c.HandleEvent}
	r, err := NewResponder(ResponderConfig{Node: back, Self: other, Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	out := &relay{from: asker, deliver: r.HandleEvent}

	began := time.Now()
	answers := Gather(context.Background(), c, GatherConfig{Node: out, Self: asker, Lookup: lookup, Timeout: 20 * time.Second, Expect: 2, Resend: 20 * time.Millisecond})
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("Gather took %s with both answers in: it did not stop at Expect", took)
	}
	if len(answers) != 2 || answers[0].Node != asker.String() || answers[1].Node != other.String() {
		t.Fatalf("answers %+v, want the asker's and the other node's", answers)
	}
	for _, a := range answers {
		if a.Error != "" || len(a.Records) != 1 || a.Records[0] != "example.com. MX 10 mail.example.com." {
			t.Errorf("answer %+v", a)
		}
	}
	if out.sent.Load() < 1 {
		t.Error("the request was never sent again")
	}
	if back.sent.Load() != 1 {
		t.Errorf("the other node answered %d times, want once", back.sent.Load())
	}
}

// TestGatherWaitsOutTheTimeout checks that without Expect, Gather waits the whole Timeout,
// repeating the request meanwhile, and returns what it has.
func TestGatherWaitsOutTheTimeout(t *testing.T) {
	req, err := NewRequest(nodeID(1), "example.com", "A", rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := &relay{from: nodeID(1), deliver: func(dt.Event) {}}
	began := time.Now()
	answers := Gather(context.Background(), NewCollector(req), GatherConfig{Node: out, Timeout: 300 * time.Millisecond, Resend: 50 * time.Millisecond})
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("Gather returned after %s, before its timeout", took)
	}
	if len(answers) != 0 {
		t.Errorf("answers %+v from nowhere", answers)
	}
	if n := out.sent.Load(); n < 2 {
		t.Errorf("%d repeats in 300 ms at one per 50 ms", n)
	}
}
