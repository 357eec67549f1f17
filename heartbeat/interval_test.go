package heartbeat

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// announcing is a heartbeat of an edge that announces interval.
func announcing(seq uint64, at time.Time, interval time.Duration) Heartbeat {
	h := beat(seq, at)
	h.IntervalMS = interval.Milliseconds()
	return h
}

// TestTrackerJudgesEdgeByItsInterval runs a receiver configured for 2 s beside an edge that
// announces 10 s: three of its own intervals pass before it is suspected, not three of the
// receiver's, and its readmission counts its own gaps.
func TestTrackerJudgesEdgeByItsInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var probes atomic.Int32
		tr := NewTracker(Config{Interval: 2 * time.Second, Probe: func(context.Context, Edge) error {
			probes.Add(1)
			return errors.New("connection refused")
		}})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go tr.Run(ctx)
		const slow = 10 * time.Second
		start := time.Now()
		tr.Observe("slow", announcing(1, start, slow), start)
		for i := range 2 { // two heartbeats on time, 10 s apart: five of the receiver's intervals
			time.Sleep(slow)
			now := time.Now()
			tr.Observe("slow", announcing(uint64(i+2), now, slow), now)
			synctest.Wait()
			if s := stateOf(t, tr, "slow"); s != Alive || probes.Load() != 0 {
				t.Fatalf("heartbeat %d on its 10 s schedule: %v, %d probes", i+2, s, probes.Load())
			}
		}
		time.Sleep(29 * time.Second) // under three missed 10 s heartbeats
		synctest.Wait()
		if s := stateOf(t, tr, "slow"); s != Alive {
			t.Fatalf("after 29 s of silence: %v, want alive", s)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s := stateOf(t, tr, "slow"); s != Dead {
			t.Fatalf("after 31 s of silence and a failed probe: %v, want dead", s)
		}
		// Readmission: heartbeats 10 s apart are in a row for this edge (a 2 s receiver would
		// count each as a gap after a missed one and never readmit it).
		for i := range DefaultReadmit {
			if i > 0 {
				time.Sleep(slow)
			}
			now := time.Now()
			tr.Observe("slow", announcing(uint64(10+i), now, slow), now)
		}
		if s := stateOf(t, tr, "slow"); s != Alive {
			t.Fatalf("after %d heartbeats 10 s apart: %v, want alive", DefaultReadmit, s)
		}
	})
}

// TestTrackerFallsBackForEdgeWithoutInterval checks that an edge that announces no interval (an
// edge of an earlier release) is judged by the receiver's configured one, beside one that does.
func TestTrackerFallsBackForEdgeWithoutInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := NewTracker(Config{Interval: time.Second}) // no probe: a Suspect edge is Dead at once
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go tr.Run(ctx)
		start := time.Now()
		tr.Observe("old", beat(1, start), start)
		tr.Observe("new", announcing(1, start, 5*time.Second), start)
		time.Sleep(2900 * time.Millisecond)
		synctest.Wait()
		if s := stateOf(t, tr, "old"); s != Alive {
			t.Fatalf("old edge after 2.9 s: %v, want alive", s)
		}
		time.Sleep(400 * time.Millisecond)
		synctest.Wait()
		if s := stateOf(t, tr, "old"); s != Dead {
			t.Fatalf("old edge after 3.3 s (three of the receiver's 1 s intervals): %v, want dead", s)
		}
		if s := stateOf(t, tr, "new"); s != Alive {
			t.Fatalf("edge announcing 5 s after 3.3 s: %v, want alive", s)
		}
	})
}

// TestIntervalOnTheWire checks the field's encoding: announced by Send, absent in an old
// heartbeat (which still decodes), refused out of range.
func TestIntervalOnTheWire(t *testing.T) {
	old := `{"type":"heartbeat","v":1,"seq":1,"time":1700000000000,"url":"https://e.example","synced":true,"objects":0,"bytes":0,"disk_free":0,"load":{"cpu":0,"rps":0,"bps":0,"err5xx":0}}`
	h, err := Decode([]byte(old))
	if err != nil {
		t.Fatalf("heartbeat without interval_ms: %v", err)
	}
	if h.IntervalMS != 0 || h.IntervalOr(7*time.Second) != 7*time.Second {
		t.Fatalf("heartbeat without interval_ms: %d ms, IntervalOr %v", h.IntervalMS, h.IntervalOr(7*time.Second))
	}
	h = sample()
	h.IntervalMS = 10_000
	b, err := Encode(h)
	if err != nil || !strings.Contains(string(b), `"interval_ms":10000`) {
		t.Fatalf("encode: %v %s", err, b)
	}
	if got, err := Decode(b); err != nil || got.IntervalOr(time.Second) != 10*time.Second {
		t.Fatalf("decode: %v, %v", err, got.IntervalOr(time.Second))
	}
	for _, ms := range []int64{-1, MinInterval.Milliseconds() - 1, MaxInterval.Milliseconds() + 1} {
		h.IntervalMS = ms
		if _, err := Encode(h); !errors.Is(err, ErrInvalid) {
			t.Errorf("interval %d ms: %v, want ErrInvalid", ms, err)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		for _, tt := range []struct {
			interval time.Duration
			want     int64
		}{{3 * time.Second, 3000}, {MinInterval / 2, 0}} {
			m := &recordingMessenger{}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				Send(ctx, m, tt.interval, func(h *Heartbeat) { h.PublicURL = "https://e1.example" }, func(err error) { t.Error(err) })
			}()
			synctest.Wait()
			cancel()
			<-done
			m.mu.Lock()
			for _, h := range m.sent {
				if h.IntervalMS != tt.want {
					t.Errorf("Send every %v announced %d ms, want %d", tt.interval, h.IntervalMS, tt.want)
				}
			}
			m.mu.Unlock()
		}
	})
}
