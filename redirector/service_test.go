package redirector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// TestServiceFollowsHeartbeatsAndDeploys runs a redirector on a real dt network with two edges
// that send heartbeats: visitors go to an edge serving the current deploy; an edge that stops is
// avoided once its heartbeats are missed and its probe fails.
func TestServiceFollowsHeartbeatsAndDeploys(t *testing.T) {
	const beat = 100 * time.Millisecond
	keys, plain := testnet.Keys(t)
	open := func(k dt.Keys, master bool, listen bool, peers []string) *dt.Node {
		return testnet.Node(t, testnet.Options{Keys: k, Master: master, Listen: listen, Peers: peers})
	}
	drain := testnet.Drain
	rnode := open(plain, false, true, nil)
	addr := []string{rnode.Addrs()[0].String()}
	master := open(keys, true, false, addr)
	drain(master)

	// Two edges: their public URLs are test servers whose health endpoint answers while "up".
	type edge struct {
		node   *dt.Node
		srv    *httptest.Server
		cancel context.CancelFunc
		done   chan struct{}
	}
	deployID := site.DeployIDOf([]byte("deploy one"))
	start := func(name string) *edge {
		e := &edge{node: open(plain, false, false, addr), done: make(chan struct{})}
		drain(e.node)
		e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == edgeset.HealthPath {
				fmt.Fprintln(w, deployID)
			}
		}))
		t.Cleanup(e.srv.Close)
		var ctx context.Context
		ctx, e.cancel = context.WithCancel(context.Background())
		go func() {
			defer close(e.done)
			heartbeat.Send(ctx, e.node, beat, func(h *heartbeat.Heartbeat) {
				h.PublicURL, h.Deploy, h.Synced = e.srv.URL, deployID.String(), true
			}, nil)
		}()
		t.Cleanup(func() { e.cancel(); <-e.done })
		return e
	}
	a, b := start("a"), start("b")

	reg := prometheus.NewRegistry()
	svc, err := NewService(ServiceConfig{Node: rnode, HeartbeatInterval: beat, Code: 302, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	go func() {
		for ev := range rnode.Events() {
			svc.HandleEvent(ev)
		}
	}()
	t.Cleanup(func() { cancel(); <-runDone })

	front := httptest.NewServer(svc.Handler())
	t.Cleanup(front.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	location := func() (string, int) {
		resp, err := client.Get(front.URL + "/page?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Location"), resp.StatusCode
	}

	// No current deploy yet: nothing is eligible.
	if _, code := location(); code != http.StatusServiceUnavailable {
		t.Fatalf("before any deploy: %d", code)
	}
	cur, _ := site.Current{Deploy: deployID, Time: time.Now()}.Marshal()
	if err := master.Put(context.Background(), site.CurrentKey, cur); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		loc, code := location()
		if code != http.StatusFound || (loc != a.srv.URL+"/page?x=1" && loc != b.srv.URL+"/page?x=1") {
			return fmt.Errorf("redirect %d to %q", code, loc)
		}
		return nil
	})

	// Edge a stops (heartbeats end with a draining one, then its server goes).
	a.cancel()
	<-a.done
	a.srv.Close()
	wait.For(t, 5*time.Second, func() error {
		for range 20 {
			if loc, _ := location(); loc != b.srv.URL+"/page?x=1" {
				return fmt.Errorf("still sent to %q", loc)
			}
		}
		return nil
	})
	st := svc.Status()
	if len(st.Edges) != 2 || st.Current != deployID.String() {
		t.Fatalf("status: %+v", st)
	}
	families, err := reg.Gather()
	if err != nil || len(families) == 0 {
		t.Fatalf("metrics: %v", err)
	}
}

// TestServiceDropsSilentEdgeAtRequestTime checks that an edge silent for three heartbeat
// intervals is no longer eligible even when the tracker has not checked it yet (the Service is
// not running here, so no check ever runs): the age is judged when the request comes.
func TestServiceDropsSilentEdgeAtRequestTime(t *testing.T) {
	const beat = 20 * time.Millisecond
	_, plain := testnet.Keys(t)
	node := testnet.Node(t, testnet.Options{Keys: plain})
	testnet.Drain(node)
	svc, err := NewService(ServiceConfig{Node: node, HeartbeatInterval: beat})
	if err != nil {
		t.Fatal(err)
	}
	deployID := site.DeployIDOf([]byte("deploy"))
	cur, _ := site.Current{Deploy: deployID, Time: time.Now()}.Marshal()
	svc.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.CurrentKey, Object: cur})
	hb, err := heartbeat.Encode(heartbeat.Heartbeat{Seq: 1, Time: time.Now().UnixMilli(), PublicURL: "http://192.0.2.1",
		Deploy: deployID.String(), Synced: true})
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: dt.NodeID{1}, Object: hb})
	heard := time.Now()
	if st := svc.Status(); len(st.Edges) != 1 || !st.Edges[0].Eligible {
		t.Fatalf("fresh edge: %+v", st.Edges)
	}
	time.Sleep(time.Until(heard.Add(3*beat + beat/2)))
	st := svc.Status()
	if len(st.Edges) != 1 || st.Edges[0].Eligible || st.Edges[0].Excluded != edgeset.ExcludeStale.String() {
		t.Fatalf("edge silent for %s, three intervals of %s: %+v", time.Since(heard), beat, st.Edges)
	}
}

// TestServiceRedirectsOnHeartbeatAtOnce checks that a heartbeat reporting the current deploy
// makes its edge take visitors at once, not at the next refresh of the Service's view (the
// Service is not running here, so no periodic refresh ever happens).
func TestServiceRedirectsOnHeartbeatAtOnce(t *testing.T) {
	_, plain := testnet.Keys(t)
	node := testnet.Node(t, testnet.Options{Keys: plain})
	testnet.Drain(node)
	svc, err := NewService(ServiceConfig{Node: node, Code: http.StatusFound})
	if err != nil {
		t.Fatal(err)
	}
	visit := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://dt.example/page", nil))
		return rec
	}
	beat := func(seq uint64, deploy site.DeployID) {
		hb, err := heartbeat.Encode(heartbeat.Heartbeat{Seq: seq, Time: time.Now().UnixMilli(), PublicURL: "http://192.0.2.1",
			Deploy: deploy.String(), Synced: true})
		if err != nil {
			t.Fatal(err)
		}
		svc.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: dt.NodeID{1}, Object: hb})
	}
	first, second := site.DeployIDOf([]byte("first")), site.DeployIDOf([]byte("second"))
	point := func(id site.DeployID) {
		cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
		svc.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.CurrentKey, Object: cur})
	}
	point(first)
	beat(1, first)
	if rec := visit(); rec.Code != http.StatusFound || rec.Header().Get("Location") != "http://192.0.2.1/page" {
		t.Fatalf("after the edge's first heartbeat: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	point(second) // the edge still serves the first deploy: the only one, so the fallback
	if rec := visit(); rec.Code != http.StatusFound || rec.Header().Get("Location") != "http://192.0.2.1/page" {
		t.Fatalf("edge on the previous deploy, none on the new one: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	beat(2, second)
	if rec := visit(); rec.Code != http.StatusFound {
		t.Fatalf("after the edge reported the new deploy: %d", rec.Code)
	}
}
