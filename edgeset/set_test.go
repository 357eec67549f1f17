package edgeset_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runSet starts a Set on a lone dt node; tests feed it the events a network would bring.
func runSet(t *testing.T, cfg edgeset.Config) *edgeset.Set {
	t.Helper()
	_, plain := testnet.Keys(t)
	n := testnet.Node(t, testnet.Options{Keys: plain, LazyBodies: true})
	testnet.Drain(n)
	cfg.Node = n
	s, err := edgeset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// deliver hands s one heartbeat from node i, as the node's event loop would.
func deliver(t *testing.T, s *edgeset.Set, i byte, h heartbeat.Heartbeat) {
	t.Helper()
	b, err := heartbeat.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	var from dt.NodeID
	from[0], from[15] = 0xed, i
	s.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: from, Object: b})
}

func edgeStatus(s *edgeset.Set, name string) (edgeset.EdgeStatus, error) {
	for _, e := range s.Status().Edges {
		if e.Last.Name == name {
			return e, nil
		}
	}
	return edgeset.EdgeStatus{}, fmt.Errorf("edge %s not tracked", name)
}

// TestSetMixedIntervals runs a Set configured for 100 ms heartbeats beside an edge that
// announces 10 s and one that announces nothing (an edge of an earlier release): the second is
// judged by the Set's 100 ms and dies after three silent intervals, while the first, silent for
// as long, stays alive and eligible.
func TestSetMixedIntervals(t *testing.T) {
	const receiver = 100 * time.Millisecond
	s := runSet(t, edgeset.Config{HeartbeatInterval: receiver,
		Probe: func(context.Context, heartbeat.Edge) error { return errors.New("refused") }})
	deploy := site.DeployIDOf([]byte("deploy"))
	b, err := site.Current{Deploy: deploy, Time: time.Now()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.CurrentKey, Object: b})
	beat := func(name string, interval time.Duration) heartbeat.Heartbeat {
		return heartbeat.Heartbeat{Seq: 1, Time: time.Now().UnixMilli(), Name: name, PublicURL: "http://" + name + ".example",
			Deploy: deploy.String(), Synced: true, IntervalMS: interval.Milliseconds()}
	}
	start := time.Now()
	deliver(t, s, 1, beat("slow", 10*time.Second))
	deliver(t, s, 2, beat("old", 0))
	for _, name := range []string{"slow", "old"} {
		if e, err := edgeStatus(s, name); err != nil || !e.Eligible {
			t.Fatalf("%s after its heartbeat: %+v, %v", name, e, err)
		}
	}
	wait.For(t, 5*time.Second, func() error {
		if e, err := edgeStatus(s, "old"); err != nil || e.State != heartbeat.Dead || e.Eligible {
			return fmt.Errorf("old edge: %v, eligible %v, %v", e.State, e.Eligible, err)
		}
		return nil
	})
	silent := time.Since(start)
	if silent < 3*receiver {
		t.Fatalf("old edge dead after %v, under three of the receiver's intervals", silent)
	}
	e, err := edgeStatus(s, "slow")
	if err != nil || e.State != heartbeat.Alive || !e.Eligible {
		t.Fatalf("edge announcing 10 s, silent %v beside a 100 ms receiver: %v, eligible %v (%s), %v",
			silent, e.State, e.Eligible, e.Excluded, err)
	}
}
