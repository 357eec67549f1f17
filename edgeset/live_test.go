package edgeset_test

import (
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
)

// TestLive: an edge is live while alive and its heartbeat no older than its own intervals allow,
// whatever it serves or whether it drains.
func TestLive(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := edgeset.SelectOptions{MaxAge: 6 * time.Second, MaxAgeBeats: 3}
	for _, c := range []struct {
		name string
		e    heartbeat.Edge
		want bool
	}{
		{"fresh", heartbeat.Edge{State: heartbeat.Alive, LastSeen: now.Add(-time.Second)}, true},
		{"draining, old deploy", heartbeat.Edge{State: heartbeat.Alive, LastSeen: now, Last: heartbeat.Heartbeat{Draining: true, Deploy: "x"}}, true},
		{"stale", heartbeat.Edge{State: heartbeat.Alive, LastSeen: now.Add(-7 * time.Second)}, false},
		{"stale by its own interval", heartbeat.Edge{State: heartbeat.Alive, LastSeen: now.Add(-4 * time.Second), Last: heartbeat.Heartbeat{IntervalMS: 1000}}, false},
		{"suspect", heartbeat.Edge{State: heartbeat.Suspect, LastSeen: now}, false},
	} {
		if got := edgeset.Live(&c.e, now, opts); got != c.want {
			t.Errorf("%s: Live = %v, want %v", c.name, got, c.want)
		}
	}
}
