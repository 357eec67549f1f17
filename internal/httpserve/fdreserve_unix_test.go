//go:build unix

package httpserve

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// The child's descriptor limit and reserve (at most a quarter of the limit): it may hold
// (256 − 64) / 2 = 96 visitor connections.
const (
	childFDLimit   = 256
	childFDReserve = 64
	childMaxConns  = (childFDLimit - childFDReserve) / 2
)

// TestFDReserve runs an edge and a dt node in a process whose descriptor limit is 256, and
// floods the edge with 250 idle connections from 84 addresses: the edge keeps as many as the
// descriptor budget allows and resets the rest, and meanwhile the node's dt port still takes a
// peer and its admin endpoint still answers.
func TestFDReserve(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	_, plain := testnet.Keys(t)
	addrs, _ := startChild(t, "TestFDReserveChild", "EDGE_FD_CHILD="+hex.EncodeToString(plain.Network[:])+","+hex.EncodeToString(plain.Masters[0]))
	stats := func() connlimit.Stats {
		t.Helper()
		var st connlimit.Stats
		childReport(t, addrs, &st)
		return st
	}
	if st := stats(); st.Max != childMaxConns {
		t.Fatalf("cap in force %d, want %d from the descriptor limit %d less %d", st.Max, childMaxConns, childFDLimit, childFDReserve)
	}
	var conns []net.Conn
	for i := range 250 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+i/3))}, Timeout: 5 * time.Second}
		if c, err := d.Dial("tcp", addrs.Edge); err == nil {
			conns = append(conns, c)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	wait.For(t, 10*time.Second, func() error {
		if st := stats(); st.Open != childMaxConns || st.RefusedTotal != 250-childMaxConns {
			return fmt.Errorf("edge %+v, want %d open and %d refused", st, childMaxConns, 250-childMaxConns)
		}
		return nil
	})
	// The dt port takes a peer, with the visitors' share of descriptors all taken.
	peer := testnet.Node(t, testnet.Options{Keys: plain, Peers: []string{addrs.DT}})
	testnet.Drain(peer)
	wait.For(t, 10*time.Second, func() error {
		if links := peer.Status().Links; len(links) == 0 {
			return fmt.Errorf("the peer has no link to the edge's node")
		}
		return nil
	})
	t.Logf("edge %+v; the peer linked and the admin endpoint answered", stats())
}

// TestFDReserveChild is TestFDReserve's child process: with its soft descriptor limit lowered,
// it runs a dt node, an edge and an admin endpoint reporting the edge's connection counts, until
// its standard input closes.
func TestFDReserveChild(t *testing.T) {
	env := os.Getenv("EDGE_FD_CHILD")
	if env == "" {
		t.Skip("the child of TestFDReserve")
	}
	var keys dt.Keys
	var netHex, pubHex string
	fmt.Sscanf(env, "%64s", &netHex)
	pubHex = env[len(netHex)+1:]
	nk, err1 := hex.DecodeString(netHex)
	pub, err2 := hex.DecodeString(pubHex)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	copy(keys.Network[:], nk)
	keys.Masters = []ed25519.PublicKey{pub}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = childFDLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	node := testnet.Node(t, testnet.Options{Keys: keys, Listen: true})
	testnet.Drain(node)
	s, err := newSiteServer(Config{ConnCaps: &connlimit.Config{FDReserve: childFDReserve}, ReadHeaderTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	serveChild(t, s, nil, testnet.Addr(node), func() any { return s.ConnStats() })
}
