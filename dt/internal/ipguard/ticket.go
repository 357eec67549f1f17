package ipguard

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"
)

// Ticket is an admitted connection's claim on a handshake slot, returned by [Guard.Admit]. End
// it with exactly one of Succeeded, Failed or Abandoned; calls after the first are ignored, so a
// deferred Abandoned is a safe fallback. Its methods are safe for concurrent use.
type Ticket struct {
	g        *Guard
	state    *keyState // nil for a never-block address
	addr     netip.Addr
	key      netip.Prefix
	window   int64        // the fixed window the connection was counted in
	subnet   netip.Prefix // the /24 or /48 whose count it holds; invalid for a known peer
	deadline time.Time
	done     atomic.Bool
}

// outcome is how a ticket ended.
type outcome int

const (
	outcomeSucceeded outcome = iota
	outcomeFailed
	outcomeAbandoned
)

// Addr returns the remote address, unmapped and without zone.
func (t *Ticket) Addr() netip.Addr { return t.addr }

// Key returns the key the connection is counted under (see [KeyOf]).
func (t *Ticket) Key() netip.Prefix { return t.key }

// Deadline returns when the handshake should be abandoned as timed out: Admit's time plus
// Config.HandshakeTimeout, or plus Config.PressureHandshakeTimeout when more than half of the
// handshake slots were taken and the address is not a known peer. The guard does not enforce
// it; set it on the connection.
func (t *Ticket) Deadline() time.Time { return t.deadline }

// Succeeded reports that the peer authenticated. It releases the slot, clears the key's
// failures and uncounts the connection from the key's unauthenticated connections.
func (t *Ticket) Succeeded() { t.end(outcomeSucceeded, "") }

// Failed reports that authentication failed: wrong network key, timeout, malformed handshake.
// Use the Fail* constants as reason where they fit; other reasons are logged as given and
// counted as "other". It releases the slot and may block the key.
func (t *Ticket) Failed(reason string) { t.end(outcomeFailed, reason) }

// Abandoned reports that the connection ended before there was anything to judge, such as a
// peer or load-balancer health check that closed without sending a byte. It releases the slot;
// the connection still counts as unauthenticated, but not as a failure.
func (t *Ticket) Abandoned() { t.end(outcomeAbandoned, "") }

func (t *Ticket) end(o outcome, reason string) {
	if t.done.Swap(true) {
		return
	}
	t.g.finish(t, o, reason)
}

// countOutcome counts how a ticket ended.
func (g *Guard) countOutcome(o outcome, reason string) {
	switch o {
	case outcomeSucceeded:
		g.m.succeeded.Inc()
	case outcomeFailed:
		g.m.failures.WithLabelValues(failureLabel(reason)).Inc()
	case outcomeAbandoned:
		g.m.abandoned.Inc()
	}
}

// logOutcome logs how a ticket ended at Debug; failures also at Info, once per burst, since a
// flood of connections that time out would otherwise log a line each.
func (g *Guard) logOutcome(t *Ticket, o outcome, reason string) {
	switch o {
	case outcomeSucceeded:
		g.debug("handshake succeeded", t.addr, t.key)
	case outcomeAbandoned:
		g.debug("connection abandoned", t.addr, t.key)
	case outcomeFailed:
		g.debug("handshake failed", t.addr, t.key, slog.String("reason", reason))
		g.failLog.Hit(context.Background(), slog.String("addr", t.addr.String()),
			slog.String("key", t.key.String()), slog.String("reason", reason))
	}
}
