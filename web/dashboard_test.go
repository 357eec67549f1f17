package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// newDashboard serves a Dashboard over the given sources on a loopback test server, closing
// both at the end of the test (the dashboard first, so open streams end).
func newDashboard(t *testing.T, cfg Config) (*Dashboard, string) {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(func() { d.Close(); srv.Close() })
	return d, srv.URL
}

// TestSnapshotShowsEdgesAndDeploys feeds a real redirector heartbeats of three edges (current and
// synced, draining, on an old deploy) and the history one deploy, and checks every column the
// page shows.
func TestSnapshotShowsEdgesAndDeploys(t *testing.T) {
	r := newTestRedirector(t, time.Hour) // no edge goes silent during the test
	manifest := &site.Manifest{Version: site.ManifestVersion, Created: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Files: map[string]site.File{
		"/index.html": {Hash: blobs.Sum([]byte("<h1>hi</h1>")), Size: 11, Type: "text/html; charset=utf-8"},
		"/app.js":     {Hash: blobs.Sum([]byte("go()")), Size: 4, Type: "text/javascript; charset=utf-8"},
	}}
	body, err := manifest.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	current, err := manifest.ID()
	if err != nil {
		t.Fatal(err)
	}
	old := site.DeployIDOf([]byte("an older deploy"))
	r.setCurrent(current)
	expiry := time.Now().Add(60 * 24 * time.Hour).Truncate(time.Millisecond).UTC()
	ams := &heartbeat.Location{Lat: 52.37, Lon: 4.9, Country: "NL", Continent: "EU"}
	r.beat(1, heartbeat.Heartbeat{PublicURL: "https://e1.example.com", Location: ams, Deploy: current.String(), Synced: true,
		Version: "dt test", Load: heartbeat.Load{CPU: 0.25, RequestsPS: 120, BytesPS: 2e6}, CertExpiry: expiry.UnixMilli()})
	r.beat(2, heartbeat.Heartbeat{PublicURL: "http://e2.example.com:8080", Deploy: current.String(), Synced: true, Draining: true})
	r.beat(3, heartbeat.Heartbeat{PublicURL: "http://e3.example.com", Deploy: old.String(), Synced: false})

	// The manifest comes inline with its event, so the History's node is never asked for it.
	_, plain := testnet.Keys(t)
	node := testnet.Node(t, testnet.Options{Keys: plain})
	testnet.Drain(node)
	history, err := NewHistory(HistoryConfig{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	history.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.DeployKey(current), Object: body})
	runHistory(t, history)
	wait.For(t, 5*time.Second, func() error {
		if d := history.Deploys(); len(d) != 1 || !d[0].Read {
			return errorf("history: %+v", d)
		}
		return nil
	})

	_, url := newDashboard(t, Config{Edges: r.svc, Deploys: history})
	var snap Snapshot
	resp := getJSON(t, url+"/api/snapshot", &snap)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if snap.CurrentDeploy != current.String() || len(snap.Edges) != 3 || snap.Redirector.Node == "" {
		t.Fatalf("snapshot: %+v", snap)
	}
	e1, _ := edgeByNode(snap, edgeID(1))
	if e1.Name != "e1.example.com" || e1.URL != "https://e1.example.com" || e1.State != "alive" || !e1.Eligible ||
		!e1.Current || !e1.Synced || e1.Version != "dt test" || e1.Load.RequestsPS != 120 || e1.Load.CPU != 0.25 {
		t.Errorf("current edge: %+v", e1)
	}
	if !e1.CertExpiry.Equal(expiry) {
		t.Errorf("certificate expiry %s, want %s", e1.CertExpiry, expiry)
	}
	if e1.Location == nil || e1.Map == nil || *e1.Location != *ams {
		t.Errorf("location %+v, map %+v", e1.Location, e1.Map)
	}
	if e1.HeartbeatAgeMS < 0 || e1.HeartbeatAgeMS > 60_000 {
		t.Errorf("heartbeat age %d ms", e1.HeartbeatAgeMS)
	}
	e2, _ := edgeByNode(snap, edgeID(2))
	if e2.Name != "e2.example.com:8080" || !e2.Draining || e2.Eligible || e2.Excluded != "draining" || !e2.CertExpiry.IsZero() || e2.Map != nil {
		t.Errorf("draining edge: %+v", e2)
	}
	e3, _ := edgeByNode(snap, edgeID(3))
	if e3.Current || e3.Synced || e3.Eligible || e3.Excluded != "old deploy" || e3.Deploy != old.String() {
		t.Errorf("edge on an old deploy: %+v", e3)
	}
	want := Deploy{ID: current.String(), Read: true, Created: manifest.Created, Files: 2, Bytes: 15, Current: true}
	if len(snap.Deploys) != 1 || snap.Deploys[0] != want {
		t.Errorf("deploys %+v, want %+v", snap.Deploys, want)
	}
}

// TestStreamPushesStateChanges holds the tick at an hour, so every event after the first comes
// from the redirector's change signal: a new edge appears, and an edge that falls silent (its
// probe fails) turns dead, without waiting for a tick.
func TestStreamPushesStateChanges(t *testing.T) {
	const beat = 100 * time.Millisecond
	r := newTestRedirector(t, beat)
	_, url := newDashboard(t, Config{Edges: r.svc, Tick: time.Hour})
	s := openStream(t, url)
	if first := s.snapshot(t, 5*time.Second); len(first.Edges) != 0 {
		t.Fatalf("first snapshot: %+v", first.Edges)
	}
	r.beat(1, heartbeat.Heartbeat{PublicURL: closedURL(t)})
	snap := s.snapshot(t, 5*time.Second)
	if e, ok := edgeByNode(snap, edgeID(1)); !ok || e.State != "alive" {
		t.Fatalf("after the first heartbeat: %+v", snap.Edges)
	}
	// No more heartbeats: suspect after three intervals, then dead when the probe fails. Each
	// change is one event; read until the dead one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap = s.snapshot(t, time.Until(deadline))
		e, _ := edgeByNode(snap, edgeID(1))
		if e.State == "dead" {
			if e.Reason == "" {
				t.Errorf("dead without a reason: %+v", e)
			}
			break
		}
	}
}

// TestStreamTicks checks that snapshots keep coming without changes, with the heartbeat's age
// growing, and that Close ends an open stream.
func TestStreamTicks(t *testing.T) {
	r := newTestRedirector(t, time.Hour)
	r.beat(1, heartbeat.Heartbeat{PublicURL: "http://e1.example.com"})
	d, url := newDashboard(t, Config{Edges: r.svc, Tick: 20 * time.Millisecond})
	s := openStream(t, url)
	first := s.snapshot(t, 5*time.Second)
	var later Snapshot
	for range 3 {
		later = s.snapshot(t, 5*time.Second)
	}
	a, _ := edgeByNode(first, edgeID(1))
	b, _ := edgeByNode(later, edgeID(1))
	if !later.Time.After(first.Time) || b.HeartbeatAgeMS <= a.HeartbeatAgeMS {
		t.Errorf("ticks: %s age %d ms, then %s age %d ms", first.Time, a.HeartbeatAgeMS, later.Time, b.HeartbeatAgeMS)
	}
	d.Close()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := s.next(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Errorf("stream ended with %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left the stream open")
	}
}

// TestStreamLimit refuses streams beyond MaxStreams, and takes one again once a stream closes.
func TestStreamLimit(t *testing.T) {
	r := newTestRedirector(t, time.Hour)
	d, url := newDashboard(t, Config{Edges: r.svc, MaxStreams: 1})
	s := openStream(t, url)
	s.snapshot(t, 5*time.Second)
	resp, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream: %s, want 503", resp.Status)
	}
	s.resp.Body.Close()
	wait.For(t, 5*time.Second, func() error {
		if n := d.streams.Load(); n != 0 {
			return errorf("%d streams still counted", n)
		}
		return nil
	})
	openStream(t, url).snapshot(t, 5*time.Second)
}

func TestNewRequiresEdges(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without Edges succeeded")
	}
	if _, err := NewHistory(HistoryConfig{}); err == nil {
		t.Fatal("NewHistory without Node succeeded")
	}
}
