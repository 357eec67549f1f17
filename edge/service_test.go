package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// TestNodeServesPublishedDeployAndReports runs an edge on a real dt network: a master publishes a
// deploy (blob objects, manifest, pointer); the edge serves it, its health endpoint says so, and
// its heartbeats (read by another node) carry the deploy; Drain announces it in heartbeats and
// health before anything closes.
func TestNodeServesPublishedDeployAndReports(t *testing.T) {
	const beat = 100 * time.Millisecond
	keys, plain := testnet.Keys(t)
	observer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	addr := []string{testnet.Addr(observer)}
	var mu sync.Mutex
	var beats []heartbeat.Heartbeat
	go func() {
		for ev := range observer.Events() {
			if h, err := heartbeat.Decode(ev.Object); err == nil && ev.Type == dt.EventMessageReceived {
				mu.Lock()
				beats = append(beats, h)
				mu.Unlock()
			}
		}
	}()
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: addr})
	testnet.Drain(master)

	store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	node := testnet.Node(t, testnet.Options{Keys: plain, Peers: addr})
	reg := prometheus.NewRegistry()
	e, err := newService(serviceConfig{Node: node, Blobs: store, PublicURL: "http://127.0.0.1:1", HeartbeatInterval: beat,
		Location: &heartbeat.Location{Lat: 52.4, Lon: 4.9, Country: "NL", Continent: "EU"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range node.Events() {
			e.HandleEvent(ev)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); e.sendHeartbeats(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runDone
		node.Close()
		<-eventsDone
	})
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(HealthPath); code != http.StatusServiceUnavailable {
		t.Fatalf("health before any deploy: %d", code)
	}

	page := []byte("<h1>hello from dt</h1>")
	id := publishPage(t, master, page, int64(len(page)), time.Unix(1_700_000_000, 0).UTC())
	wait.For(t, 10*time.Second, func() error {
		if code, b := get("/"); code != 200 || b != string(page) {
			return fmt.Errorf("GET / = %d %q", code, b)
		}
		if code, b := get(HealthPath); code != 200 || b != id.String()+"\n" {
			return fmt.Errorf("health = %d %q", code, b)
		}
		return nil
	})
	wait.For(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range beats {
			if b.Deploy == id.String() && b.Synced && b.Location != nil && b.Location.Country == "NL" && b.Objects == 1 && b.Load.RequestsPS >= 0 {
				return nil
			}
		}
		return errors.New("no heartbeat reports the deploy")
	})

	e.Drain()
	if code, _ := get(HealthPath); code != http.StatusServiceUnavailable {
		t.Fatalf("health while draining: %d", code)
	}
	wait.For(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(beats) > 0 && beats[len(beats)-1].Draining {
			return nil
		}
		return errors.New("no draining heartbeat")
	})
	if code, _ := get("/"); code != 200 {
		t.Fatalf("a draining edge stopped serving before its listener closed: %d", code)
	}
	mf, err := reg.Gather()
	if err != nil || len(mf) == 0 {
		t.Fatalf("metrics: %v", err)
	}
	h2Limits := 0
	for _, m := range mf {
		if strings.HasPrefix(m.GetName(), "dt_edge_h2_") {
			h2Limits++
		}
	}
	if h2Limits != 7 {
		t.Errorf("%d dt_edge_h2_* metrics, want the 7 counters of h2's limits", h2Limits)
	}
}

// TestNodeReportsTheDeployItServes publishes a deploy, then one whose site cannot be built (a
// file's manifest size does not match its blob): the follower holds every blob of the second, but
// the edge goes on serving the first, and its health and heartbeats say so (the first deploy,
// not synced), so redirectors send no visitor expecting the second.
func TestNodeReportsTheDeployItServes(t *testing.T) {
	const beat = 50 * time.Millisecond
	keys, plain := testnet.Keys(t)
	observer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	addr := []string{testnet.Addr(observer)}
	var (
		mu    sync.Mutex
		last  heartbeat.Heartbeat
		heard int
	)
	go func() {
		for ev := range observer.Events() {
			if h, err := heartbeat.Decode(ev.Object); err == nil && ev.Type == dt.EventMessageReceived {
				mu.Lock()
				last, heard = h, heard+1
				mu.Unlock()
			}
		}
	}()
	heardSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return heard
	}
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: addr})
	testnet.Drain(master)
	store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	node := testnet.Node(t, testnet.Options{Keys: plain, Peers: addr})
	e, err := newService(serviceConfig{Node: node, Blobs: store, PublicURL: "http://127.0.0.1:1", HeartbeatInterval: beat})
	if err != nil {
		t.Fatal(err)
	}
	eventsDone, runDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range node.Events() {
			e.HandleEvent(ev)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { defer close(runDone); e.sendHeartbeats(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone; node.Close(); <-eventsDone })
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	publish := func(page []byte, size int64) site.DeployID {
		return publishPage(t, master, page, size, time.Now().UTC().Truncate(time.Second))
	}
	reports := func(id site.DeployID, synced bool) error {
		mu.Lock()
		h := last
		mu.Unlock()
		if h.Deploy != id.String() || h.Synced != synced {
			return fmt.Errorf("last heartbeat: deploy %q synced %v, want %s synced %v", h.Deploy, h.Synced, id, synced)
		}
		return nil
	}

	good := []byte("<h1>good</h1>")
	first := publish(good, int64(len(good)))
	wait.For(t, 10*time.Second, func() error { return reports(first, true) })

	second := publish([]byte("<h1>bad</h1>"), 1000)
	wait.For(t, 10*time.Second, func() error {
		if st := e.Status(); st.Target != second || st.Active != second {
			return fmt.Errorf("follower: %+v", st)
		}
		return nil
	})
	// Two heartbeats after the follower took the second deploy: still the first one.
	after := heardSoFar()
	wait.For(t, 10*time.Second, func() error {
		if heardSoFar() < after+2 {
			return errors.New("waiting for two more heartbeats")
		}
		return nil
	})
	if err := reports(first, false); err != nil {
		t.Fatal(err)
	}
	if code, body := get(HealthPath); code != http.StatusServiceUnavailable {
		t.Fatalf("health: %d %q, want 503", code, body)
	}
	if code, body := get("/"); code != 200 || body != string(good) {
		t.Fatalf("GET / = %d %q", code, body)
	}
}

// publishPage makes a one-page deploy of page, its manifest claiming size bytes, created at
// created, and writes its blob, manifest and current pointer through master.
func publishPage(t *testing.T, master *dt.Node, page []byte, size int64, created time.Time) site.DeployID {
	t.Helper()
	h := blobs.Sum(page)
	m := &site.Manifest{Version: site.ManifestVersion, Created: created,
		Files: map[string]site.File{"/index.html": {Hash: h, Size: size, Type: "text/html; charset=utf-8"}}}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := site.EncodeBlob(page)
	body, _ := m.Marshal()
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := master.PutMany(ctx, []string{site.BlobKey(h), site.DeployKey(id), site.CurrentKey}, [][]byte{obj, body, cur}); err != nil {
		t.Fatal(err)
	}
	return id
}
