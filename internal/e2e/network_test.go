package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/faultnet"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/redirector"
)

// Places of test edges.
var (
	amsterdam = heartbeat.Location{Lat: 52.37, Lon: 4.9, Country: "NL", Continent: "EU"}
	newYork   = heartbeat.Location{Lat: 40.71, Lon: -74.0, Country: "US", Continent: "NA"}
)

// testNetwork is a dt network on loopback: a hub node that everything else links to, and the
// keys to publish with. Everything it starts stops at the end of the test.
type testNetwork struct {
	t           *testing.T
	keys, plain dt.Keys
	peer        string        // the hub's address
	beat        time.Duration // the edges' heartbeat interval
}

func newTestNetwork(t *testing.T, beat time.Duration) *testNetwork {
	keys, plain := testnet.Keys(t)
	n := &testNetwork{t: t, keys: keys, plain: plain, beat: beat}
	hub := n.open(true, nil, false)
	testnet.Drain(hub)
	n.peer = testnet.Addr(hub)
	return n
}

func (n *testNetwork) open(listen bool, peers []string, lazy bool) *dt.Node {
	return testnet.Node(n.t, testnet.Options{Keys: n.plain, Listen: listen, Peers: peers, LazyBodies: lazy})
}

// runningEdge is an edge run by edge.Node's Run, on its own dt node, linked to the hub through a
// proxy that can cut it off, and serving HTTP on a loopback port.
type runningEdge struct {
	url    string
	https  string // the HTTPS listener's address; empty without one
	id     dt.NodeID
	link   *faultnet.Proxy
	stop   context.CancelFunc
	done   chan struct{}
	closed bool
}

// crash stops the edge the way a killed process does: no draining heartbeat reaches anyone,
// the dt links and the listener simply gone. The links are cut first, so the heartbeat the edge
// sends as it drains has no way out.
func (e *runningEdge) crash() {
	if e.closed {
		return
	}
	e.closed = true
	e.link.Cut()
	e.stop()
	<-e.done
}

// startEdge starts an edge at loc, linked to the hub, serving HTTP on a loopback port.
func (n *testNetwork) startEdge(loc heartbeat.Location) *runningEdge {
	return startEdgeNode(n.t, n.plain, n.peer, n.beat, loc, nil)
}

// startEdgeNode starts an edge at loc on its own dt node linked to peer, serving HTTP on a
// loopback port; configure, when set, adjusts the edge's configuration. The edge crashes at the
// end of the test at the latest.
func startEdgeNode(t *testing.T, keys dt.Keys, peer string, beat time.Duration, loc heartbeat.Location, configure func(*edge.Config)) *runningEdge {
	t.Helper()
	link, err := faultnet.New("127.0.0.1:0", peer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	node := dt.LocalConfig()
	node.Keys, node.DataDir, node.NoSync, node.Peers = keys, t.TempDir(), true, []string{link.Addr()}
	// A crash leaves no time to drain.
	cfg := edge.Config{Host: nodehost.Config{Node: node}, HTTP: "127.0.0.1:0", HeartbeatInterval: beat, Location: &loc, DrainWait: time.Millisecond}
	if configure != nil {
		configure(&cfg)
	}
	ready := make(chan nodehost.Ready, 1)
	cfg.Host.Ready = func(r nodehost.Ready) error { ready <- r; return nil }
	e, err := edge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	re := &runningEdge{link: link, stop: stop, done: make(chan struct{})}
	var runErr error
	go func() { defer close(re.done); runErr = e.Run(ctx) }()
	select {
	case r := <-ready:
		re.url, re.https, re.id = r.Serving.PublicURL, r.Serving.HTTPS, r.ID
	case <-re.done:
		stop()
		t.Fatalf("edge stopped before it served: %v", runErr)
	}
	t.Cleanup(re.crash)
	return re
}

// runningRedirector is a redirector run by redirector.Node's Run on its own node, linked to the
// hub: visitors at url, the dashboard, /explain and /status at admin.
type runningRedirector struct {
	url   string
	admin string
	// stop cancels the redirector's Run and waits for it; the test fails if Run failed. It is
	// safe to call twice.
	stop func()
}

// startRedirector runs a redirector linked to the hub until the end of the test; cfg's node,
// listeners and dashboard are filled in.
func (n *testNetwork) startRedirector(cfg redirector.Config) *runningRedirector {
	t := n.t
	ncfg := dt.LocalConfig()
	ncfg.Keys, ncfg.DataDir, ncfg.NoSync, ncfg.Peers = n.plain, t.TempDir(), true, []string{n.peer}
	ready := make(chan nodehost.Ready, 1)
	cfg.Host.Node, cfg.Host.Admin = ncfg, "127.0.0.1:0"
	cfg.Host.Ready = func(r nodehost.Ready) error { ready <- r; return nil }
	cfg.HTTP = "127.0.0.1:0"
	r, err := redirector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { defer close(done); runErr = r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			if runErr != nil {
				t.Errorf("redirector: %v", runErr)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case rd := <-ready:
		return &runningRedirector{url: "http://" + rd.Serving.HTTP, admin: "http://" + rd.Admin, stop: stop}
	case <-done:
		t.Fatalf("redirector stopped before it served: %v", runErr)
		return nil
	}
}

// publishFiles publishes a site of the given files (path → content) and fails the test unless
// every one of wantLive edges serves it.
func (n *testNetwork) publishFiles(files map[string]string, wantLive int) publish.Result {
	n.t.Helper()
	return n.publishSiteFiles("", files, wantLive)
}

// publishSiteFiles is publishFiles to the named site (empty: the network's only site).
func (n *testNetwork) publishSiteFiles(name string, files map[string]string, wantLive int) publish.Result {
	t := n.t
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := publish.Scan(context.Background(), dir, publish.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := publish.Publish(ctx, plan, publish.NetworkOptions{Keys: n.keys, Peers: []string{n.peer}, HeartbeatInterval: n.beat, Node: dt.LocalConfig(), Site: name})
	if err != nil || res.EdgesLive != wantLive {
		t.Fatalf("publish: live on %d of %d: %v", res.EdgesLive, wantLive, err)
	}
	return res
}
