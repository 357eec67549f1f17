package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/internal/client"
)

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

// explainPeers turns a failed wait on the network into an error that says, per peer, what happened
// and what to do. Errors that are not about reaching the network pass through unchanged.
func explainPeers(ctx context.Context, err error, w *client.Watch, timeout time.Duration, flag string) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, client.ErrPeersFailed) && errors.Is(err, context.Canceled):
		return fmt.Errorf("could not reach the network:%s", reportPeers(w, timeout))
	case errors.Is(err, context.DeadlineExceeded) && flag != "":
		return fmt.Errorf("gave up after %s (%s):%s", timeout, flag, reportPeers(w, timeout))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("gave up after %s:%s", timeout, reportPeers(w, timeout))
	}
	return err
}

// reportPeers describes each peer's state after a space, or on lines of their own when there are
// several peers.
func reportPeers(w *client.Watch, timeout time.Duration) string {
	peers := w.Peers()
	lines := make([]string, 0, len(peers))
	for _, p := range peers {
		lines = append(lines, p.Addr+": "+describePeer(p, timeout))
	}
	if len(lines) == 1 {
		return " " + lines[0]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// droppedLinkDials is how many connections to one peer in a row, none of them failing its
// handshake (client.Peer.Connects), show that the node closes the link after the handshake
// (dt.Config.MaxLinksPerAddress) rather than being slow: a link that syncs slowly is made
// once, and the client's node redials a dropped link within a second.
const droppedLinkDials = 3

// refusedAddress explains a connection the node reset before reading the handshake: its address
// guard refused the address, and the bytes do not say whether for the rate limit, a block or
// load. The rate limit comes first, being the one parallel commands reach; the figures are the
// guard's defaults (dt.GuardConfig).
const refusedAddress = "connected, but the node reset the connection before reading the handshake: it refuses this machine's address for now. " +
	"Most likely it rate-limits connections from this address (by default a burst of 20, then 2 a second): " +
	"run fewer dt commands in parallel, or wait 10 seconds and retry; the node's --never-block CIDR exempts machines of your own. " +
	"Otherwise it blocked the address (after 5 failed handshakes within 10 minutes, such as with a wrong network.key, or 600 connections in an hour; " +
	"loopback only with --block-loopback) or has too many handshakes in flight: " +
	"on the node's machine, `dt guard list --admin ADMIN` shows the blocks and `dt guard unblock --admin ADMIN ADDR` lifts one"

// describePeer says what went wrong with one peer and what to try.
func describePeer(st client.Peer, timeout time.Duration) string {
	host, _, _ := net.SplitHostPort(st.Addr)
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case st.Attempts == 0:
		return fmt.Sprintf("no connection within %s: the name may be slow to resolve, or the host drops the packets (a firewall?)", timeout)
	case st.Err == nil && st.Connects >= droppedLinkDials:
		return fmt.Sprintf("connected %d times, but the node closed each link after the handshake: most likely it holds too many links "+
			"from this address already (by default 16; every dt command and node on this machine linked to it takes one): "+
			"run fewer dt commands in parallel, or retry once the others finish", st.Connects)
	case st.Err == nil && st.Linked:
		return "connected, but the handshake and first sync did not finish in time: try a longer --timeout; " +
			"if that does not help, check that a dt node listens there"
	case st.Handshake && strings.Contains(st.Err.Error(), "handshake timed out"):
		return "connected, but no dt handshake came back in time: is a dt node listening on that port (not another service), " +
			"and is it not overloaded?"
	case st.Refused:
		return refusedAddress
	case st.Handshake:
		return "connected, but the node refused the handshake: is its network.key the same as the one in --keys? " +
			"If it is, the node may have blocked this machine's address after failed handshakes (it never blocks loopback unless run with --block-loopback): " +
			"on the node's machine, `dt guard list --admin ADMIN` shows the blocks and `dt guard unblock --admin ADMIN ADDR` lifts one, " +
			"with the node's --admin address as ADMIN and this machine's address as ADDR (for a stopped node, --data DATADIR instead of --admin ADMIN); " +
			"or wait for the block to end (an hour for a first block). " +
			"A node of an earlier release also closes this way when it rate-limits the address: if many dt commands run at once, run fewer"
	case errors.As(st.Err, &dnsErr) && dnsErr.IsNotFound:
		by := ""
		if dnsErr.Server != "" {
			by = " at " + dnsErr.Server
		}
		return fmt.Sprintf("no such host: %q does not resolve (the DNS server%s says it does not exist); check the name, or give an IP address", host, by)
	case errors.As(st.Err, &dnsErr):
		return fmt.Sprintf("could not resolve %q: %v", host, dnsErr)
	case errors.Is(st.Err, syscall.ECONNREFUSED):
		return "connection refused: no dt node listens on that port; is the node running, and is the port its --listen port?"
	case errors.Is(st.Err, syscall.EHOSTUNREACH), errors.Is(st.Err, syscall.ENETUNREACH):
		return "host unreachable: check the address and this machine's network"
	case errors.Is(st.Err, os.ErrDeadlineExceeded), errors.Is(st.Err, context.DeadlineExceeded):
		return "timed out connecting: the host may be down, or a firewall drops that port"
	case errors.As(st.Err, &opErr) && opErr.Err != nil:
		return opErr.Err.Error()
	}
	return st.Err.Error()
}
