package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/nodehost"
)

// TestRunDrainsAndStops runs an edge through Run, linked to a peer dt node, and cancels its
// context: while it drains, its health endpoint answers 503 "draining" and the listener still
// serves; Run then returns, every goroutine the edge started is gone, and the last heartbeat the
// peer received from it says it drains.
func TestRunDrainsAndStops(t *testing.T) {
	const beat = 100 * time.Millisecond
	_, plain := testnet.Keys(t)
	peer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	var (
		mu    sync.Mutex
		beats = map[dt.NodeID][]heartbeat.Heartbeat{}
	)
	events := peer.Events() // subscribed here, before the goroutines the edge may not leave are counted
	go func() {
		for ev := range events {
			if h, err := heartbeat.Decode(ev.Object); err == nil && ev.Type == dt.EventMessageReceived {
				mu.Lock()
				beats[ev.From] = append(beats[ev.From], h)
				mu.Unlock()
			}
		}
	}()
	lastBeat := func(id dt.NodeID) (heartbeat.Heartbeat, int) {
		mu.Lock()
		defer mu.Unlock()
		bs := beats[id]
		if len(bs) == 0 {
			return heartbeat.Heartbeat{}, 0
		}
		return bs[len(bs)-1], len(bs)
	}
	// Everything running now (the test's peer node and its reader) is not the edge's.
	ignore := goleak.IgnoreCurrent()

	node := dt.LocalConfig()
	node.Keys, node.DataDir, node.NoSync, node.Peers = plain, t.TempDir(), true, []string{testnet.Addr(peer)}
	ready := make(chan nodehost.Ready, 1)
	e, err := New(Config{Host: nodehost.Config{Node: node, Admin: "127.0.0.1:0", Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", HeartbeatInterval: beat, DrainWait: 2 * time.Second, Name: "drain-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var r nodehost.Ready
	select {
	case r = <-ready:
	case err := <-done:
		t.Fatalf("Run returned before the edge served: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the edge did not report ready")
	}
	if r.Serving.HTTP == "" || r.Serving.HTTPS == "" || r.Admin == "" || r.Serving.PublicURL != "https://"+r.Serving.HTTPS {
		t.Fatalf("ready: %+v", r)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	health := func() (int, string, error) {
		resp, err := client.Get("http://" + r.Serving.HTTP + HealthPath)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	if code, body, err := health(); err != nil || code != http.StatusServiceUnavailable || body != "syncing" {
		t.Fatalf("health before any deploy: %d %q %v", code, body, err)
	}
	wait.For(t, 10*time.Second, func() error {
		if h, n := lastBeat(r.ID); n == 0 || h.Draining || h.Name != "drain-test" {
			return fmt.Errorf("%d heartbeats from the edge, last %+v", n, h)
		}
		return nil
	})
	if s := e.Status(); !s.Target.IsZero() || !s.Active.IsZero() {
		t.Fatalf("status with nothing published: %+v", s)
	}

	cancel()
	wait.For(t, 5*time.Second, func() error {
		code, body, err := health()
		if err != nil || code != http.StatusServiceUnavailable || body != "draining" {
			return fmt.Errorf("health while draining: %d %q %v", code, body, err)
		}
		return nil
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, _, err := health(); err == nil {
		t.Error("the visitor listener still answers after Run returned")
	}
	if _, err := client.Get("http://" + r.Admin + "/status"); err == nil {
		t.Error("the admin listener still answers after Run returned")
	}
	goleak.VerifyNone(t, ignore)
	if err := e.Run(context.Background()); !errors.Is(err, ErrRunOnce) {
		t.Errorf("second Run: %v, want ErrRunOnce", err)
	}
	wait.For(t, 5*time.Second, func() error {
		if h, _ := lastBeat(r.ID); !h.Draining {
			return errors.New("the last heartbeat the peer received does not say the edge drains")
		}
		return nil
	})
}
