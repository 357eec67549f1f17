package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testnet"
	"github.com/dt-cdn/dt/internal/wait"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/redirector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runningEdge is an edge.Node with its own dt node and HTTP listener.
type runningEdge struct {
	url    string
	node   *dt.Node
	srv    context.CancelFunc
	beats  context.CancelFunc
	done   chan struct{}
	closed bool
}

// crash stops the edge the way a killed process does: no draining heartbeat, the listener and
// the dt links simply gone.
func (e *runningEdge) crash() {
	if e.closed {
		return
	}
	e.closed = true
	e.node.Close() // links drop first, so no last heartbeat gets out
	e.beats()
	e.srv()
	<-e.done
}

// TestRedirectorAvoidsCrashedEdge publishes to two edges, crashes one, and measures how long the
// redirector keeps sending visitors to it (the target: 6 s with 2 s heartbeats).
func TestRedirectorAvoidsCrashedEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for heartbeats to be missed")
	}
	const beat = 2 * time.Second // the default interval: the figure is the one users get
	keys, plain := testnet.Keys(t)
	open := func(listen bool, peers []string, lazy bool) *dt.Node {
		return testnet.Node(t, testnet.Options{Keys: plain, Listen: listen, Peers: peers, LazyBodies: lazy})
	}
	hub := open(true, nil, false)
	testnet.Drain(hub)
	peer := testnet.Addr(hub)

	start := func(name string, loc heartbeat.Location) *runningEdge {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		n := open(false, []string{peer}, false)
		re := &runningEdge{url: "http://" + ln.Addr().String(), node: n, done: make(chan struct{})}
		e, err := edge.NewNode(edge.NodeConfig{Node: n, Blobs: store, PublicURL: re.url, HeartbeatInterval: beat, Location: &loc})
		if err != nil {
			t.Fatal(err)
		}
		srvCtx, stopSrv := context.WithCancel(context.Background())
		beatCtx, stopBeats := context.WithCancel(context.Background())
		re.srv, re.beats = stopSrv, stopBeats
		evDone, srvDone, beatDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(evDone)
			for ev := range n.Events() {
				e.HandleEvent(ev)
			}
		}()
		go func() { defer close(srvDone); _ = e.Server().Serve(srvCtx, ln, nil) }()
		go func() { defer close(beatDone); e.Run(beatCtx) }()
		go func() { <-evDone; <-srvDone; <-beatDone; store.Close(); close(re.done) }()
		t.Cleanup(re.crash)
		return re
	}
	ams := start("amsterdam", heartbeat.Location{Lat: 52.37, Lon: 4.9, Country: "NL", Continent: "EU"})
	nyc := start("new-york", heartbeat.Location{Lat: 40.71, Lon: -74.0, Country: "US", Continent: "NA"})

	rnode := open(false, []string{peer}, true)
	svc, err := redirector.NewService(redirector.ServiceConfig{Node: rnode, HeartbeatInterval: beat, Code: 302,
		Select: redirector.SelectOptions{DefaultLocation: &redirector.GeoRecord{Lat: 50, Lon: 5, HasLocation: true}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svcDone, evDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(svcDone); _ = svc.Run(ctx) }()
	go func() {
		defer close(evDone)
		for ev := range rnode.Events() {
			svc.HandleEvent(ev)
		}
	}()
	t.Cleanup(func() { cancel(); <-svcDone; rnode.Close(); <-evDone })
	front := &http.Server{Handler: svc.Handler()}
	fln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(fln)
	t.Cleanup(func() { front.Close() })
	frontURL := "http://" + fln.Addr().String()

	// Publish a site.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>e2e</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := publish.Scan(context.Background(), dir, publish.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	if res, err := publish.Publish(pctx, plan, publish.NetworkOptions{Keys: keys, Peers: []string{peer}, HeartbeatInterval: beat, Node: dt.LocalConfig()}); err != nil || res.EdgesLive != 2 {
		t.Fatalf("publish: live on %d: %v", res.EdgesLive, err)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := func() string {
		resp, err := client.Get(frontURL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return strings.TrimSuffix(resp.Header.Get("Location"), "/")
	}
	// The default location (Benelux) is nearest to Amsterdam.
	wait.For(t, 10*time.Second, func() error {
		if got := target(); got != ams.url {
			return fmt.Errorf("visitors go to %q, want Amsterdam %q", got, ams.url)
		}
		return nil
	})

	crashed := time.Now()
	ams.crash()
	var last time.Time
	wait.For(t, 20*time.Second, func() error {
		if got := target(); got == ams.url {
			last = time.Now()
			return fmt.Errorf("still sent to the crashed edge after %s", time.Since(crashed).Round(time.Millisecond))
		} else if got != nyc.url {
			return fmt.Errorf("sent to %q", got)
		}
		return nil
	})
	t.Logf("last redirect to the crashed edge %s after the crash (heartbeats every %s)", last.Sub(crashed).Round(time.Millisecond), beat)
}
