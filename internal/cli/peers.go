package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// errPeersFailed ends a command's wait on the network early: every peer failed in a way a
// retry within the same run would not fix.
var errPeersFailed = errors.New("cli: every peer failed")

// refusedGrace is how long a peer may keep refusing connections before a command gives up on
// it: long enough to ride out a node's restart, short enough that a wrong port fails at once
// rather than at --timeout.
const refusedGrace = 2 * time.Second

// checkPeerAddrs rejects peer addresses that can never be dialed, before anything opens: a
// missing port is the common slip (`--peer example.com`).
func checkPeerAddrs(peers []string) error {
	for _, p := range peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			if strings.Contains(err.Error(), "missing port") {
				return fmt.Errorf("peer address %q has no port: write HOST:PORT, such as %s", p, net.JoinHostPort(strings.Trim(p, "[]"), "7000"))
			}
			return fmt.Errorf("peer address %q is not HOST:PORT: %v", p, strings.TrimPrefix(err.Error(), "address "+p+": "))
		}
		if host == "" {
			return fmt.Errorf("peer address %q has no host: write HOST:PORT, such as 127.0.0.1%s", p, p)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("peer address %q: port %q is not a number from 1 to 65535", p, port)
		}
	}
	return nil
}

// peerWatch follows what happens to each peer a command dials, so that a command that cannot
// reach the network says why for each peer, and stops as soon as no peer can succeed instead
// of retrying until --timeout. Its methods are safe for concurrent use.
type peerWatch struct {
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	order    []string              // the peers as given
	peers    map[string]*peerState // guarded by mu, by address as given
	byRemote map[string]string     // guarded by mu: the dialed connection's remote address → peer
}

// peerState is the last outcome of dialing one peer.
type peerState struct {
	attempts  int
	err       error     // the last failure, nil after a successful connect
	handshake bool      // err is a failed handshake on a connection that was made
	since     time.Time // when the current run of failures began
	linked    bool      // a connection was made since the last failure
}

// newPeerWatch returns a watch of peers and a context derived from ctx that ends, with
// errPeersFailed as its cause, once every peer has failed for good.
func newPeerWatch(ctx context.Context, peers []string) (*peerWatch, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &peerWatch{cancel: cancel, order: peers, peers: map[string]*peerState{}, byRemote: map[string]string{}}
	for _, p := range peers {
		w.peers[p] = &peerState{}
	}
	return w, ctx
}

// stop releases the watch's context.
func (w *peerWatch) stop() { w.cancel(context.Canceled) }

// dialer wraps dial to record each attempt's outcome.
func (w *peerWatch) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
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
		st, ok := w.peers[addr]
		if !ok {
			return conn, err
		}
		st.attempts++
		if err != nil {
			w.failLocked(st, err, false)
			return nil, err
		}
		st.err, st.handshake, st.linked = nil, false, true
		w.byRemote[conn.RemoteAddr().String()] = addr
		return conn, nil
	}
}

// observe takes a node's event: a failed handshake on a connection the node dialed.
func (w *peerWatch) observe(ev dt.Event) {
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

func (w *peerWatch) failLocked(st *peerState, err error, handshake bool) {
	if st.err == nil {
		st.since = time.Now()
	}
	st.err, st.handshake, st.linked = err, handshake, false
	for _, p := range w.order {
		if !w.peers[p].final() {
			return
		}
	}
	w.cancel(errPeersFailed)
}

// final reports whether retrying the peer in this run is pointless: a name that does not
// resolve, a handshake that failed (retrying a wrong key only brings the node's address block
// closer), or a port that has refused for longer than a restart takes.
func (st *peerState) final() bool {
	if st.err == nil {
		return false
	}
	var dnsErr *net.DNSError
	switch {
	case st.handshake:
		return true
	case errors.As(st.err, &dnsErr) && dnsErr.IsNotFound:
		return true
	case errors.Is(st.err, syscall.ECONNREFUSED):
		return time.Since(st.since) >= refusedGrace
	}
	return false
}

// explain turns a failed wait on the network into an error that says, per peer, what happened
// and what to do. Errors that are not about reaching the network pass through unchanged.
func (w *peerWatch) explain(ctx context.Context, err error, timeout time.Duration, flag string) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errPeersFailed) && errors.Is(err, context.Canceled):
		return fmt.Errorf("could not reach the network:%s", w.report(timeout))
	case errors.Is(err, context.DeadlineExceeded) && flag != "":
		return fmt.Errorf("gave up after %s (%s):%s", timeout, flag, w.report(timeout))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("gave up after %s:%s", timeout, w.report(timeout))
	}
	return err
}

// report describes each peer's state after a space, or on lines of their own when there are
// several peers.
func (w *peerWatch) report(timeout time.Duration) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := make([]string, 0, len(w.order))
	for _, p := range w.order {
		lines = append(lines, p+": "+w.peers[p].describe(p, timeout))
	}
	if len(lines) == 1 {
		return " " + lines[0]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// describe says what went wrong with one peer and what to try.
func (st *peerState) describe(addr string, timeout time.Duration) string {
	host, _, _ := net.SplitHostPort(addr)
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case st.attempts == 0:
		return fmt.Sprintf("no connection within %s: the name may be slow to resolve, or the host drops the packets (a firewall?)", timeout)
	case st.err == nil && st.linked:
		return "connected, but the handshake and first sync did not finish in time: try a longer --timeout; " +
			"if that does not help, check that a dt node listens there"
	case st.handshake && strings.Contains(st.err.Error(), "handshake timed out"):
		return "connected, but no dt handshake came back in time: is a dt node listening on that port (not another service), " +
			"and is it not overloaded?"
	case st.handshake:
		return "connected, but the node refused the handshake: is its network.key the same as the one in --keys? " +
			"If it is, the node may have blocked this machine's address after failed handshakes (it never blocks loopback unless run with --block-loopback): " +
			"on the node's machine, `dt guard list --admin ADMIN` shows the blocks and `dt guard unblock --admin ADMIN ADDR` lifts one, " +
			"with the node's --admin address as ADMIN and this machine's address as ADDR (for a stopped node, --data DATADIR instead of --admin ADMIN); " +
			"or wait for the block to end (an hour for a first block)"
	case errors.As(st.err, &dnsErr) && dnsErr.IsNotFound:
		by := ""
		if dnsErr.Server != "" {
			by = " at " + dnsErr.Server
		}
		return fmt.Sprintf("no such host: %q does not resolve (the DNS server%s says it does not exist); check the name, or give an IP address", host, by)
	case errors.As(st.err, &dnsErr):
		return fmt.Sprintf("could not resolve %q: %v", host, dnsErr)
	case errors.Is(st.err, syscall.ECONNREFUSED):
		return "connection refused: no dt node listens on that port; is the node running, and is the port its --listen port?"
	case errors.Is(st.err, syscall.EHOSTUNREACH), errors.Is(st.err, syscall.ENETUNREACH):
		return "host unreachable: check the address and this machine's network"
	case errors.Is(st.err, os.ErrDeadlineExceeded), errors.Is(st.err, context.DeadlineExceeded):
		return "timed out connecting: the host may be down, or a firewall drops that port"
	case errors.As(st.err, &opErr) && opErr.Err != nil:
		return opErr.Err.Error()
	}
	return st.err.Error()
}
