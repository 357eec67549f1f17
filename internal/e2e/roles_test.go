package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dns"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/redirector"
)

// trackedEdge is what the redirector's /status and the DNS node's /dns say of one edge.
type trackedEdge struct {
	Node  string `json:"node"`
	State string `json:"state"`
	Last  struct {
		Draining bool `json:"draining"`
	} `json:"last"`
}

// edgesAt reads the edges from the JSON at url: under "redirector" in a redirector's /status,
// at the top of a DNS node's /dns.
func edgesAt(client *http.Client, url string) ([]trackedEdge, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var body struct {
		Edges      []trackedEdge `json:"edges"`
		Redirector struct {
			Edges []trackedEdge `json:"edges"`
		} `json:"redirector"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return append(body.Edges, body.Redirector.Edges...), nil
}

// TestRolesStopCleanly runs an edge, a redirector and a DNS node (with GeoDNS) through their
// Run on one network. Stopped by its context, the edge drains: its last heartbeat says so, and
// both the redirector and the DNS node hear it. Then the redirector and the DNS node stop by
// theirs, and every goroutine the three started is gone.
func TestRolesStopCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	const beat = 200 * time.Millisecond
	keys, plain := testnet.Keys(t)
	hub := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	hubEvents := hub.Events() // subscribed before the goroutines the roles may not leave are counted
	go func() {
		for range hubEvents {
		}
	}()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n := &testNetwork{t: t, keys: keys, plain: plain, peer: testnet.Addr(hub), beat: beat}

	e := n.startEdge(amsterdam)
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: beat})
	ncfg := dt.LocalConfig()
	ncfg.Keys, ncfg.DataDir, ncfg.NoSync, ncfg.Peers = plain, t.TempDir(), true, []string{n.peer}
	ready := make(chan nodehost.Ready, 1)
	d, err := dns.New(dns.Config{Host: nodehost.Config{Node: ncfg, Admin: "127.0.0.1:0", Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		Addr: "127.0.0.1:0", GeoName: "www.example.com", HeartbeatInterval: beat, Resolvers: []string{"127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	dnsCtx, stopDNS := context.WithCancel(context.Background())
	defer stopDNS()
	dnsDone := make(chan error, 1)
	go func() { dnsDone <- d.Run(dnsCtx) }()
	var dnsAdmin string
	select {
	case r := <-ready:
		dnsAdmin = "http://" + r.Admin
	case err := <-dnsDone:
		t.Fatalf("DNS node stopped before it served: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("DNS node not ready")
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// seen waits until both the redirector and the DNS node report the edge as want says.
	seen := func(what string, want func(trackedEdge) bool) {
		t.Helper()
		wait.For(t, 15*time.Second, func() error {
			for _, url := range []string{rd.admin + "/status", dnsAdmin + "/dns"} {
				edges, err := edgesAt(client, url)
				if err != nil {
					return err
				}
				if len(edges) != 1 || edges[0].Node != e.id.String() || !want(edges[0]) {
					return fmt.Errorf("%s: edges %+v, want the edge %s", url, edges, what)
				}
			}
			return nil
		})
	}
	seen("alive", func(te trackedEdge) bool { return te.State == "alive" && !te.Last.Draining })

	// Stopped by its context, not crashed: the links stay up for the draining heartbeat.
	e.stop()
	<-e.done
	e.closed = true
	seen("draining", func(te trackedEdge) bool { return te.Last.Draining })

	rd.stop()
	stopDNS()
	select {
	case err := <-dnsDone:
		if err != nil {
			t.Errorf("DNS node: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the DNS node did not stop")
	}
	e.link.Close()
	client.CloseIdleConnections()
	hub.Close()
}
