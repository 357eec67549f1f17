package client

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt"

	"github.com/dt-cdn/dt/internal/testkit/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOpenWritesThroughAPeer adds an object through a master client, checks that the peer holds
// it once the client's write is acknowledged, and that Close removes the temporary data.
func TestOpenWritesThroughAPeer(t *testing.T) {
	keys, plain := testnet.Keys(t)
	peer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(peer)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, ctx, err := Open(ctx, Config{Keys: keys, Master: true, Peers: []string{testnet.Addr(peer)}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Node().AddObject(ctx, map[string]string{"hello": "world"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Node().WaitReplicated(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if !peer.Has(id) {
		t.Error("the peer acknowledged an object it does not hold")
	}
	if p := c.Watch().Peers(); len(p) != 1 || p[0].Err != nil || p[0].Attempts == 0 || !p[0].Linked {
		t.Errorf("watch after a good link: %+v", p)
	}
	dir := c.dir
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data %s left after Close: %v", dir, err)
	}
}

// TestCacheKeepsTheTable checks that a client with a cache starts its next run holding what the
// last one learned, and that a second client while the first holds the cache runs from a
// temporary directory instead.
func TestCacheKeepsTheTable(t *testing.T) {
	keys, plain := testnet.Keys(t)
	peer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(peer)
	cache := t.TempDir()
	cfg := Config{Keys: keys, Master: true, Peers: []string{testnet.Addr(peer)}, CacheDir: cache}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, fctx, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := first.Node().AddObject(fctx, map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Node().WaitReplicated(fctx, id, 1); err != nil {
		t.Fatal(err)
	}
	busy, _, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if busy.dir == "" {
		t.Error("a second client opened the cache the first one holds")
	}
	if err := busy.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again, _, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.dir != "" || !again.Node().Has(id) {
		t.Errorf("the next run does not start from the cache (temporary dir %q, holds the object: %t)", again.dir, again.Node().Has(id))
	}
}

// TestWatchGivesUp checks that the context Open returns ends with ErrPeersFailed once the only
// peer cannot succeed: a port that keeps refusing, or a node of another network that refuses the
// handshake. The peer's state says which.
func TestWatchGivesUp(t *testing.T) {
	keys, _ := testnet.Keys(t)
	_, stranger := testnet.Keys(t)
	other := testnet.Node(t, testnet.Options{Keys: stranger, Listen: true})
	testnet.Drain(other)
	for _, tc := range []struct {
		name      string
		addr      string
		handshake bool
	}{
		{"refused", closedPort(t), false},
		{"handshake", testnet.Addr(other), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ctx, err := Open(context.Background(), Config{Keys: keys, Peers: []string{tc.addr}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the watch did not give up on a peer that cannot succeed")
			}
			if cause := context.Cause(ctx); !errors.Is(cause, ErrPeersFailed) {
				t.Fatalf("cause %v, want ErrPeersFailed", cause)
			}
			p := c.Watch().Peers()
			if len(p) != 1 || p[0].Addr != tc.addr || p[0].Attempts == 0 || p[0].Err == nil || p[0].Handshake != tc.handshake {
				t.Fatalf("peer state %+v", p)
			}
			if !tc.handshake && !errors.Is(p[0].Err, syscall.ECONNREFUSED) {
				t.Errorf("error %v, want a refused connection", p[0].Err)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestWatchTellsRefusedAddress checks that a node whose address guard rate-limits the client is
// told apart from one that refuses its key: over the limit, the connection is reset before the
// handshake (Refused), and the watch gives up only after limitedGrace; with another network's
// key, the handshake is refused and the watch gives up at once.
func TestWatchTellsRefusedAddress(t *testing.T) {
	keys, plain := testnet.Keys(t)
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.NoSync, cfg.Listen = plain, t.TempDir(), true, []string{"127.0.0.1:0"}
	cfg.Guard.ConnBurst, cfg.Guard.ConnRate = 1, rate.Every(time.Hour)
	hub, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	testnet.Drain(hub)
	_, stranger := testnet.Keys(t)
	other := testnet.Node(t, testnet.Options{Keys: stranger, Listen: true})
	testnet.Drain(other)

	first := gaveUp(t, keys, testnet.Addr(hub), false) // takes the hub's one connection
	if p := first.Watch().Peers()[0]; p.Err != nil || !p.Linked || p.Connects != 1 {
		t.Fatalf("first client, within the limit: %+v", p)
	}
	first.Close()
	began := time.Now()
	limited := gaveUp(t, keys, testnet.Addr(hub), true)
	if p := limited.Watch().Peers()[0]; !p.Refused || !RefusedAtAccept(p.Err) {
		t.Errorf("client over the rate limit: %+v", p)
	}
	if took := time.Since(began); took < limitedGrace {
		t.Errorf("gave up on a rate-limited peer after %s, before the grace of %s", took, limitedGrace)
	}
	wrong := gaveUp(t, keys, testnet.Addr(other), true)
	if p := wrong.Watch().Peers()[0]; p.Refused || !p.Handshake || RefusedAtAccept(p.Err) {
		t.Errorf("client with another network's key: %+v", p)
	}
}

// gaveUp opens a client of one peer and waits, up to 20 s, for its watch to give up (want) or
// for a link to be made (!want). The client is closed at the end of the test.
func gaveUp(t *testing.T, keys dt.Keys, addr string, want bool) *Client {
	t.Helper()
	c, ctx, err := Open(context.Background(), Config{Keys: keys, Peers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !want {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := c.Node().WaitSynced(wctx); err != nil {
			t.Fatalf("no link to %s: %v (%+v)", addr, err, c.Watch().Peers())
		}
		return c
	}
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the watch did not give up on %s: %+v", addr, c.Watch().Peers())
	}
	return c
}
