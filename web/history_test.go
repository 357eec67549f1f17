package web

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// runHistory runs h until the end of the test.
func runHistory(t *testing.T, h *History) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestHistoryFollowsPublishes publishes to a real network and follows it from a node with lazy
// bodies, as a redirector's is: a small site (its manifest inline in the deploy object), a large
// one (its manifest split into chunks that the History assembles), then a third with Keep 1,
// which removes the other two.
func TestHistoryFollowsPublishes(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes three sites")
	}
	keys, plain := testnet.Keys(t)
	hub := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(hub)
	peer := testnet.Addr(hub)
	lazy := testnet.Node(t, testnet.Options{Keys: plain, Peers: []string{peer}, LazyBodies: true})
	h, err := NewHistory(HistoryConfig{Node: lazy, RetryAfter: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		for ev := range lazy.Events() {
			h.HandleEvent(ev)
		}
	}()
	t.Cleanup(func() { lazy.Close(); <-evDone })
	runHistory(t, h)

	type published struct {
		id    site.DeployID
		files int
		bytes int64
	}
	publishSite := func(files, keep int) published {
		t.Helper()
		dir := t.TempDir()
		var total int64
		for i := range files {
			body := fmt.Sprintf("<h1>page %d of %d</h1>", i, files)
			name := filepath.Join(dir, fmt.Sprintf("section-%03d/a-rather-long-page-name-%03d.html", i/50, i))
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			total += int64(len(body))
		}
		plan, err := publish.Scan(context.Background(), dir, publish.ScanOptions{MaxCompressSize: -1}) // compression is not what this tests
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := publish.Publish(ctx, plan, publish.NetworkOptions{Keys: keys, Peers: []string{peer}, Keep: keep,
			Wait: 100 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond, Node: dt.LocalConfig()})
		if err != nil && !errors.Is(err, publish.ErrNoEdges) { // no edge runs here
			t.Fatal(err)
		}
		return published{id: res.Deploy, files: files, bytes: total}
	}
	check := func(want ...published) {
		t.Helper()
		wait.For(t, 20*time.Second, func() error {
			got := h.Deploys()
			if len(got) != len(want) {
				return errorf("%d deploys, want %d: %+v", len(got), len(want), got)
			}
			for i, w := range want {
				g := got[i]
				if g.ID != w.id.String() || !g.Read || g.Files != w.files || g.Bytes != w.bytes || g.Created.IsZero() {
					return errorf("deploy %d: %+v, want %s with %d files, %d bytes", i, g, w.id.Short(), w.files, w.bytes)
				}
			}
			return nil
		})
	}

	small := publishSite(3, 10)
	check(small)
	large := publishSite(400, 10)
	raw, err := hub.Get(context.Background(), site.DeployKey(large.id))
	if err != nil {
		t.Fatal(err)
	}
	if _, ref, err := site.ParseDeployObject(raw); err != nil || ref == nil {
		t.Fatalf("the large site's manifest is not chunked (%v); make the site larger", err)
	}
	check(large, small)
	last := publishSite(2, 1)
	check(last)
}

// TestHistoryUnreadableDeploy keeps a deploy whose object does not decode, unread and listed
// first (retried, never guessed at), beside one that reads, until it leaves the table.
func TestHistoryUnreadableDeploy(t *testing.T) {
	_, plain := testnet.Keys(t)
	node := testnet.Node(t, testnet.Options{Keys: plain})
	testnet.Drain(node)
	h, err := NewHistory(HistoryConfig{Node: node, RetryAfter: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runHistory(t, h)
	good := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().Truncate(time.Second), Files: map[string]site.File{}}
	body, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	goodID, err := good.ID()
	if err != nil {
		t.Fatal(err)
	}
	bad := site.DeployIDOf([]byte("garbage"))
	h.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.DeployKey(goodID), Object: body})
	h.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.DeployKey(bad), Object: []byte("not a manifest")})
	h.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: "blob/not-a-deploy", Object: []byte("{}")})
	wait.For(t, 5*time.Second, func() error {
		d := h.Deploys()
		if len(d) != 2 || d[0].ID != bad.String() || d[0].Read || d[1].ID != goodID.String() || !d[1].Read {
			return errorf("deploys: %+v", d)
		}
		return nil
	})
	h.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: site.DeployKey(bad)})
	if d := h.Deploys(); len(d) != 1 || d[0].ID != goodID.String() {
		t.Fatalf("after the removal: %+v", d)
	}
}
