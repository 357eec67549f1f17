package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// retryMS is how long a browser waits before it reconnects a dropped stream (the "retry" field
// of the Server-Sent Events format: HTML Living Standard, 9.2 Server-sent events).
const retryMS = 2000

// serveEvents streams snapshots as Server-Sent Events: one at once, one at each change of an
// edge's state, and one every Tick between changes. Each event is "event: snapshot" with the
// snapshot's JSON on one data line (json.Marshal never writes a newline).
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	if d.streams.Add(1) > int64(d.cfg.MaxStreams) {
		d.streams.Add(-1)
		http.Error(w, "too many live dashboards open", http.StatusServiceUnavailable)
		return
	}
	defer d.streams.Add(-1)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a reverse proxy in front must not hold events back
	w.WriteHeader(http.StatusOK)
	if err := d.send(w, rc, fmt.Appendf(nil, "retry: %d\n\n", retryMS)); err != nil {
		return
	}
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	for {
		// Take the channel before the snapshot, so that a change in between is not missed.
		changed := d.cfg.Edges.Changed()
		b, err := json.Marshal(d.Snapshot())
		if err != nil {
			d.log.Error("Dashboard snapshot does not encode", slog.Any("err", err))
			return
		}
		msg := make([]byte, 0, len(b)+32)
		msg = append(msg, "event: snapshot\ndata: "...)
		msg = append(append(msg, b...), "\n\n"...)
		if err := d.send(w, rc, msg); err != nil {
			d.log.Debug("Dashboard stream ended", slog.Any("err", err))
			return
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		}
	}
}

// send writes one message and flushes it, within the write timeout.
func (d *Dashboard) send(w http.ResponseWriter, rc *http.ResponseController, msg []byte) error {
	if err := rc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return rc.Flush()
}
