package heartbeat

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// State is what the tracker believes of an edge.
type State int

// Edge states. An edge is Alive from its first heartbeat; it becomes Suspect when heartbeats stop
// for Config.SuspectBeats of its intervals (or the caller reports a lost link), is probed, and is
// Dead when the probe fails. A Dead edge
// comes back only after Config.Readmit good heartbeats in a row, so an edge that flaps is not
// handed visitors between flaps.
const (
	Alive State = iota + 1
	Suspect
	Dead
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	}
	return "unknown"
}

// MarshalText encodes the state by name, for status JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Edge is the tracker's view of one edge.
type Edge struct {
	Node     string    `json:"node"`      // the sending node's id, from the signed message
	Last     Heartbeat `json:"last"`      // the latest heartbeat
	LastSeen time.Time `json:"last_seen"` // when it arrived, by the local clock
	State    State     `json:"state"`
	Reason   string    `json:"reason,omitempty"` // why it is Suspect or Dead
	Since    time.Time `json:"since"`            // when it entered State
	Good     int       `json:"good"`             // heartbeats in a row while Dead, toward readmission
}

// Liveness defaults, as multiples of an edge's heartbeat interval, so that they hold whatever
// interval an edge announces.
const (
	// DefaultSuspectBeats is how many heartbeats an edge may miss before it is Suspect: one lost
	// datagram or a slow flood must not take an edge out of rotation, and three intervals (6 s at
	// DefaultInterval) still moves visitors away from a dead edge within seconds.
	DefaultSuspectBeats = 3
	// DefaultReadmit is how many heartbeats in a row bring a Dead edge back: enough to show it
	// stays up, few enough that it takes visitors again within a few intervals.
	DefaultReadmit = 3
	// ReadmitGapBeats is the longest gap, in the edge's intervals, between heartbeats that count
	// toward readmission: one and a half intervals allows for jitter but not for a missed one.
	ReadmitGapBeats = 1.5
	// DefaultProbeTimeout bounds one probe: a healthy edge answers its health endpoint in
	// milliseconds, and a probe must end before the next check wants to start another.
	DefaultProbeTimeout = 2 * time.Second
	// DefaultForgetAfter is how long a Dead edge stays listed (for dashboards and status) before
	// it is dropped: long enough to be seen by an operator, short enough that retired edges go.
	DefaultForgetAfter = time.Hour
)

// Config tunes a Tracker. Zero values mean the defaults given per field. Every edge is judged by
// the interval it announces in its heartbeats (Heartbeat.IntervalMS); Interval and SuspectAfter
// apply only to edges that announce none, which predate that field.
type Config struct {
	// Interval is the heartbeat interval assumed for an edge that does not announce its own.
	// Zero: DefaultInterval.
	Interval time.Duration
	// SuspectAfter is how long without a heartbeat makes an Alive edge that announces no
	// interval Suspect. Zero: SuspectBeats × Interval.
	SuspectAfter time.Duration
	// SuspectBeats is how many of its own intervals an edge may stay silent before it is Suspect:
	// fewer notice a dead edge sooner and risk suspecting one that lost a heartbeat or two.
	// Zero: DefaultSuspectBeats.
	SuspectBeats int
	// Readmit is how many heartbeats in a row, none later than ReadmitGapBeats × the edge's
	// interval after the previous, bring a Dead edge back; one sooner than half an interval after
	// the previous does not count. Zero: DefaultReadmit.
	Readmit int
	// Probe checks a Suspect edge directly (its health endpoint). Nil: a Suspect edge is Dead at once.
	Probe func(ctx context.Context, e Edge) error
	// ProbeTimeout bounds one probe. Zero: DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// ForgetAfter drops a Dead edge that has sent nothing for this long. Zero: DefaultForgetAfter.
	ForgetAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.SuspectBeats <= 0 {
		c.SuspectBeats = DefaultSuspectBeats
	}
	if c.SuspectAfter <= 0 {
		c.SuspectAfter = time.Duration(c.SuspectBeats) * c.Interval
	}
	if c.Readmit <= 0 {
		c.Readmit = DefaultReadmit
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.ForgetAfter <= 0 {
		c.ForgetAfter = DefaultForgetAfter
	}
	return c
}

// interval is the heartbeat interval e is judged by: its own, or Config.Interval.
func (c Config) interval(e *Edge) time.Duration { return e.Last.IntervalOr(c.Interval) }

// suspectAfter is the silence after which e becomes Suspect.
func (c Config) suspectAfter(e *Edge) time.Duration {
	if e.Last.IntervalMS > 0 {
		return time.Duration(c.SuspectBeats) * c.interval(e)
	}
	return c.SuspectAfter
}

// Tracker turns heartbeats into edge states. It is safe for concurrent use. Observe feeds it;
// Check (or Run, which calls Check on a ticker) moves edges to Suspect and Dead as time passes
// and runs the probes.
type Tracker struct {
	cfg Config

	mu      sync.Mutex
	edges   map[string]*Edge // guarded by mu
	probing map[string]bool  // guarded by mu: probes in flight
	changed chan struct{}    // guarded by mu: closed and replaced on every state change

	wg sync.WaitGroup // probes
}

// NewTracker returns an empty tracker.
func NewTracker(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), edges: map[string]*Edge{}, probing: map[string]bool{}, changed: make(chan struct{})}
}

// Observe records a heartbeat from node (the id of the node that signed the message), received at
// now. Heartbeats older than the edge's latest (by Seq within one process, by Time across
// restarts) are ignored.
func (t *Tracker) Observe(node string, h Heartbeat, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.edges[node]
	if e == nil {
		t.edges[node] = &Edge{Node: node, Last: h, LastSeen: now, State: Alive, Since: now}
		t.notifyLocked()
		return
	}
	if h.Time < e.Last.Time || (h.Time == e.Last.Time && h.Seq <= e.Last.Seq) {
		return
	}
	prevSeen := e.LastSeen
	e.Last, e.LastSeen = h, now
	switch e.State {
	case Suspect:
		// It spoke again before the probe settled it.
		t.setLocked(e, Alive, "", now)
	case Dead:
		gap := now.Sub(prevSeen)
		interval := t.cfg.interval(e)
		if gap > time.Duration(float64(interval)*ReadmitGapBeats) {
			e.Good = 0
		}
		// A heartbeat sent out of turn (an edge switching deploys sends one at once) is a sign
		// of life but no proof of staying up: only one half an interval or more after the
		// previous counts, so readmission still takes Readmit-1 intervals.
		if e.Good == 0 || gap >= interval/2 {
			e.Good++
		}
		if e.Good >= t.cfg.Readmit {
			t.setLocked(e, Alive, "", now)
		}
	}
}

// Lost tells the tracker that something other than silence suggests node is gone (its dt link
// dropped): an Alive edge becomes Suspect at once and is probed at the next Check.
func (t *Tracker) Lost(node, reason string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.edges[node]; e != nil && e.State == Alive {
		t.setLocked(e, Suspect, reason, now)
	}
}

// Check applies the passage of time: silent edges become Suspect, Suspect edges are probed (in
// the background; the result lands in a later Check's view), and long-dead edges are forgotten.
func (t *Tracker) Check(ctx context.Context, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for node, e := range t.edges {
		silent := now.Sub(e.LastSeen)
		switch {
		case e.State == Alive && silent >= t.cfg.suspectAfter(e):
			t.setLocked(e, Suspect, "no heartbeat for "+silent.Round(time.Millisecond).String(), now)
		case e.State == Dead && silent >= t.cfg.ForgetAfter:
			delete(t.edges, node)
			t.notifyLocked()
			continue
		}
		if e.State == Suspect && !t.probing[node] {
			t.startProbeLocked(ctx, e, now)
		}
	}
}

func (t *Tracker) startProbeLocked(ctx context.Context, e *Edge, now time.Time) {
	if t.cfg.Probe == nil {
		t.setLocked(e, Dead, e.Reason, now)
		return
	}
	node, snapshot := e.Node, *e
	t.probing[node] = true
	t.wg.Go(func() {
		pctx, cancel := context.WithTimeout(ctx, t.cfg.ProbeTimeout)
		err := t.cfg.Probe(pctx, snapshot)
		cancel()
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.probing, node)
		cur := t.edges[node]
		if cur == nil || cur.State != Suspect {
			return // it spoke again, or was forgotten, meanwhile
		}
		if err != nil {
			reason := cur.Reason + "; probe failed: " + err.Error()
			t.setLocked(cur, Dead, reason, now)
			return
		}
		// The edge answers although its heartbeats stopped: keep it, and let the next heartbeat
		// or Check decide again.
		cur.LastSeen = now
		t.setLocked(cur, Alive, "", now)
	})
}

func (t *Tracker) setLocked(e *Edge, s State, reason string, now time.Time) {
	if e.State == s && e.Reason == reason {
		return
	}
	e.State, e.Reason, e.Since = s, reason, now
	e.Good = 0
	t.notifyLocked()
}

func (t *Tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// Edges returns a snapshot of every edge, sorted by node id.
func (t *Tracker) Edges() []Edge {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Edge, 0, len(t.edges))
	for _, e := range t.edges {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Edge) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Changed returns a channel closed at the next state change (an edge appearing, changing state or
// being forgotten), for pushing live updates.
func (t *Tracker) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Run calls Check every quarter of the shortest interval among Config.Interval and the edges'
// announced ones, until ctx ends, then waits for probes in flight.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTimer(t.checkEvery())
	defer tick.Stop()
	defer t.wg.Wait()
	for {
		select {
		case now := <-tick.C:
			t.Check(ctx, now)
			tick.Reset(t.checkEvery())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		}
	}
}

// checkEvery is Run's period: a quarter of the shortest interval it judges an edge by, so that a
// silent edge is suspected at most a quarter interval late.
func (t *Tracker) checkEvery() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	shortest := t.cfg.Interval
	for _, e := range t.edges {
		shortest = min(shortest, t.cfg.interval(e))
	}
	return shortest / 4
}

// Wait waits for probes in flight (after their context ended), for callers that use Check
// without Run.
func (t *Tracker) Wait() { t.wg.Wait() }
