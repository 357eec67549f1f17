package heartbeat

import (
	"context"
	"encoding/json"
	"time"
)

// Messenger sends a dt message; *dt.Node satisfies it.
type Messenger interface {
	SendMessage(ctx context.Context, v any) error
}

// Send sends a heartbeat every interval until ctx ends, filling each from report (which gets the
// sequence number and time already set and fills in the rest). Every heartbeat announces interval
// (Heartbeat.IntervalMS), so receivers judge this sender's silence by it. A heartbeat that fails to encode or
// send is reported to onError (may be nil) and the loop goes on. Before returning, it sends one
// last heartbeat built with draining set, so the network stops sending visitors here before the
// node goes away (pass a ctx that ends when shutdown begins, and close the node afterwards).
func Send(ctx context.Context, m Messenger, interval time.Duration, report func(*Heartbeat), onError func(error)) {
	SendWhen(ctx, m, interval, nil, report, onError)
}

// SendWhen is Send that also sends a heartbeat at once, out of turn, each time now receives (a
// nil now never does), for news that should not wait for the next tick: an edge that starts
// serving a new deploy is eligible for visitors only once a redirector hears so. The interval
// restarts after such a heartbeat, so the next one comes a whole interval later. An out-of-turn
// heartbeat is an ordinary heartbeat to receivers: it also counts toward a tracker's readmission.
func SendWhen(ctx context.Context, m Messenger, interval time.Duration, now <-chan struct{}, report func(*Heartbeat), onError func(error)) {
	var seq uint64
	var announced int64 // an interval Decode would refuse is not announced: receivers fall back
	if interval >= MinInterval && interval <= MaxInterval {
		announced = interval.Milliseconds()
	}
	send := func(sendCtx context.Context, draining bool) {
		seq++
		h := Heartbeat{Seq: seq, Time: time.Now().UnixMilli()}
		report(&h)
		h.Draining = h.Draining || draining
		h.IntervalMS = announced
		b, err := Encode(h)
		if err == nil {
			err = m.SendMessage(sendCtx, json.RawMessage(b))
		}
		if err != nil && onError != nil {
			onError(err)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	send(ctx, false)
	for {
		select {
		case <-t.C:
			send(ctx, false)
		case <-now:
			send(ctx, false)
			t.Reset(interval)
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), time.Second)
			send(final, true)
			cancel()
			return
		}
	}
}
