package dns

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/nodehost"
)

// testConfig is a DNS node on loopback, port 0, with GeoDNS for www.example.com and a resolver
// that is never asked.
func testConfig(t *testing.T, keys dt.Keys, peers []string, ready func(nodehost.Ready) error) Config {
	t.Helper()
	ncfg := dt.LocalConfig()
	ncfg.Keys, ncfg.DataDir, ncfg.NoSync, ncfg.Peers = keys, t.TempDir(), true, peers
	return Config{
		Host:      nodehost.Config{Node: ncfg, Admin: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Ready: ready},
		Addr:      "127.0.0.1:0",
		GeoName:   "www.example.com",
		Resolvers: []string{"127.0.0.1:9"},
	}
}

// TestNodeRun runs a DNS node through Run with a peer: it answers DNS over UDP and TCP (REFUSED
// for a name outside its zones: it is no resolver) and GET /dns on the admin listener, and once
// its context is cancelled it returns with every goroutine it started gone.
func TestNodeRun(t *testing.T) {
	_, plain := testnet.Keys(t)
	peer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	events := peer.Events() // subscribed here, before the goroutines Run may not leave are counted
	go func() {
		for range events {
		}
	}()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ready := make(chan nodehost.Ready, 1)
	d, err := New(testConfig(t, plain, []string{testnet.Addr(peer)}, func(r nodehost.Ready) error { ready <- r; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Status(); ok {
		t.Error("Status before Run says the node runs")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var r nodehost.Ready
	select {
	case r = <-ready:
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + r.Admin + "/dns")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dns: %s, %v", resp.Status, err)
	}
	if st.GeoName != "www.example.com." || st.Zones != 0 {
		t.Errorf("/dns: %+v, want geo name www.example.com. and no zone", st)
	}
	for _, network := range []string{"udp", "tcp"} {
		q := new(mdns.Msg)
		q.SetQuestion("example.org.", mdns.TypeA)
		a, _, err := (&mdns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, st.Addr)
		if err != nil {
			t.Fatalf("query over %s: %v", network, err)
		}
		if a.Rcode != mdns.RcodeRefused {
			t.Errorf("over %s: %s, want REFUSED", network, mdns.RcodeToString[a.Rcode])
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, ok := d.Status(); ok {
		t.Error("Status after Run says the node runs")
	}
}

// TestRunBindsFirst: a DNS address in use fails Run before the node opens its data directory.
func TestRunBindsFirst(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, plain := testnet.Keys(t)
	cfg := testConfig(t, plain, nil, nil)
	cfg.Addr = taken.LocalAddr().String()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err == nil {
		t.Fatal("Run on an address in use succeeded")
	}
	entries, err := os.ReadDir(cfg.Host.Node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the data directory holds %s: the node opened", filepath.Join(cfg.Host.Node.DataDir, e.Name()))
	}
}

// TestNewChecksConfig: New refuses a config it cannot run with and names every problem.
func TestNewChecksConfig(t *testing.T) {
	_, err := New(Config{GeoIP: "city.mmdb", GeoTTL: time.Millisecond})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New: %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"DataDir", "(Addr)", "GeoIP database needs GeoName", "GeoTTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
