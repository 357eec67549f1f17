package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testnet"
	"github.com/dt-cdn/dt/internal/wait"
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
	e, err := NewNode(NodeConfig{Node: node, Blobs: store, PublicURL: "http://127.0.0.1:1", HeartbeatInterval: beat,
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
	go func() { defer close(runDone); e.Run(ctx) }()
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
	h := blobs.Sum(page)
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Unix(1_700_000_000, 0).UTC(),
		Files: map[string]site.File{"/index.html": {Hash: h, Size: int64(len(page)), Type: "text/html; charset=utf-8"}}}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := site.EncodeBlob(page)
	body, _ := m.Marshal()
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	if err := master.PutMany(pctx, []string{site.BlobKey(h), site.DeployKey(id), site.CurrentKey}, [][]byte{obj, body, cur}); err != nil {
		t.Fatal(err)
	}
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
	if mf, err := reg.Gather(); err != nil || len(mf) == 0 {
		t.Fatalf("metrics: %v", err)
	}
}
