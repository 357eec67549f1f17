package resolve

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testdns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func nodeID(b byte) dt.NodeID {
	var id dt.NodeID
	for i := range id {
		id[i] = b
	}
	return id
}

func TestRequestAnswerRoundTrip(t *testing.T) {
	req, err := NewRequest(nodeID(1), "Example.COM", "mx", rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if req.Name != "example.com." || req.QType != "MX" || req.QueryType() != dns.TypeMX {
		t.Errorf("request %+v", req)
	}
	b, _ := json.Marshal(req)
	back, err := DecodeRequest(b)
	if err != nil || back != req {
		t.Fatalf("decode: %+v %v", back, err)
	}
	if _, err := DecodeAnswer(b); !errors.Is(err, ErrNotResolve) {
		t.Errorf("a request decoded as an answer: %v", err)
	}
	if _, err := DecodeRequest([]byte(`{"type":"heartbeat"}`)); !errors.Is(err, ErrNotResolve) {
		t.Errorf("heartbeat: %v", err)
	}
	for _, qt := range []string{"ANY", "AXFR", "OPT", "nonsense"} {
		if _, err := NewRequest(nodeID(1), "example.com", qt, rand.Reader, time.Now()); err == nil {
			t.Errorf("type %s accepted", qt)
		}
	}
	if _, err := NewRequest(nodeID(1), "a..b", "A", rand.Reader, time.Now()); err == nil {
		t.Error("bad name accepted")
	}

	addr := testdns.MXResolver(t, "mail.example.com.")
	a := Resolve(context.Background(), (&Stub{Servers: []string{addr}}).Lookup, req, nodeID(2), 2*time.Second)
	if a.Error != "" || a.Rcode != "NOERROR" || !slices.Equal(a.Records, []string{"example.com. MX 10 mail.example.com."}) {
		t.Fatalf("answer %+v", a)
	}
	b, _ = json.Marshal(a)
	if back, err := DecodeAnswer(b); err != nil || back.Node != nodeID(2).String() || back.To != req.From {
		t.Fatalf("decode answer: %+v %v", back, err)
	}
	// A resolver that does not answer gives an answer with an error, not a response code.
	dead := Resolve(context.Background(), (&Stub{Servers: []string{"127.0.0.1:1"}, Timeout: 200 * time.Millisecond}).Lookup, req, nodeID(3), time.Second)
	if dead.Error == "" || dead.Rcode != "" {
		t.Errorf("dead resolver: %+v", dead)
	}
	b, _ = json.Marshal(dead)
	if _, err := DecodeAnswer(b); err != nil {
		t.Errorf("an error answer does not decode: %v", err)
	}
}

func TestCompare(t *testing.T) {
	ok := func(node string, recs ...string) Answer { return Answer{Node: node, Rcode: "NOERROR", Records: recs} }
	r := Compare([]Answer{ok("a", "x"), ok("b", "x"), ok("c", "x")})
	if !r.Agree || r.Majority == nil || len(r.Dissent) != 0 {
		t.Errorf("agreeing nodes: %+v", r)
	}
	r = Compare([]Answer{ok("a", "x"), ok("b", "y"), ok("c", "x"), {Node: "d", Error: "timeout"}})
	if r.Agree || r.Majority == nil || !slices.Equal(r.Majority.Nodes, []string{"a", "c"}) || !slices.Equal(r.Dissent, []string{"b"}) || r.Failed["d"] != "timeout" {
		t.Errorf("one liar: %+v", r)
	}
	r = Compare([]Answer{ok("a", "x"), ok("b", "y")})
	if r.Agree || r.Majority != nil || !slices.Equal(r.Dissent, []string{"a", "b"}) {
		t.Errorf("a tie: %+v", r)
	}
	r = Compare([]Answer{ok("a", "x"), {Node: "b", Rcode: "NXDOMAIN", Records: []string{}}})
	if r.Agree {
		t.Error("NXDOMAIN and an answer agree")
	}
}

// messages records what a Responder sends.
type messages struct {
	mu   sync.Mutex
	sent []json.RawMessage
	got  chan struct{}
}

func (m *messages) SendMessage(_ context.Context, v any) error {
	m.mu.Lock()
	m.sent = append(m.sent, v.(json.RawMessage))
	m.mu.Unlock()
	m.got <- struct{}{}
	return nil
}

func TestResponder(t *testing.T) {
	addr := testdns.MXResolver(t, "mail.example.com.")
	out := &messages{got: make(chan struct{}, 100)}
	self := nodeID(9)
	r, err := NewResponder(ResponderConfig{Node: out, Self: self, Lookup: (&Stub{Servers: []string{addr}}).Lookup, PerOrigin: 0.001, PerOriginBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	event := func(from dt.NodeID, req Request) dt.Event {
		b, _ := json.Marshal(req)
		return dt.Event{Type: dt.EventMessageReceived, From: from, Object: b}
	}
	asker := nodeID(1)
	req, _ := NewRequest(asker, "example.com", "MX", rand.Reader, time.Now())
	r.HandleEvent(event(asker, req))
	r.HandleEvent(event(asker, req)) // a duplicate: dropped
	forged, _ := NewRequest(nodeID(7), "example.com", "MX", rand.Reader, time.Now())
	r.HandleEvent(event(asker, forged)) // in another node's name: dropped
	for range 5 {                       // over the burst of 2: one more answered, the rest dropped
		again, _ := NewRequest(asker, "example.com", "MX", rand.Reader, time.Now())
		r.HandleEvent(event(asker, again))
	}
	for range 2 {
		select {
		case <-out.got:
		case <-time.After(5 * time.Second):
			t.Fatal("no answer sent")
		}
	}
	select {
	case <-out.got:
		t.Fatal("a third answer: the duplicate, the forged request or the rate limit let one through")
	case <-time.After(300 * time.Millisecond):
	}
	// Two workers answered; find the first request's answer.
	var (
		a   Answer
		raw json.RawMessage
	)
	for _, m := range out.sent {
		if got, err := DecodeAnswer(m); err != nil {
			t.Fatal(err)
		} else if got.ID == req.ID {
			a, raw = got, m
		}
	}
	if a.Node != self.String() || a.To != asker.String() || a.ID != req.ID || len(a.Records) != 1 {
		t.Errorf("answer %+v", a)
	}
	c := NewCollector(req)
	c.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: nodeID(8), Object: raw}) // signed by another node than it names
	if n, _ := c.Count(); n != 0 {
		t.Error("the collector kept an answer whose signer is not the node it names")
	}
	c.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: self, Object: raw})
	if n, _ := c.Count(); n != 1 {
		t.Error("the collector dropped a good answer")
	}
}
