package heartbeat

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func beat(seq uint64, at time.Time) Heartbeat {
	return Heartbeat{Type: Type, V: Version, Seq: seq, Time: at.UnixMilli(), PublicURL: "https://e.example"}
}

func stateOf(t *testing.T, tr *Tracker, node string) State {
	t.Helper()
	for _, e := range tr.Edges() {
		if e.Node == node {
			return e.State
		}
	}
	return 0
}

func TestSilentEdgeIsProbedAndDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var probes atomic.Int32
		tr := NewTracker(Config{Probe: func(ctx context.Context, e Edge) error {
			probes.Add(1)
			return errors.New("connection refused")
		}})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go tr.Run(ctx)
		start := time.Now()
		tr.Observe("e1", beat(1, start), start)
		if s := stateOf(t, tr, "e1"); s != Alive {
			t.Fatalf("first heartbeat: %v", s)
		}
		time.Sleep(5900 * time.Millisecond)
		synctest.Wait()
		if s := stateOf(t, tr, "e1"); s != Alive {
			t.Fatalf("after 2 missed heartbeats: %v", s)
		}
		time.Sleep(600 * time.Millisecond)
		synctest.Wait()
		if s := stateOf(t, tr, "e1"); s != Dead || probes.Load() != 1 {
			t.Fatalf("after 3 missed heartbeats and a failed probe: %v, %d probes", s, probes.Load())
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if len(tr.Edges()) != 0 {
			t.Fatal("a dead edge silent for an hour is still tracked")
		}
	})
}

func TestProbeThatAnswersKeepsEdge(t *testing.T) {
	tr := NewTracker(Config{Probe: func(context.Context, Edge) error { return nil }})
	now := time.Unix(1000, 0)
	tr.Observe("e1", beat(1, now), now)
	tr.Check(context.Background(), now.Add(7*time.Second))
	tr.Wait()
	if s := stateOf(t, tr, "e1"); s != Alive {
		t.Fatalf("an edge that answers its probe is %v", s)
	}
}

func TestDeadEdgeNeedsThreeGoodHeartbeatsInARow(t *testing.T) {
	tr := NewTracker(Config{}) // no probe: silent edges die at once
	now := time.Unix(1000, 0)
	tr.Observe("e1", beat(1, now), now)
	now = now.Add(7 * time.Second)
	tr.Check(context.Background(), now)
	if s := stateOf(t, tr, "e1"); s != Dead {
		t.Fatalf("silent edge is %v", s)
	}
	seq := uint64(1)
	next := func(gap time.Duration) State {
		now = now.Add(gap)
		seq++
		tr.Observe("e1", beat(seq, now), now)
		return stateOf(t, tr, "e1")
	}
	if first, second := next(2*time.Second), next(2*time.Second); first != Dead || second != Dead {
		t.Fatal("readmitted before three heartbeats")
	}
	if s := next(5 * time.Second); s != Dead { // a gap breaks the run
		t.Fatalf("after a gap: %v", s)
	}
	if next(2*time.Second) != Dead || next(2*time.Second) != Alive {
		t.Fatal("not readmitted after three heartbeats in a row")
	}
}

func TestOutOfTurnHeartbeatsDoNotShortenReadmission(t *testing.T) {
	tr := NewTracker(Config{})
	now := time.Unix(1000, 0)
	tr.Observe("e1", beat(1, now), now)
	now = now.Add(7 * time.Second)
	tr.Check(context.Background(), now)
	seq := uint64(1)
	next := func(gap time.Duration) State {
		now = now.Add(gap)
		seq++
		tr.Observe("e1", beat(seq, now), now)
		return stateOf(t, tr, "e1")
	}
	// Back after a restart: a heartbeat, one out of turn 300 ms later (a deploy switch), then the
	// regular ones.
	if next(time.Second) != Dead || next(300*time.Millisecond) != Dead || next(2*time.Second) != Dead {
		t.Fatal("readmitted within one interval of coming back")
	}
	if s := next(2 * time.Second); s != Alive {
		t.Fatalf("not readmitted after three regular heartbeats: %v", s)
	}
}

func TestLostLinkSuspectsAtOnceAndOldBeatsAreIgnored(t *testing.T) {
	tr := NewTracker(Config{Probe: func(context.Context, Edge) error { return errors.New("refused") }})
	now := time.Unix(1000, 0)
	tr.Observe("e1", beat(5, now), now)
	tr.Observe("e1", beat(4, now.Add(-time.Second)), now.Add(time.Second)) // late, older: ignored
	if e := tr.Edges()[0]; e.Last.Seq != 5 {
		t.Fatalf("an older heartbeat replaced a newer one: seq %d", e.Last.Seq)
	}
	ch := tr.Changed()
	tr.Lost("e1", "link closed", now.Add(time.Second))
	select {
	case <-ch:
	default:
		t.Fatal("no change notification")
	}
	if s := stateOf(t, tr, "e1"); s != Suspect {
		t.Fatalf("after a lost link: %v", s)
	}
	tr.Check(context.Background(), now.Add(time.Second))
	tr.Wait()
	if s := stateOf(t, tr, "e1"); s != Dead {
		t.Fatalf("after a failed probe: %v", s)
	}
}
