package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// ErrPeersFailed is the cause of the context NewWatch returns once every peer has failed in a
// way a retry within the same run would not fix.
var ErrPeersFailed = errors.New("client: every peer failed")

// refusedGrace is how long a peer may keep refusing connections before the watch gives up on it:
// long enough to ride out a node's restart, short enough that a wrong port fails at once rather
// than at the command's timeout.
const refusedGrace = 2 * time.Second

// limitedGrace is how long a peer may keep resetting connections before their handshake before
// the watch gives up on it. A node resets the connections its address guard refuses: an
// address over its connection rate limit gets in again within a second or two (by default
// the limit refills at 2 connections a second), while a block lasts an hour, so waiting longer
// than a few seconds would only delay the explanation.
const limitedGrace = 5 * time.Second

// DefaultDialTimeout bounds one dial when the caller gives no dial function (Config.Dial): a
// host that drops the packets is dialed again rather than waited on for the system's minutes of
// SYN retries, and 5 s is far beyond a connect to any reachable host.
const DefaultDialTimeout = 5 * time.Second

// DialFunc dials a peer; dt.Config.Dial has this type.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Watch follows what happens to each peer a node dials. Its methods are safe for concurrent use.
type Watch struct {
	cancel context.CancelCauseFunc
	order  []string // the peers as given

	mu       sync.Mutex
	peers    map[string]*Peer  // guarded by mu, by address as given
	byRemote map[string]string // guarded by mu: the dialed connection's remote address → peer
}

// Peer is what happened to one peer so far.
type Peer struct {
	// Addr is the peer's address as given.
	Addr string
	// Attempts counts the dials that ended (not those cut short by the node closing).
	Attempts int
	// Err is the last failure, nil after a successful connect.
	Err error
	// Handshake is set when Err is a failed handshake on a connection that was made.
	Handshake bool
	// Refused is set when the node reset the connection before it read the first handshake
	// message (or while it was being made): its address guard refused this address (rate
	// limited, blocked, or too many handshakes in flight). Nodes of earlier releases close
	// such connections without a reset, which looks like a refused key (see RefusedAtAccept).
	Refused bool
	// Since is when the current run of failures began.
	Since time.Time
	// Linked is set when a connection was made since the last failure.
	Linked bool
	// Connects counts the connections made since the last failure. More than one means the
	// node closed the links after their handshakes (too many links from this address, say):
	// the node redials a link that ended, and a failed handshake would have been a failure.
	Connects int

	// refusedRun is when the current run of Refused failures began. Unlike Since it outlives
	// the connects between them: every refused connection is first a successful connect.
	refusedRun time.Time
}

// NewWatch returns a watch of peers and a context derived from ctx that ends, with
// ErrPeersFailed as its cause, once every peer has failed for good. Stop releases the context.
func NewWatch(ctx context.Context, peers []string) (*Watch, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &Watch{cancel: cancel, order: peers, peers: map[string]*Peer{}, byRemote: map[string]string{}}
	for _, p := range peers {
		w.peers[p] = &Peer{Addr: p}
	}
	return w, ctx
}

// Stop releases the watch's context. Safe to call twice.
func (w *Watch) Stop() { w.cancel(context.Canceled) }

// Dialer wraps dial (nil: a net.Dialer with DefaultDialTimeout) to record each attempt's
// outcome. Addresses that are not among the watched peers pass through unrecorded.
func (w *Watch) Dialer(dial DialFunc) DialFunc {
	if dial == nil {
		d := &net.Dialer{Timeout: DefaultDialTimeout}
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if ctx.Err() != nil {
			// The node is closing: not the peer's fault.
			return conn, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		p, ok := w.peers[addr]
		if !ok {
			return conn, err
		}
		p.Attempts++
		if err != nil {
			w.failLocked(p, err, false)
			return nil, err
		}
		p.Err, p.Handshake, p.Refused, p.Linked = nil, false, false, true
		p.Connects++
		w.byRemote[conn.RemoteAddr().String()] = addr
		return conn, nil
	}
}

// Observe takes one of the node's events and records a failed handshake on a connection the node
// dialed; other events are ignored.
func (w *Watch) Observe(ev dt.Event) {
	if ev.Type != dt.EventError || !strings.HasPrefix(ev.Origin, "peer ") {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	addr, ok := w.byRemote[strings.TrimPrefix(ev.Origin, "peer ")]
	if !ok {
		return
	}
	w.failLocked(w.peers[addr], ev.Err, true)
}

// failLocked records a failure and ends the watch's context once no peer is left to retry.
func (w *Watch) failLocked(p *Peer, err error, handshake bool) {
	if p.Err == nil {
		p.Since = time.Now()
	}
	p.Err, p.Handshake, p.Linked, p.Connects = err, handshake, false, 0
	p.Refused = RefusedAtAccept(err)
	switch {
	case !p.Refused:
		p.refusedRun = time.Time{}
	case p.refusedRun.IsZero():
		p.refusedRun = time.Now()
	}
	for _, addr := range w.order {
		if !w.peers[addr].final() {
			return
		}
	}
	w.cancel(ErrPeersFailed)
}

// Peers returns each peer's state, in the order given to NewWatch.
func (w *Watch) Peers() []Peer {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Peer, 0, len(w.order))
	for _, addr := range w.order {
		out = append(out, *w.peers[addr])
	}
	return out
}

// final reports whether retrying the peer in this run is pointless: a name that does not
// resolve, a handshake that failed (retrying a wrong key only brings the node's address block
// closer), or a port that has refused for longer than a restart takes.
func (p *Peer) final() bool {
	if p.Err == nil {
		return false
	}
	var dnsErr *net.DNSError
	switch {
	case p.Refused:
		return time.Since(p.refusedRun) >= limitedGrace
	case p.Handshake:
		return true
	case errors.As(p.Err, &dnsErr) && dnsErr.IsNotFound:
		return true
	case errors.Is(p.Err, syscall.ECONNREFUSED):
		return time.Since(p.Since) >= refusedGrace
	}
	return false
}

// RefusedAtAccept reports whether err, from a dial or a handshake on a dialed connection, is a
// reset before the node read the first handshake message. A node resets the connections its
// address guard refuses (dt's acceptLoop) before reading from them, while a node that rejects
// the handshake itself (a wrong network key) has read the first message and closes cleanly,
// so the client sees the end of the stream instead.
func RefusedAtAccept(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
