package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/cli"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/publish"
)

// startReportingEdge runs an edge that reports ipv4 as its public address, on its own dt node
// linked to peer; it crashes at the end of the test at the latest.
func startReportingEdge(t *testing.T, keys dt.Keys, peer string, ipv4 string, loc heartbeat.Location, beat time.Duration) *runningEdge {
	return startEdgeNode(t, keys, peer, beat, loc, func(c *edge.Config) { c.IPv4 = netip.MustParseAddr(ipv4) })
}

// runCLI runs a dt command that runs a node in-process until the test ends; the channel receives
// the node's info once it serves.
func runCLI(t *testing.T, args ...string) <-chan cli.NodeInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	info := make(chan cli.NodeInfo, 1)
	done := make(chan int, 1)
	stderr := &lockedBuilder{}
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr, NodeReady: func(i cli.NodeInfo) { info <- i }}
	go func() { done <- cli.Run(ctx, args, env) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("dt %s exited %d:\n%s", args[0], code, stderr)
		}
	})
	return info
}

// TestGeoDNSFollowsLiveness publishes a site to two edges, runs `dt dns` with GeoDNS for the
// site's name, and crashes an edge: its address must leave the answers within 6 s (the
// heartbeats come every 2 s, as by default). With both edges down, the zone's own record answers.
func TestGeoDNSFollowsLiveness(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for heartbeats to be missed")
	}
	const beat = 2 * time.Second
	keysDir := filepath.Join(t.TempDir(), "keys")
	if err := dt.GenerateKeys(keysDir, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	plain := keys
	plain.Master = nil
	hub := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(hub)
	peer := testnet.Addr(hub)
	ams := startReportingEdge(t, plain, peer, "192.0.2.1", amsterdam, beat)
	nyc := startReportingEdge(t, plain, peer, "192.0.2.2", newYork, beat)

	ready := runCLI(t, "dns", "--keys", keysDir, "--data", t.TempDir(), "--peer", peer, "--local", "--no-sync", "--log-level", "warn",
		"--dns", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--geo-name", "www.example.com", "--heartbeat-interval", beat.String())
	var info cli.NodeInfo
	select {
	case info = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("dt dns did not start")
	}
	var status struct {
		Addr string `json:"addr"`
	}
	wait.For(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + info.Admin + "/dns")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/dns: %s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&status)
	})

	zoneFile := filepath.Join(t.TempDir(), "example.com.zone")
	zoneText := "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n" +
		"www 60 A 192.0.2.100 ; the redirector: answers when no edge is live\n"
	if err := os.WriteFile(zoneFile, []byte(zoneText), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := cli.Run(context.Background(), []string{"dns-publish", "--keys", keysDir, "--peer", peer, "--cache-dir", t.TempDir(), zoneFile},
		&cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("dns-publish: %d %s%s", code, out.String(), errOut.String())
	}

	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>geo</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := publish.Scan(context.Background(), site, publish.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	if res, err := publish.Publish(pctx, plan, publish.NetworkOptions{Keys: keys, Peers: []string{peer}, HeartbeatInterval: beat, Node: dt.LocalConfig()}); err != nil || res.EdgesLive != 2 {
		t.Fatalf("publish: live on %d: %v", res.EdgesLive, err)
	}

	answer := func(network string) ([]string, error) {
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(q, status.Addr)
		if err != nil {
			return nil, err
		}
		var got []string
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		slices.Sort(got)
		return got, nil
	}
	expect := func(want ...string) func() error {
		return func() error {
			for _, network := range []string{"udp", "tcp"} {
				got, err := answer(network)
				if err != nil {
					return err
				}
				if !slices.Equal(got, want) {
					return fmt.Errorf("%s answer %v, want %v", network, got, want)
				}
			}
			return nil
		}
	}
	wait.For(t, 15*time.Second, expect("192.0.2.1", "192.0.2.2"))

	crashed := time.Now()
	ams.crash()
	wait.For(t, 15*time.Second, expect("192.0.2.2"))
	gone := time.Since(crashed)
	t.Logf("the crashed edge left the GeoDNS answers %s after the crash (heartbeats every %s)", gone.Round(time.Millisecond), beat)
	if gone > 6*time.Second {
		t.Errorf("the crashed edge stayed in the answers for %s, over 6 s", gone.Round(time.Millisecond))
	}
	nyc.crash()
	wait.For(t, 15*time.Second, expect("192.0.2.100"))
}

// lockedBuilder is a strings.Builder safe for a command's concurrent writes.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
