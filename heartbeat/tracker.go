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
// (or the caller reports a lost link), is probed, and is Dead when the probe fails. A Dead edge
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

// Config tunes a Tracker. Zero values mean the defaults given per field.
type Config struct {
	// Interval is the edges' heartbeat interval. Zero: 2 s.
	Interval time.Duration
	// SuspectAfter is how long without a heartbeat makes an Alive edge Suspect. Zero: 3 × Interval
	// (three missed heartbeats).
	SuspectAfter time.Duration
	// Readmit is how many heartbeats in a row, none later than 1.5 × Interval after the previous,
	// bring a Dead edge back; one sooner than half an interval after the previous does not
	// count. Zero: 3.
	Readmit int
	// Probe checks a Suspect edge directly (its health endpoint). Nil: a Suspect edge is Dead at once.
	Probe func(ctx context.Context, e Edge) error
	// ProbeTimeout bounds one probe. Zero: 2 s.
	ProbeTimeout time.Duration
	// ForgetAfter drops a Dead edge that has sent nothing for this long. Zero: 1 h.
	ForgetAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.SuspectAfter <= 0 {
		c.SuspectAfter = 3 * c.Interval
	}
	if c.Readmit <= 0 {
		c.Readmit = 3
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.ForgetAfter <= 0 {
		c.ForgetAfter = time.Hour
	}
	return c
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
		if gap > t.cfg.Interval*3/2 {
			e.Good = 0
		}
		// A heartbeat sent out of turn (an edge switching deploys sends one at once) is a sign
		// of life but no proof of staying up: only one half an interval or more after the
		// previous counts, so readmission still takes Readmit-1 intervals.
		if e.Good == 0 || gap >= t.cfg.Interval/2 {
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
		case e.State == Alive && silent >= t.cfg.SuspectAfter:
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

// Run calls Check every quarter interval until ctx ends, then waits for probes in flight.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.Interval / 4)
	defer tick.Stop()
	defer t.wg.Wait()
	for {
		select {
		case now := <-tick.C:
			t.Check(ctx, now)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		}
	}
}

// Wait waits for probes in flight (after their context ended), for callers that use Check
// without Run.
func (t *Tracker) Wait() { t.wg.Wait() }
