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
// sequence number and time already set and fills in the rest). A heartbeat that fails to encode or
// send is reported to onError (may be nil) and the loop goes on. Before returning, it sends one
// last heartbeat built with draining set, so the network stops sending visitors here before the
// node goes away (pass a ctx that ends when shutdown begins, and close the node afterwards).
func Send(ctx context.Context, m Messenger, interval time.Duration, report func(*Heartbeat), onError func(error)) {
	var seq uint64
	send := func(sendCtx context.Context, draining bool) {
		seq++
		h := Heartbeat{Seq: seq, Time: time.Now().UnixMilli()}
		report(&h)
		h.Draining = h.Draining || draining
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
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), time.Second)
			send(final, true)
			cancel()
			return
		}
	}
}
