package heartbeat

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type recordingMessenger struct {
	mu   sync.Mutex
	sent []Heartbeat
}

func (r *recordingMessenger) SendMessage(_ context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h, err := Decode(b)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sent = append(r.sent, h)
	r.mu.Unlock()
	return nil
}

func TestSendEveryIntervalThenDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &recordingMessenger{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Send(ctx, m, 2*time.Second, func(h *Heartbeat) { h.PublicURL = "https://e1.example"; h.Deploy = "d1"; h.Synced = true }, func(err error) { t.Error(err) })
		}()
		time.Sleep(5 * time.Second) // beats at 0, 2 and 4 s
		synctest.Wait()
		cancel()
		<-done
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.sent) != 4 {
			t.Fatalf("sent %d heartbeats, want 3 and a draining one", len(m.sent))
		}
		for i, h := range m.sent {
			if h.Seq != uint64(i+1) || h.Deploy != "d1" || !h.Synced {
				t.Fatalf("heartbeat %d: %+v", i, h)
			}
			if h.Draining != (i == 3) {
				t.Fatalf("heartbeat %d draining=%v", i, h.Draining)
			}
		}
	})
}

// TestSendWhenSendsAtOnce checks that a kick sends a heartbeat out of turn and restarts the
// interval.
func TestSendWhenSendsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &recordingMessenger{}
		ctx, cancel := context.WithCancel(t.Context())
		now := make(chan struct{}, 1)
		done := make(chan struct{})
		began := time.Now()
		var (
			mu    sync.Mutex
			times []time.Duration
		)
		go func() {
			defer close(done)
			SendWhen(ctx, m, 2*time.Second, now, func(h *Heartbeat) {
				mu.Lock()
				times = append(times, time.Since(began))
				mu.Unlock()
				h.PublicURL = "https://e1.example"
			}, func(err error) { t.Error(err) })
		}()
		time.Sleep(500 * time.Millisecond)
		now <- struct{}{}
		time.Sleep(3 * time.Second) // the next regular beat: 2 s after the kick, at 2.5 s
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		want := []time.Duration{0, 500 * time.Millisecond, 2500 * time.Millisecond, 3500 * time.Millisecond}
		if len(times) != len(want) {
			t.Fatalf("heartbeats at %v, want %v (the last one draining)", times, want)
		}
		for i := range want {
			if times[i] != want[i] {
				t.Fatalf("heartbeats at %v, want %v", times, want)
			}
		}
	})
}
