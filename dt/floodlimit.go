package dt

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt/internal/ipguard"
	"github.com/dt-cdn/dt/internal/burstlog"
)

// Flooded messages pass three budgets before their signature is checked (see the package
// documentation, "Flood limits"): their origin's, the budget for new origins of the neighbour
// that delivered them, and that neighbour's own. Identities cost nothing to make for a holder of
// the network key, so only the neighbour budgets bound a flood; the per-origin budget keeps one
// established origin from taking a whole link.

// maxNeighbours bounds the neighbour budgets remembered after their links end. A neighbour is an
// address or a dialed peer, so only an attacker with that many addresses can push an old one out,
// and the one pushed out comes back with a full budget.
const maxNeighbours = 4096

// dropReason says why a flooded message was dropped: the label of messages_dropped_total.
type dropReason string

const (
	dropNone       dropReason = ""
	dropWindow     dropReason = "window"      // timestamp outside MessageWindow
	dropDuplicate  dropReason = "duplicate"   // id seen already
	dropOriginRate dropReason = "origin_rate" // the origin is over MessageRate
	dropNewOrigin  dropReason = "new_origin"  // the neighbour introduced too many new origins
	dropLinkRate   dropReason = "link_rate"   // the neighbour is over LinkMessageRate
)

var dropReasons = []dropReason{dropWindow, dropDuplicate, dropOriginRate, dropNewOrigin, dropLinkRate}

// neighbourKey names whom a link's budget belongs to: for a link the peer dialed to us, its
// address key (an IPv4 address or IPv6 /64), so that identities minted per connection share one
// budget; for a link we dialed, the peer's identity, which we chose.
type neighbourKey struct {
	addr netip.Prefix
	peer NodeID
}

func neighbourOf(l *link) neighbourKey {
	if l.dialed {
		return neighbourKey{peer: l.peer}
	}
	if ap := addrPortOf(l.remote); ap.IsValid() {
		return neighbourKey{addr: ipguard.KeyOf(ap.Addr())}
	}
	return neighbourKey{peer: l.peer}
}

// neighbourBudget is what one neighbour may send, shared by all its links. Its limiters are safe
// for concurrent use.
type neighbourBudget struct {
	msgs       *rate.Limiter // three quarters of LinkMessageRate: any message
	reserve    *rate.Limiter // the last quarter: messages of quiet origins only
	newOrigins *rate.Limiter // messages from origins this node does not know yet
}

// originBudget is what one origin may send through this node.
type originBudget struct {
	msgs  *rate.Limiter // MessageRate
	quiet quietMeter    // guarded by floodLimits.mu
}

// quietMeter tells whether an origin sends at most QuietOriginRate. It is a leaky bucket that
// every message fills, whether it passes or not, so an origin that sends faster never counts as
// quiet, not even for the share of its messages a token bucket would let through; its level is
// capped at twice the burst, so an origin that stops flooding is quiet again within seconds.
type quietMeter struct {
	level float64
	last  time.Time
}

// add counts one message at now and reports whether the origin is quiet.
func (q *quietMeter) add(now time.Time, r rate.Limit, burst int) bool {
	if !q.last.IsZero() {
		q.level = max(0, q.level-float64(r)*now.Sub(q.last).Seconds())
	}
	q.last = now
	q.level = min(q.level+1, float64(2*burst))
	return q.level <= float64(burst)
}

// floodLimits holds the budgets. The maps are bounded: the least recently used entry is
// forgotten for room, never all of them at once.
type floodLimits struct {
	cfg *Config

	mu         sync.Mutex
	origins    *lru[NodeID, *originBudget]          // guarded by mu
	neighbours *lru[neighbourKey, *neighbourBudget] // guarded by mu
}

func newFloodLimits(cfg *Config) *floodLimits {
	return &floodLimits{cfg: cfg, origins: newLRU[NodeID, *originBudget](cfg.MaxOrigins),
		neighbours: newLRU[neighbourKey, *neighbourBudget](maxNeighbours)}
}

// neighbour returns the budget of k, created full when k is not remembered.
func (f *floodLimits) neighbour(k neighbourKey) *neighbourBudget {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.neighbours.get(k); ok {
		return b
	}
	reserveBurst := max(1, f.cfg.LinkMessageBurst/4)
	b := &neighbourBudget{
		msgs:       rate.NewLimiter(f.cfg.LinkMessageRate*3/4, max(1, f.cfg.LinkMessageBurst-reserveBurst)),
		reserve:    rate.NewLimiter(f.cfg.LinkMessageRate/4, reserveBurst),
		newOrigins: rate.NewLimiter(f.cfg.NewOriginRate, f.cfg.NewOriginBurst),
	}
	f.neighbours.put(k, b)
	return b
}

// admit decides whether a message from origin, delivered by the neighbour whose budget is nb,
// goes on. own says the origin is the neighbour itself (authenticated by the link), which
// needs no new-origin token.
//
// The checks run from the narrowest budget to the widest, so a message refused by its origin's
// or the new-origin budget spends none of the neighbour's: a flood from identities made per
// message is dropped at the new-origin budget and leaves the neighbour's budget to the
// established origins it relays. A quarter of the neighbour's budget is kept for quiet origins
// (at most QuietOriginRate, as heartbeats are), so that established origins flooding through
// the same neighbour cannot starve them either: taking the reserve as well takes as many
// established identities as the reserve's rate over QuietOriginRate, each introduced at no more
// than NewOriginRate.
func (f *floodLimits) admit(nb *neighbourBudget, origin NodeID, own bool, now time.Time) dropReason {
	f.mu.Lock()
	ob, ok := f.origins.get(origin)
	if !ok {
		if !own && !nb.newOrigins.AllowN(now, 1) {
			f.mu.Unlock()
			return dropNewOrigin
		}
		ob = &originBudget{msgs: rate.NewLimiter(f.cfg.MessageRate, f.cfg.MessageBurst)}
		f.origins.put(origin, ob)
	}
	quiet := ob.quiet.add(now, f.cfg.QuietOriginRate, quietBurst(f.cfg.QuietOriginRate))
	f.mu.Unlock()
	if !ob.msgs.AllowN(now, 1) {
		return dropOriginRate
	}
	if quiet && nb.reserve.AllowN(now, 1) {
		return dropNone
	}
	if !nb.msgs.AllowN(now, 1) {
		return dropLinkRate
	}
	return dropNone
}

// quietBurst is the burst of a quiet origin: five seconds of QuietOriginRate, so that a
// heartbeat sent together with a few other messages still counts as quiet.
func quietBurst(r rate.Limit) int { return max(1, int(5*r)) }

// sizes returns the number of origins and neighbours tracked, and how many origins were
// forgotten for room.
func (f *floodLimits) sizes() (origins, neighbours int, evicted uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.origins.len(), f.neighbours.len(), f.origins.evicted
}

// dropLogs logs each reason for dropping messages once per burst.
type dropLogs map[dropReason]*burstlog.Logger

func newDropLogs(log *slog.Logger) dropLogs {
	d := dropLogs{}
	for _, r := range dropReasons {
		if r == dropDuplicate {
			continue // duplicates are how flooding works, not a limit
		}
		d[r] = &burstlog.Logger{Log: log, Level: slog.LevelWarn, Msg: "Flooded messages dropped"}
	}
	return d
}

// dropMessage counts a dropped message and, once per burst of its reason, logs it and reports it
// to the application as an error event. Reporting every drop would let a flood fill the event
// queue, which waits in memory for the application.
func (n *Node) dropMessage(from *link, origin NodeID, r dropReason) {
	n.metrics.messagesDropped.WithLabelValues(string(r)).Inc()
	bl := n.dropLogs[r]
	if bl == nil {
		return
	}
	if bl.Hit(context.Background(), slog.String("reason", string(r)), slog.Any("origin", origin),
		slog.Any("peer", from.peer), slog.String("remote", from.remote.String())) {
		n.emitError(fmt.Errorf("dt: messages from %s via %s dropped: %s (see dt_messages_dropped_total)", origin.Short(), from.peer.Short(), r),
			"peer "+from.remote.String(), nil)
	}
}
