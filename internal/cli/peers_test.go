package cli

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
)

// TestRateLimitIsNotAWrongKey runs a burst of dt add against a node whose address guard lets
// two connections in per hour: those it refuses say the node rate-limits the address and what
// to do, never that the network key may be wrong; another network's key against a node
// without a limit says the key.
func TestRateLimitIsNotAWrongKey(t *testing.T) {
	keysDir := keygen(t)
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	keys.Master = nil
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.Listen, cfg.NoSync = keys, t.TempDir(), []string{"127.0.0.1:0"}, true
	cfg.Guard.ConnBurst, cfg.Guard.ConnRate = 2, rate.Every(time.Hour)
	hub, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	testnet.Drain(hub)

	const burst = 5
	results := make([]result, burst)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i] = run(t, "{}", "add", "--keys", keysDir, "--peer", hub.Addrs()[0].String(), "--timeout", "30s", "-")
		})
	}
	wg.Wait()
	limited := 0
	for _, r := range results {
		if r.code == 0 {
			continue
		}
		limited++
		for _, w := range []string{"rate-limits connections from this address", "run fewer dt commands in parallel", "wait 10 seconds", "--never-block", "dt guard unblock"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("a refused add's stderr lacks %q:\n%s", w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "is its network.key the same") {
			t.Errorf("a rate-limited add blames the key:\n%s", r.stderr)
		}
	}
	if limited < burst-2 {
		t.Errorf("%d of %d adds refused, want at least %d: %+v", limited, burst, burst-2, results)
	}

	r := run(t, "{}", "add", "--keys", keygen(t), "--peer", startPeer(t, keysDir).addr, "--timeout", "30s", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "is its network.key the same") || strings.Contains(r.stderr, "rate-limits connections") {
		t.Errorf("another network's key: exit %d\n%s", r.code, r.stderr)
	}
}

// TestLinkLimitIsNotSlowness runs dt add against a node that takes one link per address while
// another node on this machine holds it: the add gives up at its timeout saying the node closes
// its links, most likely for too many links from this address, not that the node is slow.
func TestLinkLimitIsNotSlowness(t *testing.T) {
	keysDir := keygen(t)
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	keys.Master = nil
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.Listen, cfg.NoSync = keys, t.TempDir(), []string{"127.0.0.1:0"}, true
	cfg.MaxLinksPerAddress = 1
	hub, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	testnet.Drain(hub)
	holder := testnet.Node(t, testnet.Options{Keys: keys, Peers: []string{hub.Addrs()[0].String()}})
	testnet.Drain(holder)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := holder.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	r := run(t, "{}", "add", "--keys", keysDir, "--peer", hub.Addrs()[0].String(), "--timeout", "3s", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "closed each link after the handshake") || !strings.Contains(r.stderr, "too many links") {
		t.Errorf("add with the node's links from this address taken: exit %d\n%s", r.code, r.stderr)
	}
}
