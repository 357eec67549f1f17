package publish

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/deploy"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

const testBeat = 100 * time.Millisecond

// testEdge is a dt node that follows the current deploy into its own blob store and sends
// heartbeats, as an edge server does (without the HTTP part).
type testEdge struct {
	node     *dt.Node
	follower *deploy.Follower
	store    *blobs.Store
}

// testNetwork starts an origin node (listening, holding nothing special) and n edges linked to it.
func testNetwork(t testing.TB, n int) (dt.Keys, string, []*testEdge) {
	t.Helper()
	keys, plain := testnet.Keys(t)
	origin := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(origin)
	addr := testnet.Addr(origin)

	var edges []*testEdge
	for i := range n {
		store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		f, err := deploy.New(deploy.Config{Blobs: store})
		if err != nil {
			t.Fatal(err)
		}
		ec := dt.LocalConfig()
		ec.Keys, ec.DataDir, ec.NoSync, ec.Peers = plain, t.TempDir(), true, []string{addr}
		node, err := dt.Open(ec)
		if err != nil {
			t.Fatal(err)
		}
		e := &testEdge{node: node, follower: f, store: store}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() {
			for ev := range node.Events() {
				if err := f.Handle(ev); err != nil {
					t.Errorf("edge %d: %v", i, err)
				}
			}
			done <- struct{}{}
		}()
		go func() {
			heartbeat.Send(ctx, node, testBeat, func(h *heartbeat.Heartbeat) {
				st := f.Status()
				h.PublicURL = fmt.Sprintf("http://127.0.0.1:%d", 8000+i)
				if !st.Active.IsZero() {
					h.Deploy = st.Active.String()
				}
				h.Synced = st.Synced
				h.SetSites(siteStates(f))
			}, nil)
			done <- struct{}{}
		}()
		t.Cleanup(func() {
			cancel()
			<-done // heartbeats stopped
			node.Close()
			<-done
			store.Close()
		})
		edges = append(edges, e)
	}
	return keys, addr, edges
}

// siteStates is what a follower serves of every site, for a heartbeat, as an edge reports it.
func siteStates(f *deploy.Follower) []heartbeat.SiteState {
	var states []heartbeat.SiteState
	for _, st := range f.Sites() {
		s := heartbeat.SiteState{Site: st.Site}
		if !st.Active.IsZero() {
			s.Served = st.Active.String()
		}
		if !st.Target.IsZero() {
			s.Current = st.Target.String()
		}
		states = append(states, s)
	}
	return states
}

func writeSite(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// publishes counts publishes, to give each deploy its own creation time.
var publishes int

func publishDir(t *testing.T, ctx context.Context, dir string, opts NetworkOptions) Result {
	t.Helper()
	publishes++
	plan, err := Scan(ctx, dir, ScanOptions{Created: time.Unix(1_700_000_000+int64(publishes), 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	res, err := Publish(ctx, plan, opts)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return res
}

func TestPublishIncrementalAndRollback(t *testing.T) {
	keys, addr, edges := testNetwork(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 20 * time.Second, Keep: 2, Node: dt.LocalConfig()}
	dir := t.TempDir()
	big := make([]byte, 200<<10)
	rand.Read(big)
	writeSite(t, dir, map[string]string{
		"index.html":   "<h1>one</h1>",
		"css/site.css": "body { color: black }",
		"img/big.bin":  string(big),
	})

	first := publishDir(t, ctx, dir, opts)
	if first.EdgesLive != 2 || len(first.Edges) != 2 {
		t.Fatalf("first publish live on %d of %d edges", first.EdgesLive, len(first.Edges))
	}
	if first.BlobsSent == 0 || first.BlobsSent != len(first.Diff.Send) {
		t.Fatalf("first publish sent %d blobs", first.BlobsSent)
	}
	for _, e := range edges {
		a, ok := e.follower.Active()
		if !ok || a.ID != first.Deploy {
			t.Fatal("an edge does not serve the first deploy")
		}
		for _, h := range a.Manifest.Blobs() {
			if err := e.store.Verify(h); err != nil {
				t.Fatalf("edge blob: %v", err)
			}
		}
	}

	// Unchanged content: no file data at all.
	again := publishDir(t, ctx, dir, opts)
	if again.BlobsSent != 0 || again.BytesSent != 0 {
		t.Fatalf("republishing unchanged content sent %d blobs (%d bytes)", again.BlobsSent, again.BytesSent)
	}

	// One changed file: exactly its blobs.
	writeSite(t, dir, map[string]string{"index.html": "<h1>two</h1>"})
	changed := publishDir(t, ctx, dir, opts)
	if len(changed.Diff.Changed) != 1 || changed.Diff.Changed[0] != "/index.html" {
		t.Fatalf("changed paths: %v", changed.Diff.Changed)
	}
	plan, _ := Scan(ctx, dir, ScanOptions{})
	want := len(fileBlobs(plan.Manifest.Files["/index.html"]))
	plan.Close()
	if changed.BlobsSent != want {
		t.Fatalf("one changed file sent %d blobs, want %d", changed.BlobsSent, want)
	}

	// A deleted file disappears everywhere.
	if err := os.Remove(filepath.Join(dir, "css", "site.css")); err != nil {
		t.Fatal(err)
	}
	deleted := publishDir(t, ctx, dir, opts)
	if len(deleted.Diff.Deleted) != 1 {
		t.Fatalf("deleted paths: %v", deleted.Diff.Deleted)
	}
	for _, e := range edges {
		a, _ := e.follower.Active()
		if _, ok := a.Manifest.Files["/css/site.css"]; ok {
			t.Fatal("a deleted file is still served")
		}
	}

	// Rollback to the previous deploy: nothing uploaded, the edges switch.
	rb, err := Rollback(ctx, site.DeployID{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Deploy != changed.Deploy || rb.BlobsSent != 0 {
		t.Fatalf("rollback went to %s (want %s), sent %d blobs", rb.Deploy.Short(), changed.Deploy.Short(), rb.BlobsSent)
	}
	if rb.WireBytes > 64<<10 {
		t.Fatalf("rollback put %d bytes on the wire", rb.WireBytes)
	}
	for _, e := range edges {
		if a, _ := e.follower.Active(); a.ID != changed.Deploy {
			t.Fatal("an edge did not roll back")
		}
	}

	// Keep 3: the first deploys were collected, their blobs too where no kept deploy uses them.
	list, err := Deploys(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d deploys kept, want 2", len(list))
	}
	// The first deploys were collected, and so was the blob only they used (the first index.html),
	// on every edge; blobs that kept deploys share (big.bin) stay.
	if len(changed.Collected)+len(deleted.Collected) == 0 {
		t.Fatal("nothing was collected")
	}
	oldIndex := blobs.Sum([]byte("<h1>one</h1>"))
	if !slices.Contains(first.Diff.Send, oldIndex) {
		t.Fatal("the first publish did not send the first index.html")
	}
	wait.For(t, 10*time.Second, func() error {
		for _, e := range edges {
			if e.store.Has(oldIndex) {
				return errors.New("an edge still stores a collected blob")
			}
			if !e.store.Has(blobs.Sum(big)) {
				return errors.New("an edge lost a blob a kept deploy uses")
			}
		}
		return nil
	})
	current := 0
	for _, d := range list {
		if d.Current {
			current++
			if d.ID != changed.Deploy || len(d.LiveOn) != 2 {
				t.Fatalf("current deploy %s live on %v", d.ID.Short(), d.LiveOn)
			}
		}
	}
	if current != 1 {
		t.Fatalf("%d current deploys", current)
	}

	// A kept deploy is found by its full id or a unique prefix, in any case.
	for _, prefix := range []string{changed.Deploy.String(), strings.ToUpper(changed.Deploy.String()[:10])} {
		if id, err := FindDeploy(ctx, opts, prefix); err != nil || id != changed.Deploy {
			t.Errorf("FindDeploy(%q) = %s, %v; want %s", prefix, id.Short(), err, changed.Deploy.Short())
		}
	}
	if _, err := FindDeploy(ctx, opts, "zz"); err == nil || !strings.Contains(err.Error(), "no kept deploy") {
		t.Errorf("FindDeploy of a prefix no deploy has: %v", err)
	}
}

func TestPublishWithoutPeersOrEdges(t *testing.T) {
	keys, addr, _ := testNetwork(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	writeSite(t, dir, map[string]string{"index.html": "hi"})
	plan, err := Scan(ctx, dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if _, err := Publish(ctx, plan, NetworkOptions{Keys: keys}); err == nil {
		t.Fatal("published with no peer")
	}
	res, err := Publish(ctx, plan, NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: time.Second, Node: dt.LocalConfig()})
	if !errors.Is(err, ErrNoEdges) {
		t.Fatalf("no edges: %v", err)
	}
	if res.BlobsSent == 0 {
		t.Fatal("the deploy was not sent")
	}
	dry, err := Publish(ctx, plan, NetworkOptions{Keys: keys, Peers: []string{addr}, DryRun: true, Node: dt.LocalConfig()})
	if err != nil || dry.BlobsSent != 0 || len(dry.Diff.Send) != 0 {
		t.Fatalf("dry run after publishing: %+v, %v", dry.Diff, err)
	}
}

// TestCacheDirMakesRepublishCheap: a publisher that keeps its copy of the table resumes from its
// cursor, so a republish does not send a want list of the whole table.
func TestCacheDirMakesRepublishCheap(t *testing.T) {
	keys, addr, _ := testNetwork(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("p%03d.html", i)] = fmt.Sprintf("<p>page %d</p>", i)
	}
	writeSite(t, dir, files)
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 20 * time.Second, Node: dt.LocalConfig(), CacheDir: t.TempDir()}
	publishDir(t, ctx, dir, opts)
	writeSite(t, dir, map[string]string{"p000.html": "<p>changed</p>"})
	cached := publishDir(t, ctx, dir, opts)
	writeSite(t, dir, map[string]string{"p000.html": "<p>changed again</p>"})
	opts.CacheDir = ""
	fresh := publishDir(t, ctx, dir, opts)
	// Without the cache the session asks for every one of the table's 300-odd records by id
	// (32 bytes each); with it, nothing is asked for. (Both send the new manifest.)
	if cached.WireBytes+300*32*8/10 > fresh.WireBytes {
		t.Fatalf("with a cache a republish sent %d bytes, without %d", cached.WireBytes, fresh.WireBytes)
	}
	t.Logf("republish of one changed file: %d bytes on the wire with the cache, %d without", cached.WireBytes, fresh.WireBytes)
}
