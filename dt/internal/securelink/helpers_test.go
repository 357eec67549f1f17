package securelink

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/internal/testkit/needs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testNetworkKey is the network key of the tests' network.
var testNetworkKey = [32]byte{
	0x3c, 0x8e, 0x21, 0x9a, 0x55, 0x07, 0xd1, 0x6f, 0x90, 0x1b, 0xe4, 0x72, 0x38, 0xcd, 0x0a, 0x46,
	0xb5, 0x13, 0x7e, 0xf2, 0x69, 0x84, 0x2d, 0xc0, 0x5b, 0x97, 0x0e, 0xa3, 0x41, 0xf8, 0x66, 0x1d,
}

// testIdentity returns a reproducible Ed25519 key numbered n.
func testIdentity(n byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n ^ byte(i*7)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// testConfig returns a valid Config for node n with hello "node-n".
func testConfig(n byte) Config {
	return Config{
		NetworkKey: testNetworkKey,
		Identity:   testIdentity(n),
		Prologue:   []byte("table-1/epoch-1"),
		Hello:      []byte("hello from node " + string('0'+n)),
	}
}

// seededRandom returns a reproducible randomness source.
func seededRandom(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// result is what one side's handshake returned.
type result struct {
	conn *Conn
	peer Peer
	err  error
}

// handshakePair runs Client on cc and Server on sc concurrently and returns both results. The
// endpoints are built from the configs and then passed to adjust (which may be nil), so tests can
// change derived state such as the payload or the rekey threshold.
func handshakePair(ctx context.Context, t testing.TB, cc, sc net.Conn, ccfg, scfg Config,
	adjust func(client, server *endpoint)) (client, server result) {
	t.Helper()
	ce, err := newEndpoint(ccfg)
	if err != nil {
		t.Fatalf("client config: %v", err)
	}
	se, err := newEndpoint(scfg)
	if err != nil {
		t.Fatalf("server config: %v", err)
	}
	if adjust != nil {
		adjust(ce, se)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		client.conn, client.peer, client.err = ce.handshake(ctx, cc, true)
	})
	server.conn, server.peer, server.err = se.handshake(ctx, sc, false)
	wg.Wait()
	return client, server
}

// linkPair returns an established client and server Conn over the raw connections, failing the
// test if the handshake does not succeed. Both are closed at cleanup.
func linkPair(t testing.TB, cc, sc net.Conn, adjust func(client, server *endpoint)) (client, server *Conn) {
	t.Helper()
	c, s := handshakePair(t.Context(), t, cc, sc, testConfig(1), testConfig(2), adjust)
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: client: %v; server: %v", c.err, s.err)
	}
	t.Cleanup(func() {
		c.conn.Close()
		s.conn.Close()
	})
	return c.conn, s.conn
}

// pipePair returns the two ends of a net.Pipe.
func pipePair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	c, s := net.Pipe()
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

// tcpPair returns a connected pair of TCP connections on the loopback address of network
// ("tcp4" or "tcp6"). It skips the test when the address family is unavailable.
func tcpPair(t testing.TB, network string) (client, server net.Conn) {
	t.Helper()
	addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
	ln, err := net.Listen(network, addr)
	if err != nil {
		needs.Skipf(t, "%s loopback unavailable: %v", network, err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	client, err = net.Dial(network, ln.Addr().String())
	a := <-ch
	if err != nil || a.err != nil {
		if a.c != nil {
			a.c.Close()
		}
		if client != nil {
			client.Close()
		}
		t.Fatalf("connect: dial: %v; accept: %v", err, a.err)
	}
	t.Cleanup(func() {
		client.Close()
		a.c.Close()
	})
	return client, a.c
}

// transports lists the ways tests connect two ends.
var transports = []struct {
	name string
	pair func(testing.TB) (net.Conn, net.Conn)
}{
	{"pipe", pipePair},
	{"tcp4", func(t testing.TB) (net.Conn, net.Conn) { return tcpPair(t, "tcp4") }},
	{"tcp6", func(t testing.TB) (net.Conn, net.Conn) { return tcpPair(t, "tcp6") }},
}

// oneByteConn returns at most one byte per Read, the worst segmentation a stream can have.
type oneByteConn struct{ net.Conn }

func (c oneByteConn) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return c.Conn.Read(p)
}

// wantErr fails the test unless err wraps target.
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}
