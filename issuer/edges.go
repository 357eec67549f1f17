package issuer

import (
	"context"
	"strings"
	"time"

	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
)

// edgeWatch follows the edges' heartbeats, to know when every live edge holds the challenge
// records the issuer wrote (Heartbeat.ACMEDigest). HandleEvent is called by one goroutine, in
// order; the tracker is safe for concurrent use.
type edgeWatch struct {
	tracker *heartbeat.Tracker
}

func newEdgeWatch() *edgeWatch {
	return &edgeWatch{tracker: heartbeat.NewTracker(heartbeat.Config{})}
}

// HandleEvent takes the node's events; only heartbeats matter.
func (w *edgeWatch) HandleEvent(ev dt.Event) {
	if ev.Type != dt.EventMessageReceived {
		return
	}
	if h, err := heartbeat.Decode(ev.Object); err == nil {
		w.tracker.Observe(ev.From.String(), h, time.Now())
	}
}

// lagging returns the live edges whose latest heartbeat does not report digest, among those
// that report challenge records at all (edges of earlier releases answer no challenge, and
// are not waited for).
func (w *edgeWatch) lagging(ctx context.Context, digest string, now time.Time) []string {
	w.tracker.Check(ctx, now)
	var out []string
	for _, e := range w.tracker.Edges() {
		if e.State != heartbeat.Alive || e.Last.ACMEDigest == "" {
			continue
		}
		if e.Last.ACMEDigest != digest {
			out = append(out, e.Node)
		}
	}
	return out
}

// liveChallengeDigest is challenge.Digest of the live challenge records t holds: what every
// edge holding the same records reports.
func liveChallengeDigest(ctx context.Context, t Table, now time.Time) string {
	var keys []string
	for k := range t.ObjectKeys() {
		if !strings.HasPrefix(k, challenge.KeyPrefix) {
			continue
		}
		b, err := t.Get(ctx, k)
		if err != nil {
			continue
		}
		if r, err := challenge.ParseDNS01At(k, b); err == nil && r.Live(now) {
			keys = append(keys, k)
		} else if r, err := challenge.ParseHTTP01At(k, b); err == nil && r.Live(now) {
			keys = append(keys, k)
		}
	}
	return challenge.Digest(keys)
}
